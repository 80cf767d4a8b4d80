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

      await t.test('an endpoint is stored in the canonical form calls are keyed by, whatever its spelling', async () => {
        for (const [typed, canonical] of [
          ['[::ffff:203.0.113.9]:443', '203.0.113.9:443'],
          ['[2001:DB8:0::9]:443', '[2001:db8::9]:443'],
          ['2001:db8::9:443', null],
          ['Other.Example.com.:443', 'other.example.com:443'],
          ['x.example.com:0443', 'x.example.com:443'],
        ] as const) {
          if (canonical === null) {
            await assert.rejects(expectEndpoint(c.baselines, 'acme', { ...API, job: 'build', endpoint: typed }, risky), refused('invalid_input', 'endpoint', /one exact endpoint/), typed);
            continue;
          }
          const r = await expectEndpoint(c.baselines, 'acme', { ...API, job: 'build', endpoint: typed }, risky);
          assert.deepEqual(r.jobs.map((j) => j.job), ['build'], typed);
          assert.deepEqual(await entry(canonical), ['build:expected:true'], typed);
          assert.deepEqual(await entry(typed.toLowerCase()), typed.toLowerCase() === canonical ? ['build:expected:true'] : [], typed);
          await unexpectEndpoint(c.baselines, 'acme', { ...API, job: 'build', endpoint: typed });
        }
      });

      await t.test('a pattern, a bad port or a name that is no DNS name is refused: it could never match a call', async () => {
        for (const typed of ['*.example.com:443', 'other.exa?ple.com:443', 'x.example.com:0', 'x.example.com:70000', '203.0.113.007:443', '[not-an-ip]:443']) {
          await assert.rejects(expectEndpoint(c.baselines, 'acme', { ...API, endpoint: typed }, risky), refused('invalid_input', 'endpoint', /one exact endpoint/), typed);
        }
        // written as a URL parser still reads the host (fullwidth letters, a percent-escaped dot), it
        // is that host: a risky one, refused as such
        for (const typed of ['\uff57\uff45\uff42\uff48\uff4f\uff4f\uff4b.site:443', 'gist.githubusercontent.com%2e:443']) {
          await assert.rejects(expectEndpoint(c.baselines, 'acme', { ...API, endpoint: typed }, risky), refused('refused_risky', 'endpoint', /risky destination/), typed);
        }
      });
    } finally {
      await c.close();
    }
  });
}
