import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { migrate, openSqlite, refuseForeignDatabase, tableNames, type SqliteDatabase } from './db.js';
import { POLICY_MIGRATIONS, POLICY_TABLES } from './policy-migrations.js';
import { refuseDamagedStore } from '../schema-version.js';
import { SqliteApprovals } from './policy-state-approvals.js';
import { AuditLog } from './policy-state-audit.js';
import { realBusyClock, type BusyClock } from './busy-retry.js';
import { SqliteSessionHandles } from './policy-state-handles.js';
import { SlidingWindowLimiter } from '../../policy/rate-limiter.js';
import type { PolicyStateBackend, RateCounters } from '../policy-state.js';


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
