import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backends } from '../storage/contract/backends.js';
import { seedInventory } from '../storage/contract/inventory-fixture.js';
import { BaselineEditError, expectEndpoint, unexpectEndpoint } from '../../src/detection/baseline-edits.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';

/**
 * The baseline-edit service the CLI and the dashboard both call: one validation, one reading of the
 * outcome (error codes a face maps to its own answer), and the risky guard of the backends in force
 * through it, on every backend.
 */

const risky = riskyDestinations();
const API = { owner: 'acme', repo: 'api' };

function refused(code: BaselineEditError['code'], field: 'endpoint' | null, message: RegExp) {
  return (e: unknown) => e instanceof BaselineEditError && e.code === code && e.field === field && message.test(e.message);
}

for (const backend of backends()) {
  test(`${backend.name}: baseline expect / unexpect service`, async (t) => {
    const store = await backend.create();
    const c = await store.connect();
    try {
      await seedInventory(c.ingest());
      const entry = async (endpoint: string) =>
        (await c.detections.baselines('acme', API)).flatMap((v) => v.endpoints.filter((e) => e.endpoint === endpoint).map((e) => `${v.job}:${e.source}:${e.inBaseline}`));

      await t.test('expect then unexpect: the jobs changed, read back from the baselines', async () => {
        const r = await expectEndpoint(c.baselines, 'acme', { ...API, job: 'build', endpoint: 'cdn.example.com:443' }, risky);
        assert.deepEqual(r.jobs.map((j) => j.job), ['build']);
        assert.deepEqual(await entry('cdn.example.com:443'), ['build:expected:true']);
        const u = await unexpectEndpoint(c.baselines, 'acme', { ...API, job: 'build', endpoint: 'cdn.example.com:443' });
        assert.deepEqual(u.jobs.map((j) => j.job), ['build']);
        assert.deepEqual(await entry('cdn.example.com:443'), ['build:learned:false'], 'it leaves the baseline and counts as learned again');
      });

      await t.test('a risky destination is refused through the service, and nothing is written', async () => {
        await assert.rejects(expectEndpoint(c.baselines, 'acme', { ...API, endpoint: 'webhook.site:443' }, risky), refused('refused_risky', 'endpoint', /risky destination/));
        assert.deepEqual(await entry('webhook.site:443'), []);
      });

      await t.test('a malformed endpoint, an unknown repo, and an unexpect of what is not expected are refused with their codes', async () => {
        await assert.rejects(expectEndpoint(c.baselines, 'acme', { ...API, endpoint: 'cdn.example.com' }, risky), refused('invalid_input', 'endpoint', /host:port/));
        await assert.rejects(expectEndpoint(c.baselines, 'acme', { owner: 'acme', repo: 'nope', endpoint: 'a.example:443' }, risky), refused('not_found', null, /no jobs found for acme\/nope/));
        await assert.rejects(unexpectEndpoint(c.baselines, 'acme', { ...API, endpoint: 'never.example:443' }), refused('not_found', null, /is not expected in any job of acme\/api/));
      });
    } finally {
      await c.close();
    }
  });
}
