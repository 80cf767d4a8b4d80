import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG, type EngineConfig } from '../../src/detection/engine.js';
import { nativeEvent, ndjson, type EventSpec } from '../helpers.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';

/**
 * Late events are evaluated against the baseline as it was before they arrived, and only then
 * counted towards it: a late call cannot promote itself into the baseline and so raise nothing.
 */

const { storeTest } = eachStore();
let n = 0;

async function ingest(at: StoreUnderTest, events: EventSpec[], cfg: Partial<EngineConfig>) {
  const store = await at.open();
  const file = join(at.dir, `late${n++}.ndjson`);
  writeFileSync(file, ndjson(events.map(nativeEvent)));
  const p = new IngestPipeline(store, { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, ...cfg } });
  await p.ingest(file);
  const ds = (await store.detections.list('default', { types: ['New-Outbound-Network-Call'] }, 1000)).detections;
  await store.close();
  return { ds };
}

function normalRuns(from: number, to: number): EventSpec[] {
  const out: EventSpec[] = [];
  for (let r = from; r < to; r++) out.push({ run: r, domain: 'github.com', process: 'git' });
  return out;
}

storeTest('a late call of an already completed run to a new endpoint raises a detection, then counts', async (at) => {
  // Learning runs 0-1; run 2 completes when run 3 starts; then a call of run 2 arrives late.
  const evs = [...normalRuns(0, 4), { run: 2, domain: 'late.example.com', process: 'curl', t: 30 }];
  // promote-after 1: counting the late call first would put it in the baseline before it is judged.
  const { ds } = await ingest(at, evs, { learningRuns: 2, promoteAfterRuns: 1 });
  assert.deepEqual(ds.map((d) => `${d.run_id} ${d.endpoint}`), ['1002 late.example.com:443']);
});

storeTest('a late call that reaches the promotion count is still flagged; the next run is not', async (at) => {
  // After run 4 starts, other.example.com arrives late for runs 3 and 2 (out of order), then in the
  // open run 4 and in run 5.
  const evs: EventSpec[] = [
    ...normalRuns(0, 2),
    { run: 2, domain: 'new.example.com' },
    { run: 3, domain: 'new.example.com' },
    { run: 4, domain: 'github.com', process: 'git' },
    { run: 3, domain: 'other.example.com', process: 'wget', t: 40 },
    { run: 2, domain: 'other.example.com', process: 'wget', t: 41 },
    { run: 4, domain: 'other.example.com', process: 'wget', t: 42 },
    { run: 5, domain: 'other.example.com', process: 'wget' },
  ];
  const { ds } = await ingest(at, evs, { learningRuns: 2, promoteAfterRuns: 2 });
  const keys = ds.map((d) => `${d.run_id} ${d.endpoint} ${d.tool.name}`).sort();
  // other.example.com: run 3 (late, seen 0 -> 1), run 2 (late, seen 1 -> 2: in the baseline only
  // after being judged), then runs 4 and 5 find it in the baseline.
  assert.deepEqual(keys, [
    '1002 new.example.com:443 curl',
    '1002 other.example.com:443 wget',
    '1003 new.example.com:443 curl',
    '1003 other.example.com:443 wget',
  ]);
});
