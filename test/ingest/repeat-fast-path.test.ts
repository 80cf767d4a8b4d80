import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { IngestPipeline, type SourceSummary } from '../../src/ingest/pipeline.js';
import { RecordParser } from '../../src/ingest/record-parser.js';
import { readRecords } from '../../src/ingest/records.js';
import { openInput } from '../../src/ingest/input.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { writeTenant } from '../../src/generate/index.js';
import fc from 'fast-check';
import { tempDir } from '../helpers.js';
import { storeState } from './store-state.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * A generated tenant with, right after one of its calls, lines that repeat that call's key:
 * an exact copy, copies with a new valid or invalid timestamp, and copies that differ elsewhere.
 * Returns the file and the 1-based line numbers of the copies that must be rejected.
 */
async function tenantWithRepeats(): Promise<{ file: string; bad: number[]; repeatOf: string }> {
  const gen = join(tmp.dir, 'gen.ndjson');
  await writeTenant({ runs: 8, seed: 11, events: 30_000 }, gen);
  const lines = readFileSync(gen, 'utf8').split('\n').filter((l) => l !== '');
  const k = lines.findIndex((l, i) => i > 50 && l.includes('"timestamp":"') && l.includes('"port":443') && l.includes('"status":"allowed"'));
  assert.ok(k > 0, 'the generated tenant has an allowed call on port 443');
  const good = lines[k]!;
  const ts = /"timestamp":"([^"]*)"/.exec(good)![1]!;
  const withTs = (v: string) => good.replace(`"timestamp":"${ts}"`, `"timestamp":"${v}"`);
  const later = new Date(Date.parse(ts) + 1000).toISOString();
  const copies: [string, boolean][] = [
    [good, false], // byte-identical
    [withTs(later), false], // only the time differs
    [withTs('2026-13-45T00:00:00Z'), true], // a bad time on a known line
    [withTs('yesterday'), true],
    [withTs(''), true],
    [withTs(later.replace('-', '\\u002d')), false], // an escape: the full path reads it
    [withTs(later).replace('"port":443', '"port":-1'), true], // same key fields but a bad port
    [withTs(later).replace('"status":"allowed"', '"status":"maybe"'), true],
    ['{"timestamp":"bad",' + withTs(later).slice(1), false], // duplicate key: JSON keeps the last
    // the first value holds an escaped quote: not a template, so the broken line after it is read in full
    ['{"timestamp":"a\\"b",' + withTs(later).slice(1), false],
    [`{"timestamp":"${later}"b",` + withTs(later).slice(1), true],
    [withTs(later.replace('Z', '+00:00')), false],
    [withTs('0001-01-01T00:00:00+01:00'), true], // year 1, but before the first instant a store keeps
    [withTs('0001-01-01T01:00:00+01:00'), false], // the first instant itself
    // a job name beyond Latin-1, then its repeat
    [withTs(later).replace('"job":"', '"job":"名'), false],
    [withTs(new Date(Date.parse(ts) + 2000).toISOString()).replace('"job":"', '"job":"名'), false],
  ];
  const bad: number[] = [];
  const out = [...lines.slice(0, k + 1)];
  for (const [line, isBad] of copies) {
    out.push(line);
    if (isBad) bad.push(out.length);
  }
  out.push(...lines.slice(k + 1));
  const file = join(tmp.dir, 'repeats.ndjson');
  writeFileSync(file, out.join('\n') + '\n');
  return { file, bad, repeatOf: good };
}

async function parseAll(file: string, fast: boolean) {
  const input = await openInput(file);
  const p = new RecordParser('auto', input.name, 'default', {}, fast);
  const batches = [];
  for await (const rb of readRecords(input.stream, 1000)) batches.push(p.parseBatch(rb));
  return { batches, fastRepeats: p.fastRepeats };
}

