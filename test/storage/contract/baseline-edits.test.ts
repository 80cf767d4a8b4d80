import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backends, type Connection } from './backends.js';
import { HOLDER } from './fixture.js';
import { seedInventory } from './inventory-fixture.js';
import { BaselineError } from '../../../src/storage/baseline-port.js';
import { riskyDestinations } from '../../../src/analysis/risky-destinations.js';
import { IngestStateChangedError, type IngestVersions } from '../../../src/storage/ingest-port.js';

/**
 * BaselineEditor contract (`baseline expect` / `unexpect`), identical on every backend: its effect is
 * read back through the DetectionRepository's baselines view, the inventory, and the ingest port's
 * versions, on a store seeded through the ingest port (inventory-fixture.ts).
 */

async function versions(c: Connection, tenant: string): Promise<IngestVersions> {
  const scope = await c.ingest().beginSource({ atomic: false });
  try {
    return (await (await scope.tenant(tenant)).read({ jobs: [], runs: [], observations: [] })).versions;
  } finally {
    await scope.rollback();
  }
}

/** one job's baseline as [endpoint, runs seen, in baseline, source] */
async function entries(c: Connection, tenant: string, job: string): Promise<[string, number, boolean, string][]> {
  const views = await c.detections.baselines(tenant, { owner: 'acme', repo: 'api', job });
  return views.flatMap((v) => v.endpoints.map((e): [string, number, boolean, string] => [e.endpoint, e.runsSeen, e.inBaseline, e.source]));
}

