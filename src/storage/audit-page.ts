import { CursorError } from './detection-cursor.js';
import type { AuditEntry, AuditFilter, AuditQuery, AuditRecord } from './policy-state.js';

/**
 * The backend-independent half of AuditSink.page: the cursor (the `seq` of the last record of the
 * previous page), the WHERE clause (each backend binds values its own way through `bind`), and the
 * row mapping, so SQLite and PostgreSQL filter and page the audit alike.
 */

export function encodeAuditCursor(seq: number): string {
  return Buffer.from(`a1:${seq}`).toString('base64url');
}

export function decodeAuditCursor(c: string): number {
  const m = /^a1:(\d{1,15})$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
  if (!m) throw new CursorError(`invalid cursor "${c}": pass the next_cursor value returned by the previous page, or omit it to start over`);
  return Number(m[1]);
}

/** `WHERE ...` (or '') for a filter and an optional cursor; `bind` adds a value and returns its placeholder. */
export function auditWhere(f: AuditFilter, beforeSeq: number | null, bind: (v: unknown) => string): string {
  const parts: string[] = [];
  if (f.tool !== undefined) parts.push(`tool = ${bind(f.tool)}`);
  if (f.decision !== undefined) parts.push(`decision = ${bind(f.decision)}`);
  if (f.identity !== undefined) parts.push(`identity = ${bind(f.identity)}`);
  if (f.session !== undefined) parts.push(`session = ${bind(f.session)}`);
  if (f.upstreamName !== undefined) parts.push(`upstream_name = ${bind(f.upstreamName)}`);
  if (f.tenant !== undefined) parts.push(`tenant = ${bind(f.tenant)}`);
  // ts is an ISO string written by toISOString (fixed width, UTC): text order is time order
  if (f.since !== undefined) parts.push(`ts >= ${bind(f.since)}`);
  if (f.until !== undefined) parts.push(`ts < ${bind(f.until)}`);
  if (beforeSeq !== null) parts.push(`seq < ${bind(beforeSeq)}`);
  return parts.length ? `WHERE ${parts.join(' AND ')}` : '';
}

/**
 * The filter of an AuditQuery (AuditSink.query, read by the CLI's `audit` and the tests): a field left
 * empty filters nothing, as it always has there; the tenant is the exception, since the records
 * without one (a stand-alone gateway's) are asked for with no tenant at all, never with ''.
 */
export function queryFilter(q: AuditQuery): AuditFilter {
  const f: AuditFilter = {};
  if (q.tool) f.tool = q.tool;
  if (q.decision) f.decision = q.decision as AuditFilter['decision'];
  if (q.identity) f.identity = q.identity;
  if (q.session) f.session = q.session;
  if (q.upstreamName) f.upstreamName = q.upstreamName;
  if (q.tenant !== undefined) f.tenant = q.tenant;
  if (q.since) f.since = q.since;
  if (q.until) f.until = q.until;
  return f;
}

export const AUDIT_COLUMNS = 'seq, ts, session, identity, tool, args_hash, args, decision, rule, reason, latency_ms, upstream, policy_hash, approval_id, upstream_name, previous_policy_hash, tenant';

export interface AuditRow extends Omit<AuditRecord, 'args' | 'reason' | 'policy_hash' | 'approval_id' | 'upstreamName' | 'previous_policy_hash' | 'tenant'> {
  seq: number;
  args: string | null;
  reason: string | null;
  policy_hash: string | null;
  approval_id: string | null;
  upstream_name: string | null;
  previous_policy_hash: string | null;
  tenant: string | null;
}

export function auditEntry(r: AuditRow): AuditEntry {
  const out: AuditEntry = {
    seq: Number(r.seq),
    ts: r.ts,
    session: r.session,
    identity: r.identity,
    tool: r.tool,
    args_hash: r.args_hash,
    decision: r.decision,
    rule: r.rule,
    latency_ms: r.latency_ms,
    upstream: r.upstream,
  };
  if (r.args !== null) out.args = JSON.parse(r.args);
  if (r.reason !== null) out.reason = r.reason;
  if (r.policy_hash !== null) out.policy_hash = r.policy_hash;
  if (r.approval_id !== null) out.approval_id = r.approval_id;
  if (r.upstream_name !== null) out.upstreamName = r.upstream_name;
  if (r.previous_policy_hash !== null) out.previous_policy_hash = r.previous_policy_hash;
  if (r.tenant !== null) out.tenant = r.tenant;
  return out;
}

/** A row as AuditSink.query answers it: the record without its place in the log. */
export function auditRecord(r: AuditRow): AuditRecord {
  const { seq: _seq, ...record } = auditEntry(r);
  return record;
}

/** The values of one record in the INSERT column order of AUDIT_INSERT_COLUMNS. */
export const AUDIT_INSERT_COLUMNS = AUDIT_COLUMNS.replace(/^seq, /, '');

export function auditInsertValues(r: AuditRecord): unknown[] {
  return [
    r.ts, r.session, r.identity, r.tool, r.args_hash, r.args === undefined ? null : JSON.stringify(r.args), r.decision, r.rule,
    r.reason ?? null, r.latency_ms, r.upstream, r.policy_hash ?? null, r.approval_id ?? null, r.upstreamName ?? null, r.previous_policy_hash ?? null, r.tenant ?? null,
  ];
}

/** Characters of JSONL a file sink appends at once, at most (unless one record alone is longer). */
export const JSONL_PIECE_CHARS = 16 * 1024 * 1024;

/**
 * The JSONL lines of audit records, in pieces of at most `pieceChars` characters (at least one whole
 * record each), for a file sink to append one at a time. One string for a whole batch could pass V8's
 * longest string (about 512 MiB: 256 records of calls near the 4 MiB message limit, with
 * `audit_args: plain`), and then no line of the batch was written. A record that cannot be serialised
 * is written without its arguments, saying why, so its line is never missing either.
 */
export function* jsonlPieces(records: readonly AuditRecord[], pieceChars = JSONL_PIECE_CHARS): Generator<string> {
  let piece: string[] = [];
  let size = 0;
  for (const r of records) {
    let line: string;
    try {
      line = JSON.stringify(r) + '\n';
    } catch (e) {
      const { args: _dropped, ...rest } = r;
      const why = `arguments not written to this file: ${(e as Error).message}`;
      line = JSON.stringify({ ...rest, reason: r.reason ? `${r.reason}; ${why}` : why }) + '\n';
    }
    if (size > 0 && size + line.length > pieceChars) {
      yield piece.join('');
      piece = [];
      size = 0;
    }
    piece.push(line);
    size += line.length;
  }
  if (size > 0) yield piece.join('');
}

/**
 * A record as a tenant's sink writes it: every writer (a call's decision, a protocol refusal, a guard
 * refusal, a policy change) goes through the sink of its server's policy state, so the tenant is
 * stamped in one place. A record that names its tenant keeps it.
 */
export function stampTenant(r: AuditRecord, tenant: string | undefined): AuditRecord {
  return tenant === undefined || r.tenant !== undefined ? r : { ...r, tenant };
}

export function auditPage(rows: AuditRow[], limit: number): { records: AuditEntry[]; nextCursor: string | null } {
  const records = rows.slice(0, limit).map(auditEntry);
  const last = records[records.length - 1];
  return { records, nextCursor: rows.length > limit && last ? encodeAuditCursor(last.seq) : null };
}