test('the repeat fast path parses a source exactly as the full path does', async () => {
  const { file, bad } = await tenantWithRepeats();
  const fast = await parseAll(file, true);
  const full = await parseAll(file, false);
  assert.deepEqual(fast.batches, full.batches);
  assert.equal(full.fastRepeats, 0);
  const repeats = full.batches.reduce((n, b) => n + b.repeats, 0);
  // most repeats are recognised without JSON.parse, or the fast path is not doing its job
  assert.ok(fast.fastRepeats > repeats * 0.9, `${fast.fastRepeats} of ${repeats} repeats took the fast path`);
  const locations = full.batches.flatMap((b) => b.errors.map((e) => e.location));
  assert.deepEqual(locations, bad.map((n) => `${file}:${n}`));
});

function ingestInto(db: string, file: string, fast: boolean): Promise<SourceSummary> {
  const store = SqliteStore.open(db);
  const p = new IngestPipeline(store, {
    tenant: 'default', format: 'auto', strict: false, defaults: {},
    engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 3 }, repeatFastPath: fast,
  });
  return p.ingest(file).finally(() => store.close());
}

test('a store ingested with the repeat fast path equals one ingested without it', async () => {
  const { file, bad } = await tenantWithRepeats();
  const a = await ingestInto(join(tmp.dir, 'fast.db'), file, true);
  const b = await ingestInto(join(tmp.dir, 'full.db'), file, false);
  const comparable = (s: SourceSummary) => ({ ...s, elapsedMs: 0 });
  assert.deepEqual(comparable(a), comparable(b));
  assert.ok(a.detections > 0 && a.duplicates > a.accepted / 2, 'the tenant has detections and mostly repeats');
  assert.equal(a.rejected, bad.length);
  assert.deepEqual(a.errors.map((e) => e.location), bad.map((n) => `${file}:${n}`));
  assert.deepEqual(storeState(join(tmp.dir, 'fast.db')), storeState(join(tmp.dir, 'full.db')));
});

/** Parses `bytes` (an NDJSON source) with the fast path on or off, in chunks of `chunk` bytes. */
async function parseBytes(bytes: Buffer, fast: boolean, chunk = 7) {
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let at = 0; at < bytes.length; at += chunk) yield bytes.subarray(at, at + chunk);
  }
  const p = new RecordParser('native', 'mem', 'default', {}, fast);
  const batches = [];
  for await (const rb of readRecords(chunks(), 50)) batches.push(p.parseBatch(rb));
  return { batches, fastRepeats: p.fastRepeats };
}

