import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backends, type Connection } from './backends.js';
import { BASELINE, DETECTIONS, JOBS, PYTHON_SHA, T0, seed, type FixtureDetection } from './fixture.js';
import { parseDetectionFilter, type RawFilter } from '../../../src/domain/filter.js';
import { CursorError } from '../../../src/storage/detection-cursor.js';
import { detectionsCsv } from '../../../src/dashboard-data/detections-export.js';
import type { Detection } from '../../../src/domain/types.js';
import type { DetectionWindow } from '../../../src/storage/dashboard-port.js';

/**
 * The dashboard's page queries (storage/dashboard-port.ts), identical on every backend: detection
 * windows paged both ways with a bounded count, filters parsed by the CLI's parser (both the
 * time-index scan and the per-id driven plan), the CSV export, destinations and baseline jobs.
 * Expected answers are computed from the fixture description.
 */

const H = 3_600_000;
const NOW = T0 + 100 * H;

/** newest first; ties (same time) by id, which grows with insertion */
function expected(tenant: string, keep: (x: FixtureDetection) => boolean): FixtureDetection[] {
  return DETECTIONS.map((x, i) => ({ x, i }))
    .filter(({ x }) => x.tenant === tenant && keep(x))
    .sort((a, b) => b.x.ts - a.x.ts || b.i - a.i)
    .map(({ x }) => x);
}

const show = (d: Detection) => `${d.timestamp} ${d.detection_id} ${d.endpoint} ${d.tool.name} ${d.status}`;
const showX = (w: FixtureDetection) => `${new Date(w.ts).toISOString()} ${w.type} ${w.endpoint} ${w.process.name} ${w.status}`;

/** Every page forward from the first, then every page back from the last. */
async function walk(c: Connection, tenant: string, raw: RawFilter, limit: number): Promise<{ forward: Detection[][]; backward: Detection[][]; first: DetectionWindow }> {
  const filter = parseDetectionFilter(raw, { now: NOW });
  const forward: Detection[][] = [];
  const windows: DetectionWindow[] = [];
  let after: string | null = null;
  do {
    const w = await c.dashboard.detectionWindow(tenant, { filter, limit, after, countUpTo: 100 });
    windows.push(w);
    forward.push(w.detections);
    after = w.nextCursor;
  } while (after && forward.length < 50);
  const backward: Detection[][] = [];
  let before = windows[windows.length - 1]!.prevCursor;
  while (before && backward.length < 50) {
    const w = await c.dashboard.detectionWindow(tenant, { filter, limit, before });
    backward.unshift(w.detections);
    before = w.prevCursor;
  }
  return { forward, backward, first: windows[0]! };
}

const FILTERS: [string, RawFilter, (x: FixtureDetection) => boolean][] = [
  ['none', {}, () => true],
  ['type (time scan)', { types: 'domain-blocked' }, (x) => x.type === 'Domain-Blocked'],
  ['status (time scan)', { status: 'new' }, (x) => x.status === 'new'],
  ['owner: two jobs drive the page', { owner: 'ACME' }, (x) => x.job.owner.toLowerCase() === 'acme'],
  ['repo owner/name', { repo: 'acme/web' }, (x) => x.job === JOBS.web],
  ['workflow and job', { workflow: '.github/workflows/ci.yml', job: 'build' }, (x) => x.job === JOBS.api],
  ['process by path', { process: '/usr/sbin/tailscaled' }, (x) => x.process.name === 'tailscaled'],
  ['sha256, case-insensitive', { sha256: PYTHON_SHA.toUpperCase() }, (x) => x.process.sha256 === PYTHON_SHA],
  ['endpoint host on any port', { endpoint: 'github.com' }, (x) => x.host === 'github.com'],
  ['endpoint host:port', { endpoint: 'github.com:8443' }, (x) => x.endpoint === 'github.com:8443'],
  ['time', { since: new Date(T0 + 3 * H).toISOString(), until: new Date(T0 + 8 * H).toISOString() }, (x) => x.ts >= T0 + 3 * H && x.ts < T0 + 8 * H],
  ['several, driven by the fewest ids', { status: 'new', owner: 'acme', process: 'curl', endpoint: 'github.com' }, (x) =>
    x.status === 'new' && x.job.owner.toLowerCase() === 'acme' && x.process.name === 'curl' && x.host === 'github.com'],
  ['a name that exists nowhere', { process: 'nosuchdaemon' }, () => false],
];

