import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StampedCache } from '../../src/analysis/stamped-cache.js';

/** The rules layer's answers are reused only for the tenant and stamp they were computed at. */
test('stamped cache: reused for the same tenant and stamp only; a newer stamp drops the old answers', async () => {
  const cache = new StampedCache();
  let computed = 0;
  const get = (tenant: number, stamp: number | null | undefined, key = 'k') => cache.get(tenant, stamp, key, async () => `${tenant}/${stamp}/${key}/${++computed}`);
  assert.equal(await get(1, 5), '1/5/k/1');
  assert.equal(await get(1, 5), '1/5/k/1', 'same tenant and stamp: reused');
  assert.equal(await get(2, 5), '2/5/k/2', 'another tenant never sees it');
  assert.equal(await get(1, 5, 'other'), '1/5/other/3');
  assert.equal(await get(1, 6), '1/6/k/4', 'a new stamp computes again');
  assert.equal(await get(1, 5), '1/5/k/5', 'a call holding the older stamp computes its own answer');
  assert.equal(await get(1, 6), '1/6/k/4', '... and keeps nothing over the newer one');
  assert.equal(await get(1, null), '1/null/k/6', 'no stamp: computed every time');
  assert.equal(await get(1, null), '1/null/k/7');
  assert.equal(await get(1, undefined), '1/undefined/k/8');
});

test('stamped cache: a failed computation is not kept', async () => {
  const cache = new StampedCache();
  await assert.rejects(cache.get(1, 1, 'k', async () => Promise.reject(new Error('connection lost'))), /connection lost/);
  assert.equal(await cache.get(1, 1, 'k', async () => 'ok'), 'ok');
});
