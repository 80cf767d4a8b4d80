import { createReadStream, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

/**
 * A source could not be read to its end: it could not be opened, a read failed, or its gzip data is
 * truncated or corrupt. `byte` is how many raw (on-disk, possibly compressed) bytes were read before.
 */
export class SourceReadError extends Error {
  constructor(
    readonly source: string,
    readonly reason: 'unreadable' | 'truncated-input' | 'corrupt-input',
    readonly byte: number,
    readonly detail: string,
  ) {
    super(`${source}: ${SourceReadError.describe(reason, byte, detail)}`);
    this.name = 'SourceReadError';
  }

  static describe(reason: SourceReadError['reason'], byte: number, detail: string): string {
    if (reason === 'truncated-input') return `input ends early: gzip data is cut off at byte ${byte} (${detail})`;
    if (reason === 'corrupt-input') return `corrupt gzip data before byte ${byte} (${detail})`;
    return `cannot read it at byte ${byte} (${detail})`;
  }
}

/** Classifies a read or gunzip failure; zlib reports a cut-off stream as Z_BUF_ERROR "unexpected end of file". */
function readFailure(source: string, err: unknown, byte: number, gz: boolean): SourceReadError {
  if (err instanceof SourceReadError) return err;
  const e = err as NodeJS.ErrnoException;
  const detail = e?.message ?? String(err);
  if (gz && e?.code === 'Z_BUF_ERROR') return new SourceReadError(source, 'truncated-input', byte, detail);
  if (gz && typeof e?.code === 'string' && e.code.startsWith('Z_')) return new SourceReadError(source, 'corrupt-input', byte, detail);
  return new SourceReadError(source, 'unreadable', byte, detail);
}

export interface InputSource {
  name: string;
  /** compressed or raw byte size when known (files), for progress */
  size: number | null;
  /** raw bytes consumed so far, for progress */
  bytesRead(): number;
  /** decoded (decompressed) bytes */
  stream: AsyncIterable<Buffer>;
  /** standard input: it may stay open and quiet between records, as a pipe from a live producer does */
  live: boolean;
}

/**
 * Opens a file or stdin ("-") as a stream of decompressed bytes. Gzip is recognised by its magic
 * bytes, not by the file name, so piped `.gz` data works too.
 */
export async function openInput(path: string, stdin: Readable = process.stdin): Promise<InputSource> {
  const name = path === '-' ? '<stdin>' : path;
  let consumed = 0;
  let raw: Readable | undefined;
  let size: number | null;
  let first: IteratorResult<Buffer>;
  let iter: AsyncIterator<Buffer>;
  try {
    // stat before the stream opens: a stream whose open failed unwatched raised its own ENOENT, which
    // could overtake this one as the ingest's error
    size = path === '-' ? null : statSync(path).size;
    raw = path === '-' ? stdin : createReadStream(path, { highWaterMark: 1 << 20 });
    iter = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
    first = await iter.next();
  } catch (err) {
    if (path !== '-') raw?.destroy();
    throw readFailure(name, err, 0, false);
  }
  const head: Buffer | null = first.done ? null : (first.value as Buffer);
  async function* replay(): AsyncGenerator<Buffer> {
    if (head) {
      consumed += head.length;
      yield head;
    }
    for (;;) {
      let n: IteratorResult<Buffer>;
      try {
        n = await iter.next();
      } catch (err) {
        throw readFailure(name, err, consumed, false);
      }
      if (n.done) return;
      consumed += (n.value as Buffer).length;
      yield n.value as Buffer;
    }
  }
  const gz = head !== null && head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  let stream: AsyncIterable<Buffer> = replay();
  if (gz) {
    const gunzip = createGunzip();
    const src = replay();
    (async () => {
      try {
        for await (const chunk of src) if (!gunzip.write(chunk)) await new Promise((r) => gunzip.once('drain', r));
        gunzip.end();
      } catch (err) {
        gunzip.destroy(err as Error);
      }
    })();
    stream = (async function* () {
      try {
        for await (const chunk of gunzip) yield chunk as Buffer;
      } catch (err) {
        throw readFailure(name, err, consumed, true);
      }
    })();
  }
  return { name, size, bytesRead: () => consumed, stream, live: path === '-' };
}

/** Looks like binary (non-text) data: NUL bytes in the first 8 KiB. */
export function looksBinary(buf: Buffer): boolean {
  const n = Math.min(buf.length, 8192);
  for (let i = 0; i < n; i++) if (buf[i] === 0) return true;
  return false;
}
