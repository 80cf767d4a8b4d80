import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { nestedDeeperThan } from '../../src/policy/canonical.js';

/** nestedDeeperThan against a recursive definition of depth, and at depths no recursion survives. */

function depth(v: unknown): number {
  if (v === null || typeof v !== 'object') return 0;
  const kids = Array.isArray(v) ? v : Object.values(v as Record<string, unknown>);
  return 1 + Math.max(0, ...kids.map(depth));
}

test('nestedDeeperThan agrees with the depth of any JSON value, arrays and objects alike', () => {
  fc.assert(
    fc.property(fc.jsonValue({ maxDepth: 8 }), fc.integer({ min: 0, max: 10 }), (v, max) => {
      assert.equal(nestedDeeperThan(v, max), depth(v) > max);
    }),
    { numRuns: 2_000 },
  );
});

test('nestedDeeperThan answers for 200,000 levels of objects or arrays without running out of stack', () => {
  for (const [open, close] of [['{"a":', '}'], ['[', ']']]) {
    const v: unknown = JSON.parse(open!.repeat(200_000) + '1' + close!.repeat(200_000));
    assert.equal(nestedDeeperThan(v, 256), true);
    assert.equal(nestedDeeperThan(v, 200_000), false);
  }
});