for (const backend of backends()) {
  test(`${backend.name}: dashboard queries contract`, async (t) => {
    const store = await backend.create();
    const c = await store.connect();
    try {
      await seed(c.ingest());

      for (const [name, raw, keep] of FILTERS) {
        await t.test(`detections, filter ${name}: pages forward and back see every match once, in order`, async () => {
          const want = expected('acme', keep).map(showX);
          for (const limit of [1, 3, 20]) {
            const { forward, backward, first } = await walk(c, 'acme', raw, limit);
            assert.deepEqual(forward.flat().map(show), want, `forward, pages of ${limit}`);
            if (forward.length > 1) assert.deepEqual(backward.map((p) => p.map(show)), forward.slice(0, -1).map((p) => p.map(show)), `back, pages of ${limit}`);
            assert.deepEqual(first.count, { value: want.length, exact: true });
            assert.equal(first.prevCursor, null, 'nothing is newer than the first page');
          }
        });
      }

      await t.test('the count is exact up to its bound, then says "at least"', async () => {
        const w = await c.dashboard.detectionWindow('acme', { filter: {}, limit: 2, countUpTo: 5 });
        assert.deepEqual(w.count, { value: 5, exact: false });
        assert.deepEqual((await c.dashboard.detectionWindow('acme', { filter: {}, limit: 2, countUpTo: 14 })).count, { value: 14, exact: true });
        assert.equal((await c.dashboard.detectionWindow('acme', { filter: {}, limit: 2 })).count, null, 'no count unless asked');
        const twoJobs = parseDetectionFilter({ owner: 'acme' }, { now: NOW });
        assert.deepEqual((await c.dashboard.detectionWindow('acme', { filter: twoJobs, limit: 2, countUpTo: 5 })).count, { value: 5, exact: false }, 'driven, over the bound');
        assert.deepEqual((await c.dashboard.detectionWindow('acme', { filter: twoJobs, limit: 2, countUpTo: 13 })).count, { value: 13, exact: false }, 'driven, one over');
        assert.deepEqual((await c.dashboard.detectionWindow('acme', { filter: twoJobs, limit: 2, countUpTo: 14 })).count, { value: 14, exact: true }, 'driven, at the bound');
        assert.deepEqual((await c.dashboard.detectionWindow('nobody', { filter: {}, limit: 2, countUpTo: 5 })).count, { value: 0, exact: true });
      });

      await t.test('tenant isolation and cursor errors', async () => {
        const g = await c.dashboard.detectionWindow('globex', { filter: parseDetectionFilter({ owner: 'globex' }, { now: NOW }), limit: 50 });
        assert.deepEqual(g.detections.map(show), expected('globex', () => true).map(showX));
        assert.deepEqual((await c.dashboard.detectionWindow('globex', { filter: parseDetectionFilter({ sha256: PYTHON_SHA }, { now: NOW }), limit: 50 })).detections, []);
        await assert.rejects(c.dashboard.detectionWindow('acme', { filter: {}, limit: 2, after: 'garbage' }), CursorError);
        const p = await c.dashboard.detectionWindow('acme', { filter: {}, limit: 2 });
        await assert.rejects(c.dashboard.detectionWindow('acme', { filter: {}, limit: 2, after: p.nextCursor, before: p.nextCursor }), /not both/);
      });

      await t.test('CSV export: every match once, newest first, in chunks of the batch size after a header', async () => {
        const chunks: string[] = [];
        for await (const chunk of detectionsCsv(c.dashboard, 'acme', parseDetectionFilter({ owner: 'acme' }, { now: NOW }), { batchSize: 4 })) chunks.push(chunk);
        const want = expected('acme', () => true);
        assert.equal(chunks.length, 1 + Math.ceil(want.length / 4));
        assert.match(chunks[0]!, /^id,timestamp,type,status,owner,/);
        const lines = chunks.slice(1).join('').split('\r\n').filter(Boolean);
        assert.deepEqual(lines.map((l) => l.split(',').slice(1, 4).join(' ')), want.map((x) => `${new Date(x.ts).toISOString()} ${x.type} ${x.status}`));
        assert.ok(lines.some((l) => l.includes(',webhook.site:443,webhook.site,')));
      });

      await t.test('destinations: every endpoint the tenant called, with its jobs, runs, blocks and baseline, paged by endpoint', async () => {
        const mine = DETECTIONS.filter((x) => x.tenant === 'acme');
        const endpoints = [...new Set(mine.map((x) => x.endpoint))].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
        const got = [];
        let cursor: string | null = null;
        do {
          const p = await c.dashboard.destinations('acme', { limit: 3, cursor, jobsPerDestination: 10 });
          assert.ok(p.destinations.length <= 3);
          got.push(...p.destinations);
          cursor = p.nextCursor;
        } while (cursor);
        assert.deepEqual(got.map((d) => d.endpoint), endpoints);
        for (const d of got) {
          const calls = mine.filter((x) => x.endpoint === d.endpoint);
          const jobs = [...new Set(calls.map((x) => x.job))];
          const want = jobs
            .map((job) => {
              const mineOfJob = calls.filter((x) => x.job === job);
              const b = BASELINE.find((e) => e.job === job && e.endpoint === d.endpoint);
              return {
                owner: job.owner, repo: job.repo, workflow: job.workflow, job: job.job,
                runs: new Set(mineOfJob.map((x) => x.runId)).size,
                blocked: mineOfJob.some((x) => x.type === 'Domain-Blocked'),
                lastSeen: new Date(Math.max(...mineOfJob.map((x) => x.ts))).toISOString(),
                inBaseline: b?.entry.inBaseline ?? false,
                baselineRunsSeen: b?.entry.runsSeen ?? 0,
                baselineSource: b?.entry.source ?? null,
              };
            })
            .sort((a, b) => (a.lastSeen < b.lastSeen ? 1 : a.lastSeen > b.lastSeen ? -1 : 0));
          assert.deepEqual(d.jobs, want, d.endpoint);
          assert.equal(d.jobsTotal, want.length);
          assert.equal(d.lastSeen, new Date(Math.max(...calls.map((x) => x.ts))).toISOString());
        }
        const gh = got.find((d) => d.endpoint === 'github.com:443')!;
        assert.deepEqual([gh.host, gh.port, gh.isIp, gh.jobsTotal], ['github.com', 443, false, 2]);
        assert.equal(got.find((d) => d.endpoint === '203.0.113.5:443')!.isIp, true);
        const capped = await c.dashboard.destinations('acme', { limit: 20, jobsPerDestination: 1 });
        assert.deepEqual(capped.destinations.find((d) => d.endpoint === 'github.com:443')!.jobs.map((j) => j.repo), ['Web'], 'the most recent caller first');
        assert.equal(capped.destinations.find((d) => d.endpoint === 'github.com:443')!.jobsTotal, 2);
        const globex = await c.dashboard.destinations('globex', { limit: 50, jobsPerDestination: 10 });
        assert.deepEqual(globex.destinations.map((d) => d.endpoint), ['evil.example:443', 'github.com:443'], 'only the tenant\'s own calls');
        assert.ok(!got.some((d) => d.endpoint === 'evil.example:443'));
        await assert.rejects(c.dashboard.destinations('acme', { limit: 3, cursor: 'garbage', jobsPerDestination: 1 }), CursorError);
      });

      await t.test('call addresses: each address a tenant\'s calls to an endpoint reached, once, per job when asked, never another tenant\'s', async () => {
        const cp = 'controlplane.tailscale.com:443';
        const all = await c.dashboard.callAddresses('acme', { endpoints: [cp, '203.0.113.5:443', 'github.com:443', 'nowhere.example:1'] });
        assert.deepEqual(all, [
          { endpoint: '203.0.113.5:443', ip: '203.0.113.5', job: null },
          { endpoint: cp, ip: '192.0.2.10', job: null },
        ]);
        assert.deepEqual(await c.dashboard.callAddresses('acme', { endpoints: [cp], jobs: [JOBS.api!, JOBS.web!] }), [{ endpoint: cp, ip: '192.0.2.10', job: JOBS.api }]);
        assert.deepEqual(await c.dashboard.callAddresses('acme', { endpoints: [cp], jobs: [JOBS.web!] }), []);
        assert.deepEqual(await c.dashboard.callAddresses('acme', { endpoints: [cp], jobs: [] }), []);
        assert.deepEqual(await c.dashboard.callAddresses('globex', { endpoints: [cp, '203.0.113.5:443'] }), [], 'the endpoint dictionary is shared on SQLite; the calls are not');
        assert.deepEqual(await c.dashboard.callAddresses('nobody', { endpoints: [cp] }), []);
      });

      await t.test('baseline jobs: state and entries per job, paged in name order, owner and repo case-insensitive', async () => {
        const all = await c.detections.baselines('acme', {});
        const got = [];
        let cursor: string | null = null;
        do {
          const p = await c.dashboard.baselineJobs('acme', { limit: 1, cursor });
          got.push(...p.jobs);
          cursor = p.nextCursor;
        } while (cursor);
        assert.deepEqual(got, all);
        assert.deepEqual(got.map((j) => `${j.owner}/${j.repo}`), ['Acme/Web', 'acme/api'], 'byte order');
        const api = got.find((j) => j.repo === 'api')!;
        assert.equal(api.learning, true);
        assert.deepEqual(api.endpoints.map((e) => [e.endpoint, e.runsSeen, e.inBaseline, e.source]), [
          ['github.com:443', 3, true, 'learned'], ['registry.npmjs.org:443', 0, true, 'expected'], ['pypi.org:443', 1, false, 'learned'],
        ]);
        assert.deepEqual((await c.dashboard.baselineJobs('acme', { limit: 10, owner: 'ACME', repo: 'WEB' })).jobs.map((j) => j.job), ['deploy']);
        assert.deepEqual(await c.dashboard.baselineJobs('nobody', { limit: 10 }), { jobs: [], nextCursor: null });
        await assert.rejects(c.dashboard.baselineJobs('acme', { limit: 1, cursor: 'garbage' }), CursorError);
      });
    } finally {
      await c.close();
    }
  });
}
