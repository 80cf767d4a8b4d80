import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { SqliteDatabase } from './db.js';
import type { AuditFilter, AuditPage, AuditQuery, AuditRecord, AuditSink } from '../policy-state.js';
import { AUDIT_COLUMNS, AUDIT_INSERT_COLUMNS, auditInsertValues, auditPage, auditRecord, auditWhere, decodeAuditCursor, type AuditRow } from '../audit-page.js';

const FLUSH_MS = 50;
const FLUSH_AT = 256;

/**
 * Appends decisions to SQLite and a JSONL file.
 *
 * `append(r, true)` (the policy's `audit.sync`, the default) writes the record before returning, so a
 * caller that audits before answering never answers a call whose record could still be lost: the
 * file append and the row are in the OS (they survive the process being killed, not a power cut).
 * `append(r)` batches (one transaction and one file append per ~50 ms or 256 records) for the last
 * few microseconds per call; `flush()` (called on close and on a signal) writes what is pending.
 */
export class AuditLog implements AuditSink {
  private buf: AuditRecord[] = [];
  private timer?: NodeJS.Timeout;
  private readonly insert;
  onError: (e: Error) => void = (e) => process.stderr.write(`egress-triage: audit write failed: ${e.message}\n`);

  constructor(
    private readonly db: SqliteDatabase,
    readonly file?: string,
  ) {
    const columns = AUDIT_INSERT_COLUMNS.split(', ');
    this.insert = db.prepare(`INSERT INTO policy_audit(${AUDIT_INSERT_COLUMNS}) VALUES (${columns.map(() => '?').join(', ')})`);
    if (file) mkdirSync(dirname(file), { recursive: true });
  }

  append(r: AuditRecord, sync = false): void {
    this.buf.push(r);
    if (sync) return this.flush();
    if (this.buf.length >= FLUSH_AT) this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buf.length === 0) return;
    const batch = this.buf;
    this.buf = [];
    try {
      // Opened per write on purpose: a rotated file (moved away and recreated) gets the next record.
      if (this.file) appendFileSync(this.file, batch.map((r) => JSON.stringify(r)).join('\n') + '\n');
    } catch (e) {
      this.onError(e as Error);
    }
    try {
      if (!this.db.open) return;
      this.db.transaction(() => {
        for (const r of batch) this.insert.run(...auditInsertValues(r));
      })();
    } catch (e) {
      this.onError(e as Error);
    }
  }

  query(q: AuditQuery): AuditRecord[] {
    return queryAudit(this.db, q);
  }

  page(f: AuditFilter, limit: number, cursor?: string | null): AuditPage {
    const before = cursor ? decodeAuditCursor(cursor) : null;
    this.flush();
    const params: unknown[] = [];
    const where = auditWhere(f, before, (v) => (params.push(v), '?'));
    const rows = this.db.prepare(`SELECT ${AUDIT_COLUMNS} FROM policy_audit ${where} ORDER BY seq DESC LIMIT ?`).all(...params, limit + 1) as AuditRow[];
    return auditPage(rows, limit);
  }

  close(): void {
    this.flush();
  }
}

export function queryAudit(db: SqliteDatabase, q: AuditQuery): AuditRecord[] {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.since) {
    where.push('ts >= ?');
    params.push(q.since);
  }
  if (q.tool) {
    where.push('tool = ?');
    params.push(q.tool);
  }
  if (q.decision) {
    where.push('decision = ?');
    params.push(q.decision);
  }
  if (q.session) {
    where.push('session = ?');
    params.push(q.session);
  }
  if (q.upstreamName) {
    where.push('upstream_name = ?');
    params.push(q.upstreamName);
  }
  if (q.identity) {
    where.push('identity = ?');
    params.push(q.identity);
  }
  if (q.until) {
    where.push('ts < ?');
    params.push(q.until);
  }
  const sql = `SELECT ${AUDIT_COLUMNS} FROM policy_audit ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ? OFFSET ?`;
  params.push(q.limit ?? 1000, q.offset ?? 0);
  return (db.prepare(sql).all(...params) as AuditRow[]).reverse().map(auditRecord);
}
