import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { readRecords, type RecordBatch } from '../../src/ingest/records.js';
import { RecordParser } from '../../src/ingest/record-parser.js';
import { runCli, tempDir, nativeEvent } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { lineTexts } from '../helpers/ndjson-lines.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest } = eachStore();
let n = 0;
function file(content: string | Buffer, ext = '.json'): string {
  const f = join(tmp.dir, `d${n++}${ext}`);
  writeFileSync(f, content);
  return f;
}

const STACK = /\n\s+at .+:\d+:\d+/;
const HR_CTX = ['--owner', 'acme', '--repo', 'api', '--workflow', 'ci.yml', '--job', 'build', '--run-id', '1'];

interface Summary { sources: { source: string; accepted: number; rejected: number; rejectedByReason: Record<string, number>; errors: { location: string; message: string }[] }[] }

/** ingests into the store at `db` (a SQLite file or a PostgreSQL URL) */
function ingest(db: string, files: string[], extra: string[] = []) {
  const res = runCli(['ingest', ...files, '--db', db, '--json', ...extra]);
  assert.notEqual(res.status, 70, `internal error: ${res.stderr}`);
  assert.doesNotMatch(res.stderr, STACK);
  return { res, out: JSON.parse(res.stdout) as Summary };
}

storeTest('a truncated JSON array is a clear error at its position, and the files after it still ingest', async ({ db }) => {
  const bad = file('[{"id":"a"');
  const good = file(readFileSync('test/fixtures/harden-runner/agent.log'), '.log');
  const { out } = ingest(db, [bad, good], HR_CTX);
  const [b, g] = out.sources;
  assert.equal(b!.rejected, 1);
  assert.equal(b!.rejectedByReason['malformed-json'], 1);
  assert.equal(b!.errors[0]!.location, `${bad}:1:11`);
  assert.match(b!.errors[0]!.message, /malformed JSON document/);
  assert.equal(g!.accepted, 3);
  assert.equal(g!.rejected, 0);
});

