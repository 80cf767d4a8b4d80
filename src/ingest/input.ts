import { createReadStream, statSync } from 'node:fs';
import { crc32, createInflateRaw } from 'node:zlib';
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
  /**
   * raw bytes consumed so far, for progress: of gzip data, only what was inflated, since one 1 MiB
   * read of it can hold most of a file's records (a bar at 83% from the first batch on)
   */
  bytesRead(): number;
  /** decoded (decompressed) bytes */
  stream: AsyncIterable<Buffer>;
  /** standard input: it may stay open and quiet between records, as a pipe from a live producer does */
  live: boolean;
  /**
   * Once `stream` has ended: the byte position of data after the last gzip member that is neither
   * another member nor zero padding (left unread, every member before it was decompressed), or null.
   */
  trailingGarbage(): number | null;
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
  let trailing: number | null = null;
  let held = () => 0;
  if (gz) {
    const members = gunzipMembers(name, replay(), () => consumed, (byte) => {
      trailing = byte;
      // nothing more is read: close the file now rather than when it is collected
      if (path !== '-') raw?.destroy();
    });
    held = members.held;
    stream = (async function* () {
      try {
        yield* members.stream;
      } catch (err) {
        throw readFailure(name, err, consumed, true);
      }
    })();
  }
  return { name, size, bytesRead: () => consumed - held(), stream, live: path === '-', trailingGarbage: () => trailing };
}

const EMPTY: Buffer = Buffer.alloc(0);
/** gzip data is handed to zlib this many bytes at a time, the step of its progress */
const FEED_SLICE = 16 << 10;

/**
 * Decompresses gzip members one after the other, as `gzip -d` does: each member's header is read
 * here, its deflate data inflated by zlib (on the thread pool), and its CRC-32 and length checked.
 * Knowing where each member ends is what keeps the data of a complete member when something else
 * follows it: zlib's own gunzip stream (Node's createGunzip) takes any bytes after a member for
 * the next member's header, fails on them, and drops the output it had not yet handed on (QA: 20
 * of 200 records lost to `echo garbage >> file.gz`). Zero bytes after a member are padding and
 * ignored (as gzip and zlib do); anything else is trailing garbage, reported through `trailing`
 * with its byte position, after every member before it was decompressed.
 */
