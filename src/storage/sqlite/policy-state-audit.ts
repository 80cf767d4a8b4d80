import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SqliteDatabase } from './db.js';
import { FIRST_PAUSE_MS, isBusy, nextPause, POLICY_BUSY_DEADLINE_MS, realBusyClock, type BusyClock } from './busy-retry.js';
import type { AuditFilter, AuditPage, AuditQuery, AuditRecord, AuditSink } from '../policy-state.js';
import { AUDIT_COLUMNS, AUDIT_INSERT_COLUMNS, auditInsertValues, auditPage, auditRecord, auditWhere, decodeAuditCursor, jsonlPieces, queryFilter, stampTenant, type AuditRow } from '../audit-page.js';

const FLUSH_MS = 50;
const FLUSH_AT = 256;

/** A sync append waiting for rows the table refused as busy, by how many rows must be in by then. */
interface RowWaiter {
  mark: number;
  since: number;
  resolve: () => void;
}

/**
 * Appends decisions to SQLite and a JSONL file.
 *
 * `append(r, true)` (the policy's `audit.sync`, the default) writes the record before returning, so a
 * caller that audits before answering never answers a call whose record could still be lost: the
 * file append and the row are in the OS (they survive the process being killed, not a power cut).
 * `append(r)` batches (one transaction and one file append per ~50 ms or 256 records) for the last
 * few microseconds per call; `flush()` (called on close and on a signal) writes what is pending.
 *
 * When another process holds the store's write lock, rows wait in order and are retried on a timer
 * (busy-retry.ts), never dropped: a sync append then returns a promise, which resolves once its row
 * is in, or after POLICY_BUSY_DEADLINE_MS (the record is in the JSONL file; the row still follows).
 */
export class AuditLog implements AuditSink {
  private buf: AuditRecord[] = [];
  private timer?: NodeJS.Timeout;
  private readonly insert;
  /** rows the table refused as busy, oldest first: rows appended later go in after them */
  private waiting: AuditRecord[] = [];
  /** rows ever put in `waiting`, and how many of those have left it (written, or failed otherwise) */
  private waited = 0;
  private left = 0;
  private waiters: RowWaiter[] = [];
  private draining = false;
  /** the current wait has already been reported as past the deadline */
  private reportedLate = false;
  onError: (e: Error) => void = (e) => process.stderr.write(`egress-triage: audit write failed: ${e.message}\n`);

  constructor(
    private readonly db: SqliteDatabase,
    readonly file?: string,
    private readonly busy: BusyClock = realBusyClock,
    /** the tenant of the server writing through this sink, stamped on every record (stampTenant) */
    private readonly tenant?: string,
  ) {
    const columns = AUDIT_INSERT_COLUMNS.split(', ');
    this.insert = db.prepare(`INSERT INTO policy_audit(${AUDIT_INSERT_COLUMNS}) VALUES (${columns.map(() => '?').join(', ')})`);
    if (file) mkdirSync(dirname(file), { recursive: true });
  }

