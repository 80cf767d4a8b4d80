import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LineTemplates } from '../../src/ingest/line-templates.js';

const line = (i: number, time = '2026-10-21T00:00:00Z') => Buffer.from(`{"job":"j${i}","timestamp":"${time}","domain":"h${i % 3}.example","pad":"${'y'.repeat(i * 7)}"}`);

test('line templates: the two newest generations are found, by bytes outside the time, in arenas reused generation after generation', () => {
  const t = new LineTemplates<number>(4);
  const remember = (i: number) => {
    const b = line(i);
    assert.equal(t.match(b, 0, b.length), undefined);
    t.rememberLast(i);
  };
  for (let i = 0; i < 10; i++) remember(i);
  const found = (i: number) => {
    const b = line(i, '2026-10-22T01:02:03.456Z');
    return t.match(b, 0, b.length);
  };
  // generations of 4: lines 8-9 young, 4-7 old, 0-3 dropped (their arena now holds 8-9)
  assert.deepEqual(Array.from({ length: 10 }, (_, i) => found(i) ?? null), [null, null, null, null, 4, 5, 6, 7, 8, 9]);
  // two more fill the young generation: 4-7 go, 8-11 stay
  remember(10);
  remember(11);
  assert.deepEqual(Array.from({ length: 12 }, (_, i) => found(i) ?? null), [null, null, null, null, null, null, null, null, 8, 9, 10, 11]);
  // a byte changed outside the time is another line
  const b = line(9);
  b[b.length - 3] = 0x7a;
  assert.equal(t.match(b, 0, b.length), undefined);
  // within a larger buffer, at an offset
  const inside = Buffer.concat([Buffer.from('xx\n'), line(10), Buffer.from('\n')]);
  assert.equal(t.match(inside, 3, inside.length - 1), 10);
  t.clear();
  assert.equal(found(10), undefined);
});
