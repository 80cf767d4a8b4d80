import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { nativeEvent, runCli, tempDir } from '../helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * Bytes that are not UTF-8 are read as U+FFFD (the record is kept, as every JSON reader would) and
 * counted, so a name stored with the replacement character in it is no silent change. A U+FFFD the
 * producer really sent is valid UTF-8 and counts nothing.
 */
test('records with bytes that are not UTF-8 are kept and counted under invalid-utf8, repeats included', () => {
  const line = (t: number, process: string) => Buffer.from(JSON.stringify(nativeEvent({ run: 1, t, domain: 'registry.npmjs.org', process })) + '\n');
  const bad = (t: number) => {
    const b = line(t, 'curlXX');
    const at = b.indexOf('curlXX') + 4;
    b[at] = 0xff; // never valid in UTF-8
    b[at + 1] = 0xc3; // a lead byte with no continuation
    return b;
  };
  const file = join(tmp.dir, 'bytes.ndjson');
  writeFileSync(file, Buffer.concat([bad(1), bad(2), bad(3), line(4, 'curl\uFFFD'), line(5, 'node')]));
  const r = runCli(['ingest', file, '--db', join(tmp.dir, 's.db'), '--json']);
  assert.equal(r.status, 0, r.stderr);
  const s = JSON.parse(r.stdout).sources[0];
  assert.equal(s.accepted, 5);
  // the parser's repeat fast path skips a line that equals an earlier one but for its time: not these
  assert.equal(s.duplicates, 2, 'the later bad lines repeat the first call (and are counted all the same)');
  assert.deepEqual(s.notes, { 'invalid-utf8': 3 });
  const human = runCli(['ingest', file, '--db', join(tmp.dir, 's2.db')]);
  assert.match(human.stdout, /^ {2}notes {13}invalid-utf8=3$/m);
});
