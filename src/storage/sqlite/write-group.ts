import type { SqliteDatabase } from './db.js';

/**
 * How long the ingest's write batches may share one SQLite transaction, in milliseconds.
 *
 * Every COMMIT in WAL mode writes each page the transaction dirtied to the WAL, and an ingest batch
 * dirties pages all over a dozen indexes: one commit per 5,000-line batch wrote 336,589 WAL frames
 * and checkpoint pages for a 33 MiB store (strace, 1M-event benchmark file). Committing the batches
 * of 200 ms together writes a page touched by several of them once (docs/benchmarks.md, "ingest").
 * Other writers of the file wait for the write lock at most this long plus one batch.
 */
export const GROUP_COMMIT_MS = 200;

/**
 * Write batches of the ingest, committed together: the first batch opens an IMMEDIATE transaction,
 * each batch runs inside it as a savepoint (a failed batch undoes only itself), and the group is
 * committed once it is GROUP_COMMIT_MS old, by a timer when no further batch comes (a quiet pipe),
 * and before anything that may wait for another process (commit() — lease acquire and release).
 *
 * Durability is per group: a crash loses the batches of the open group, at most GROUP_COMMIT_MS of
 * work, never part of a batch, and re-ingesting stores nothing twice (natural keys). A batch counts
 * as written once its savepoint is released; a commit that then fails fails the next write, or the
 * end of the source, so an ingest whose data was lost never reports success.
 */
export class WriteGroup {
  private openedAt: number | null = null;
  private cancelTimer: (() => void) | null = null;
  /** a commit made by the timer failed: the batches it held are lost, and the next caller must say so */
  private failure: Error | null = null;

  constructor(
    private readonly db: SqliteDatabase,
    private readonly maxMs = GROUP_COMMIT_MS,
    private readonly now: () => number = Date.now,
    /** runs `fn` once after `ms` unless cancelled (tests drive it by hand) */
    private readonly schedule: (fn: () => void, ms: number) => () => void = unrefTimeout,
  ) {}

  /** True while batches wait in an open group. */
  get open(): boolean {
    return this.openedAt !== null;
  }

  /**
   * Runs `fn` as one write batch. Inside a transaction this group did not open (ingest --strict),
   * it is a savepoint of that transaction and the group stays out of it.
   */
  run<T>(fn: () => T): T {
    this.throwFailure();
    if (this.openedAt === null) {
      if (this.db.inTransaction) return this.db.transaction(fn)();
      this.db.exec('BEGIN IMMEDIATE');
      this.openedAt = this.now();
      this.cancelTimer = this.schedule(() => this.commitFromTimer(), this.maxMs);
    } else if (!this.db.inTransaction) {
      // rolled back by SQLite under the group: this batch must not be stored as if the group's were
      this.commit();
    }
    try {
      return this.db.transaction(fn)();
    } finally {
      if (this.openedAt !== null && this.now() - this.openedAt >= this.maxMs) this.commit();
    }
  }

  /** Commits the open group, if any; throws when it, or an earlier commit of it, failed. */
  commit(): void {
    this.throwFailure();
    if (this.openedAt === null) return;
    this.openedAt = null;
    this.cancelTimer?.();
    this.cancelTimer = null;
    // SQLite rolls a transaction back by itself on some errors (a full disk, an I/O error): the
    // batches it held are gone, and that must not pass for a commit.
    if (!this.db.inTransaction) throw new Error('the ingest write transaction was rolled back by SQLite; its last write batches were not stored');
    try {
      this.db.exec('COMMIT');
    } catch (err) {
      // a transaction left open would hold the write lock and turn later writes into savepoints of it
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  private commitFromTimer(): void {
    try {
      this.commit();
    } catch (err) {
      // A timer has no caller to throw to: the next write, or the end of the source, reports it.
      this.failure = err instanceof Error ? err : new Error(String(err));
    }
  }

  private throwFailure(): void {
    const f = this.failure;
    if (f === null) return;
    this.failure = null;
    throw f;
  }
}

/** A timer that does not keep the process alive: an ingest that ends commits its group itself. */
function unrefTimeout(fn: () => void, ms: number): () => void {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
}

/** A connection has one transaction at a time, so one group: shared by the ingest port and the leases. */
const GROUPS = new WeakMap<SqliteDatabase, WriteGroup>();

export function writeGroupOf(db: SqliteDatabase): WriteGroup {
  let g = GROUPS.get(db);
  if (!g) GROUPS.set(db, (g = new WriteGroup(db)));
  return g;
}
