import { StringDecoder } from 'node:string_decoder';
import { Readable, Transform, pipeline, type TransformCallback } from 'node:stream';
import { createRequire } from 'node:module';
import { RecordError } from './adapters/types.js';
import { looksBinary, SourceReadError } from './input.js';

const require = createRequire(import.meta.url);
// stream-json is CommonJS; these are its documented entry points.
const { parser } = require('stream-json') as { parser: (o?: object) => NodeJS.ReadWriteStream };
const { pick } = require('stream-json/filters/Pick') as { pick: (o: object) => NodeJS.ReadWriteStream };
const { streamArray } = require('stream-json/streamers/StreamArray') as { streamArray: () => NodeJS.ReadWriteStream };

/** The UTF-8 byte order mark. */
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** Longest line we accept; longer lines are rejected without being buffered whole. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

export type RecordBatch =
  /**
   * NDJSON: raw lines, parsed by the consumer. Line i is the bytes of bufs[i] from starts[i] to
   * ends[i], without its newline: still undecoded, because most telemetry lines repeat an earlier
   * one but for their time, and the consumer tells such a line from its bytes without ever making
   * a string of it (record-parser.ts, line-templates.ts). `more`: a piece of a batch (readRecords'
   * `step`), whose next lines follow at once; the batch ends with a piece without it.
   */
  | { kind: 'lines'; firstLine: number; bufs: Buffer[]; starts: number[]; ends: number[]; more?: true }
  /** a JSON document (array or {"data":{"detections":[...]}}): already parsed elements */
  | { kind: 'values'; firstIndex: number; values: unknown[]; path: string }
  /** `at`: where, when more precise than a line ("3:17" line:column, or "byte 123") */
  | { kind: 'error'; line: number; at?: string; error: RecordError };

/**
 * Splits input into record batches without ever holding more than one chunk plus one line in
 * memory. Recognises NDJSON vs a JSON document from the first bytes.
 */
