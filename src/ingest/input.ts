import { createReadStream, statSync } from 'node:fs';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';

export interface InputSource {
  name: string;
  /** compressed or raw byte size when known (files), for progress */
  size: number | null;
  /** raw bytes consumed so far, for progress */
  bytesRead(): number;
  /** decoded (decompressed) bytes */
  stream: AsyncIterable<Buffer>;
}

/**
 * Opens a file or stdin ("-") as a stream of decompressed bytes. Gzip is recognised by its magic
 * bytes, not by the file name, so piped `.gz` data works too.
 */
export async function openInput(path: string, stdin: Readable = process.stdin): Promise<InputSource> {
  const raw: Readable = path === '-' ? stdin : createReadStream(path, { highWaterMark: 1 << 20 });
  const size = path === '-' ? null : statSync(path).size;
  let consumed = 0;
  const iter = raw[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await iter.next();
  const head: Buffer | null = first.done ? null : (first.value as Buffer);
  async function* replay(): AsyncGenerator<Buffer> {
    if (head) {
      consumed += head.length;
      yield head;
    }
    for (;;) {
      const n = await iter.next();
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
    stream = gunzip;
  }
  return { name: path === '-' ? '<stdin>' : path, size, bytesRead: () => consumed, stream };
}

/** Looks like binary (non-text) data: NUL bytes in the first 8 KiB. */
export function looksBinary(buf: Buffer): boolean {
  const n = Math.min(buf.length, 8192);
  for (let i = 0; i < n; i++) if (buf[i] === 0) return true;
  return false;
}
