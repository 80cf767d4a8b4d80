import { StringDecoder } from 'node:string_decoder';
import { isAscii } from 'node:buffer';
import { Readable } from 'node:stream';
import { createRequire } from 'node:module';
import { RecordError } from './adapters/types.js';
import { looksBinary, SourceReadError } from './input.js';

const require = createRequire(import.meta.url);
// stream-json is CommonJS; these are its documented entry points.
const { parser } = require('stream-json') as { parser: (o?: object) => NodeJS.ReadWriteStream };
const { pick } = require('stream-json/filters/Pick') as { pick: (o: object) => NodeJS.ReadWriteStream };
const { streamArray } = require('stream-json/streamers/StreamArray') as { streamArray: () => NodeJS.ReadWriteStream };

/** Longest line we accept; longer lines are rejected without being buffered whole. */
export const MAX_LINE_BYTES = 4 * 1024 * 1024;

export type RecordBatch =
  /** NDJSON: raw lines, parsed by the consumer so parsing happens inside the write transaction */
  | { kind: 'lines'; firstLine: number; lines: string[] }
  /** a JSON document (array or {"data":{"detections":[...]}}): already parsed elements */
  | { kind: 'values'; firstIndex: number; values: unknown[]; path: string }
  | { kind: 'error'; line: number; error: RecordError };

/**
 * Splits decoded input into record batches without ever holding more than one chunk plus one
 * line in memory. Recognises NDJSON vs a JSON document from the first bytes.
 */
export async function* readRecords(stream: AsyncIterable<Buffer>, batchSize = 2000): AsyncGenerator<RecordBatch> {
  const it = stream[Symbol.asyncIterator]();
  const decoder = new StringDecoder('utf8');
  let first: IteratorResult<Buffer>;
  try {
    first = await it.next();
    while (!first.done && first.value.length === 0) first = await it.next();
  } catch (err) {
    yield readFailed(err, 1);
    return;
  }
  if (first.done) return;
  const head = first.value as Buffer;
  if (looksBinary(head)) {
    yield { kind: 'error', line: 1, error: new RecordError('binary-input', null, 'input is binary, not NDJSON or JSON text') };
    return;
  }
  const headText = decoder.write(head);
  const trimmed = headText.replace(/^\uFEFF/, '').trimStart();
  let jsonDoc: 'array' | 'envelope' | null = null;
  if (trimmed.startsWith('[')) jsonDoc = 'array';
  else if (trimmed.startsWith('{')) {
    const nl = trimmed.indexOf('\n');
    const firstLine = nl === -1 ? trimmed : trimmed.slice(0, nl);
    try {
      JSON.parse(firstLine);
    } catch {
      // A multi-line document whose first line is not a whole object: a pretty-printed envelope.
      if (nl !== -1) jsonDoc = 'envelope';
    }
  }
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

  let carry = '';
  let lineNo = 0;
  let batch: string[] = [];
  let batchStart = 1;
  let skippingLongLine = false;
  const flushBatch = function* (): Generator<RecordBatch> {
    if (batch.length) yield { kind: 'lines', firstLine: batchStart, lines: batch };
    batch = [];
    batchStart = lineNo + 1;
  };
  const take = function* (text: string): Generator<RecordBatch> {
    const parts = text.split('\n');
    parts[0] = carry + parts[0];
    carry = parts.pop()!;
    for (const p of parts) {
      lineNo++;
      if (skippingLongLine) {
        skippingLongLine = false;
        yield* flushBatch();
        continue;
      }
      batch.push(p);
      if (batch.length >= batchSize) yield* flushBatch();
    }
    if (carry.length > MAX_LINE_BYTES) {
      lineNo++;
      yield* flushBatch();
      yield { kind: 'error', line: lineNo, error: new RecordError('line-too-long', null, `line longer than ${MAX_LINE_BYTES} bytes`) };
      carry = '';
      batchStart = lineNo + 1;
      // the rest of this over-long line is dropped up to its newline
      skippingLongLine = true;
      lineNo--;
    }
  };
  yield* take(headText);
  for (;;) {
    let n: IteratorResult<Buffer>;
    try {
      n = await it.next();
    } catch (err) {
      // Keep the complete lines read so far; the cut-off line and the rest are lost.
      yield* flushBatch();
      yield readFailed(err, lineNo + 1);
      return;
    }
    if (n.done) break;
    const buf = n.value as Buffer;
    // Pure-ASCII chunks (the common case) skip UTF-8 decoding: latin1 makes compact one-byte strings.
    yield* take(isAscii(buf) && !decoderHasPending(decoder) ? buf.toString('latin1') : decoder.write(buf));
  }
  const tail = decoder.end();
  if (tail) yield* take(tail);
  if (carry && !skippingLongLine) {
    lineNo++;
    batch.push(carry);
  }
  yield* flushBatch();
}

/** A source that stops mid-way (truncated or corrupt gzip, a failed read) ends as one fatal rejected record. */
function readFailed(err: unknown, line: number): RecordBatch {
  if (!(err instanceof SourceReadError)) throw err;
  const message = `${SourceReadError.describe(err.reason, err.byte, err.detail)}; nothing after it was read`;
  return { kind: 'error', line, error: new RecordError(err.reason, null, message) };
}

/** StringDecoder keeps a partial multi-byte character between chunks; only then must we use it. */
function decoderHasPending(d: StringDecoder): boolean {
  return (d as unknown as { lastNeed?: number }).lastNeed ? true : false;
}

async function* readJsonDocument(stream: AsyncIterable<Buffer>, kind: 'array' | 'envelope', batchSize: number): AsyncGenerator<RecordBatch> {
  const path = kind === 'array' ? '' : 'data.detections';
  const src = Readable.from(stream);
  const p = parser();
  let pipeline: NodeJS.ReadableStream = src.pipe(p);
  if (kind === 'envelope') pipeline = pipeline.pipe(pick({ filter: 'data.detections' }));
  const arr = pipeline.pipe(streamArray()) as unknown as AsyncIterable<{ key: number; value: unknown }>;
  // pipe() does not forward a read failure: hand it to the loop below instead of crashing.
  src.once('error', (err) => (arr as unknown as Readable).destroy(err));
  let values: unknown[] = [];
  let firstIndex = 0;
  try {
    for await (const { key, value } of arr) {
      if (values.length === 0) firstIndex = key;
      values.push(value);
      if (values.length >= batchSize) {
        yield { kind: 'values', firstIndex, values, path };
        values = [];
      }
    }
  } catch (err) {
    if (values.length) yield { kind: 'values', firstIndex, values, path };
    values = [];
    if (err instanceof SourceReadError) {
      yield readFailed(err, firstIndex);
      return;
    }
    yield {
      kind: 'error',
      line: firstIndex,
      error: new RecordError('malformed-json', null, `malformed JSON document: ${(err as Error).message}`),
    };
    return;
  }
  if (values.length) yield { kind: 'values', firstIndex, values, path };
}
