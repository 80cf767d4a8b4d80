import { randomBytes } from 'node:crypto';
import { createPool, type PgPool } from './pool.js';
import { redactUrl } from '../location.js';
import { migratePostgres, refuseDamagedPgStore } from './migrations.js';
import { postgresProblem } from './errors.js';
import { StoreDamagedError, StoreNewerError } from '../schema-version.js';
import { PgApprovals } from './policy-state-approvals.js';
import { PgAuditLog } from './policy-state-audit.js';
import { PgSessionHandles } from './policy-state-handles.js';
import { SlidingWindowLimiter } from '../../policy/rate-limiter.js';
import { PolicyStateUnavailableError, type PolicyStateBackend, type RateCounters } from '../policy-state.js';

export interface PgPolicyStateOptions {
  /** postgres://... */
  url: string;
  /** JSONL audit file next to the table; `false` or absent: the table only. */
  auditFile?: string | false;
  /** Milliseconds since the epoch; tests inject a fake one. */
  clock?: () => number;
  /** The tenant of the server (`mcp`, `serve`): stamped on its audit records. */
  tenant?: string;
  approvalPollMs?: number;
  /** give up on a connection after this long (default 5 s): a down server denies calls, it does not hold them */
  connectionTimeoutMs?: number;
}

/**
 * Policy state in the PostgreSQL store: approvals, audit, session handles and the argument-hash key in tables shared
 * by every process on the store, so an approval filed by one gateway replica is decided from any
 * process and releases the call at once (LISTEN/NOTIFY). Rate-limit counters stay in this process's
 * memory, as with SQLite: replicas that must share limits add --state redis://.
 */
export class PgPolicyState implements PolicyStateBackend {
  readonly describe: string;
  readonly pool: PgPool;
  readonly approvals: PgApprovals;
  readonly audit: PgAuditLog;
  readonly sessionHandles: PgSessionHandles;
  private key?: Buffer;
  private starting?: Promise<void>;
  private readonly limiters = new Map<string, SlidingWindowLimiter>();

  constructor(private readonly o: PgPolicyStateOptions) {
    this.describe = `store ${redactUrl(o.url)}`;
    this.pool = createPool(o.url, { max: 5, connectionTimeoutMs: o.connectionTimeoutMs ?? 5_000, statementTimeoutMs: 30_000 });
    this.approvals = new PgApprovals(this.pool, o.url, o.clock, (e) => this.explain(e), o.approvalPollMs);
    this.audit = new PgAuditLog(this.pool, o.auditFile || undefined, o.tenant);
    this.sessionHandles = new PgSessionHandles(this.pool, o.clock, (e) => this.explain(e));
  }

  /** The server's failure in words a denial can carry: "PostgreSQL store postgres://... is unreachable (...)". */
  explain(e: unknown): Error {
    const p = postgresProblem(e);
    if (!p) return e instanceof Error ? e : new Error(String(e));
    return new Error(`PostgreSQL store ${redactUrl(this.o.url)}: ${p.message}`);
  }

  get hashKey(): Buffer {
    if (!this.key) throw new Error(`PostgreSQL store ${redactUrl(this.o.url)}: the argument-hash key is not loaded yet`);
    return this.key;
  }

  counters(namespace: string): RateCounters {
    let l = this.limiters.get(namespace);
    if (!l) this.limiters.set(namespace, (l = new SlidingWindowLimiter(this.o.clock)));
    return l;
  }

  /** Migrates the store (the policy tables are part of its schema) and loads the argument-hash key. */
  ready(): Promise<void> {
    this.starting ??= (async () => {
      try {
        await migratePostgres(this.pool);
        await refuseDamagedPgStore(this.pool);
        // ON CONFLICT keeps the first key when two replicas start at once.
        await this.pool.query(`INSERT INTO policy_meta (key, value) VALUES ('args_hmac_key', $1) ON CONFLICT (key) DO NOTHING`, [randomBytes(32)]);
        const r = await this.pool.query<{ value: Buffer }>(`SELECT value FROM policy_meta WHERE key = 'args_hmac_key'`);
        this.key = r.rows[0]!.value;
      } catch (e) {
        this.starting = undefined;
        // A store this build must not use (damaged, or migrated by a newer one) is no outage: it is
        // reported as the store's problem, naming the store, as on SQLite.
        if (e instanceof StoreDamagedError || e instanceof StoreNewerError) throw e;
        throw new PolicyStateUnavailableError(`policy state: ${this.explain(e).message}`, '--db');
      }
    })();
    return this.starting;
  }

  async close(): Promise<void> {
    await this.approvals.close();
    await this.audit.close();
    await this.pool.end().catch(() => undefined);
  }
}
