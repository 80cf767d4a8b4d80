import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import {
  APPROVALS_LIST_MAX,
  APPROVED_GRACE_MS,
  type ApprovalBinding,
  type ApprovalListOptions,
  type ApprovalOutcome,
  type ApprovalRow,
  type ApprovalStatus,
  type Approvals,
} from '../../storage/policy-state.js';
import type { RedisConnection } from './connection.js';
import { noteConsumed } from './approval-journal.js';

const CHANNEL = 'egress-triage:approvals:decided';
const ALL = 'egress-triage:apr:all';
/** Decided and used approvals stay listable (and auditable by id) this long. */
const KEEP_MS = 7 * 86_400_000;
/** Ids read from the index per round trip of list(). */
const LIST_PAGE = 1000;

const tagOf = (id: string) => id.slice(4, 12);
const prefixOf = (tag: string) => `egress-triage:apr:{${tag}}:`;

/**
 * Approvals in Redis, so that every replica and the CLI see the same ones, and pending ones survive a
 * replica restart. The id carries its binding's hash tag (`apr_<tag><random>`), so any process finds
 * the approval's keys from the id alone.
 *
 * A waiting call is released by the decision's pub/sub message at once; a poll every `pollMs` is the
 * fallback (a message lost while the subscriber reconnects). While Redis cannot be read, the waiting
 * call is denied: fail closed.
 */
