import assert from 'node:assert/strict';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import { call, ingestCalls, proc, tailscaled, TS0 } from '../analysis/helpers.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest, fresh } = eachStore();

/**
 * A suspected impostor never teaches the baseline, however the input is cut: a run that a later
 * ingest reloads from the store (the file was split, or an ingest was killed and run again) must not
 * count the impostor's endpoints when it completes, as one ingest of the whole input does not. The
 * reloaded run's endpoints are checked against the binaries that called them.
 */

const T = 'split';
const CURL = proc('curl');

/** Run 1: a genuine call, the impostor's calls (flagged by its parent chain), more genuine calls; run 2 completes it. */
function events(): NetworkCallEvent[] {
  return [
    call(T, 'api', 1, TS0, CURL, { domain: 'github.com', port: 443 }),
    call(T, 'api', 1, TS0 + 1, tailscaled(false), { ip: '45.61.136.14', port: 443 }),
    call(T, 'api', 1, TS0 + 2, tailscaled(false), { domain: 'registry.npmjs.org', port: 443 }),
    // the cut falls here
    call(T, 'api', 1, TS0 + 3, CURL, { domain: 'registry.npmjs.org', port: 443 }),
    call(T, 'api', 1, TS0 + 4, tailscaled(false), { ip: '45.155.205.233', port: 443 }),
    call(T, 'api', 2, TS0 + 60_000, CURL, { domain: 'github.com', port: 443 }),
  ];
}

async function baseline(at: StoreUnderTest): Promise<unknown[]> {
  return at.rows(`SELECT e.endpoint, b.runs_seen FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id ORDER BY e.endpoint`);
}

storeTest('a run reloaded by a later ingest does not count a suspected impostor’s endpoints towards the baseline', async (at) => {
  const whole = await at.open();
  let expected: unknown[];
  try {
    await ingestCalls(at, whole, T, events());
    expected = await baseline(at);
  } finally {
    await whole.close();
  }
  assert.deepEqual(expected, [{ endpoint: 'github.com:443', runs_seen: 1 }, { endpoint: 'registry.npmjs.org:443', runs_seen: 1 }], 'one ingest counts the genuine calls only');

  const other = await fresh(at.backend, 'split');
  const split = await other.open();
  try {
    const all = events();
    await ingestCalls(other, split, T, all.slice(0, 3));
    await ingestCalls(other, split, T, all.slice(3));
    assert.deepEqual(await baseline(other), expected, 'the split ingest counts the same');
  } finally {
    await split.close();
  }
});