export async function* readRecords(
  stream: AsyncIterable<Buffer>,
  batchSize = 2000,
  maxLineBytes = MAX_LINE_BYTES,
  /** NDJSON lines are handed on in pieces of this many (marked `more` until the batch is whole) */
  step = batchSize,
  /**
   * A live input (a pipe, `tail -f | ingest -`) must not hold complete lines back until a whole batch
   * arrives: with this set, they are handed on once no more input has come for this long. Left unset
   * for files, whose batches then never depend on how fast the disk or the machine is.
   */
  idleFlushMs: number | null = null,
): AsyncGenerator<RecordBatch> {
  const it = stream[Symbol.asyncIterator]();
  let first: IteratorResult<Buffer>;
  let head: Buffer;
  try {
    first = await it.next();
    while (!first.done && first.value.length === 0) first = await it.next();
    if (first.done) return;
    head = first.value as Buffer;
    // a pipe may hand the first bytes on one at a time: a byte order mark split across reads is one
    while (head.length < BOM.length && BOM.subarray(0, head.length).equals(head)) {
      const n = await it.next();
      if (n.done) break;
      head = Buffer.concat([head, n.value as Buffer]);
    }
    // A UTF-8 byte order mark (Windows editors write one) is not part of the first record.
    if (head.subarray(0, BOM.length).equals(BOM)) head = head.subarray(BOM.length);
    // the mark may be all the first reads held: what follows it tells NDJSON from a document
    while (head.length === 0) {
      const n = await it.next();
      if (n.done) return;
      head = n.value as Buffer;
    }
  } catch (err) {
    yield readFailed(err, 1);
    return;
  }
  // Windows PowerShell 5.1's `>` writes UTF-16 with its byte order mark: text, but not UTF-8
  if (head.length >= 2 && ((head[0] === 0xff && head[1] === 0xfe) || (head[0] === 0xfe && head[1] === 0xff))) {
    yield { kind: 'error', line: 1, error: new RecordError('binary-input', null, 'input is UTF-16 text, not UTF-8: convert it first (iconv -f UTF-16 -t UTF-8, or Out-File -Encoding utf8)') };
    return;
  }
  if (looksBinary(head)) {
    yield { kind: 'error', line: 1, error: new RecordError('binary-input', null, 'input is binary, not NDJSON or JSON text') };
    return;
  }
  // decoded only to tell NDJSON from a document: NDJSON lines stay bytes until parsed (RecordBatch)
  const jsonDoc = documentKind(new StringDecoder('utf8').write(head));
  async function* rest(): AsyncGenerator<Buffer> {
    yield head;
    for (;;) {
      const n = await it.next();
      if (n.done) return;
      yield n.value as Buffer;
    }
  }
  if (jsonDoc) {
    yield* readJsonDocument(rest(), jsonDoc, batchSize);
    return;
  }

  // An unfinished line: the bytes read of it so far, copied into one buffer that doubles as it fills
  // (read chunks may be tiny: a view of each would cost far more than its bytes).
  let carry: Buffer | null = null;
  let carryBytes = 0;
  const keep = (b: Buffer, from: number, to: number): void => {
    const n = to - from;
    if (carry === null || carryBytes + n > carry.length) {
      const grown = Buffer.allocUnsafe(Math.max(256, 2 * (carryBytes + n)));
      if (carry !== null) carry.copy(grown, 0, 0, carryBytes);
      carry = grown;
    }
    b.copy(carry, carryBytes, from, to);
    carryBytes += n;
  };
  let lineNo = 0;
  let bufs: Buffer[] = [];
  let starts: number[] = [];
  let ends: number[] = [];
  let batchStart = 1;
  /** lines of the current batch already handed on as pieces */
  let handedOn = 0;
  let skippingLongLine = false;
  const flushBatch = function* (): Generator<RecordBatch> {
    // a batch whose lines all went out as pieces still ends, with an empty last piece
    if (bufs.length || handedOn) yield { kind: 'lines', firstLine: batchStart, bufs, starts, ends };
    bufs = [];
    starts = [];
    ends = [];
    handedOn = 0;
    batchStart = lineNo + 1;
  };
  const flushPiece = function* (): Generator<RecordBatch> {
    yield { kind: 'lines', firstLine: batchStart, bufs, starts, ends, more: true };
    handedOn += bufs.length;
    batchStart += bufs.length;
    bufs = [];
    starts = [];
    ends = [];
  };
  const tooLong = (line: number): RecordBatch => ({
    kind: 'error',
    line,
    error: new RecordError('line-too-long', null, `line longer than ${maxLineBytes} bytes`),
  });
  const take = function* (buf: Buffer): Generator<RecordBatch> {
    let s = 0;
    for (;;) {
      const nl = buf.indexOf(10, s);
      if (nl === -1) break;
      lineNo++;
      let lb = buf;
      let ls = s;
      let le = nl;
      // (a line being skipped as too long keeps no carry)
      if (carryBytes > 0) {
        if (carryBytes + (nl - s) <= maxLineBytes) {
          keep(buf, s, nl);
          lb = carry!;
          ls = 0;
          le = carryBytes;
        } else le = ls + carryBytes + (nl - s);
        // the line owns that buffer now: the next carry starts a new one
        carry = null;
        carryBytes = 0;
      }
      s = nl + 1;
      if (skippingLongLine) {
        // the end of a line already reported as too long
        skippingLongLine = false;
        batchStart = lineNo + 1;
        continue;
      }
      if (le - ls > maxLineBytes) {
        // a whole over-long line inside the chunks read so far: the carry check did not see it
        yield* flushBatch();
        yield tooLong(lineNo);
        batchStart = lineNo + 1;
        continue;
      }
      bufs.push(lb);
      starts.push(ls);
      ends.push(le);
      if (handedOn + bufs.length >= batchSize) yield* flushBatch();
      else if (bufs.length >= step) yield* flushPiece();
    }
    if (skippingLongLine || s === buf.length) return;
    if (carryBytes + (buf.length - s) > maxLineBytes) {
      // An unfinished line already over the limit: report it now and drop the rest of it up to its
      // newline, so it is never buffered whole.
      yield* flushBatch();
      yield tooLong(lineNo + 1);
      skippingLongLine = true;
      carry = null;
      carryBytes = 0;
      return;
    }
    keep(buf, s, buf.length);
  };
  yield* take(head);
  for (;;) {
    let n: IteratorResult<Buffer>;
    try {
      const next = it.next();
      // A live input hands on what it has once it has been quiet for idleFlushMs (see the parameter).
      let timer: NodeJS.Timeout | undefined;
      const first = idleFlushMs !== null && (bufs.length || handedOn)
        ? await Promise.race([next, new Promise<typeof IDLE>((resolve) => (timer = setTimeout(resolve, idleFlushMs, IDLE)))])
        : await next;
      clearTimeout(timer);
      if (first === IDLE) {
        yield* flushBatch();
        n = await next;
      } else n = first;
    } catch (err) {
      // Keep the complete lines read so far; the cut-off line and the rest are lost.
      yield* flushBatch();
      yield readFailed(err, lineNo + 1);
      return;
    }
    if (n.done) break;
    yield* take(n.value as Buffer);
  }
  if (carryBytes > 0 && !skippingLongLine) {
    lineNo++;
    bufs.push(carry!);
    starts.push(0);
    ends.push(carryBytes);
  }
  yield* flushBatch();
}

