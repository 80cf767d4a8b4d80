import { CursorError } from './detection-cursor.js';

/**
 * The cursor of the dashboard's name-ordered pages (destinations by endpoint, jobs by owner / repo /
 * workflow / job), shared by every backend: the sort key of the last row of the previous page, as
 * text. A cursor of one page kind is refused by another (the kind is part of it).
 */

export function encodeKeyCursor(kind: string, key: string[]): string {
  return Buffer.from(`k1:${kind}:${JSON.stringify(key)}`).toString('base64url');
}

export function decodeKeyCursor(c: string, kind: string, arity: number): string[] {
  const s = Buffer.from(c, 'base64url').toString('utf8');
  const prefix = `k1:${kind}:`;
  if (s.startsWith(prefix)) {
    try {
      const v = JSON.parse(s.slice(prefix.length)) as unknown;
      if (Array.isArray(v) && v.length === arity && v.every((x) => typeof x === 'string')) return v as string[];
    } catch {
      /* fall through */
    }
  }
  throw new CursorError(`invalid cursor "${c}": pass the next_cursor value returned by the previous page, or omit it to start over`);
}
