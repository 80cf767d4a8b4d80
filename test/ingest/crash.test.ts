import assert from 'node:assert/strict';
import { join } from 'node:path';
import { runCli, runCliAsync } from '../helpers.js';
import { writeTenant } from '../../src/generate/index.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';
import { waitFor } from '../helpers/wait.js';

const { storeTest, fresh } = eachStore();

async function snapshot(at: StoreUnderTest) {
  const one = async (sql: string) => Number(await at.value(sql));
  return {
    // SQLite's own check of its file; PostgreSQL's pages are the server's (its WAL replays on crash)
    integrity: at.backend === 'sqlite' ? await at.value<string>('PRAGMA integrity_check') : 'not a file',
    observations: await one('SELECT count(*) FROM observations'),
    detections: await one('SELECT count(*) FROM detections'),
    runs: await one('SELECT count(*) FROM runs'),
    rollup: await one('SELECT coalesce(sum(n),0) FROM detection_rollup'),
    // every detection belongs to a stored run and observation: nothing half-written
    orphans: await one(
      `SELECT count(*) FROM detections d WHERE d.ext = '' AND NOT EXISTS (
         SELECT 1 FROM observations o WHERE o.run_ref = d.run_ref AND o.endpoint_id = d.endpoint_id AND o.process_id = d.process_id)`,
    ),
    dupKeys: await one('SELECT count(*) FROM (SELECT run_ref, type_id, endpoint_id, process_id FROM detections GROUP BY 1,2,3,4 HAVING count(*) > 1) x'),
  };
}

storeTest('kill -9 mid-ingest leaves committed batches intact; re-running completes without duplicates', async (crashed) => {
  const input = join(crashed.dir, 'big.ndjson');
  // About 20 parse batches of 5,000: killed after its first commit, the ingest is still well inside the source.
  await writeTenant({ runs: 12, seed: 3, events: 100_000 }, input);
  // The killed writer's lease outlives it; a short one lets the re-run take over in seconds rather than
  // the default 30 (the takeover itself is test/ingest/concurrent-writers' subject).
  const lease = { EGRESS_TRIAGE_INGEST_LEASE_MS: '2000' };
  const child = runCliAsync(['ingest', input, '--db', crashed.db, '--format', 'native'], lease);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // wait until some batches are committed, then kill without warning
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`ingest finished before it could be killed: ${stderr}`);
      let rows = 0;
      try {
        rows = Number(await crashed.value('SELECT count(*) FROM observations'));
      } catch {
        /* schema not created yet */
      }
      return rows > 0;
    },
    60_000,
    20,
    'the first committed batch',
  );
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  const mid = await snapshot(crashed);
  if (crashed.backend === 'sqlite') assert.equal(mid.integrity, 'ok');
  assert.ok(mid.observations > 0);
  assert.equal(mid.orphans, 0);
  assert.equal(mid.rollup, mid.detections);

  const resumed = runCli(['ingest', input, '--db', crashed.db, '--format', 'native', '--json'], { env: lease });
  assert.equal(resumed.status, 0, resumed.stderr);
  const final = await snapshot(crashed);
  // the kill came mid-source, as the test means it to (the smaller input must not let it finish first)
  assert.ok(mid.observations < final.observations, `killed after ${mid.observations} of ${final.observations} observations`);

  const clean = await fresh(crashed.backend, 'clean');
  const ref = runCli(['ingest', input, '--db', clean.db, '--format', 'native', '--json']);
  assert.equal(ref.status, 0, ref.stderr);
  const expected = await snapshot(clean);
  assert.deepEqual(final, expected);
  assert.equal(final.dupKeys, 0);
});
