import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult, nativeEvent, ndjson, type EventSpec } from '../helpers.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';

/**
 * A job's owner and repo are GitHub names, which have no case: `Acme/Web` and `acme/web` are one job
 * with one baseline and one count of learning runs, whichever producer spelled it, in one ingest or
 * across ingests. A second spelling used to be a second job, whose own learning runs took new
 * endpoints into its baseline without a detection. Real CLI processes on both stores.
 */

const { storeTest } = eachStore();
let n = 0;

async function ingest(at: StoreUnderTest, events: EventSpec[]): Promise<void> {
  const file = join(at.dir, `case-${n++}.ndjson`);
  writeFileSync(file, ndjson(events.map(nativeEvent)));
  const r = await cliResult(['ingest', file, '--db', at.db, '--format', 'native', '--learning-runs', '3', '--json']);
  assert.equal(r.status, 0, r.stderr);
}

storeTest('one job whatever the case of its owner and repo: no second learning period for a new spelling', async (at) => {
  const runs = (from: number, to: number, owner: string, repo: string): EventSpec[] =>
    Array.from({ length: to - from }, (_, i) => ({ run: from + i, owner, repo, domain: 'github.com', process: 'git' }));
  // three learning runs as Acme/Web
  await ingest(at, runs(1, 4, 'Acme', 'Web'));
  // then another producer spells it acme/web: run 5 calls somewhere new, and must be detected
  await ingest(at, [...runs(4, 7, 'acme', 'web'), { run: 5, owner: 'acme', repo: 'web', domain: 'exfil.example.net', t: 1 }]);
  // and a third spelling within one ingest, beside the first one
  await ingest(at, [...runs(7, 9, 'Acme', 'Web'), { run: 8, owner: 'ACME', repo: 'WEB', domain: 'second.example.net', t: 1 }]);

  assert.equal(Number(await at.value('SELECT count(*) FROM jobs')), 1, 'one job');
  assert.equal(Number(await at.value('SELECT completed_runs FROM jobs')), 7, 'runs 1-7 completed, run 8 open');
  assert.equal(Number(await at.value(`SELECT count(*) FROM runs WHERE learning = ${at.backend === 'sqlite' ? 1 : 'true'}`)), 3, 'three learning runs, not six');
  const l = await cliResult(['detections', 'list', '--db', at.db, '--json', '--limit', '100']);
  assert.equal(l.status, 0, l.stderr);
  const ds = (JSON.parse(l.stdout) as { detections: { endpoint: string; run_id: string; owner: string; repo: string }[] }).detections;
  assert.deepEqual(
    ds.map((d) => `${d.run_id} ${d.endpoint} ${d.owner}/${d.repo}`).sort(),
    ['1005 exfil.example.net:443 Acme/Web', '1008 second.example.net:443 Acme/Web'],
    'each new endpoint detected, under the job as first spelled',
  );
});
