import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { transaction, type PgClient, type PgPool } from './pool.js';
import { ensureTenant } from './tenants.js';
import { leaseDecision, nextPollMs, waitCycle } from '../ingest-lease.js';
import {
  DEFAULT_INGEST_LEASE_TTL_MS,
  IngestLeaseDeadlockError,
  IngestLeaseLostError,
  type AcquireIngestLeaseOptions,
  type IngestLease,
  type IngestLeaseHolder,
  type IngestLeases,
  type IngestLeaseState,
} from '../store.js';

/**
 * Time for the leases. Expiry is judged on the PostgreSQL server's clock (every writer shares it,
 * whatever machine it runs on): now() returning null means "the server's clock". Tests inject a
 * clock that returns a time and advances on sleep.
 */
export interface PgLeaseClock {
  now(): number | null;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const SERVER_LEASE_CLOCK: PgLeaseClock = {
  now: () => null,
  sleep: (ms, signal) => delay(ms, undefined, { signal }),
};

/** The lease statements' "now": the injected time, else the server's clock in epoch ms. */
const NOW = (param: string) => `coalesce(${param}::bigint, (extract(epoch FROM clock_timestamp()) * 1000)::bigint)`;

interface Row {
  token: string;
  source: string;
  pid: number;
  host: string;
  since: number;
  expires_at: number;
}

const COLUMNS = 'token, source, pid, host, since, expires_at';

function stateOf(tenant: string, r: Row): IngestLeaseState {
  return { tenant, holder: { source: r.source, pid: r.pid, host: r.host }, since: r.since, expiresAt: r.expires_at };
}

/**
 * Extends the lease inside the caller's write transaction, or throws IngestLeaseLostError so the
 * transaction rolls back. The UPDATE takes the lease row's lock: a takeover (itself a locked write
 * of that row) either committed before, and the token no longer matches, or waits until this
 * transaction ends and then finds the lease extended. So no write of an old holder commits after
 * a takeover.
 */
export async function fenceIngestLease(
  c: PgClient,
  lease: { tenant: string; tenantId: number; token: string; ttlMs: number },
  clock: PgLeaseClock = SERVER_LEASE_CLOCK,
): Promise<void> {
  const r = await c.query(`UPDATE ingest_leases SET expires_at = ${NOW('$1')} + $2 WHERE tenant_id = $3 AND token = $4`, [
    clock.now(), lease.ttlMs, lease.tenantId, lease.token,
  ]);
  if (r.rowCount === 1) return;
  const cur = (await c.query<Row>(`SELECT ${COLUMNS} FROM ingest_leases WHERE tenant_id = $1`, [lease.tenantId])).rows[0];
  throw new IngestLeaseLostError(lease.tenant, cur ? stateOf(lease.tenant, cur) : null);
}

/**
 * The ingest lease on PostgreSQL (contract in store.ts): one row per tenant in ingest_leases.
 * Taking it locks the row (SELECT ... FOR UPDATE) and decides on the locked row, so two writers
 * never both take it; waiters poll without holding locks.
 */
export class PgIngestLeases implements IngestLeases {
  constructor(
    private readonly pool: PgPool,
    private readonly clock: PgLeaseClock = SERVER_LEASE_CLOCK,
    private readonly pollMs = 100,
  ) {}

