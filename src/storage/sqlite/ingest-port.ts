import type { SqliteDatabase } from './db.js';
import { SqliteIngestSession } from './ingest-session.js';
import type { SqliteIngestLeases } from './ingest-leases.js';
import { writeGroupOf } from './write-group.js';
import type { IngestPort, IngestReadRequest, IngestReadResult, IngestScope, IngestWriteBatch, IngestWriteResult, TenantIngest } from '../ingest-port.js';

/**
 * The ingest write contract on SQLite. better-sqlite3 is synchronous, so each read and each write
 * batch runs at once; a write batch (fence, version check, writes) is a savepoint of the write
 * transaction its group shares for at most GROUP_COMMIT_MS (write-group.ts), so other writers wait
 * at most that long plus one batch. An atomic scope (--strict) instead holds one transaction from
 * beginSource() to commit(): every write joins it as a savepoint, and reads on the same connection
 * see its writes.
 */
/**
 * SQLite page cache while a source is being ingested, in KiB (db.ts opens connections with 64 MiB).
 * Measured on the 5M-event benchmark file: the cache filled to its 64 MiB and was a sixth of peak
 * RSS, while 16 MiB cost no measurable CPU (the ingest writes mostly new pages at the end of each
 * index, and the OS still caches the file). Readers of the same connection get the 64 MiB back when
 * the source ends.
 */
export const INGEST_PAGE_CACHE_KIB = 16_384;

/**
 * WAL pages after which a commit also checkpoints, while a source is being ingested (SQLite's
 * default: 1,000). A checkpoint copies every page in the WAL back into the database file and syncs
 * it; at 1,000 pages nearly every 200 ms write group (write-group.ts) ran one, copying the index
 * pages the next group rewrites anyway. At 16,384 (64 MiB of WAL) the COMMITs of a 1M-event ingest
 * took 0.89 s of main-thread CPU against 1.60 s in the same conditions (CPU profiles, 2026-12-02),
 * and `fsync`s fell from 89 to 14. Restored, like the page cache, when the last source ends; the
 * WAL is checkpointed then by the next commit, and removed when the last connection closes.
 */
export const INGEST_WAL_AUTOCHECKPOINT_PAGES = 16_384;

export class SqliteIngestPort implements IngestPort {
  private readonly sessions = new Map<string, SqliteIngestSession>();
  /** sources in progress on this connection, and the cache size to restore when the last ends */
  private sources = 0;
  private cacheBefore = 0;
  private autocheckpointBefore = 0;

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
    if (this.sources++ === 0) {
      this.cacheBefore = this.db.pragma('cache_size', { simple: true }) as number;
      this.db.pragma(`cache_size = -${INGEST_PAGE_CACHE_KIB}`);
      this.autocheckpointBefore = this.db.pragma('wal_autocheckpoint', { simple: true }) as number;
      this.db.pragma(`wal_autocheckpoint = ${INGEST_WAL_AUTOCHECKPOINT_PAGES}`);
    }
    let open = true;
    const end = (sql: 'COMMIT' | 'ROLLBACK') => {
      if (!open) return;
      open = false;
      try {
        // Not atomic: the batches written so far stay, as each was written whole; a rollback only ends the scope.
        if (!opts.atomic) writeGroupOf(this.db).commit();
        else if (this.db.inTransaction) this.db.exec(sql);
        if (sql === 'ROLLBACK') this.resetCaches();
      } catch (err) {
        // a group that could not be committed took the ids its batches created with it
        this.resetCaches();
        throw err;
      } finally {
        if (--this.sources === 0) this.restorePragmas();
      }
    };
    try {
      if (opts.atomic) {
        writeGroupOf(this.db).commit();
        this.db.exec('BEGIN IMMEDIATE');
      }
    } catch (err) {
      open = false;
      if (--this.sources === 0) this.restorePragmas();
      throw err;
    }
    return {
      tenant: async (name) => this.tenantIngest(name, () => open),
      settle: async () => {
        if (!opts.atomic) writeGroupOf(this.db).commit();
      },
      commit: async () => end('COMMIT'),
      rollback: async () => end('ROLLBACK'),
    };
  }

  /** The connection's own page cache and checkpoint interval, for the readers that share it. */
  private restorePragmas(): void {
    this.db.pragma(`cache_size = ${this.cacheBefore}`);
    this.db.pragma(`wal_autocheckpoint = ${this.autocheckpointBefore}`);
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

  /** One write batch, a savepoint of its group's transaction (or of an atomic scope's), fenced first. */
  writeNow(s: SqliteIngestSession, batch: IngestWriteBatch): IngestWriteResult {
    try {
      return writeGroupOf(this.db).run(() => {
        this.leases.fence(s.tenantId, s.tenant, batch.lease.token, batch.lease.ttlMs);
        return s.writeSync(batch);
      });
    } catch (err) {
      this.resetCaches();
      throw err;
    }
  }
}
