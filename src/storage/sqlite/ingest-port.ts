import type { SqliteDatabase } from './db.js';
import { SqliteIngestSession } from './ingest-session.js';
import type { SqliteIngestLeases } from './ingest-leases.js';
import type { IngestPort, IngestReadRequest, IngestReadResult, IngestScope, IngestWriteBatch, IngestWriteResult, TenantIngest } from '../ingest-port.js';

/**
 * The ingest write contract on SQLite. better-sqlite3 is synchronous, so each read and each write
 * batch runs at once; a write batch is one IMMEDIATE transaction (fence, version check, writes),
 * never held open across an await, so other writers wait at most one batch. An atomic scope (--strict)
 * instead holds one transaction from beginSource() to commit(): every write joins it as a savepoint,
 * and reads on the same connection see its writes.
 */
export class SqliteIngestPort implements IngestPort {
  private readonly sessions = new Map<string, SqliteIngestSession>();

  constructor(
    private readonly db: SqliteDatabase,
    readonly leases: SqliteIngestLeases,
  ) {}

  /** The tenant's session (statements and dictionary caches are kept across sources). */
  session(tenant: string): SqliteIngestSession {
    let s = this.sessions.get(tenant);
    if (!s) {
      s = new SqliteIngestSession(this.db, tenant);
      this.sessions.set(tenant, s);
    }
    return s;
  }

  /** Ids handed out by a rolled-back transaction vanish: no cache may keep them. */
  private resetCaches(): void {
    for (const s of this.sessions.values()) s.resetCaches();
  }

  async beginSource(opts: { atomic: boolean }): Promise<IngestScope> {
    if (opts.atomic) this.db.exec('BEGIN IMMEDIATE');
    let open = true;
    const end = (sql: 'COMMIT' | 'ROLLBACK') => {
      if (!open) return;
      open = false;
      if (opts.atomic && this.db.inTransaction) this.db.exec(sql);
      if (sql === 'ROLLBACK') this.resetCaches();
    };
    return {
      tenant: async (name) => this.tenantIngest(name, () => open),
      commit: async () => end('COMMIT'),
      rollback: async () => end('ROLLBACK'),
    };
  }

  private tenantIngest(tenant: string, open: () => boolean): TenantIngest {
    const s = this.session(tenant);
    const ensureOpen = () => {
      if (!open()) throw new Error('ingest scope already ended');
    };
    return {
      tenant,
      read: async (req: IngestReadRequest): Promise<IngestReadResult> => {
        ensureOpen();
        return s.readSync(req);
      },
      write: async (batch: IngestWriteBatch): Promise<IngestWriteResult> => {
        ensureOpen();
        return this.writeNow(s, batch);
      },
    };
  }

  /** One write batch in one transaction (a savepoint inside an atomic scope), fenced first. */
  writeNow(s: SqliteIngestSession, batch: IngestWriteBatch): IngestWriteResult {
    try {
      return this.db
        .transaction(() => {
          this.leases.fence(s.tenantId, s.tenant, batch.lease.token, batch.lease.ttlMs);
          return s.writeSync(batch);
        })
        .immediate();
    } catch (err) {
      this.resetCaches();
      throw err;
    }
  }
}
