import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { migrate, openSqlite, refuseForeignDatabase, tableNames, type Migration, type SqliteDatabase } from './db.js';
import { refuseDamagedStore } from '../schema-version.js';
import { SqliteApprovals } from './policy-state-approvals.js';
import { AuditLog } from './policy-state-audit.js';
import { realBusyClock, type BusyClock } from './busy-retry.js';
import { SqliteSessionHandles } from './policy-state-handles.js';
import { SlidingWindowLimiter } from '../../policy/rate-limiter.js';
import type { PolicyStateBackend, RateCounters } from '../policy-state.js';

/** Policy-layer tables. Versions 100-199 are reserved for this module. */
export const POLICY_MIGRATIONS: Migration[] = [
  {
    version: 100,
    name: 'policy_state',
    up: `
      CREATE TABLE policy_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
      CREATE TABLE policy_approvals (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending','approved','denied','expired','consumed')),
        session TEXT NOT NULL,
        identity TEXT NOT NULL,
        tool TEXT NOT NULL,
        args_hash TEXT NOT NULL,
        args_preview TEXT NOT NULL,
        rule TEXT NOT NULL,
        decided_at INTEGER,
        decided_by TEXT,
        reason TEXT
      );
      CREATE INDEX policy_approvals_binding ON policy_approvals(session, tool, args_hash, status);
      CREATE INDEX policy_approvals_status ON policy_approvals(status, expires_at);
      CREATE TABLE policy_audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        session TEXT NOT NULL,
        identity TEXT NOT NULL,
        tool TEXT NOT NULL,
        args_hash TEXT NOT NULL,
        args TEXT,
        decision TEXT NOT NULL,
        rule TEXT NOT NULL,
        reason TEXT,
        latency_ms REAL NOT NULL,
        upstream TEXT NOT NULL,
        policy_hash TEXT,
        approval_id TEXT
      );
      CREATE INDEX policy_audit_ts ON policy_audit(ts);
      CREATE INDEX policy_audit_tool ON policy_audit(tool, ts);
    `,
  },
  {
    version: 101,
    name: 'policy_audit_upstream_name',
    // The multi-upstream gateway records which registered upstream each call was for.
    up: `ALTER TABLE policy_audit ADD COLUMN upstream_name TEXT;`,
  },
  {
    version: 102,
    name: 'policy_session_handles',
    // 2026-07-28 session handles per authenticated identity: the cap on live handles (session-identity.ts).
    up: `
      CREATE TABLE policy_session_handles (
        identity TEXT NOT NULL,
        handle TEXT NOT NULL,
        last_used INTEGER NOT NULL,
        PRIMARY KEY (identity, handle)
      ) WITHOUT ROWID;
      CREATE INDEX policy_session_handles_last_used ON policy_session_handles(last_used);
    `,
  },
  {
    version: 103,
    name: 'policy_approvals_upstream_name',
    // The multi-upstream gateway records (and binds) which registered upstream a held call is for.
    // Rows filed before stay NULL: a single upstream.
    up: `ALTER TABLE policy_approvals ADD COLUMN upstream_name TEXT;`,
  },
  {
    version: 104,
    name: 'policy_audit_previous_policy_hash',
    // A policy_change record (the policy in force was replaced: from the dashboard, or a file reload)
    // carries the hash it replaced besides the new one (policy_hash).
    up: `ALTER TABLE policy_audit ADD COLUMN previous_policy_hash TEXT;`,
  },
  {
    version: 105,
    name: 'policy_approvals_tenant',
    // The tenant whose server held the call (ApprovalRow.tenant). Rows filed before stay NULL, as do a
    // stand-alone gateway's: no dashboard lists them.
    up: `ALTER TABLE policy_approvals ADD COLUMN tenant TEXT;`,
  },
  {
    version: 106,
    name: 'policy_audit_tenant',
    // The tenant whose server made the decision (AuditRecord.tenant): a dashboard on a store that
    // holds other tenants shows its own tenant's records. Rows written before stay NULL, as do a
    // stand-alone gateway's: no such dashboard shows them.
    up: `
      ALTER TABLE policy_audit ADD COLUMN tenant TEXT;
      CREATE INDEX policy_audit_tenant ON policy_audit(tenant, seq);
    `,
  },
];