function gunzipMembers(
  name: string,
  src: AsyncIterator<Buffer>,
  consumed: () => number,
  trailing: (byte: number) => void,
): { stream: AsyncGenerator<Buffer>; held: () => number } {
  let pending: Buffer = EMPTY;
  /** bytes of the read buffer being inflated that zlib has not taken yet; null between deflate streams */
  let feedLeft: number | null = null;
  return {
    stream: members(),
    // what was read but not yet decoded: the header, trailer or padding bytes in hand, or deflate data not inflated yet
    held: () => feedLeft ?? pending.length,
  };

  async function* members(): AsyncGenerator<Buffer> {
    /** reads on until `pending` holds n bytes; false when the input ends first */
    const fill = async (n: number): Promise<boolean> => {
      while (pending.length < n) {
        const r = await src.next();
        if (r.done) return false;
        pending = pending.length ? Buffer.concat([pending, r.value]) : r.value;
      }
      return true;
    };
    const cutOff = () => new SourceReadError(name, 'truncated-input', consumed(), 'unexpected end of file');
    const corrupt = (detail: string) => new SourceReadError(name, 'corrupt-input', consumed() - pending.length, detail);
    for (let first = true; ; first = false) {
      if (!first) {
        for (;;) {
          if (!(await fill(1))) return;
          let z = 0;
          while (z < pending.length && pending[z] === 0) z++;
          pending = pending.subarray(z);
          if (pending.length) break;
        }
        if (!(await fill(2)) || pending[0] !== 0x1f || pending[1] !== 0x8b) {
          trailing(consumed() - pending.length);
          return;
        }
      }
      // the member header (RFC 1952 2.3): ID1 ID2 CM FLG MTIME(4) XFL OS, then the optional fields FLG names
      if (!(await fill(10))) throw cutOff();
      if (pending[2] !== 8) throw corrupt(`unknown compression method ${pending[2]}`);
      const flg = pending[3]!;
      if (flg & 0xe0) throw corrupt('reserved header flags set');
      let p = 10;
      if (flg & 4) {
        if (!(await fill(p + 2))) throw cutOff();
        p += 2 + pending.readUInt16LE(p);
        if (!(await fill(p))) throw cutOff();
      }
      for (const field of [8, 16]) {
        if (!(flg & field)) continue;
        for (;;) {
          const z = pending.indexOf(0, p);
          if (z !== -1) {
            p = z + 1;
            break;
          }
          if (!(await fill(pending.length + 1))) throw cutOff();
        }
      }
      if (flg & 2) p += 2;
      if (!(await fill(p))) throw cutOff();
      pending = pending.subarray(p);

      const inflate = createInflateRaw();
      /** the bytes read after this member's deflate data (its trailer and what follows) */
      let after: Buffer = EMPTY;
      const feeding = (async () => {
        try {
          let buf = pending;
          pending = EMPTY;
          feeding: for (;;) {
            // in slices: a write's callback comes once zlib has inflated it and its output is on its
            // way, so the bytes taken so far follow the records decoded, not the reads ahead of them
            for (let at = 0; at < buf.length; at += FEED_SLICE) {
              const slice = buf.subarray(at, at + FEED_SLICE);
              feedLeft = buf.length - at;
              const before = inflate.bytesWritten;
              await new Promise<void>((resolve, reject) => inflate.write(slice, (err) => (err ? reject(err) : resolve())));
              // zlib consumes less than it was given only once the deflate data ended (Node's zlib.js says so too)
              const used = inflate.bytesWritten - before;
              feedLeft = buf.length - at - used;
              if (used < slice.length) {
                after = buf.subarray(at + used);
                break feeding;
              }
            }
            const r = await src.next();
            if (r.done) break;
            buf = r.value;
            feedLeft = buf.length;
          }
          // a deflate stream that did not end fails here with zlib's "unexpected end of file"
          inflate.end();
        } catch (err) {
          inflate.destroy(err as Error);
        }
      })();
      let crc = 0;
      let size = 0;
      try {
        for await (const out of inflate as AsyncIterable<Buffer>) {
          crc = crc32(out, crc);
          size = (size + out.length) >>> 0;
          yield out;
        }
      } finally {
        inflate.destroy();
      }
      await feeding;
      pending = after;
      feedLeft = null;
      if (!(await fill(8))) throw cutOff();
      if (pending.readUInt32LE(0) !== crc >>> 0) throw corrupt('CRC-32 of the decompressed data does not match the member trailer');
      if (pending.readUInt32LE(4) !== size) throw corrupt('length of the decompressed data does not match the member trailer');
      pending = pending.subarray(8);
    }
  }
}


/** Formats that are binary whatever their first bytes look like (a stored zip member is mostly text). */
const BINARY_MAGIC: Buffer[] = [
  Buffer.from('\x7fELF', 'latin1'),
  Buffer.from('PK\x03\x04', 'latin1'),
  Buffer.from('PK\x05\x06', 'latin1'),
  Buffer.from('SQLite format 3\0', 'latin1'),
  Buffer.from('\x89PNG\r\n\x1a\n', 'latin1'),
  Buffer.from('\xfd7zXZ\0', 'latin1'),
  Buffer.from('\x28\xb5\x2f\xfd', 'latin1'),
];

/** How much of the head is judged, and the share of control bytes in it that makes it binary. */
const BINARY_HEAD_BYTES = 8192;
const BINARY_CONTROL_SHARE = 0.03;

/**
 * Looks like binary (non-text) data, on real evidence: a known binary format's magic bytes, or NUL
 * and other control bytes (not tab, newline, CR, form feed, vertical tab, backspace or ESC) making
 * at least 3% of the first 8 KiB, and more than one of them. Random bytes have about 10%, an
 * executable or a database far more, NDJSON none: a stray NUL in one line makes that line a bad
 * record at its own line, not the whole file binary.
 */
export function looksBinary(buf: Buffer): boolean {
  for (const magic of BINARY_MAGIC) if (buf.length >= magic.length && buf.subarray(0, magic.length).equals(magic)) return true;
  const n = Math.min(buf.length, BINARY_HEAD_BYTES);
  let control = 0;
  for (let i = 0; i < n; i++) {
    const b = buf[i]!;
    if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0b && b !== 0x0c && b !== 0x0d && b !== 0x08 && b !== 0x1b) || b === 0x7f) control++;
  }
  return control > 1 && control >= n * BINARY_CONTROL_SHARE;
}