storeTest('a JSON document of the wrong shape says so, without calling it malformed', async ({ db }) => {
  const f = file('{"data":\n  {"items": []}}\n');
  const s = ingest(db, [f]).out.sources[0]!;
  assert.deepEqual(s.rejectedByReason, { 'unknown-format': 1 });
  assert.match(s.errors[0]!.message, /neither an array of records nor a \{"data":\{"detections"/);
});

storeTest('the text summary is printed for a broken document too', async ({ db }) => {
  const bad = file('[{"id":"a"');
  const res = runCli(['ingest', bad, '--db', db]);
  assert.notEqual(res.status, 70, res.stderr);
  assert.doesNotMatch(res.stderr, STACK);
  assert.match(res.stdout, new RegExp(`! ${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:1:11: malformed JSON document: it ends early \\(expected ','\\); no element was read`));
  assert.match(res.stdout, /^total: /m);
});

storeTest('an NDJSON file whose first line starts with "[" gets a clear error, not a crash', async ({ db }) => {
  const f = file('[1,2\n{"ipAddress":"140.82.112.3","port":"443","timestamp":"2026-11-02T10:00:00Z","tool":{"name":"git","sha256":""}}\n', '.ndjson');
  // read as a document: its two complete elements are records of no format, then the break at 2:1
  const { out } = ingest(db, [f], HR_CTX);
  assert.match(out.sources[0]!.errors[0]!.message, /cannot tell the format from the first record/);
  const typed = ingest(db, [f], [...HR_CTX, '--format', 'harden-runner']).out.sources[0]!;
  assert.deepEqual(typed.errors.map((e) => e.location), [`${f}: [0]`, `${f}: [1]`, `${f}:2:1`]);
  assert.match(typed.errors[2]!.message, /malformed JSON document: expected ','; the 2 element\(s\) before it were read/);
  // NDJSON whose lines are whole arrays stays NDJSON: each line is a record
  const lines = file('[1]\n[2]\n', '.ndjson');
  const r2 = ingest(db, [lines], HR_CTX).out.sources[0]!;
  assert.equal(r2.errors.length, 1);
  assert.match(r2.errors[0]!.message, /cannot tell the format/);
});

storeTest('a UTF-8 byte order mark before the first record is accepted (NDJSON and document)', async ({ db }) => {
  const bom = Buffer.from([0xef, 0xbb, 0xbf]);
  const nd = file(Buffer.concat([bom, readFileSync('test/fixtures/harden-runner/agent.log')]), '.log');
  const doc = file(Buffer.concat([bom, readFileSync('test/fixtures/stepsecurity/detections.json')]));
  const { out } = ingest(db, [nd, doc], HR_CTX);
  assert.deepEqual(out.sources.map((s) => s.rejected), [0, 0]);
  assert.equal(out.sources[0]!.accepted, 3);
  assert.ok(out.sources[1]!.accepted > 0);
});

storeTest('a StepSecurity envelope on one line (as the API answers) is a document of detections, not one NDJSON line, whatever its size', async ({ db }) => {
  const det = (JSON.parse(readFileSync('test/fixtures/stepsecurity/detections.json', 'utf8')) as { data: { detections: Record<string, unknown>[] } }).data.detections;
  // with a bad detection: its error is at its place in the document, not at line 1
  const small = file(JSON.stringify({ data: { detections: [det[0], { ...det[1], endpoint: 'no host here' }] } }));
  const s = ingest(db, [small]).out.sources[0]! as unknown as { format: string; records: number; accepted: number; rejected: number; errors: { location: string }[] };
  assert.deepEqual([s.format, s.records, s.accepted, s.rejected, s.errors.map((e) => e.location)], ['stepsecurity', 2, 1, 1, [`${small}: data.detections[1]`]]);
  // past the 4 MiB line limit (it was one line too long, and every detection in it dropped)
  const many = Array.from({ length: 9000 }, (_, i) => ({ ...det[i % det.length], id: `b${i}`, run_id: 100_000 + i }));
  const big = file(JSON.stringify({ data: { detections: many } }));
  const b = ingest(db, [big]).out.sources[0]! as unknown as { records: number; accepted: number; rejected: number };
  assert.deepEqual([b.records, b.accepted, b.rejected], [9000, 9000, 0]);
});

storeTest('StepSecurity detections as NDJSON are read as such when the first has no endpoint (a secret in a build log): the call to webhook.site after it is kept', async ({ db }) => {
  const { out } = ingest(db, ['test/fixtures/stepsecurity/detections.ndjson']);
  const s = out.sources[0]! as unknown as { format: string; records: number; accepted: number; rejected: number };
  assert.deepEqual([s.format, s.records, s.accepted, s.rejected], ['stepsecurity', 2, 2, 0]);
});

storeTest('blank lines in NDJSON are read, counted among the records and said as a note, so the summary adds up', async ({ db }) => {
  const [a, b] = readFileSync('test/fixtures/harden-runner/agent.log', 'utf8').split('\n').filter((l) => l.trim() !== '');
  const nd = file(`${a}\n\n   \n${b}\r\n\t\n`, '.log');
  const s = ingest(db, [nd], HR_CTX).out.sources[0]! as unknown as { records: number; accepted: number; duplicates: number; rejected: number; notes: Record<string, number> };
  assert.deepEqual([s.records, s.accepted + s.duplicates, s.rejected, s.notes['blank-lines']], [5, 2, 0, 3]);
});

async function* chunked(text: string, cuts: number[]): AsyncGenerator<Buffer> {
  const buf = Buffer.from(text);
  let at = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    if (c > at && c < buf.length) {
      yield buf.subarray(at, c);
      at = c;
    }
  }
  yield buf.subarray(at);
}

async function collect(it: AsyncIterable<RecordBatch>) {
  const lines = new Map<number, string>();
  const tooLong: number[] = [];
  for await (const b of it) {
    if (b.kind === 'lines') lineTexts(b).forEach((l, i) => lines.set(b.firstLine + i, l));
    else if (b.kind === 'error') tooLong.push(b.line);
  }
  return { lines, tooLong };
}

test('the line-length limit holds at every length and every chunking', async () => {
  const LIMIT = 64;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.integer({ min: 0, max: 3 * LIMIT }), { minLength: 1, maxLength: 8 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      fc.boolean(),
      async (lengths, cutSeeds, multiByte) => {
        // "é" is two UTF-8 bytes: the limit is in bytes, not characters
        const lineOf = (i: number, len: number) => (multiByte ? 'é'.repeat(len >> 1) + 'x'.repeat(len & 1) : String.fromCharCode(97 + (i % 26)).repeat(len));
        const ls = lengths.map((len, i) => lineOf(i, len));
        const text = ls.join('\n') + '\n';
        const cuts = cutSeeds.map((s) => s % (Buffer.byteLength(text) + 1));
        const { lines, tooLong } = await collect(readRecords(chunked(text, cuts), 3, LIMIT));
        ls.forEach((l, i) => {
          const over = Buffer.byteLength(l) > LIMIT;
          assert.equal(tooLong.includes(i + 1), over, `line ${i + 1} (${Buffer.byteLength(l)} bytes)`);
          if (!over) assert.equal(lines.get(i + 1), l, `line ${i + 1}`);
          else assert.equal(lines.has(i + 1), false);
        });
      },
    ),
    { numRuns: 400, seed: 20261201 },
  );
});

