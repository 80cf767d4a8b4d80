/**
 * The paging cursor of DetectionRepository.list, shared by every backend so that a cursor means the
 * same on each: the (timestamp, id) of the last detection of the previous page, newest first.
 */
export class CursorError extends Error {
  override name = 'CursorError';
}

export function encodeDetectionCursor(ts: number, id: number): string {
  return Buffer.from(`d1:${ts}:${id}`).toString('base64url');
}

export function decodeDetectionCursor(c: string): { ts: number; id: number } {
  const m = /^d1:(-?\d+):(\d+)$/.exec(Buffer.from(c, 'base64url').toString('utf8'));
  const ts = m ? Number(m[1]) : NaN;
  const id = m ? Number(m[2]) : NaN;
  // Digits beyond a safe integer are no cursor this store wrote: as a number they lose precision,
  // and PostgreSQL refuses them as a bigint (an internal error instead of this one).
  if (!Number.isSafeInteger(ts) || !Number.isSafeInteger(id)) {
    throw new CursorError(`invalid cursor "${c}": pass the next_cursor value returned by the previous page`);
  }
  return { ts, id };
}
