import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSpaceStatistics } from 'node:v8';
import { HeapBound } from '../../src/ingest/heap-growth.js';

/** An array this big has its elements in the old generation (V8's large-object space), at once. */
const BIG = 2_000_000;

function bigArray(v: number): number[] {
  // grown by push: a fast array (new Array(n) of this size would be a sparse dictionary)
  const a: number[] = [];
  for (let i = 0; i < BIG; i++) a.push(v);
  return a;
}

function largeObjectBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'large_object_space')!.space_used_size;
}

test('HeapBound collects once the old generation passes its bound, and the bound follows what survived', () => {
  const bound = new HeapBound(0, 1 << 20);
  assert.equal(bound.check(), false, 'nothing has grown yet');

  let kept: number[] | null = bigArray(1);
  assert.equal(bound.check(), true, '16 MB more than the bound allows');
  // What survived (the array, still referenced) sets the next bound: no collection until it grows again.
  assert.equal(bound.check(), false);

  const before = largeObjectBytes();
  kept = null;
  const other = bigArray(2);
  assert.equal(bound.check(), true);
  // The collection was real: the dropped array is gone, the referenced one is not.
  assert.ok(largeObjectBytes() <= before, `large objects ${largeObjectBytes()} after, ${before} before the second array`);
  assert.equal(other[BIG - 1], 2);
  assert.equal(kept, null);
});
