import { after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { nativeEvent, ndjson, runCli, tempDir, type EventSpec } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { EXIT } from '../../src/cli/exit-codes.js';

// What follows a complete gzip member (another member, zero padding, garbage, a broken member) never
// costs a record of the members before it (src/ingest/input.ts, gunzipMembers).

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest } = eachStore();
// Reading a source is the same code whatever store it goes to: these run on SQLite alone (the list
// in test/helpers/each-store.ts says why), the store only counting what was accepted.
const readingTest: typeof storeTest = (name, body, opts) => storeTest(name, body, { ...opts, only: ['sqlite'] });
let n = 0;

/** `count` distinct calls (each its own endpoint), so every accepted record is a stored observation */
function records(count: number, from = 0): string {
  const evs: EventSpec[] = [];
  for (let i = from; i < from + count; i++) evs.push({ run: i % 4, domain: `h${i}.example.com`, process: 'node' });
  return ndjson(evs.map(nativeEvent));
}

function fileOf(content: Buffer): string {
  const f = join(tmp.dir, `g${n++}.ndjson.gz`);
  writeFileSync(f, content);
  return f;
}

function ingest(db: string, path: string, code: number, input?: Buffer) {
  const r = runCli(['ingest', path, '--db', db, '--json'], { input });
  assert.equal(r.status, code, r.stderr + r.stdout);
  return JSON.parse(r.stdout).sources[0] as { accepted: number; rejected: number; errors: { location: string; reason: string; message: string }[] };
}

readingTest('trailing garbage after a complete gzip member: every record kept, the garbage reported at its byte', async (at) => {
  const gz = gzipSync(records(200));
  const f = fileOf(Buffer.concat([gz, Buffer.from('garbage\n')]));
  const s = ingest(at.db, f, EXIT.REJECTED);
  assert.equal(s.accepted, 200, 'the QA case kept 180 of 200');
  assert.equal(s.rejected, 1);
  assert.equal(s.errors[0]!.reason, 'trailing-garbage');
  assert.equal(s.errors[0]!.location, `${f}:byte ${gz.length}`);
  assert.match(s.errors[0]!.message, new RegExp(`at byte ${gz.length} is not gzip`));
  assert.equal(Number(await at.value('SELECT count(*) FROM observations')), 200);
  // the same through a pipe, and with the last record not ended by a newline: it is whole, and kept
  const open = gzipSync(records(30, 500).trimEnd());
  const piped = ingest(at.db, '-', EXIT.REJECTED, Buffer.concat([open, Buffer.from([0x0a, 0x47, 0x41])]));
  assert.equal(piped.accepted, 30);
  assert.equal(piped.errors[0]!.location, `<stdin>:byte ${open.length}`);
});

readingTest('members after members and zero padding are read; a broken second member keeps the first', async (at) => {
  const one = gzipSync(records(120));
  const two = gzipSync(records(80, 120));
  const joined = ingest(at.db, fileOf(Buffer.concat([one, two, Buffer.alloc(64)])), EXIT.OK);
  assert.equal(joined.accepted, 200);
  assert.equal(joined.rejected, 0);
  // a second member whose header is not deflate: corrupt, but the first member's records stay
  const badHeader = Buffer.from(two);
  badHeader[2] = 9;
  const s = ingest(at.db, fileOf(Buffer.concat([gzipSync(records(100, 1000)), badHeader])), EXIT.REJECTED);
  assert.equal(s.accepted, 100);
  assert.equal(s.errors[0]!.reason, 'corrupt-input');
  assert.match(s.errors[0]!.message, /unknown compression method 9/);
  // a member whose CRC does not match its data is corrupt (its records were read, and are kept)
  const badCrc = Buffer.from(gzipSync(records(50, 2000)));
  badCrc[badCrc.length - 8] ^= 0xff;
  const c = ingest(at.db, fileOf(badCrc), EXIT.REJECTED);
  assert.equal(c.errors[0]!.reason, 'corrupt-input');
  assert.match(c.errors[0]!.message, /CRC-32/);
  // a member cut off in its trailer is cut off, not complete
  const cut = gzipSync(records(20, 3000));
  const t = ingest(at.db, fileOf(cut.subarray(0, cut.length - 3)), EXIT.REJECTED);
  assert.equal(t.errors[0]!.reason, 'truncated-input');
  assert.equal(Number(await at.value('SELECT count(*) FROM observations')), 200 + 100 + 50 + 20);
});
