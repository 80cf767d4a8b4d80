import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createRequire } from 'node:module';
import type copyStreams from 'pg-copy-streams';
import type { PgClient } from './pool.js';

// Loaded on first use, with pg itself (pool.ts): a SQLite store's commands never load either.
const require = createRequire(import.meta.url);
function copyFrom(sql: string): ReturnType<typeof copyStreams.from> {
  return (require('pg-copy-streams') as typeof copyStreams).from(sql);
}

/**
 * Bulk rows into PostgreSQL with `COPY ... FROM STDIN` (text format), through pg-copy-streams, the
 * COPY companion of `pg` (a small, long-maintained library on pg's own protocol layer, no native
 * code). COPY skips what a multi-row INSERT over arrays costs: pg's per-element array escaping on
 * the client, array parsing, and the ON CONFLICT check on the server. It cannot say ON CONFLICT, so
 * it is only used for rows that cannot be stored yet (docs/benchmarks.md, "PostgreSQL ingest"). It
 * runs in the caller's transaction: the lease fence and crash safety are those of the write batch.
 */

/** One field: null is SQL NULL; numbers must be finite (they go in as written by String()). */
export type CopyValue = string | number | boolean | null;

const SPECIAL = /[\\\n\r\t]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/**
 * A field in COPY's text format: backslash, newline, carriage return and tab are escaped, so any
 * string comes back as it was (\N alone is NULL; a string "\N" is written "\\N"). A string with a
 * NUL character cannot be stored as PostgreSQL text at all, by COPY or by INSERT: the server refuses it.
 */
export function copyField(v: CopyValue): string {
  if (v === undefined) throw new Error('COPY: a value is missing (undefined)');
  if (v === null) return '\\N';
  if (typeof v === 'string') return SPECIAL.test(v) ? v.replace(/[\\\n\r\t]/g, (ch) => ESCAPES[ch]!) : v;
  if (typeof v === 'boolean') return v ? 't' : 'f';
  if (!Number.isFinite(v)) throw new Error(`COPY: ${String(v)} is not a number PostgreSQL can store`);
  return String(v);
}

/** Rows as COPY text: tab between fields, a newline after each row. */
export function copyText(rows: readonly (readonly CopyValue[])[]): string {
  let out = '';
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) out += (i ? '\t' : '') + copyField(row[i]!);
    out += '\n';
  }
  return out;
}

/** COPY rows into `target` ("table (col, ...)"), in the client's current transaction. */
export async function copyRows(c: PgClient, target: string, rows: readonly (readonly CopyValue[])[]): Promise<void> {
  if (rows.length === 0) return;
  // The data is built before the COPY starts: a value that cannot be written throws here, not while
  // the connection waits in COPY mode for data that would never come.
  const data = Buffer.from(copyText(rows), 'utf8');
  await pipeline(Readable.from([data]), c.query(copyFrom(`COPY ${target} FROM STDIN`)));
}
