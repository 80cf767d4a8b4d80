import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG, type EngineConfig } from '../../src/detection/engine.js';
import { AllowedEndpoints, parseAllowedEndpoints } from '../../src/detection/allowed-endpoints.js';
import type { OpenStore } from '../../src/storage/open-store.js';
import { nativeEvent, ndjson, type EventSpec } from '../helpers.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();
let n = 0;

async function ingest(at: StoreUnderTest, events: EventSpec[], cfg: Partial<EngineConfig> = {}, store?: OpenStore) {
  const s = store ?? (await at.open());
  const file = join(at.dir, `in${n++}.ndjson`);
  writeFileSync(file, ndjson(events.map(nativeEvent)));
  const p = new IngestPipeline(s, { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, ...cfg } });
  const summary = await p.ingest(file);
  return { store: s, summary };
}

async function detections(store: OpenStore, type = 'New-Outbound-Network-Call') {
  return (await store.detections.list('default', { types: [type] }, 1000)).detections;
}

/** `runs` runs of the same job, each calling github.com and registry.npmjs.org. */
function normalRuns(from: number, to: number): EventSpec[] {
  const out: EventSpec[] = [];
  for (let r = from; r < to; r++) {
    out.push({ run: r, domain: 'github.com', process: 'git' });
    out.push({ run: r, domain: 'registry.npmjs.org', process: 'node', t: 1 });
  }
  return out;
}

storeTest('a learning job raises no New-Outbound detections, however new its endpoints', async (at) => {
  const evs: EventSpec[] = [];
  for (let r = 0; r < 5; r++) evs.push({ run: r, domain: `new-${r}.example.com` }, { run: r, ip: `203.0.113.${r}`, port: 8443 });
  const { store, summary } = await ingest(at, evs, { learningRuns: 5 });
  assert.equal(summary.accepted, 10);
  assert.equal((await detections(store)).length, 0);
  await store.close();
});

storeTest('after learning, a new endpoint raises exactly one detection per run/job/endpoint/process', async (at) => {
  const evs = normalRuns(0, 3);
  // run 3: the same new endpoint called 5 times by curl and twice by wget, in two jobs
  for (let i = 0; i < 5; i++) evs.push({ run: 3, domain: 'evil.example.com', process: 'curl', t: 10 + i });
  for (let i = 0; i < 2; i++) evs.push({ run: 3, domain: 'evil.example.com', process: 'wget', t: 20 + i });
  evs.push({ run: 3, domain: 'github.com', process: 'git' });
  evs.push({ run: 0, job: 'test', domain: 'github.com' }, { run: 1, job: 'test', domain: 'github.com' }, { run: 2, job: 'test', domain: 'github.com' });
  evs.push({ run: 3, job: 'test', domain: 'evil.example.com', process: 'curl' }, { run: 3, job: 'test', domain: 'evil.example.com', process: 'curl', t: 3 });
  const { store } = await ingest(at, evs, { learningRuns: 3 });
  const ds = await detections(store);
  const keys = ds.map((d) => `${d.job}|${d.run_id}|${d.endpoint}|${d.tool.name}`).sort();
  assert.deepEqual(keys, ['build|1003|evil.example.com:443|curl', 'build|1003|evil.example.com:443|wget', 'test|1003|evil.example.com:443|curl']);
  const d = ds.find((x) => x.tool.name === 'wget')!;
  assert.equal(d.status, 'new');
  assert.equal(d.owner, 'acme');
  assert.equal(d.workflow_path, '.github/workflows/ci.yml');
  assert.equal(d.job_id, '5003');
  assert.equal(d.run_attempt, 1);
  assert.equal(d.direct_ip_address, null);
  assert.equal(d.tool.parent[0]!.name, 'bash');
  assert.deepEqual(d.expected_outbound_connections, ['github.com:443', 'registry.npmjs.org:443']);
  await store.close();
});

storeTest('baseline endpoints raise nothing; a direct-IP call is flagged with its IP', async (at) => {
  const evs = normalRuns(0, 4);
  evs.push({ run: 4, ip: '100.101.102.103', port: 41641, protocol: 'udp', process: 'tailscaled' });
  const { store } = await ingest(at, evs, { learningRuns: 2 });
  const ds = await detections(store);
  assert.equal(ds.length, 1);
  assert.equal(ds[0]!.endpoint, '100.101.102.103:41641');
  assert.equal(ds[0]!.direct_ip_address, '100.101.102.103');
  assert.equal(ds[0]!.protocol, 'udp');
  await store.close();
});

storeTest('an endpoint joins the baseline after promoteAfterRuns completed runs', async (at) => {
  const evs = normalRuns(0, 2);
  for (let r = 2; r < 7; r++) evs.push({ run: r, domain: 'api.new-saas.io', process: 'node' });
  const { store } = await ingest(at, evs, { learningRuns: 2, promoteAfterRuns: 3 });
  // runs 2,3,4 raise (seen in 0,1,2 completed runs before); from run 5 it is baseline
  const runs = (await detections(store)).map((d) => d.run_id).sort();
  assert.deepEqual(runs, ['1002', '1003', '1004']);
  const views = await store.detections.baselines('default', { owner: 'acme', repo: 'api' });
  const e = views[0]!.endpoints.find((x) => x.endpoint === 'api.new-saas.io:443')!;
  assert.equal(e.inBaseline, true);
  await store.close();
});