/** A source that stops mid-way (truncated or corrupt gzip, a failed read) ends as one fatal rejected record. */
function readFailed(err: unknown, line: number): RecordBatch {
  if (!(err instanceof SourceReadError)) throw err;
  const message = `${SourceReadError.describe(err.reason, err.byte, err.detail)}; nothing after it was read`;
  return { kind: 'error', line, error: new RecordError(err.reason, null, message) };
}

/**
 * A JSON document (an array, or a pretty-printed envelope) rather than NDJSON, judged from the first
 * chunk: the first line does not hold a whole JSON value by itself. An NDJSON file whose lines are
 * arrays stays NDJSON; a first line that starts an array or object and does not end it opens a
 * document (and a broken one gets a clear error with its position).
 */
function documentKind(headText: string): 'array' | 'envelope' | null {
  const trimmed = headText.trimStart();
  const c = trimmed.charCodeAt(0);
  if (c !== 91 /* [ */ && c !== 123 /* { */) return null;
  const nl = trimmed.indexOf('\n');
  const firstLine = nl === -1 ? trimmed : trimmed.slice(0, nl);
  // The StepSecurity API answers compact JSON: its envelope on one line is the whole input, a
  // document of detections, not one NDJSON line (over 4 MiB it was dropped as a line too long)
  if (c === 123 && (nl === -1 || trimmed.slice(nl + 1).trim() === '') && isEnvelopeLine(firstLine)) return 'envelope';
  if (nl !== -1 || c === 91) {
    try {
      JSON.parse(firstLine);
      // a whole value on the first line: NDJSON, unless it is the whole input and an array
      return nl === -1 || trimmed.slice(nl + 1).trim() === '' ? (c === 91 ? 'array' : null) : null;
    } catch {
      return c === 91 ? 'array' : nl !== -1 ? 'envelope' : null;
    }
  }
  return null;
}

/**
 * The first line of the input opens `{"data": {"detections": [...]}}`: as a whole value when the first
 * read holds all of it, or by its start when the line runs on past that read.
 */
