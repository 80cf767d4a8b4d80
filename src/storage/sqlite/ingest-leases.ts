import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { SqliteDatabase } from './db.js';
import { ensureTenant } from './ingest-session.js';
import { writeGroupOf } from './write-group.js';
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

/** Time as the leases see it; tests inject one that advances on sleep instead of waiting. */
export interface LeaseClock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

export const SYSTEM_LEASE_CLOCK: LeaseClock = {
  now: () => Date.now(),
  sleep: (ms, signal) => delay(ms, undefined, { signal }),
};

interface Row {
  token: string;
  source: string;
  pid: number;
  host: string;
  since: number;
  expires_at: number;
}

/**
 * The ingest lease on SQLite (contract in store.ts): one row per tenant in ingest_leases. Every
 * change to a row happens inside an IMMEDIATE transaction, so it is serialised with all other
 * writes to the file; the holder's fence() runs inside its own write transactions. Waiters only
 * read (WAL readers never block the holder) until the row looks free or expired.
 * All writers must share one clock: processes on one machine. A writer on another machine over a
 * network filesystem is not supported (SQLite's locking is not reliable there either).
 */
export class SqliteIngestLeases implements IngestLeases {
  constructor(
    private readonly db: SqliteDatabase,
    private readonly clock: LeaseClock = SYSTEM_LEASE_CLOCK,
    private readonly pollMs = 100,
  ) {}

  /**
   * The fence of a write batch (IngestWriteBatch.lease): inside the caller's write transaction,
   * extends the tenant's lease if it still carries `token`, else throws IngestLeaseLostError.
   */
  fence(tenantId: number, tenant: string, token: string, ttlMs: number): void {
    if (!this.db.inTransaction) throw new Error('the ingest lease fence must run inside the write transaction it protects');
    fenceLease(this.db, this.clock, tenant, tenantId, token, ttlMs);
  }

  acquireIngestLease(tenant: string, holder: IngestLeaseHolder, opts?: AcquireIngestLeaseOptions & { wait?: true }): Promise<SqliteIngestLease>;
  acquireIngestLease(tenant: string, holder: IngestLeaseHolder, opts: AcquireIngestLeaseOptions): Promise<SqliteIngestLease | null>;
  async acquireIngestLease(tenant: string, holder: IngestLeaseHolder, opts: AcquireIngestLeaseOptions = {}): Promise<SqliteIngestLease | null> {
    const ttlMs = opts.ttlMs ?? DEFAULT_INGEST_LEASE_TTL_MS;
    if (!Number.isInteger(ttlMs) || ttlMs <= 0) throw new RangeError(`lease ttlMs must be a positive integer, got ${ttlMs}`);
    // What this connection wrote is committed before it may wait: an open write transaction would
    // hold the file's write lock, which the lease holder it waits for needs to finish.
    writeGroupOf(this.db).commit();
    const tenantId = ensureTenant(this.db, tenant);
    const select = this.db.prepare('SELECT token, source, pid, host, since, expires_at FROM ingest_leases WHERE tenant_id = ?');
    const take = this.db.prepare(
      `INSERT INTO ingest_leases (tenant_id, token, source, pid, host, since, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id) DO UPDATE SET token = excluded.token, source = excluded.source, pid = excluded.pid,
         host = excluded.host, since = excluded.since, expires_at = excluded.expires_at`,
    );
    // A holder is one process: its leases of several tenants share (host, pid).
    const me = `${holder.host}/${holder.pid}`;
    const markWaiting = this.db.prepare('UPDATE ingest_leases SET waiting_for = ? WHERE host = ? AND pid = ?');
    const holderOf = this.db.prepare("SELECT host || '/' || pid FROM ingest_leases WHERE tenant_id = ?").pluck();
    const waitingOf = this.db.prepare("SELECT waiting_for FROM ingest_leases WHERE host || '/' || pid = ? AND waiting_for IS NOT NULL LIMIT 1").pluck();
    const setWaiting = (t: number | null) => {
      try {
        this.db.transaction(() => markWaiting.run(t, holder.host, holder.pid)).immediate();
      } catch (err) {
        if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
      }
    };
    const state = (r: Row): IngestLeaseState => ({
      tenant, holder: { source: r.source, pid: r.pid, host: r.host }, since: r.since, expiresAt: r.expires_at,
    });
    let announced: string | null = null;
    let marked = false;
    let took = false;
    try {
      for (;;) {
        opts.signal?.throwIfAborted();
        let current = (select.get(tenantId) as Row | undefined) ?? null;
        if (leaseDecision(current && { token: current.token, expiresAt: current.expires_at }, this.clock.now()) !== 'held') {
          const token = randomUUID();
          let outcome: { took: true; previous: Row | null } | { took: false; current: Row };
          try {
            outcome = this.db.transaction(() => {
              // Decide again under the write lock: another waiter may have taken it since the read.
              const now = this.clock.now();
              const prev = (select.get(tenantId) as Row | undefined) ?? null;
              const d = leaseDecision(prev && { token: prev.token, expiresAt: prev.expires_at }, now);
              if (d === 'held') return { took: false as const, current: prev! };
              take.run(tenantId, token, holder.source, holder.pid, holder.host, now, now + ttlMs);
              markWaiting.run(null, holder.host, holder.pid);
              return { took: true as const, previous: d === 'expired' ? prev : null };
            }).immediate();
          } catch (err) {
            // Another writer kept the file locked past busy_timeout: look again.
            if ((err as { code?: string }).code !== 'SQLITE_BUSY') throw err;
            continue;
          }
          if (outcome.took) {
            took = true;
            if (outcome.previous) opts.onWait?.({ kind: 'takeover', previous: state(outcome.previous), now: this.clock.now() });
            return new SqliteIngestLease(this.db, tenant, tenantId, token, ttlMs, this.clock);
          }
          current = outcome.current;
        }
        const held = current!;
        if (announced !== held.token) {
          announced = held.token;
          opts.onWait?.({ kind: 'waiting', current: state(held), now: this.clock.now() });
        }
        if (opts.wait === false) return null;
        // Only a holder of other tenants can be part of a cycle; it says whom it waits for first.
        if (!marked) setWaiting(tenantId);
        marked = true;
        const cycle = waitCycle(tenantId, me, (t) => (holderOf.get(t) as string | undefined) ?? null, (h) => (waitingOf.get(h) as number | undefined) ?? null);
        // Everyone in the cycle sees it; only the greatest gives up, so the others can go on.
        if (cycle && cycle.length > 0 && cycle.every((h) => h < me)) {
          throw new IngestLeaseDeadlockError(
            `tenant "${tenant}": waiting for ${state(held).holder.source} (pid ${held.pid} on ${held.host}) would never end: ` +
              `it waits for a tenant this ingest of ${holder.source} holds; ingest sources with records of several tenants one at a time`,
          );
        }
        await this.clock.sleep(nextPollMs({ token: held.token, expiresAt: held.expires_at }, this.clock.now(), this.pollMs), opts.signal);
      }
    } finally {
      // Given up (deadlock, abort, error): no longer waiting. Taking the lease cleared it already.
      if (marked && !took) setWaiting(null);
    }
  }
}

