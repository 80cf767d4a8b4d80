import { after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { nativeEvent, ndjson, runCli, tempDir, type EventSpec } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { EXIT } from '../../src/cli/exit-codes.js';

// A source is judged binary on real evidence (src/ingest/input.ts, looksBinary); a stray NUL is one bad line.

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest } = eachStore();
// Reading a source is the same code whatever store it goes to: these run on SQLite alone (the list
// in test/helpers/each-store.ts says why), the store only counting what was accepted.
const readingTest: typeof storeTest = (name, body, opts) => storeTest(name, body, { ...opts, only: ['sqlite'] });
let n = 0;

function fileOf(content: Buffer, ext: string): string {
  const f = join(tmp.dir, `b${n++}${ext}`);
  writeFileSync(f, content);
  return f;
}

function ingest(db: string, path: string, code: number) {
  const r = runCli(['ingest', path, '--db', db, '--json']);
  assert.equal(r.status, code, r.stderr + r.stdout);
  return JSON.parse(r.stdout).sources[0] as { accepted: number; rejected: number; errors: { location: string; reason: string; message: string }[] };
}

readingTest('one NUL byte in a line of NDJSON rejects that line at its own line, not the file as binary', async (at) => {
  const evs: EventSpec[] = [];
  for (let i = 0; i < 4000; i++) evs.push({ run: i % 4, domain: `h${i}.example.com`, process: 'node' });
  const lines = ndjson(evs.map(nativeEvent)).split('\n');
  lines[3] = lines[3]!.slice(0, 20) + '\0' + lines[3]!.slice(20);
  const text = Buffer.from(lines.join('\n'));
  for (const [content, ext] of [[text, '.ndjson'], [gzipSync(text), '.ndjson.gz']] as const) {
    const f = fileOf(content, ext);
    const s = ingest(at.db, f, EXIT.REJECTED);
    assert.equal(s.accepted, 3999, 'the QA case rejected all 4000 as binary');
    assert.equal(s.rejected, 1);
    assert.equal(s.errors[0]!.location, `${f}:4`);
    assert.equal(s.errors[0]!.reason, 'malformed-json');
  }
  assert.equal(Number(await at.value('SELECT count(*) FROM observations')), 3999);
});

readingTest('real binaries are still rejected as binary: random bytes, an executable, a zip, a SQLite file', async (at) => {
  const sqlite = join(at.dir, 'some.sqlite');
  const d = new Database(sqlite);
  d.exec("CREATE TABLE t (x TEXT); INSERT INTO t VALUES ('{\"owner\":\"acme\"}')");
  d.close();
  // a zip whose member is stored uncompressed: mostly text, known by its magic
  const zip = Buffer.concat([Buffer.from('PK\x03\x04\x14\x00\x00\x00', 'latin1'), Buffer.from(ndjson([nativeEvent({ run: 1 })]))]);
  for (const f of [fileOf(randomBytes(20_000), '.bin'), process.execPath, fileOf(zip, '.zip'), sqlite]) {
    const s = ingest(at.db, f, EXIT.REJECTED);
    assert.equal(s.rejected, 1, f);
    assert.equal(s.errors[0]!.reason, 'binary-input', f);
    assert.equal(s.errors[0]!.location, `${f}:1`);
  }
  assert.equal(Number(await at.value('SELECT count(*) FROM observations')), 0);
});

readingTest('UTF-16 text (what Windows PowerShell 5.1 redirects to a file) is refused with how to convert it, not called binary', async (at) => {
  const text = ndjson([nativeEvent({ run: 1, domain: 'a.example.com', process: 'node' })]);
  for (const bom of [[0xff, 0xfe], [0xfe, 0xff]]) {
    const body = bom[0] === 0xff ? Buffer.from(text, 'utf16le') : Buffer.from(text, 'utf16le').swap16();
    const s = ingest(at.db, fileOf(Buffer.concat([Buffer.from(bom), body]), '.ndjson'), EXIT.REJECTED);
    assert.deepEqual([s.accepted, s.rejected], [0, 1]);
    assert.match(s.errors[0]!.message, /^input is UTF-16 text, not UTF-8: convert it first \(iconv -f UTF-16 -t UTF-8/);
  }
});
