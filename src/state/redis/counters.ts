import { createHash, randomBytes } from 'node:crypto';
import type { LimitRequest, RateCounters, Reservation, ReserveResult } from '../../storage/policy-state.js';
import type { RedisConnection } from './connection.js';
import { LostDataError } from './lost-data.js';

interface Charge {
  z: string;
  s: string;
  member: string;
  cost: number;
  /** Time the script charged it at (Redis TIME or the injected clock). */
  t: number;
  windowMs: number;
  committed: boolean;
}

interface RedisReservation extends Reservation {
  charges: Charge[];
}

/** A window too long for milliseconds in a double (or for a key TTL) never ends: sent as -1. */
const wire = (windowMs: number) => (Number.isFinite(windowMs) && windowMs <= 1e15 ? String(windowMs) : '-1');

/**
 * Sliding-window counters shared by every replica on one Redis. Each limit is one counter (two keys
 * under one hash tag). A call with several limits is charged limit by limit, narrowest scope first and
 * global last, each in one script; when one refuses, those already charged are refunded. So nothing
 * is ever admitted over `max`. The price: while a call holds a narrow charge that it is about to give
 * back, a concurrent call on the same narrow counter may be refused; global counters, charged last,
 * are never held that way.
 *
 * Every charge this process made is also kept here until its window ends, so that when Redis comes
 * back without its data (restarted with no persistence) the charges can be put back: see
 * connection.ts.
 */
export class RedisCounters implements RateCounters {
  private readonly tags = new Map<string, { z: string; s: string }>();
  private seq = 0;
  private readonly rid = randomBytes(6).toString('hex');

  constructor(
    private readonly conn: RedisConnection,
    private readonly namespace: string,
    private readonly journal: Map<string, Charge>,
  ) {}

  private keysOf(key: string): { z: string; s: string } {
    let k = this.tags.get(key);
    if (!k) {
      // One hash tag per counter: its two keys live in one Cluster slot, so one script can touch both.
      const tag = createHash('sha256').update(`${this.namespace}\u0000${key}`).digest('hex').slice(0, 24);
      k = { z: `egress-triage:rl:{${tag}}:z`, s: `egress-triage:rl:{${tag}}:s` };
      if (this.tags.size > 100_000) this.tags.clear();
      this.tags.set(key, k);
    }
    return k;
  }

  async reserve(reqs: readonly LimitRequest[]): Promise<ReserveResult> {
    this.conn.assertUsable();
    const order = chargeOrder(reqs);
    const res: RedisReservation = { released: false, charges: [] };
    try {
      for (const r of order) {
        const { z, s } = this.keysOf(r.key);
        const member = `${this.rid}.${++this.seq}|${r.cost}`;
        let out: string[] | number[];
        try {
          out = (await this.conn.runAdmitting('reserve', [z, s], [this.conn.nowArg(), wire(r.windowMs), String(r.max), String(r.cost), member])) as string[] | number[];
        } catch (e) {
          // charged on the emptied counter all the same: given back, the call being denied
          const ran = e instanceof LostDataError ? (e.result as string[] | undefined) : undefined;
          if (ran !== undefined && Number(ran[0]) === 1) res.charges.push({ z, s, member, cost: r.cost, t: Number(ran[1]), windowMs: r.windowMs, committed: false });
          throw e;
        }
        if (Number(out[0]) !== 1) {
          await this.refund(res);
          const retry = Number(out[2]);
          return { ok: false, key: r.key, max: r.max, windowMs: r.windowMs, used: Number(out[1]), retryAfterMs: retry < 0 ? Infinity : retry };
        }
        const c: Charge = { z, s, member, cost: r.cost, t: Number(out[1]), windowMs: r.windowMs, committed: false };
        res.charges.push(c);
        this.journal.set(member, c);
        if (this.journal.size % 4096 === 0) forgetEnded(this.journal, this.conn.now());
      }
    } catch (e) {
      // Fail closed: the call is denied; what was charged is given back where Redis still answers.
      await this.refund(res).catch(() => undefined);
      throw this.conn.explain(e);
    }
    return { ok: true, reservation: res };
  }

  async refund(r: Reservation): Promise<void> {
    const res = r as RedisReservation;
    if (res.released) return;
    res.released = true;
    // One script per counter, sent together (they may live on different Cluster slots). A charge whose
    // refund fails stays in the journal and in Redis: over-counting, never over-admitting.
    await Promise.all(
      res.charges.map(async (c) => {
        await this.conn.run('refund', [c.z, c.s], [c.member, String(c.cost)]);
        this.journal.delete(c.member);
      }),
    );
  }

  async commit(r: Reservation): Promise<void> {
    const res = r as RedisReservation;
    if (res.released) return;
    res.released = true;
    await Promise.all(
      res.charges.map((c) => {
        c.committed = true;
        return this.conn.run('commit', [c.z], [c.member]);
      }),
    );
  }

  async used(key: string, windowMs: number): Promise<number> {
    this.conn.assertUsable();
    const { z, s } = this.keysOf(key);
    return Number(await this.conn.run('used', [z, s], [this.conn.nowArg(), wire(windowMs)]));
  }
}

/**
 * Narrow scopes first, the shared ones last (see the class comment): session, client, upstream (every
 * caller of one upstream), global. The scope is the key's suffix (src/policy/limit-scope.ts).
 */
function rank(r: LimitRequest): number {
  const scope = r.key.slice(r.key.lastIndexOf('\u0000') + 1);
  return scope === 'g' ? 3 : scope.startsWith('u:') ? 2 : scope.startsWith('c:') ? 1 : 0;
}

/** The order reserve() charges a call's limits in. */
export function chargeOrder(reqs: readonly LimitRequest[]): LimitRequest[] {
  return [...reqs].sort((a, b) => rank(a) - rank(b));
}

export type { Charge };

function forgetEnded(journal: Map<string, Charge>, now: number): void {
  for (const [k, c] of journal) if (Number.isFinite(c.windowMs) && c.t <= now - c.windowMs) journal.delete(k);
}

/** Puts back every charge of this process that is still inside its window; returns how many. */
export async function restoreCharges(conn: RedisConnection, journal: Map<string, Charge>, now: number): Promise<number> {
  forgetEnded(journal, now);
  let n = 0;
  for (const c of journal.values()) {
    const member = c.committed ? `${c.member}|c` : c.member;
    n += Number(await conn.run('restore', [c.z, c.s], [member, String(c.t), String(c.cost), wire(c.windowMs), conn.injected ? '1' : '0']));
  }
  return n;
}