function isEnvelopeLine(line: string): boolean {
  try {
    const v = JSON.parse(line) as { data?: { detections?: unknown } } | null;
    return typeof v === 'object' && v !== null && typeof v.data === 'object' && v.data !== null && Array.isArray(v.data.detections);
  } catch {
    return ENVELOPE_START.test(line);
  }
}
const ENVELOPE_START = /^\{\s*"data"\s*:\s*\{\s*"detections"\s*:\s*\[/;

/** How long a live input may stay quiet before the lines read so far are handed on. */
export const IDLE_FLUSH_MS = 200;
const IDLE = Symbol('idle');

/** Documents up to this size are kept whole while streaming, so a syntax error gets an exact line:column. */
const EXACT_POSITION_CHARS = 16 * 1024 * 1024;

async function* readJsonDocument(stream: AsyncIterable<Buffer>, kind: 'array' | 'envelope', batchSize: number): AsyncGenerator<RecordBatch> {
  const path = kind === 'array' ? '' : 'data.detections';
  let fed = 0;
  let kept: string[] | null = [];
  let keptChars = 0;
  const decoder = new StringDecoder('utf8');
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const b of stream) {
      // past a syntax error nothing more is parsed: stop reading, and `fed` stays where it was found
      if (syntax.failure !== null) break;
      fed += b.length;
      if (kept !== null) {
        const t = decoder.write(b);
        keptChars += t.length;
        if (keptChars > EXACT_POSITION_CHARS) kept = null;
        else kept.push(t);
      }
      yield b;
    }
  }
  // pipeline() (not pipe()) so an error in any stage ends the iteration below instead of being
  // thrown as an unhandled 'error' event.
  const syntax = new HeldSyntaxError();
  const stages: NodeJS.ReadWriteStream[] = [syntax];
  if (kind === 'envelope') stages.push(pick({ filter: 'data.detections' }));
  stages.push(streamArray());
  const last = (pipeline as unknown as (...s: unknown[]) => NodeJS.ReadableStream)(Readable.from(counted()), ...stages, () => undefined);
  const arr = last as unknown as AsyncIterable<{ key: number; value: unknown }>;
  let values: unknown[] = [];
  let firstIndex = 0;
  let next = 0;
  let failure: unknown = null;
  try {
    for await (const { key, value } of arr) {
      if (values.length === 0) firstIndex = key;
      values.push(value);
      next = key + 1;
      if (values.length >= batchSize) {
        yield { kind: 'values', firstIndex, values, path };
        values = [];
      }
    }
  } catch (err) {
    failure = err;
  }
  // the parser's own error first: the later stages may fail only because its tokens stopped
  if (syntax.failure !== null && !(failure instanceof SourceReadError)) failure = syntax.failure;
  if (failure !== null) {
    const err = failure;
    if (values.length) yield { kind: 'values', firstIndex, values, path };
    values = [];
    if (err instanceof SourceReadError) {
      yield readFailed(err, next);
      return;
    }
    const text = kept !== null ? kept.join('') + decoder.end() : null;
    const where = text !== null ? syntaxPosition(text) : null;
    if (kept !== null && where === null) {
      // valid JSON, wrong shape (e.g. an object without data.detections)
      yield {
        kind: 'error',
        line: next,
        at: `byte ${fed}`,
        error: new RecordError('unknown-format', null, WRONG_SHAPE),
      };
      return;
    }
    const at = where ?? `byte ${fed}`;
    const what = where ? 'malformed JSON document' : `malformed JSON document (at or before byte ${fed})`;
    const read = next === 0 ? 'no element was read' : `the ${next} element(s) before it were read`;
    yield {
      kind: 'error',
      line: next,
      at,
      // a cut-off file (a copy or an upload that stopped) says so, not only which token it lacks
      error: new RecordError('malformed-json', null, `${what}: ${text !== null && endsEarly(text) ? `it ends early (${errorText(err)})` : errorText(err)}; ${read}`),
    };
    return;
  }
  if (values.length) yield { kind: 'values', firstIndex, values, path };
  else if (next === 0 && kind === 'envelope' && kept !== null && !hasDetections(kept.join('') + decoder.end())) {
    // the envelope filter found nothing: say so rather than read an empty source
    yield { kind: 'error', line: 0, at: `byte ${fed}`, error: new RecordError('unknown-format', null, WRONG_SHAPE) };
  }
}

const WRONG_SHAPE = 'the document is JSON but neither an array of records nor a {"data":{"detections":[...]}} envelope';

/**
 * stream-json's parser, its syntax error held (failure) instead of raised: the tokens it made before
 * the error still reach the later stages, which then end. Raised in the pipeline, the error tore down
 * every stage at once, and the complete elements parsed from the same read chunk as the bad byte were
 * lost: two exports written one after the other stored none of the first.
 */
class HeldSyntaxError extends Transform {
  failure: Error | null = null;
  private readonly inner = parser();

  constructor() {
    super({ readableObjectMode: true });
    this.inner.on('data', (token: unknown) => this.push(token));
    this.inner.on('error', (err: Error) => (this.failure ??= err));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    if (this.failure !== null) return done();
    this.inner.write(chunk, () => done());
  }

  override _flush(done: TransformCallback): void {
    if (this.failure !== null) return done();
    const end = () => done();
    this.inner.once('end', end);
    this.inner.once('error', end);
    this.inner.end();
  }
}

function hasDetections(text: string): boolean {
  try {
    const d = (JSON.parse(text) as { data?: { detections?: unknown } } | null)?.data?.detections;
    return Array.isArray(d);
  } catch {
    return true; // not ours to judge here: a syntax error was already reported
  }
}

function errorText(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  return m.replace(/^Parser cannot parse input: /, '');
}

/** True when the JSON text is only cut short: its first syntax error is at its end. */
function endsEarly(text: string): boolean {
  try {
    JSON.parse(text);
    return false;
  } catch (err) {
    const m = /position (\d+)/.exec((err as Error).message);
    return m === null || Number(m[1]) >= text.trimEnd().length;
  }
}

/** "line:column" (1-based) of the first JSON syntax error in `text`, or null when it parses. */
export function syntaxPosition(text: string): string | null {
  try {
    JSON.parse(text);
    return null;
  } catch (err) {
    const msg = (err as Error).message;
    const m = /position (\d+)/.exec(msg);
    // V8 says "Unexpected end of JSON input" with no position when the text stops early.
    const pos = m ? Number(m[1]) : text.length;
    let line = 1;
    let lineStart = 0;
    for (let i = text.indexOf('\n'); i !== -1 && i < pos; i = text.indexOf('\n', i + 1)) {
      line++;
      lineStart = i + 1;
    }
    return `${line}:${pos - lineStart + 1}`;
  }
}
