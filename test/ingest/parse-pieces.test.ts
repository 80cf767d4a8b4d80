import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { IDLE_FLUSH_MS, readRecords, type RecordBatch } from '../../src/ingest/records.js';
import { parseSource, RecordParser, type ParsedBatch } from '../../src/ingest/record-parser.js';
import { openInput } from '../../src/ingest/input.js';
import { writeTenant } from '../../src/generate/index.js';
import { tempDir } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { lineTexts } from '../helpers/ndjson-lines.js';

/*
 * NDJSON lines are handed on, and parsed, in pieces of a batch as they are read (so their raw text
 * dies young: docs/benchmarks.md, "ingest"); the batches themselves, and so the write batches,
 * stay what they were.
 */

const tmp = tempDir();
after(() => tmp.cleanup());

function* chunked(buf: Buffer, cuts: number[]): Generator<Buffer> {
  let at = 0;
  for (const c of [...new Set(cuts)].sort((a, b) => a - b)) {
    if (c > at && c < buf.length) {
      yield buf.subarray(at, c);
      at = c;
    }
  }
  yield buf.subarray(at);
}

async function* stream(chunks: Iterable<Buffer>): AsyncGenerator<Buffer> {
  for (const c of chunks) yield c;
}

type Whole = { kind: 'lines'; firstLine: number; lines: string[] } | Exclude<RecordBatch, { kind: 'lines' }>;

/** The batches of a source, each piece joined to the batch it belongs to; also the largest piece. */
async function batchesOf(it: AsyncIterable<RecordBatch>): Promise<{ batches: Whole[]; largestPiece: number; pieces: number }> {
  const batches: Whole[] = [];
  let open: { kind: 'lines'; firstLine: number; lines: string[] } | null = null;
  let largestPiece = 0;
  let pieces = 0;
  for await (const b of it) {
    if (b.kind !== 'lines') {
      assert.equal(open, null, 'an error inside an unfinished batch');
      batches.push(b);
      continue;
    }
    pieces++;
    const lines = lineTexts(b);
    largestPiece = Math.max(largestPiece, lines.length);
    if (open) assert.equal(b.firstLine, open.firstLine + open.lines.length, 'pieces follow each other');
    else open = { kind: 'lines', firstLine: b.firstLine, lines: [] };
    open.lines.push(...lines);
    if (!b.more) {
      batches.push(open);
      open = null;
    }
  }
  assert.equal(open, null, 'the source ended inside a batch');
  return { batches, largestPiece, pieces };
}

test('pieces of at most `step` lines join to exactly the batches read whole, at every chunking', async () => {
  const LIMIT = 2_000;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: LIMIT + 300 }), { minLength: 1, maxLength: 160 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      fc.boolean(),
      fc.integer({ min: 1, max: 9 }),
      async (lengths, cutSeeds, multiByte, step) => {
        // "é" is two UTF-8 bytes: some land across the boundaries of the read chunks
        const lineOf = (i: number, len: number) => (multiByte && i % 3 === 0 ? 'é'.repeat(len >> 1) + 'x'.repeat(len & 1) : String.fromCharCode(97 + (i % 26)).repeat(len));
        const text = lengths.map((len, i) => lineOf(i, len)).join('\n') + '\n';
        const buf = Buffer.from(text);
        // few cuts: chunks often hold many lines
        const cuts = cutSeeds.map((s) => s % (buf.length + 1));
        const whole = await batchesOf(readRecords(stream(chunked(buf, cuts)), 10, LIMIT));
        const inPieces = await batchesOf(readRecords(stream(chunked(buf, cuts)), 10, LIMIT, step));
        assert.deepEqual(inPieces.batches, whole.batches);
        assert.ok(inPieces.largestPiece <= step, `a piece of ${inPieces.largestPiece} lines, step ${step}`);
        if (whole.batches.some((b) => b.kind === 'lines' && b.lines.length > step)) assert.ok(inPieces.pieces > whole.pieces, 'lines were handed on in pieces');
      },
    ),
    { numRuns: 150, seed: 20261202 },
  );
});

