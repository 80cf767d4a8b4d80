import { createHash } from 'node:crypto';
import { AnalysisError, type AnalysisRequest } from './input.js';

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
   * it again for the next page (cursorClock), so the same arguments give the same window: read
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

/**
 * The instant a cursor's query read its relative times against, or undefined (no cursor, one without
 * it, or one that does not decode: decodeCursor reports that with the query's own checks).
 */
export function cursorClock(raw: unknown): number | undefined {
  if (typeof raw !== 'string' || !raw.startsWith(PREFIX)) return undefined;
  try {
    const n = (JSON.parse(Buffer.from(raw.slice(PREFIX.length), 'base64url').toString('utf8')) as { n?: unknown } | null)?.n;
    return typeof n === 'number' && Number.isSafeInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

export function decodeCursor(raw: string, fingerprint: string): PageCursor {
  const bad = (why: string) =>
    new AnalysisError('invalid_cursor', `invalid cursor: ${why}; pass the next_cursor value returned by the previous call with the same filters`);
  if (typeof raw !== 'string' || !raw.startsWith(PREFIX)) throw bad('unrecognised format');
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(raw.slice(PREFIX.length), 'base64url').toString('utf8'));
  } catch {
    throw bad('not decodable');
  }
  const o = c as Partial<PageCursor>;
  if (!o || typeof o !== 'object' || typeof o.c !== 'number' || typeof o.p !== 'string' || typeof o.f !== 'string') throw bad('malformed');
  if (o.f !== fingerprint) throw bad('it was issued for a different query (tenant, types, status, window, owner/repo/workflow/job or minCount differ)');
  return o as PageCursor;
}