storeTest('allowed endpoints: wildcards, default port 443, explicit ports', async (at) => {
  // (*.githubusercontent.com would cover gist.githubusercontent.com and is refused: risky-baseline.test.ts)
  const allowed = new AllowedEndpoints(parseAllowedEndpoints('*objects.githubusercontent.com pypi.org:443 *.corp.example:8080'));
  const evs = normalRuns(0, 1);
  evs.push(
    { run: 1, domain: 'objects.githubusercontent.com' },
    { run: 1, domain: 'objects.githubusercontent.com', port: 80, process: 'wget' },
    { run: 1, domain: 'pypi.org', process: 'pip' },
    { run: 1, domain: 'a.b.corp.example', port: 8080 },
    { run: 1, domain: 'corp.example', port: 8080, process: 'wget' },
  );
  const { store } = await ingest(at, evs, { learningRuns: 1, allowed });
  const eps = (await detections(store)).map((d) => d.endpoint).sort();
  assert.deepEqual(eps, ['corp.example:8080', 'objects.githubusercontent.com:80']);
  assert.throws(() => parseAllowedEndpoints('good.com bad/entry'), /invalid entry "bad\/entry"/);
  await store.close();
});

storeTest('blocked calls raise Domain-Blocked even while learning, and never join the baseline', async (at) => {
  const evs: EventSpec[] = [
    { run: 0, domain: 'pastebin.com', status: 'blocked' },
    { run: 1, domain: 'pastebin.com', status: 'blocked' },
    { run: 2, domain: 'github.com' },
  ];
  const { store } = await ingest(at, evs, { learningRuns: 5 });
  assert.equal((await detections(store, 'Domain-Blocked')).length, 2);
  const v = await store.detections.baselines('default', { owner: 'acme' });
  assert.equal(v[0]!.endpoints.some((e) => e.endpoint === 'pastebin.com:443'), false);
  await store.close();
});

storeTest('process names are grouped normalised but raw names are kept', async (at) => {
  const evs = normalRuns(0, 1);
  evs.push({ run: 1, domain: 'x.example.com', process: 'Tailscaled.EXE' });
  const { store } = await ingest(at, evs, { learningRuns: 1 });
  const [d] = await detections(store);
  assert.equal(d!.tool.name, 'Tailscaled.EXE');
  assert.equal(d!.tool.normalized_name, 'tailscaled');
  const byProcess = await store.detections.list('default', { process: 'tailscaled' }, 10);
  assert.equal(byProcess.total, 1);
  await store.close();
});

storeTest('tenants never mix', async (at) => {
  const evs = normalRuns(0, 1);
  evs.push({ run: 0, tenant: 'other', domain: 'a.com' }, { run: 1, domain: 'x.example.com', tenant: 'other' }, { run: 1, domain: 'y.example.com' });
  const { store } = await ingest(at, evs, { learningRuns: 1 });
  assert.deepEqual((await detections(store)).map((d) => d.endpoint), ['y.example.com:443']);
  const other = await store.detections.list('other', {}, 10);
  assert.deepEqual(other.detections.map((d) => d.endpoint), ['x.example.com:443']);
  assert.deepEqual(await store.detections.tenants(), ['default', 'other']);
  await store.close();
});


storeTest('an endpoint marked expected joins the baseline at once', async (at) => {
  const { store } = await ingest(at, normalRuns(0, 3), { learningRuns: 2 });
  const r = await store.baselines.markExpected('default', { owner: 'acme', repo: 'api' }, 'api.partner.io:443');
  assert.deepEqual(r.jobs, [{ workflow: '.github/workflows/ci.yml', job: 'build' }]);
  await ingest(at, [{ run: 3, domain: 'api.partner.io', process: 'node' }, { run: 3, domain: 'other.partner.io', process: 'node' }], { learningRuns: 2 }, store);
  assert.deepEqual((await detections(store)).map((d) => d.endpoint), ['other.partner.io:443']);
  const v = await store.detections.baselines('default', { owner: 'acme', repo: 'api' });
  assert.equal(v[0]!.endpoints.find((e) => e.endpoint === 'api.partner.io:443')!.source, 'expected');
  await store.close();
});

storeTest('risky destinations never join a baseline, not even while learning', async (at) => {
  const evs = normalRuns(0, 8);
  for (let r = 0; r < 8; r++) evs.push({ run: r, domain: 'webhook.site', process: 'node', parent: 'sh' });
  const { store } = await ingest(at, evs, { learningRuns: 2, promoteAfterRuns: 1 });
  const runs = (await detections(store)).filter((d) => d.endpoint === 'webhook.site:443').map((d) => d.run_id);
  // every run, the two learning runs included: a risky call is flagged even while the job learns
  assert.equal(runs.length, 8);
  const v = await store.detections.baselines('default', { owner: 'acme', repo: 'api' });
  assert.equal(v[0]!.endpoints.some((e) => e.endpoint === 'webhook.site:443'), false);
  await store.close();
});

storeTest('the baseline store itself refuses a risky destination, even when the caller passes no risky list', async (at) => {
  const { store } = await ingest(at, normalRuns(0, 3), { learningRuns: 2 });
  await assert.rejects(
    store.baselines.markExpected('default', { owner: 'acme', repo: 'api' }, 'webhook.site:443'),
    (e: Error) => e.name === 'BaselineError' && /risky destination/.test(e.message),
  );
  const v = await store.detections.baselines('default', { owner: 'acme', repo: 'api' });
  assert.equal(v[0]!.endpoints.some((e) => e.endpoint === 'webhook.site:443'), false);
  await store.close();
});