  append(r: AuditRecord, sync = false): void | Promise<void> {
    this.buf.push(stampTenant(r, this.tenant));
    if (sync) return this.flush();
    if (this.buf.length >= FLUSH_AT) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Writes what is buffered; a promise only when the rows have to wait for the write lock (see the class). */
  flush(): void | Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buf.length === 0) return;
    const batch = this.buf;
    this.buf = [];
    try {
      // Opened per write on purpose: a rotated file (moved away and recreated) gets the next record.
      if (this.file) for (const piece of jsonlPieces(batch)) appendFileSync(this.file, piece);
    } catch (e) {
      this.onError(e as Error);
    }
    if (!this.db.open) return;
    // behind rows already waiting, a row waits too: rows go into the table in the order they came
    const rest = this.waiting.length === 0 ? this.write(batch) : batch;
    if (rest.length === 0) return;
    this.waiting.push(...rest);
    this.waited += rest.length;
    const done = new Promise<void>((resolve) => this.waiters.push({ mark: this.waited, since: this.busy.now(), resolve }));
    void this.drain();
    return done;
  }

  /**
   * Writes `rows` in order and returns those still to write: none, or every row from the first that
   * met "busy". One transaction for all; when that fails for another reason, row by row, so a row
   * that cannot be stored (reported through onError) takes no other row with it.
   */
  private write(rows: readonly AuditRecord[]): readonly AuditRecord[] {
    try {
      this.insertAll(rows);
      return [];
    } catch (e) {
      if (isBusy(e)) return rows;
      if (rows.length === 1) {
        this.onError(e as Error);
        return [];
      }
    }
    for (let i = 0; i < rows.length; i++) {
      try {
        this.insert.run(...auditInsertValues(rows[i]!));
      } catch (e) {
        if (isBusy(e)) return rows.slice(i);
        this.onError(e as Error);
      }
    }
    return [];
  }

  private insertAll(batch: readonly AuditRecord[]): void {
    this.db.transaction(() => {
      for (const r of batch) this.insert.run(...auditInsertValues(r));
    }).immediate();
  }

  /** Retries the waiting rows on a timer until they are in (or fail otherwise, or the store closes). */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    let pause = FIRST_PAUSE_MS;
    try {
      while (this.waiting.length > 0 && this.db.open) {
        await this.busy.sleep(pause);
        pause = nextPause(pause);
        if (!this.db.open) break;
        this.tryWaiting();
        this.releaseLate();
      }
    } finally {
      this.draining = false;
      // closed meanwhile: nothing more will be written here, and no caller may wait on it forever
      if (!this.db.open) this.releaseAll();
    }
  }

  private releaseAll(): void {
    for (const w of this.waiters) w.resolve();
    this.waiters = [];
  }

  /** One attempt at the waiting rows: those written (or failed otherwise) leave the queue. */
  private tryWaiting(): void {
    const rows = this.waiting;
    const rest = this.write(rows);
    if (rest.length === rows.length) return;
    this.waiting = [...rest];
    this.left += rows.length - rest.length;
    if (rest.length === 0) this.reportedLate = false;
    this.waiters = this.waiters.filter((w) => (w.mark <= this.left ? (w.resolve(), false) : true));
  }

  /** Sync appends waiting past the deadline are answered: their record is in the file, their row follows. */
  private releaseLate(): void {
    const now = this.busy.now();
    const late = this.waiters.filter((w) => now - w.since >= POLICY_BUSY_DEADLINE_MS);
    if (late.length === 0) return;
    if (!this.reportedLate) {
      this.reportedLate = true;
      const where = this.file ? `in ${this.file}` : 'nowhere else (no audit file)';
      this.onError(new Error(`the store's write lock has been held by another process for ${POLICY_BUSY_DEADLINE_MS / 1000} s: ${this.waiting.length} audit records are ${where} and wait for the table`));
    }
    this.waiters = this.waiters.filter((w) => !late.includes(w));
    for (const w of late) w.resolve();
  }

  query(q: AuditQuery): AuditRecord[] {
    return queryAudit(this.db, q);
  }

  page(f: AuditFilter, limit: number, cursor?: string | null): AuditPage {
    const before = cursor ? decodeAuditCursor(cursor) : null;
    // rows still waiting for the write lock are not in the table yet: the page shows what is
    void this.flush();
    const params: unknown[] = [];
    const where = auditWhere(f, before, (v) => (params.push(v), '?'));
    const rows = this.db.prepare(`SELECT ${AUDIT_COLUMNS} FROM policy_audit ${where} ORDER BY seq DESC LIMIT ?`).all(...params, limit + 1) as AuditRow[];
    return auditPage(rows, limit);
  }

  /**
   * Writes what is pending. Rows still waiting for the write lock get one last synchronous wait of
   * the full deadline: a closing process has no later turn to write them in.
   */
  close(): void {
    void this.flush();
    if (this.waiting.length > 0 && this.db.open) {
      this.db.pragma(`busy_timeout = ${POLICY_BUSY_DEADLINE_MS}`);
      const rest = this.write(this.waiting);
      if (rest.length > 0) {
        this.onError(new Error(`${rest.length} audit records could not be written to the table before closing: the store stayed locked${this.file ? `; they are in ${this.file}` : ''}`));
      }
      this.waiting = [];
    }
    this.releaseAll();
  }
}

export function queryAudit(db: SqliteDatabase, q: AuditQuery): AuditRecord[] {
  const params: unknown[] = [];
  const where = auditWhere(queryFilter(q), null, (v) => (params.push(v), '?'));
  const sql = `SELECT ${AUDIT_COLUMNS} FROM policy_audit ${where} ORDER BY seq DESC LIMIT ? OFFSET ?`;
  return (db.prepare(sql).all(...params, q.limit ?? 1000, q.offset ?? 0) as AuditRow[]).reverse().map(auditRecord);
}