const BUILD = { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build' };
const BOTH_API_JOBS = [{ workflow: '.github/workflows/ci.yml', job: 'build' }, { workflow: '.github/workflows/ci.yml', job: 'test' }];

for (const backend of backends()) {
  test(`${backend.name}: BaselineEditor contract`, async (t) => {
    const store = await backend.create();
    const c = await store.connect();
    try {
      await seedInventory(c.ingest());
      const globexBefore = await c.detections.baselines('globex', {});
      const globexVersion = await versions(c, 'globex');

      await t.test('expect: the endpoint joins the baseline of every job of the repo (any spelling of its names) at once', async () => {
        const v0 = await versions(c, 'acme');
        const r = await c.baselines.markExpected('acme', { owner: 'ACME', repo: 'API' }, 'Cdn.Example.com:443');
        assert.deepEqual(r, { jobs: BOTH_API_JOBS, learned: [] });
        for (const job of ['build', 'test']) {
          assert.deepEqual((await entries(c, 'acme', job)).find((e) => e[0] === 'cdn.example.com:443'), ['cdn.example.com:443', 0, true, 'expected'], job);
        }
        const v1 = await versions(c, 'acme');
        assert.ok(v1.jobStateVersion > v0.jobStateVersion, `job-state version moved: ${v0.jobStateVersion} -> ${v1.jobStateVersion}`);
        assert.equal(v1.rulesVersion, v0.rulesVersion);
        const ioc = await c.inventory.checkIocInBaseline('acme', { indicator: 'cdn.example.com', limit: 10 });
        assert.deepEqual(ioc.baseline.map((b) => [b.job, b.in_baseline, b.source]), [['build', true, 'expected'], ['test', true, 'expected']]);
      });

      await t.test('a concurrent ingest that evaluated before the edit is refused and writes nothing', async () => {
        const before = await versions(c, 'acme');
        await c.baselines.markExpected('acme', BUILD, 'pypi.org:443');
        const port = c.ingest();
        const lease = await port.leases.acquireIngestLease('acme', HOLDER);
        const scope = await port.beginSource({ atomic: false });
        try {
          const ti = await scope.tenant('acme');
          await assert.rejects(
            ti.write({
              lease: { token: lease.token, ttlMs: lease.ttlMs }, expect: before, newJobs: [{ tempRef: -1, key: { ...BUILD, job: 'stale' } }], newRuns: [],
              runSpans: [], completedRuns: [], jobStates: [], baseline: [], observations: [], detections: [], imported: [],
            }),
            IngestStateChangedError,
          );
          await scope.commit();
        } finally {
          await lease.release();
        }
        assert.deepEqual(await c.detections.baselines('acme', { job: 'stale' }), []);
      });

      await t.test('expect narrowed to one job turns a learned entry expected; unexpect restarts its count and leaves learned entries alone', async () => {
        assert.deepEqual((await entries(c, 'acme', 'build')).find((e) => e[0] === 'api.github.com:443'), ['api.github.com:443', 1, false, 'learned']);
        assert.deepEqual(await c.baselines.markExpected('acme', BUILD, 'api.github.com:443'), { jobs: [BOTH_API_JOBS[0]], learned: [] });
        assert.deepEqual((await entries(c, 'acme', 'build')).find((e) => e[0] === 'api.github.com:443'), ['api.github.com:443', 1, true, 'expected']);
        assert.deepEqual((await entries(c, 'acme', 'test')).find((e) => e[0] === 'api.github.com:443'), undefined, 'the other job is untouched');

        const v0 = await versions(c, 'acme');
        assert.deepEqual(await c.baselines.unmarkExpected('acme', { owner: 'Acme', repo: 'Api' }, 'API.github.com:443'), { jobs: [BOTH_API_JOBS[0]] });
        assert.deepEqual((await entries(c, 'acme', 'build')).find((e) => e[0] === 'api.github.com:443'), ['api.github.com:443', 0, false, 'learned']);
        assert.ok((await versions(c, 'acme')).jobStateVersion > v0.jobStateVersion, 'unexpect moves the job-state version too');

        const learned = await entries(c, 'acme', 'build');
        const v1 = await versions(c, 'acme');
        assert.deepEqual(await c.baselines.unmarkExpected('acme', BUILD, 'github.com:443'), { jobs: [] }, 'a learned entry is not expected');
        assert.deepEqual(await c.baselines.unmarkExpected('acme', BUILD, 'never-seen.example:443'), { jobs: [] });
        assert.deepEqual(await entries(c, 'acme', 'build'), learned);
        assert.equal((await versions(c, 'acme')).jobStateVersion, v1.jobStateVersion, 'an edit that changes nothing leaves the version');

        // an entry learning put in the baseline stays learned: expect adds nothing, so unexpect cannot take what runs taught
        const [taught, seen] = learned.find((e) => e[2] && e[3] === 'learned')!;
        const v2 = await versions(c, 'acme');
        assert.deepEqual(await c.baselines.markExpected('acme', BUILD, taught), { jobs: [], learned: [BOTH_API_JOBS[0]] });
        assert.equal((await versions(c, 'acme')).jobStateVersion, v2.jobStateVersion, 'nothing changed');
        assert.deepEqual(await c.baselines.unmarkExpected('acme', BUILD, taught), { jobs: [] });
        assert.deepEqual((await entries(c, 'acme', 'build')).find((e) => e[0] === taught), [taught, seen, true, 'learned']);

        assert.deepEqual(await c.baselines.unmarkExpected('acme', { owner: 'acme', repo: 'api' }, 'cdn.example.com:443'), { jobs: BOTH_API_JOBS });
        assert.deepEqual((await entries(c, 'acme', 'test')).find((e) => e[0] === 'cdn.example.com:443'), ['cdn.example.com:443', 0, false, 'learned']);
      });

      await t.test('a target naming no job changes nothing, and an unknown tenant is not created', async () => {
        assert.deepEqual(await c.baselines.markExpected('acme', { owner: 'acme', repo: 'nope' }, 'cdn.example.com:443'), { jobs: [], learned: [] });
        assert.deepEqual(await c.baselines.markExpected('acme', { ...BUILD, job: 'Build' }, 'cdn.example.com:443'), { jobs: [], learned: [] }, 'job names are exact');
        assert.deepEqual(await c.baselines.markExpected('nobody', BUILD, 'cdn.example.com:443'), { jobs: [], learned: [] });
        assert.deepEqual(await c.baselines.unmarkExpected('nobody', BUILD, 'cdn.example.com:443'), { jobs: [] });
        assert.deepEqual(await c.detections.tenants(), ['acme', 'globex']);
      });

      await t.test('a risky destination is refused before anything is written', async () => {
        const before = await c.detections.baselines('acme', {});
        const v0 = await versions(c, 'acme');
        for (const endpoint of ['webhook.site:443', 'gist.githubusercontent.com:443', 'x.webhook.site:443']) {
          await assert.rejects(
            c.baselines.markExpected('acme', { owner: 'acme', repo: 'api' }, endpoint),
            (e) => e instanceof BaselineError && e.code === 'refused_risky' && e.message.startsWith(`${endpoint} is the risky destination`),
            endpoint,
          );
        }
        // a configured extra risky destination is refused too
        await assert.rejects(c.baselines.markExpected('acme', BUILD, 'pastes.internal.example:443', riskyDestinations(['internal.example'])), BaselineError);
        // even for a target that names no job, and for an unknown tenant
        await assert.rejects(c.baselines.markExpected('nobody', BUILD, 'webhook.site:443'), BaselineError);
        assert.deepEqual(await c.detections.baselines('acme', {}), before);
        assert.deepEqual(await versions(c, 'acme'), v0);
        const ioc = await c.inventory.checkIocInBaseline('acme', { indicator: 'gist.githubusercontent.com', limit: 5 });
        assert.deepEqual([ioc.baseline_total, ioc.calls_total], [0, 1]);
        assert.deepEqual((await c.inventory.checkIocInBaseline('acme', { indicator: 'internal.example', limit: 5 })).baseline_total, 0);
        assert.deepEqual(await c.detections.tenants(), ['acme', 'globex']);
      });

      await t.test("edits of one tenant never touch another's baselines or version", async () => {
        assert.deepEqual(await c.detections.baselines('globex', {}), globexBefore);
        assert.deepEqual(await versions(c, 'globex'), globexVersion);
        assert.deepEqual(await c.baselines.markExpected('globex', BUILD, 'cdn.example.com:443'), { jobs: [BOTH_API_JOBS[0]], learned: [] });
        assert.deepEqual((await entries(c, 'acme', 'build')).find((e) => e[0] === 'cdn.example.com:443'), ['cdn.example.com:443', 0, false, 'learned']);
      });
    } finally {
      await c.close();
    }
  });
}