test('a quiet input ends its batch even when every line of it already went out as a piece', async () => {
  let ended = false;
  let input = false;
  async function* quiet(): AsyncGenerator<Buffer> {
    yield Buffer.from('a\nb\nc\n');
    // stays open, as a pipe does, until the reader has handed on a whole batch (or gives up)
    await waitFor(() => ended, 10_000, 25, 'the end of the batch').catch(() => undefined);
    input = true;
  }
  const seen: RecordBatch[] = [];
  for await (const b of readRecords(quiet(), 100, 1 << 20, 3, IDLE_FLUSH_MS)) {
    seen.push(b);
    if (b.kind === 'lines' && !b.more) {
      ended = true;
      assert.equal(input, false, 'the batch ended only once the input did');
    }
  }
  assert.deepEqual(
    seen.map((b) => (b.kind === 'lines' ? [b.firstLine, lineTexts(b), b.more ?? false] : b.kind)),
    [
      [1, ['a', 'b', 'c'], true],
      [4, [], false],
    ],
  );
});

test('a source parsed in pieces gives the batches parsed whole: same records, outputs and errors', async () => {
  const gen = join(tmp.dir, 'gen.ndjson');
  await writeTenant({ runs: 6, seed: 7, events: 6_000 }, gen);
  // a few bad lines, so errors keep their line numbers across pieces
  const lines = readFileSync(gen, 'utf8').split('\n');
  for (const at of [5, 1_023, 2_999]) lines[at] = '{"not": "a call"';
  const file = join(tmp.dir, 'mixed.ndjson');
  writeFileSync(file, lines.join('\n'));

  const whole: ParsedBatch[] = [];
  const input = await openInput(file);
  const p = new RecordParser('auto', input.name, 'default', {});
  for await (const rb of readRecords(input.stream, 1_000)) whole.push(p.parseBatch(rb));

  const pieces: ParsedBatch[] = [];
  for await (const chunk of parseSource(file, { format: 'auto', tenant: 'default', defaults: {}, batchSize: 1_000 })) pieces.push(chunk.batch);
  assert.deepEqual(pieces, whole);
  const total = lines.length - (lines.at(-1) === '' ? 1 : 0);
  assert.deepEqual(
    pieces.map((b) => b.records),
    Array.from({ length: Math.ceil(total / 1_000) }, (_, i) => Math.min(1_000, total - i * 1_000)),
  );
  assert.deepEqual(
    pieces.flatMap((b) => b.errors.map((e) => e.location)),
    [6, 1_024, 3_000].map((n) => `${file}:${n}`),
  );
});

test('only standard input is live: the batches of a file never depend on how fast it is read', async () => {
  const file = join(tmp.dir, 'live.ndjson');
  writeFileSync(file, '{}\n');
  const { PassThrough } = await import('node:stream');
  const stdin = new PassThrough();
  stdin.end('{}\n');
  assert.equal((await openInput(file)).live, false);
  assert.equal((await openInput('-', stdin)).live, true);
});

test('a byte order mark split across the first reads is still no part of the first record', async () => {
  const read = async (bytes: Buffer, size: number) => {
    const out: unknown[] = [];
    for await (const b of readRecords(stream(chunked(bytes, Array.from({ length: bytes.length }, (_, i) => i * size))), 10)) {
      out.push(b.kind === 'lines' ? lineTexts(b) : b.kind === 'values' ? b.values : b.kind);
    }
    return out;
  };
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  for (const size of [1, 2, 3, 4, 64]) {
    assert.deepEqual(await read(Buffer.concat([bom, Buffer.from('{"a":1}\n{"b":2}\n')]), size), [['{"a":1}', '{"b":2}']], `NDJSON in ${size}-byte reads`);
    assert.deepEqual(await read(Buffer.concat([bom, Buffer.from('[{"a":1}]')]), size), [[{ a: 1 }]], `a document in ${size}-byte reads`);
  }
  assert.deepEqual(await read(bom, 1), [], 'the mark alone is an empty source');
});
