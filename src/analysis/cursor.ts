import { createHash } from 'node:crypto';
import { AnalysisError, type AnalysisRequest } from './input.js';
import { isRelativeTime } from '../domain/time.js';

/**
 * The opaque paging cursor of the analysis: the last group of a page (its count and name) plus a
 * fingerprint of the query, so a cursor is only honoured by the query that issued it.
 */

export interface PageCursor {
  /** count of the last group returned */
  c: number;
  /** name of the last group returned */
  p: string;
  /** fingerprint of the query */
  f: string;
  /**
   * The instant the query's relative times ("24h") were read against (ms). A face reads them against
   * it again for the next page (relativeClock), so the same arguments give the same window: read
   * against the clock of each call, the window moves and the fingerprint no longer matches.
   */
  n?: number;
}

const PREFIX = 'pg1.';

/** What a cursor is bound to: tenant, types, status, window, owner/repo/workflow/job and minCount. */
export function queryFingerprint(req: Pick<AnalysisRequest, 'tenant' | 'types' | 'status' | 'since' | 'until' | 'filter' | 'minCount'>): string {
  const f = req.filter;
  return createHash('sha256')
    .update(JSON.stringify([req.tenant, req.types, req.status, req.since ?? null, req.until ?? null, f.owner ?? null, f.repo ?? null, f.workflow ?? null, f.job ?? null, req.minCount]))
    .digest('base64url')
    .slice(0, 16);
}

export function encodeCursor(c: PageCursor): string {
  return PREFIX + Buffer.from(JSON.stringify(c)).toString('base64url');
}

const NOT_OURS = Symbol('not a cursor of ours');
const UNDECODABLE = Symbol('undecodable');

/** A cursor's payload, or why there is none. */
function payloadOf(raw: unknown): unknown {
  if (typeof raw !== 'string' || !raw.startsWith(PREFIX)) return NOT_OURS;
  try {
    return JSON.parse(Buffer.from(raw.slice(PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    return UNDECODABLE;
  }
}

/**
 * The clock a face reads relative times ("24h") against: none for a query without one (its cursors
 * do not depend on when they are asked); for a next page, the instant its cursor carries, so the
 * same arguments give the same window; else now. A cursor without the instant, or one that does not
 * decode, gets now: decodeCursor reports it with the query's own checks.
 */
export function relativeClock(since: unknown, until: unknown, cursor: unknown): number | undefined {
  if (!isRelativeTime(since) && !isRelativeTime(until)) return undefined;
  const n = (payloadOf(cursor) as { n?: unknown } | null)?.n;
  return typeof n === 'number' && Number.isSafeInteger(n) ? n : Date.now();
}

export function decodeCursor(raw: string, fingerprint: string): PageCursor {
  const bad = (why: string) =>
    new AnalysisError('invalid_cursor', `invalid cursor: ${why}; pass the next_cursor value returned by the previous call with the same filters`);
  const c = payloadOf(raw);
  if (c === NOT_OURS) throw bad('unrecognised format');
  if (c === UNDECODABLE) throw bad('not decodable');
  const o = c as Partial<PageCursor>;
  if (!o || typeof o !== 'object' || typeof o.c !== 'number' || typeof o.p !== 'string' || typeof o.f !== 'string') throw bad('malformed');
  if (o.f !== fingerprint) throw bad('it was issued for a different query (tenant, types, status, window, owner/repo/workflow/job or minCount differ)');
  return o as PageCursor;
}
