import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import type { PgPool } from './pool.js';
import type { AuditFilter, AuditPage, AuditQuery, AuditRecord, AuditSink } from '../policy-state.js';
import { AUDIT_COLUMNS, AUDIT_INSERT_COLUMNS, auditInsertValues, auditPage, auditRecord, auditWhere, decodeAuditCursor, jsonlPieces, queryFilter, stampTenant, type AuditRow } from '../audit-page.js';

const FLUSH_MS = 50;
const FLUSH_AT = 256;
const COLS = AUDIT_INSERT_COLUMNS.split(', ').length;

/**
 * The audit in the PostgreSQL store (table policy_audit) and, when configured, a JSONL file, with the
 * SQLite audit's semantics (sqlite/policy-state-audit.ts): `append(r, true)` resolves once the row is
 * committed, so a caller that awaits it before answering never answers a call whose record could
 * still be lost; `append(r)` batches. Rows are written in the order they were appended. A failed
 * write is reported through onError and does not fail the call: the JSONL line (written first, and
 * synchronously) keeps the record of a denial caused by the server being down.
 */
export class PgAuditLog implements AuditSink {
  private buf: AuditRecord[] = [];
  private timer?: NodeJS.Timeout;
  /** the tail of the write chain: each batch starts after the one before it */
  private tail: Promise<void> = Promise.resolve();
  onError: (e: Error) => void = (e) => process.stderr.write(`egress-triage: audit write failed: ${e.message}\n`);

  constructor(
    private readonly pool: PgPool,
    readonly file?: string,
    /** the tenant of the server writing through this sink, stamped on every record (stampTenant) */
    private readonly tenant?: string,
  ) {
    if (file) mkdirSync(dirname(file), { recursive: true });
  }

  append(record: AuditRecord, sync = false): Promise<void> | void {
    const r = stampTenant(record, this.tenant);
    try {
      // Opened per write on purpose: a rotated file (moved away and recreated) gets the next record.
      if (this.file) for (const piece of jsonlPieces([r])) appendFileSync(this.file, piece);
    } catch (e) {
      this.onError(e as Error);
    }
    this.buf.push(r);
    if (sync) return this.flush();
    if (this.buf.length >= FLUSH_AT) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  /** Writes what is buffered; resolves when it (and everything appended before it) is written or has failed. */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.buf.length > 0) {
      const batch = this.buf;
      this.buf = [];
      this.tail = this.tail.then(() => this.insert(batch)).catch((e: Error) => this.onError(e));
    }
    return this.tail;
  }

  private async insert(batch: AuditRecord[]): Promise<void> {
    const values: unknown[] = [];
    const rows = batch.map((r, i) => {
      values.push(...auditInsertValues(r));
      return `(${Array.from({ length: COLS }, (_, k) => `$${i * COLS + k + 1}`).join(', ')})`;
    });
    await this.pool.query(
      `INSERT INTO policy_audit (${AUDIT_INSERT_COLUMNS}) VALUES ${rows.join(', ')}`,
      values,
    );
  }

  async query(q: AuditQuery): Promise<AuditRecord[]> {
    await this.flush();
    const params: unknown[] = [];
    const where = auditWhere(queryFilter(q), null, (v) => (params.push(v), `$${params.length}`));
    params.push(q.limit ?? 1000, q.offset ?? 0);
    const r = await this.pool.query<AuditRow>(
      `SELECT ${AUDIT_COLUMNS} FROM policy_audit ${where} ORDER BY seq DESC LIMIT $${params.length - 1} OFFSET $${params.length}`,
      params,
    );
    return r.rows.reverse().map(auditRecord);
  }

  async page(f: AuditFilter, limit: number, cursor?: string | null): Promise<AuditPage> {
    const before = cursor ? decodeAuditCursor(cursor) : null;
    await this.flush();
    const params: unknown[] = [];
    const where = auditWhere(f, before, (v) => (params.push(v), `$${params.length}`));
    params.push(limit + 1);
    const r = await this.pool.query<AuditRow>(`SELECT ${AUDIT_COLUMNS} FROM policy_audit ${where} ORDER BY seq DESC LIMIT $${params.length}`, params);
    return auditPage(r.rows, limit);
  }

  close(): Promise<void> {
    return this.flush();
  }
}