storeTest('a 5 MB line is rejected as too long, and the lines around it still ingest', async ({ db }) => {
  const ev = (run: number, pad = '') => JSON.stringify({ ...nativeEvent({ run, domain: 'github.com', process: 'git' }), ...(pad ? { pad } : {}) });
  const f = file([ev(0), ev(1, 'x'.repeat(5_000_000)), ev(2)].join('\n') + '\n', '.ndjson');
  const { out } = ingest(db, [f]);
  const s = out.sources[0]!;
  assert.equal(s.rejectedByReason['line-too-long'], 1);
  assert.equal(s.errors[0]!.location, `${f}:2`);
  assert.equal(s.accepted, 2);
});

// ---------------------------------------------------------------------------------------------
// Fuzz: mutated JSON documents never crash the reader or an adapter.

const BASES = [
  readFileSync('test/fixtures/stepsecurity/detections.json', 'utf8'),
  JSON.stringify(JSON.parse(readFileSync('test/fixtures/stepsecurity/detections.json', 'utf8')).data.detections),
  JSON.stringify(readFileSync('test/fixtures/harden-runner/agent-records.log', 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l)), null, 2),
];
const NOISE = ['{', '}', '[', ']', '"', ',', ':', '\\', '\n', '\uFEFF', 'null', '-1e999', '"\\u0000"', '[[[[[[', '{"data":', 'ÿ', '\u2028', '0'];

/** A seeded mutation of a document: truncation, deletion, insertion, duplication or a swap. */
function mutate(doc: string, rnd: () => number): string {
  let s = doc;
  const ops = 1 + Math.floor(rnd() * 3);
  for (let k = 0; k < ops; k++) {
    const at = Math.floor(rnd() * (s.length + 1));
    const len = 1 + Math.floor(rnd() * 20);
    switch (Math.floor(rnd() * 5)) {
      case 0: s = s.slice(0, at); break;
      case 1: s = s.slice(0, at) + s.slice(at + len); break;
      case 2: s = s.slice(0, at) + NOISE[Math.floor(rnd() * NOISE.length)] + s.slice(at); break;
      case 3: s = s.slice(0, at) + s.slice(at, at + len) + s.slice(at); break;
      default: { const b = Math.floor(rnd() * s.length); s = s.slice(0, at) + s.charAt(b) + s.slice(at + 1); }
    }
  }
  return s;
}