  acquireIngestLease(tenant: string, holder: IngestLeaseHolder, opts?: AcquireIngestLeaseOptions & { wait?: true }): Promise<PgIngestLease>;
  acquireIngestLease(tenant: string, holder: IngestLeaseHolder, opts: AcquireIngestLeaseOptions): Promise<PgIngestLease | null>;
  async acquireIngestLease(tenant: string, holder: IngestLeaseHolder, opts: AcquireIngestLeaseOptions = {}): Promise<PgIngestLease | null> {
    const ttlMs = opts.ttlMs ?? DEFAULT_INGEST_LEASE_TTL_MS;
    if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`lease ttlMs must be a positive integer, got ${ttlMs}`);
    const tenantId = await ensureTenant(this.pool, tenant);
    // A holder is one process: its leases of several tenants share (host, pid).
    const me = `${holder.host}/${holder.pid}`;
    const setWaiting = (t: number | null) =>
      this.pool.query('UPDATE ingest_leases SET waiting_for = $1 WHERE host = $2 AND pid = $3', [t, holder.host, holder.pid]);
    let announced: string | null = null;
    let marked = false;
    let took = false;
    try {
      for (;;) {
        opts.signal?.throwIfAborted();
        const token = randomUUID();
        const outcome = await transaction(this.pool, async (c) => {
          const now = (await c.query<{ now: number }>(`SELECT ${NOW('$1')} AS now`, [this.clock.now()])).rows[0]!.now;
          const prev = (await c.query<Row>(`SELECT ${COLUMNS} FROM ingest_leases WHERE tenant_id = $1 FOR UPDATE SKIP LOCKED`, [tenantId])).rows[0] ?? null;
          if (!prev) {
            // A row there but locked: its holder is inside a write (a --strict ingest holds the lock
            // for its whole source). Waiting for the lock would be silent and deaf to Ctrl-C, so the
            // lease counts as held, whatever its committed expiry says, and the waiter polls.
            const locked = (await c.query<Row>(`SELECT ${COLUMNS} FROM ingest_leases WHERE tenant_id = $1`, [tenantId])).rows[0];
            if (locked) return { took: false as const, current: locked, now, busy: true as const };
          }
          const d = leaseDecision(prev && { token: prev.token, expiresAt: prev.expires_at }, now);
          if (d === 'held') return { took: false as const, current: prev!, now, busy: false as const };
          if (prev) {
            await c.query('UPDATE ingest_leases SET token = $2, source = $3, pid = $4, host = $5, since = $6, expires_at = $7, waiting_for = NULL WHERE tenant_id = $1', [
              tenantId, token, holder.source, holder.pid, holder.host, now, now + ttlMs,
            ]);
          } else {
            // Nobody's row to lock yet: of two first takers, the second inserts nothing and looks again.
            const ins = await c.query(
              `INSERT INTO ingest_leases (tenant_id, token, source, pid, host, since, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
               ON CONFLICT (tenant_id) DO NOTHING`,
              [tenantId, token, holder.source, holder.pid, holder.host, now, now + ttlMs],
            );
            if (ins.rowCount !== 1) return { took: null };
          }
          await c.query('UPDATE ingest_leases SET waiting_for = NULL WHERE host = $1 AND pid = $2', [holder.host, holder.pid]);
          return { took: true as const, previous: d === 'expired' ? prev : null, now };
        });
        if (outcome.took === null) continue;
        if (outcome.took) {
          took = true;
          if (outcome.previous) opts.onWait?.({ kind: 'takeover', previous: stateOf(tenant, outcome.previous), now: outcome.now });
          return new PgIngestLease(this.pool, tenant, tenantId, token, ttlMs, this.clock);
        }
        const held = outcome.current;
        if (announced !== held.token) {
          announced = held.token;
          opts.onWait?.({ kind: 'waiting', current: stateOf(tenant, held), now: outcome.now, ...(outcome.busy ? { busy: true as const } : {}) });
        }
        if (opts.wait === false) return null;
        // Only a holder of other tenants can be part of a cycle; it says whom it waits for first.
        if (!marked) await setWaiting(tenantId);
        marked = true;
        const rows = (await this.pool.query<{ tenant_id: number; holder: string; waiting_for: number | null }>(
          "SELECT tenant_id, host || '/' || pid AS holder, waiting_for FROM ingest_leases",
        )).rows;
        const holderOf = new Map(rows.map((r) => [r.tenant_id, r.holder]));
        const waitingOf = new Map(rows.filter((r) => r.waiting_for !== null).map((r) => [r.holder, r.waiting_for!]));
        const cycle = waitCycle(tenantId, me, (t) => holderOf.get(t) ?? null, (h) => waitingOf.get(h) ?? null);
        // Everyone in the cycle sees it; only the greatest gives up, so the others can go on.
        if (cycle && cycle.length > 0 && cycle.every((h) => h < me)) {
          throw new IngestLeaseDeadlockError(
            `tenant "${tenant}": waiting for ${held.source} (pid ${held.pid} on ${held.host}) would never end: ` +
              `it waits for a tenant this ingest of ${holder.source} holds; ingest sources with records of several tenants one at a time`,
          );
        }
        // a busy holder's committed expiry says nothing: look again after the full poll interval
        const poll = outcome.busy ? this.pollMs : nextPollMs({ token: held.token, expiresAt: held.expires_at }, outcome.now, this.pollMs);
        await this.clock.sleep(poll, opts.signal);
      }
    } finally {
      // Given up (deadlock, abort, error): no longer waiting. Taking the lease cleared it already.
      if (marked && !took) await setWaiting(null).catch(() => undefined);
    }
  }
}

/**
 * A held lease. renew() and release() are asynchronous here (a network round trip): callers await
 * them. Fencing is part of the ingest write: the write batch carries the lease token and the
 * backend fences inside its transaction (fenceIngestLease).
 */
export class PgIngestLease implements IngestLease {
  constructor(
    private readonly pool: PgPool,
    readonly tenant: string,
    readonly tenantId: number,
    readonly token: string,
    readonly ttlMs: number,
    private readonly clock: PgLeaseClock,
  ) {}

  /**
   * Heartbeat, in its own transaction; throws IngestLeaseLostError after a takeover. It never waits
   * for the lease row's lock: an atomic (--strict) ingest holds that lock in its open transaction
   * until it commits, and a heartbeat waiting for it would stall the ingest it keeps alive. A locked
   * row still carrying our token is being extended by our own writes (or looked at by a waiter,
   * whose takeover our next write's fence would catch), so the heartbeat has nothing to do.
   */
  async renew(): Promise<void> {
    await transaction(this.pool, async (c) => {
      const mine = await c.query('SELECT 1 FROM ingest_leases WHERE tenant_id = $1 AND token = $2 FOR UPDATE SKIP LOCKED', [this.tenantId, this.token]);
      if (mine.rowCount === 1) return fenceIngestLease(c, this, this.clock);
      const cur = (await c.query<Row>(`SELECT ${COLUMNS} FROM ingest_leases WHERE tenant_id = $1`, [this.tenantId])).rows[0];
      if (cur?.token !== this.token) throw new IngestLeaseLostError(this.tenant, cur ? stateOf(this.tenant, cur) : null);
    });
  }

  /** Fences inside the caller's open transaction on `c`. */
  fenceIn(c: PgClient): Promise<void> {
    return fenceIngestLease(c, this, this.clock);
  }

  async release(): Promise<void> {
    await this.pool.query('DELETE FROM ingest_leases WHERE tenant_id = $1 AND token = $2', [this.tenantId, this.token]);
  }
}
