import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { openInput } from '../../src/ingest/input.js';
import { tempDir } from '../helpers.js';

// The progress of a gzip source is how much of the file was decoded, not how much was read ahead:
// one 1 MiB read of gzip data can hold most of a file's records, and the ingest bar sat at 83%
// from its first batch on (src/ingest/input.ts, bytesRead).

const tmp = tempDir();
after(() => tmp.cleanup());

function fileOf(name: string, content: Buffer): string {
  const f = join(tmp.dir, name);
  writeFileSync(f, content);
  return f;
}

/** Lines of pseudo-random hex, all alike in length and entropy: a position in the compressed file maps to one in the text. */
function uniformText(lines: number): Buffer {
  let x = 12345;
  const out: string[] = [];
  for (let i = 0; i < lines; i++) {
    let hex = '';
    for (let k = 0; k < 8; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      hex += x.toString(16).padStart(8, '0');
    }
    out.push(`{"n":${i},"v":"${hex}"}\n`);
  }
  return Buffer.from(out.join(''));
}

test('a gzip file: bytesRead follows the text decoded, and ends at the file size', async () => {
  const text = uniformText(50_000);
  const gz = gzipSync(text);
  assert.ok(gz.length > 1 << 20, `the file spans more than one 1 MiB read: ${gz.length} bytes`);
  const file = fileOf('uniform.ndjson.gz', gz);
  const input = await openInput(file);
  assert.equal(input.size, gz.length);
  let decoded = 0;
  let worst = 0;
  let last = 0;
  for await (const chunk of input.stream) {
    decoded += chunk.length;
    const read = input.bytesRead();
    assert.ok(read >= last, `the position never goes back: ${read} after ${last}`);
    last = read;
    worst = Math.max(worst, Math.abs(read / gz.length - decoded / text.length));
  }
  assert.equal(decoded, text.length);
  // one 16 KiB slice of this ~2 MiB file is under 1%; the read-ahead of one 1 MiB read was about 50%
  assert.ok(worst < 0.02, `the position strays ${(worst * 100).toFixed(1)}% from the text decoded`);
  assert.equal(input.bytesRead(), gz.length, 'every byte was read and decoded');
});

test('several gzip members with zero padding after them: the position ends at the file size', async () => {
  const a = gzipSync(uniformText(5_000));
  const b = gzipSync(uniformText(7_000));
  const file = fileOf('members.ndjson.gz', Buffer.concat([a, b, Buffer.alloc(512)]));
  const input = await openInput(file);
  let decoded = 0;
  let atFirstEnd = -1;
  const firstText = uniformText(5_000).length;
  for await (const chunk of input.stream) {
    decoded += chunk.length;
    if (atFirstEnd < 0 && decoded >= firstText) atFirstEnd = input.bytesRead();
  }
  assert.ok(atFirstEnd <= a.length + 8, `at the first member's end the position is within it: ${atFirstEnd} of ${a.length}`);
  assert.equal(input.bytesRead(), a.length + b.length + 512);
});