test('property: lines read as bytes are recognised as repeats exactly when the full path drops them', async () => {
  const line = JSON.stringify({
    owner: 'o', repo: 'r', workflow: 'w.yml', job: 'build', run_id: '7', run_attempt: 1, job_id: '61',
    timestamp: '2026-10-21T00:01:56.478Z', domain: 'api.github.com', ip: '140.82.112.5', port: 443, protocol: 'tcp',
    process: { name: 'curl', path: '/usr/bin/curl', sha256: 'a'.repeat(64), pid: 3 }, status: 'allowed',
  });
  const base = Buffer.from(line);
  const cut = base.indexOf('"timestamp":"') + '"timestamp":"'.length;
  const cutEnd = base.indexOf('"', cut);
  // a line: the known one with another time value (any bytes), and maybe one byte changed elsewhere
  // (a non-ASCII byte, a quote, a backslash, a CR, a byte of a multi-byte character...)
  const mutated = fc.record({
    time: fc.oneof(
      fc.constantFrom('2026-10-21T00:01:57Z', '2026-10-21T00:01:58.1+02:00', '2026-13-01T00:00:00Z', '0001-01-01T00:00:00Z', '', 'x'),
      fc.uint8Array({ maxLength: 30 }).map((a) => Buffer.from(a).toString('latin1')),
    ),
    timeBytes: fc.option(fc.uint8Array({ minLength: 1, maxLength: 30 }), { nil: undefined }),
    at: fc.option(fc.nat(), { nil: undefined }),
    byte: fc.constantFrom(0x22, 0x5c, 0x0d, 0x20, 0x7b, 0x80, 0xc3, 0xe5, 0xff, 0x41, 0x30),
    crlf: fc.boolean(),
  }).map(({ time, timeBytes, at, byte, crlf }) => {
    const t = timeBytes ? Buffer.from(timeBytes) : Buffer.from(time, 'latin1');
    let b = Buffer.concat([base.subarray(0, cut), t.filter((x) => x !== 0x0a), base.subarray(cutEnd)]);
    if (at !== undefined) {
      b = Buffer.from(b);
      b[at % b.length] = byte;
    }
    return crlf ? Buffer.concat([b, Buffer.from('\r')]) : b;
  });
  await fc.assert(
    fc.asyncProperty(fc.array(mutated, { minLength: 1, maxLength: 12 }), async (lines) => {
      const bytes = Buffer.concat([base, ...lines].flatMap((l) => [l, Buffer.from('\n')]));
      const fast = await parseBytes(bytes, true);
      const full = await parseBytes(bytes, false);
      assert.deepEqual(fast.batches, full.batches);
    }),
    { numRuns: 400, seed: 20261205 },
  );
  // and the property is not vacuous: plain repeats take the fast path
  const later = line.replace('56.478Z', '57.001Z');
  assert.equal((await parseBytes(Buffer.from(`${line}\n${later}\n`), true)).fastRepeats, 1);
  assert.equal((await parseBytes(Buffer.from(`${line}\r\n${later}\r\n`), true)).fastRepeats, 1);
});

test('a process the parser no longer holds (more than it keeps of one name, or after it forgot them all) is read as the full path reads it', async () => {
  const line = (sha: string, t: number, name = 'curl') => JSON.stringify({
    owner: 'o', repo: 'r', workflow: 'w.yml', job: 'build', run_id: '7', run_attempt: 1, job_id: '61',
    timestamp: new Date(Date.UTC(2026, 9, 21) + t * 1000).toISOString(), domain: 'api.github.com', ip: '140.82.112.5', port: 443, protocol: 'tcp',
    process: { name, path: `/usr/bin/${name}`, sha256: sha, pid: 3 }, status: 'allowed',
  });
  const sha = (i: number) => i.toString(16).padStart(64, '0');
  // 33 binaries named curl (32 are held), then each again with a new time
  const many = [...Array.from({ length: 33 }, (_, i) => line(sha(i), i)), ...Array.from({ length: 33 }, (_, i) => line(sha(i), 100 + i))];
  // 4,097 distinct processes (the parser forgets them all at 4,096), then the first ones again
  const names = Array.from({ length: 4_097 }, (_, i) => line(sha(i), i, `p${i}`));
  const forgot = [...names, ...names.slice(0, 40).map((_, i) => line(sha(i), 5_000 + i, `p${i}`))];
  for (const lines of [many, forgot]) {
    const bytes = Buffer.from(lines.join('\n') + '\n');
    const fast = await parseBytes(bytes, true, 4_093);
    const full = await parseBytes(bytes, false, 4_093);
    assert.deepEqual(fast.batches, full.batches);
  }
  // the 32 held ones are still recognised from their bytes
  assert.equal((await parseBytes(Buffer.from(many.join('\n') + '\n'), true)).fastRepeats, 32);
  // a line too long to remember is read in full each time, to the same result
  const long = (t: number) => line(sha(1), t).replace('"status"', `"pad":"${'x'.repeat(20_000)}","status"`);
  const bytes = Buffer.from([long(1), long(2), long(3)].join('\n') + '\n');
  const fast = await parseBytes(bytes, true, 4_093);
  assert.deepEqual(fast.batches, (await parseBytes(bytes, false, 4_093)).batches);
  assert.deepEqual([fast.fastRepeats, fast.batches.reduce((n, b) => n + b.repeats, 0)], [0, 2]);
});