/** Extends the lease if the row still carries `token` (even past expiry: nobody took it over), else throws. */
function fenceLease(db: SqliteDatabase, clock: LeaseClock, tenant: string, tenantId: number, token: string, ttlMs: number): void {
  const extended = db.prepare('UPDATE ingest_leases SET expires_at = ? WHERE tenant_id = ? AND token = ?').run(clock.now() + ttlMs, tenantId, token);
  if (extended.changes === 1) return;
  const r = db.prepare('SELECT token, source, pid, host, since, expires_at FROM ingest_leases WHERE tenant_id = ?').get(tenantId) as Row | undefined;
  throw new IngestLeaseLostError(
    tenant,
    r ? { tenant, holder: { source: r.source, pid: r.pid, host: r.host }, since: r.since, expiresAt: r.expires_at } : null,
  );
}

export class SqliteIngestLease implements IngestLease {
  private readonly drop;

  constructor(
    private readonly db: SqliteDatabase,
    readonly tenant: string,
    private readonly tenantId: number,
    readonly token: string,
    readonly ttlMs: number,
    private readonly clock: LeaseClock,
  ) {
    this.drop = db.prepare('DELETE FROM ingest_leases WHERE tenant_id = ? AND token = ?');
  }

  private extendOrThrow(): void {
    fenceLease(this.db, this.clock, this.tenant, this.tenantId, this.token, this.ttlMs);
  }

  renew(): void {
    // Inside an open transaction this is part of it (a savepoint); otherwise its own IMMEDIATE one.
    this.db.transaction(() => this.extendOrThrow()).immediate();
  }

  /** The fence for code that writes through the connection itself (the write contract fences by token). */
  fence(): void {
    if (!this.db.inTransaction) throw new Error('IngestLease.fence() must run inside the write transaction it protects');
    this.extendOrThrow();
  }

  release(): void {
    // the batches written under the lease are committed before it goes
    writeGroupOf(this.db).commit();
    this.drop.run(this.tenantId, this.token);
  }
}