function lcg(seed: number): () => number {
  let x = seed >>> 0;
  return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

async function parseInProcess(text: string) {
  const parser = new RecordParser('auto', 'fuzz.json', 'default', { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', runId: '1' });
  const errors: { location: string; reason: string }[] = [];
  for await (const batch of readRecords(chunked(text, [7, 100, 1000]), 17)) {
    const b = parser.parseBatch(batch);
    errors.push(...b.errors);
    if (b.fatal) break;
  }
  return errors;
}

test('fuzz: 600 mutated JSON documents parse in-process with no exception and no internal error', async () => {
  const rnd = lcg(20261201);
  let malformed = 0;
  for (let i = 0; i < 600; i++) {
    const doc = mutate(BASES[i % BASES.length]!, rnd);
    const errors = await parseInProcess(doc);
    assert.deepEqual(errors.filter((e) => e.reason === 'internal-error'), [], `document ${i}: ${JSON.stringify(doc.slice(0, 200))}`);
    for (const e of errors) if (e.reason === 'malformed-json') {
      malformed++;
      assert.match(e.location, /^fuzz\.json:(\d+(:\d+)?|byte \d+|.*\[\d+\])/, e.location);
    }
  }
  assert.ok(malformed > 100, `the mutations reach the malformed-document path (${malformed})`);
});

storeTest('fuzz: a sample of mutated documents through the real CLI, all in one run: no crash, every file summarised', async ({ db }) => {
  const rnd = lcg(7);
  const files: string[] = [];
  for (let i = 0; i < 24; i++) files.push(file(mutate(BASES[i % BASES.length]!, rnd)));
  const { out } = ingest(db, files, HR_CTX);
  assert.deepEqual(out.sources.map((s) => s.source), files);
});

/** The values and the error readRecords gives for a JSON document read in these chunks. */
async function documentOutcome(text: string, cuts: number[]) {
  const values: unknown[] = [];
  const errors: { line: number; at?: string; message: string }[] = [];
  for await (const b of readRecords(chunked(text, cuts), 7)) {
    if (b.kind === 'values') {
      assert.equal(b.firstIndex, values.length, 'values come in order, none skipped');
      values.push(...b.values);
    } else if (b.kind === 'error') errors.push({ line: b.line, at: b.at, message: b.error.message });
  }
  return { values, errors };
}

test('every complete element before a syntax error is kept, however the document is chunked (two exports one after the other, a stray byte)', async () => {
  const exportOf = (ids: string[]) => JSON.stringify({ data: { detections: ids.map((id) => ({ id, endpoint: `${id}.example.com:443`, timestamp: '2026-11-02T10:00:00Z' })) } }, null, 1);
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 40 }),
      fc.constantFrom('envelope', 'array'),
      fc.constantFrom('again', 'x', ',', ']', '\u0000'),
      fc.array(fc.nat(), { maxLength: 6 }),
      async (count, kind, tail, cutSeeds) => {
        const ids = Array.from({ length: count }, (_, i) => `d${i}`);
        // written over several lines, as exports are (a one-line document is read as an NDJSON line)
        const doc = kind === 'envelope' ? exportOf(ids) : JSON.stringify(ids.map((id) => ({ id })), null, 1);
        const text = `${doc}\n${tail === 'again' ? doc : tail}`;
        const cuts = cutSeeds.map((s) => s % (Buffer.byteLength(text) + 1));
        const { values, errors } = await documentOutcome(text, cuts);
        assert.deepEqual(values.map((v) => (v as { id: string }).id), ids, 'all the first document\'s elements');
        assert.equal(errors.length, 1, JSON.stringify(errors));
        assert.equal(errors[0]!.line, count);
        assert.match(errors[0]!.message, new RegExp(`malformed JSON document.*; the ${count} element\\(s\\) before it were read`));
        const lines = doc.split('\n').length;
        assert.equal(errors[0]!.at, `${lines + 1}:1`, 'the error is placed where the second part starts');
      },
    ),
    { numRuns: 150, seed: 20261205 },
  );
});

storeTest('two StepSecurity exports written one after the other: the first one\'s detections are stored, the error says where the second starts', async ({ db }) => {
  const one = readFileSync('test/fixtures/stepsecurity/detections.json', 'utf8');
  const f = file(one.trimEnd() + '\n' + one);
  const s = ingest(db, [f]).out.sources[0]!;
  const expected = (JSON.parse(one) as { data: { detections: unknown[] } }).data.detections.length;
  assert.equal(s.accepted, expected);
  assert.equal(s.rejected, 1);
  assert.match(s.errors[0]!.message, new RegExp(`the ${expected} element\\(s\\) before it were read`));
});
