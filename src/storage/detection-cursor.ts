import { createHash } from 'node:crypto';
import type { DetectionFilter } from '../domain/filter.js';

/**
 * The paging cursor of DetectionRepository.list and of the dashboard's detection window, shared by
 * every backend so that a cursor means the same on each: the (timestamp, id) of the last detection of
 * the previous page, newest first, and the key of the query that issued it. A cursor is a position
 * only within its own query: handed to another one (an agent reusing the cursor of a `process`
 * listing for an `endpoint` one) it would skip every match newer than that position without a word,
 * so it is refused instead.
 */
export class CursorError extends Error {
  override name = 'CursorError';
}

/**
 * What a cursor is bound to: the tenant and every filter but the time window. A relative window
 * ("24h") is read again against each page's clock, so its bounds move a little between pages; the
 * keyset position keeps such pages free of repeats.
 */
export function detectionQueryKey(tenant: string, f: DetectionFilter): string {
  const fields = Object.entries(f)
    .filter(([k, v]) => k !== 'since' && k !== 'until' && v !== undefined)
    // owner and repo are compared without case, so "ACME" pages what "acme" began
    .map(([k, v]) => [k, Array.isArray(v) ? [...v].sort() : (k === 'owner' || k === 'repo') && typeof v === 'string' ? v.toLowerCase() : v])
    .sort(([a], [b]) => (a! < b! ? -1 : a! > b! ? 1 : 0));
  return createHash('sha256').update(JSON.stringify([tenant, fields])).digest('base64url').slice(0, 12);
}

export function encodeDetectionCursor(ts: number, id: number, queryKey: string): string {
  return Buffer.from(`d2:${ts}:${id}:${queryKey}`).toString('base64url');
}

export function decodeDetectionCursor(c: string, queryKey: string): { ts: number; id: number } {
  const m = /^d2:(-?\d+):(\d+):([\w-]{12})$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
  const ts = m ? Number(m[1]) : NaN;
  const id = m ? Number(m[2]) : NaN;
  // Digits beyond a safe integer are no cursor this store wrote: as a number they lose precision,
  // and PostgreSQL refuses them as a bigint (an internal error instead of this one).
  if (!Number.isSafeInteger(ts) || !Number.isSafeInteger(id)) {
    throw new CursorError(`invalid cursor "${c}": pass the next_cursor value returned by the previous page`);
  }
  if (m![3] !== queryKey) {
    throw new CursorError(
      `cursor "${c}" was issued for another query (the tenant or a filter differs): pass the next_cursor of the previous page of this same query, or start again without a cursor`,
    );
  }
  return { ts, id };
}