export class RedisApprovals implements Approvals {
  private readonly waiters = new Map<string, Set<(o: ApprovalOutcome) => void>>();
  private sub?: Redis;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly conn: RedisConnection,
    private readonly now: () => number = Date.now,
    private readonly pollMs = 1000,
  ) {
    conn.onUsable = () => this.checkAll();
  }

  async request(b: ApprovalBinding): Promise<{ row: ApprovalRow; state: 'approved' | 'pending' | 'new' }> {
    this.conn.assertUsable();
    const tag = createHash('sha256').update(`${b.session}\u0000${b.tool}\u0000${b.argsHash}`).digest('hex').slice(0, 8);
    const newId = `apr_${tag}${randomBytes(4).toString('hex')}`;
    const now = this.now();
    const out = (await this.conn.run('apr_request', [`${prefixOf(tag)}idx`], [
      String(now), b.session, b.identity, b.tool, b.argsHash, b.argsPreview, b.rule, String(b.timeoutMs), newId, prefixOf(tag), String(KEEP_MS),
      b.upstreamName ?? '', b.tenant ?? '',
    ])) as [string, string];
    const [state, id] = out;
    if (state === 'new') await this.conn.redis.zadd(ALL, now, id).catch(() => undefined);
    const row = await this.get(id);
    if (!row) throw new Error(`approval ${id} disappeared from Redis at ${this.conn.display}`);
    return { row, state: state as 'approved' | 'pending' | 'new' };
  }

  async get(id: string): Promise<ApprovalRow | undefined> {
    if (!/^apr_[0-9a-f]{16}$/.test(id)) return undefined;
    try {
      const h = await this.conn.redis.hgetall(`${prefixOf(tagOf(id))}${id}`);
      return Object.keys(h).length ? this.toRow(h) : undefined;
    } catch (e) {
      throw this.conn.explain(e);
    }
  }

  async list(opts: ApprovalListOptions = {}): Promise<ApprovalRow[]> {
    this.conn.assertUsable();
    const status = opts.status ?? 'pending';
    try {
      await this.conn.redis.zremrangebyscore(ALL, '-inf', this.now() - KEEP_MS - 86_400_000);
      // Newest first, page by page, until APPROVALS_LIST_MAX match: the index holds every tenant's
      // approvals of the last days, so a first page alone could be all another tenant's (as SQL's
      // WHERE ... LIMIT does).
      const rows: ApprovalRow[] = [];
      for (let from = 0; rows.length < APPROVALS_LIST_MAX; from += LIST_PAGE) {
        const ids = await this.conn.redis.zrevrange(ALL, from, from + LIST_PAGE - 1);
        for (const id of ids) {
          const r = await this.get(id);
          if (r && (status === 'all' || r.status === status) && (opts.tenant === undefined || r.tenant === opts.tenant)) rows.push(r);
          if (rows.length >= APPROVALS_LIST_MAX) break;
        }
        if (ids.length < LIST_PAGE) break;
      }
      return rows;
    } catch (e) {
      throw this.conn.explain(e);
    }
  }

  async decide(id: string, decision: 'approved' | 'denied', by: string, reason?: string): Promise<ApprovalRow> {
    this.conn.assertUsable();
    if (!/^apr_[0-9a-f]{16}$/.test(id)) throw new Error(`no approval with id ${id}`);
    const out = (await this.conn.run('apr_decide', [`${prefixOf(tagOf(id))}${id}`], [
      String(this.now()), decision, by, reason ?? '', reason === undefined ? '0' : '1', String(APPROVED_GRACE_MS), CHANNEL, id, String(KEEP_MS),
    ])) as string[];
    if (out[0] === 'missing') throw new Error(`no approval with id ${id}`);
    if (out[0] === 'not_pending') throw new Error(`approval ${id} is ${out[1]}, not pending`);
    this.check(id); // a waiter in this process need not wait for the message
    return (await this.get(id))!;
  }

  async withdraw(id: string, reason: string): Promise<boolean> {
    this.conn.assertUsable();
    if (!/^apr_[0-9a-f]{16}$/.test(id)) return false;
    const done = (await this.conn.run('apr_withdraw', [`${prefixOf(tagOf(id))}${id}`], [String(this.now()), reason, CHANNEL, id])) as number;
    if (done !== 1) return false;
    this.check(id); // a waiter in this process need not wait for the message
    return true;
  }

  async consume(id: string): Promise<boolean> {
    this.conn.assertUsable();
    const key = `${prefixOf(tagOf(id))}${id}`;
    const now = this.now();
    const expiresAt = (await this.conn.run('apr_consume', [key], [String(now)])) as string | null;
    if (expiresAt === null) return false;
    noteConsumed(this.conn.consumed, key, Number(expiresAt), now);
    return true;
  }

  wait(id: string, signal?: AbortSignal): Promise<ApprovalOutcome> {
    return new Promise((resolve) => {
      let deadline: NodeJS.Timeout | undefined;
      const settle = (o: ApprovalOutcome) => {
        if (deadline) clearTimeout(deadline);
        signal?.removeEventListener('abort', onAbort);
        const set = this.waiters.get(id);
        set?.delete(settle);
        if (set?.size === 0) this.waiters.delete(id);
        if (this.waiters.size === 0) this.idle();
        resolve(o);
      };
      const onAbort = () => settle({ status: 'cancelled' });
      if (signal?.aborted) return resolve({ status: 'cancelled' });
      signal?.addEventListener('abort', onAbort, { once: true });
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      set.add(settle);
      this.listen();
      void this.get(id).then(
        (row) => {
          if (!row || !this.waiters.get(id)?.has(settle)) return this.check(id);
          deadline = setTimeout(() => {
            void this.conn
              .run('apr_expire', [`${prefixOf(tagOf(id))}${id}`], [String(this.now())])
              .catch(() => undefined)
              .then(() => this.check(id));
          }, Math.max(0, row.expires_at - this.now()));
          deadline.unref();
          this.check(id);
        },
        () => this.check(id),
      );
    });
  }

  /** Subscribes (once) and starts the fallback poll while anything waits. */
  private listen(): void {
    if (!this.sub) {
      this.sub = this.conn.redis.duplicate({ lazyConnect: false, enableOfflineQueue: true, maxRetriesPerRequest: null });
      this.sub.on('error', () => undefined);
      this.sub.on('message', (_ch: string, id: string) => {
        if (this.waiters.has(id)) this.check(id);
      });
      // After a reconnection, messages sent meanwhile are gone: look at every waiter once.
      this.sub.on('ready', () => this.checkAll());
      this.sub.subscribe(CHANNEL).catch(() => undefined);
    }
    if (!this.timer) {
      // Not unref'd: while anything waits, the poll is what settles the waiter (denied on a store
      // error) even when no connection is left to keep the process running.
      this.timer = setInterval(() => this.checkAll(), this.pollMs);
    }
  }

  private idle(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private checkAll(): void {
    for (const id of [...this.waiters.keys()]) this.check(id);
  }

  private check(id: string): void {
    if (!this.waiters.has(id)) return;
    this.get(id).then(
      (row) => {
        if (!row) return this.notify(id, { status: 'expired', reason: 'approval record disappeared' });
        if (row.status === 'pending') return;
        if (row.status === 'approved' || row.status === 'consumed') this.notify(id, { status: 'approved', decidedBy: row.decided_by ?? undefined });
        else if (row.status === 'denied') this.notify(id, { status: 'denied', reason: row.reason ?? undefined, decidedBy: row.decided_by ?? undefined });
        else this.notify(id, { status: 'expired' });
      },
      // Fail closed: if the state cannot be read, the call is not approved.
      (e: Error) => this.notify(id, { status: 'denied', reason: `policy state error: ${e.message}` }),
    );
  }

  private notify(id: string, o: ApprovalOutcome): void {
    const set = this.waiters.get(id);
    if (!set) return;
    for (const fn of [...set]) fn(o);
  }

  private toRow(h: Record<string, string>): ApprovalRow {
    const num = (k: string) => (h[k] === undefined ? null : Number(h[k]));
    let status = h.status as ApprovalStatus;
    const expires = Number(h.expires_at);
    // Past its deadline is expired, whether or not a script has written that yet.
    if ((status === 'pending' || status === 'approved') && expires <= this.now()) status = 'expired';
    return {
      id: h.id!,
      created_at: Number(h.created_at),
      expires_at: expires,
      status,
      session: h.session!,
      identity: h.identity!,
      tool: h.tool!,
      args_hash: h.args_hash!,
      args_preview: h.args_preview!,
      rule: h.rule!,
      decided_at: num('decided_at'),
      decided_by: h.decided_by ?? null,
      reason: h.reason ?? null,
      upstream_name: h.upstream_name ?? null,
      tenant: h.tenant ?? null,
    };
  }

  async close(): Promise<void> {
    this.idle();
    await this.sub?.quit().catch(() => this.sub?.disconnect());
  }
}