/** Every table POLICY_MIGRATIONS leave (refuseDamagedStore; kept true by test/storage/damaged-store.test.ts). */
export const POLICY_TABLES: readonly string[] = ['policy_approvals', 'policy_audit', 'policy_meta', 'policy_session_handles'];

export interface PolicyStateOptions {
  dbPath: string;
  /** JSONL audit file; default `<dbdir>/policy-audit.jsonl`; `false` disables the file. */
  auditFile?: string | false;
  /** Milliseconds since the epoch; tests inject a fake one. */
  clock?: () => number;
  /** How writes wait for the file's write lock (busy-retry.ts); tests inject a fake one. */
  busyClock?: BusyClock;
  /** The tenant of the server (`mcp`, `serve`): stamped on its audit records. */
  tenant?: string;
}

export function defaultAuditFile(dbPath: string): string | false {
  return dbPath === ':memory:' ? false : join(dirname(dbPath), 'policy-audit.jsonl');
}

/**
 * The default policy-state backend: approvals, audit, session handles and the argument-hash key in the
 * store's SQLite file, rate-limit counters in this process's memory (exact and synchronous, but per process: two
 * gateways on one file do not share them; --state redis:// does).
 */
export class SqlitePolicyState implements PolicyStateBackend {
  readonly db: SqliteDatabase;
  readonly approvals: SqliteApprovals;
  readonly audit: AuditLog;
  readonly sessionHandles: SqliteSessionHandles;
  readonly hashKey: Buffer;
  readonly describe: string;
  private readonly limiters = new Map<string, SlidingWindowLimiter>();

  constructor(private readonly opts: PolicyStateOptions) {
    this.describe = `store ${opts.dbPath}`;
    // Another application's database is refused before anything is added to it, as the store does (schema.ts).
    if (opts.dbPath !== ':memory:' && existsSync(opts.dbPath)) refuseForeignDatabase(opts.dbPath);
    // Opened and migrated with the store's full wait; from then on every write waits on a timer (busy-retry.ts).
    this.db = openSqlite(opts.dbPath);
    try {
      migrate(this.db, POLICY_MIGRATIONS, POLICY_TABLES);
      refuseDamagedStore(tableNames(this.db), POLICY_TABLES);
    } catch (err) {
      this.db.close();
      throw err;
    }
    this.hashKey = loadOrCreateKey(this.db);
    this.db.pragma('busy_timeout = 0');
    const busy = opts.busyClock ?? realBusyClock;
    this.approvals = new SqliteApprovals(this.db, opts.clock, busy);
    this.sessionHandles = new SqliteSessionHandles(this.db, opts.clock, busy);
    const file = opts.auditFile === undefined ? defaultAuditFile(opts.dbPath) : opts.auditFile;
    this.audit = new AuditLog(this.db, file || undefined, busy, opts.tenant);
  }

  counters(namespace: string): RateCounters {
    let l = this.limiters.get(namespace);
    if (!l) this.limiters.set(namespace, (l = new SlidingWindowLimiter(this.opts.clock)));
    return l;
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.approvals.stop();
    this.audit.close();
    if (this.db.open) this.db.close();
  }
}

function loadOrCreateKey(db: SqliteDatabase): Buffer {
  const tx = db.transaction(() => {
    const row = db.prepare(`SELECT value FROM policy_meta WHERE key = 'args_hmac_key'`).get() as { value: Buffer } | undefined;
    if (row) return row.value;
    const k = randomBytes(32);
    db.prepare(`INSERT INTO policy_meta(key, value) VALUES ('args_hmac_key', ?)`).run(k);
    return k;
  });
  return tx.immediate();
}
