import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult, nativeEvent, ndjson, type EventSpec } from '../helpers.js';
import { jobInvariantViolationsOf } from '../ingest/store-state.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';

/**
 * Matrix jobs: legs with the same job key, run id and attempt but their own GitHub job ids keep their
 * job id on calls, detections and dashboard links; together they are one run of the job for the
 * baseline. Native records through the real CLI and store.
 */

const { storeTest } = eachStore();
let n = 0;

interface Listed {
  run_id: string;
  job_id: string | null;
  endpoint: string;
  dashboard_url: string;
}

async function ingestAndList(at: StoreUnderTest, events: EventSpec[], learningRuns: number, promoteAfter: number): Promise<{ ds: Listed[] }> {
  const db = at.db;
  const file = join(at.dir, `m${n++}.ndjson`);
  writeFileSync(file, ndjson(events.map(nativeEvent)));
  const r = await cliResult(['ingest', file, '--db', db, '--format', 'native', '--learning-runs', String(learningRuns), '--promote-after', String(promoteAfter), '--json']);
  assert.equal(r.status, 0, r.stderr);
  const l = await cliResult(['detections', 'list', '--db', db, '--json', '--limit', '1000', '--dashboard-url', 'https://dash.example']);
  assert.equal(l.status, 0, l.stderr);
  const ds = (JSON.parse(l.stdout) as { detections: Listed[] }).detections;
  return { ds: ds.sort((a, b) => `${a.run_id} ${a.endpoint} ${a.job_id}`.localeCompare(`${b.run_id} ${b.endpoint} ${b.job_id}`)) };
}

function normal(from: number, to: number): EventSpec[] {
  const out: EventSpec[] = [];
  for (let r = from; r < to; r++) out.push({ run: r, domain: 'github.com', process: 'git' });
  return out;
}

/** Run 2 is a matrix job: legs 61 and 62 run at once, their calls interleaved. */
function matrixRun(): EventSpec[] {
  return [
    { run: 2, jobId: '61', domain: 'github.com', process: 'git' },
    { run: 2, jobId: '62', domain: 'github.com', process: 'git' },
    { run: 2, jobId: '61', domain: 'leg-a.example.com', t: 1 },
    { run: 2, jobId: '62', domain: 'leg-b.example.com', t: 1 },
    { run: 2, jobId: '61', domain: 'shared.example.com', t: 2 },
    { run: 2, jobId: '62', domain: 'shared.example.com', t: 2 },
    { run: 2, jobId: '61', domain: 'late-a.example.com', t: 3 },
  ];
}

storeTest('each leg of a matrix job keeps its own job_id and dashboard link', async (at) => {
  const { ds } = await ingestAndList(at, [...normal(0, 2), ...matrixRun()], 2, 3);
  assert.deepEqual(
    ds.map((d) => `${d.run_id} ${d.endpoint} ${d.job_id}`),
    [
      '1002 late-a.example.com:443 61',
      '1002 leg-a.example.com:443 61',
      '1002 leg-b.example.com:443 62',
      '1002 shared.example.com:443 61',
      '1002 shared.example.com:443 62',
    ],
  );
  for (const d of ds) assert.equal(d.dashboard_url, `https://dash.example/github/acme/api/actions/runs/1002?jobId=${d.job_id}&tab=network-events`);
  const legs = await at.rows("SELECT gh_job_id, CAST(completed AS integer) AS completed FROM runs WHERE run_id = '1002' ORDER BY gh_job_id");
  assert.deepEqual(legs, [{ gh_job_id: '61', completed: 0 }, { gh_job_id: '62', completed: 0 }]);
  assert.deepEqual(await jobInvariantViolationsOf(at, 2), []);
});

storeTest('the legs of one run count as one run of the job for the baseline; a late new leg keeps its job id', async (at) => {
  const evs: EventSpec[] = [
    ...normal(0, 2),
    ...matrixRun(),
    { run: 3, domain: 'shared.example.com' },
    // a third leg of run 2 arrives after run 3 started: a late event, with its own job id
    { run: 2, jobId: '63', domain: 'leg-c.example.com', t: 5 },
    { run: 4, domain: 'shared.example.com' },
    { run: 5, domain: 'shared.example.com' },
  ];
  // promote-after 2: counted per leg, shared.example.com would be promoted by run 2 alone.
  const { ds } = await ingestAndList(at, evs, 2, 2);
  assert.deepEqual(
    ds.map((d) => `${d.run_id} ${d.endpoint} ${d.job_id}`),
    [
      '1002 late-a.example.com:443 61',
      '1002 leg-a.example.com:443 61',
      '1002 leg-b.example.com:443 62',
      '1002 leg-c.example.com:443 63',
      '1002 shared.example.com:443 61',
      '1002 shared.example.com:443 62',
      '1003 shared.example.com:443 5003',
    ],
  );
  const [job] = await at.rows<{ completed_runs: number }>('SELECT completed_runs FROM jobs');
  assert.equal(job!.completed_runs, 5, 'runs 0-4 completed: run 2 once, whatever its legs');
  const seen = await at.rows(
    "SELECT e.endpoint, b.runs_seen, CAST(b.in_baseline AS integer) AS in_baseline FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id WHERE e.endpoint LIKE 'shared%' OR e.endpoint LIKE 'leg-c%'",
  );
  assert.deepEqual(
    seen.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    [
      { endpoint: 'leg-c.example.com:443', runs_seen: 1, in_baseline: 0 },
      { endpoint: 'shared.example.com:443', runs_seen: 3, in_baseline: 1 },
    ],
  );
  assert.deepEqual(await jobInvariantViolationsOf(at, 2), []);
});
