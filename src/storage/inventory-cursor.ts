import { InventoryError } from '../domain/indicator.js';

/**
 * The paging cursor of the inventory port, shared by every backend so that a bad cursor is refused
 * with the same message everywhere. It carries the sort key of the last row of the previous page;
 * what those numbers mean (times, the backend's own ids) is private to the backend that issued it.
 */

export function encodeInventoryCursor(parts: number[]): string {
  return Buffer.from(`i1:${JSON.stringify(parts)}`).toString('base64url');
}

/** The `arity` integers of a cursor; anything else (another arity, text, a float) is an InventoryError. */
export function decodeInventoryCursor(c: string, arity: number): number[] {
  const s = Buffer.from(c, 'base64url').toString('utf8');
  if (s.startsWith('i1:')) {
    try {
      const v = JSON.parse(s.slice(3)) as unknown;
      // integers only: a backend binds them as bigint parameters, where text would be a server error
      if (Array.isArray(v) && v.length === arity && v.every((x) => Number.isSafeInteger(x))) return v as number[];
    } catch {
      /* fall through */
    }
  }
  throw new InventoryError(`invalid cursor "${c}": pass the next_cursor value returned by the previous page, or omit it to start over`);
}
