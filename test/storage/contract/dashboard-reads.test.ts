import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backends } from './backends.js';
import { cliResult, fakeSha, ndjson, nativeEvent, tempDir, type EventSpec } from '../../helpers.js';
import { loadOverview } from '../../../src/dashboard/overview-data.js';
import type { DashboardStore } from '../../../src/dashboard/store.js';

/**
 * The dashboard's read ports (run-calls-port.ts, overview-port.ts), identical on every backend: a
 * small tenant ingested by the real CLI, every expected answer worked out by hand. Tenant "other"
 * holds the same runs, so a query that leaked across tenants would count twice.
 */

const JOB = { owner: 'acme', repo: 'api', job: 'build' } satisfies Partial<EventSpec>;
const DAY = (run: number) => Math.floor((Date.UTC(2026, 9, 1) + run * 3_600_000) / 86_400_000);

function events(tenant: string) {
  const e = (s: EventSpec) => nativeEvent({ ...JOB, tenant, ...s });
  return [
    // two learning runs
    ...[1, 2].map((run) => e({ run, domain: 'registry.npmjs.org', process: 'node', parent: 'npm' })),
    // run 3: the baseline endpoint, a new one (curl, with an IP) and a blocked one
    e({ run: 3, domain: 'registry.npmjs.org', process: 'node', parent: 'npm' }),
    e({ run: 3, domain: 'new.example', ip: '203.0.113.7', process: 'curl', t: 5 }),
    e({ run: 3, domain: 'evil.example', process: 'curl', status: 'blocked', t: 9 }),
    // run 4: a matrix job, two legs with their own GitHub job ids
    e({ run: 4, jobId: '9001', domain: 'registry.npmjs.org', process: 'node', parent: 'npm' }),
    e({ run: 4, jobId: '9002', domain: 'leg2.example', process: 'wget' }),
  ];
}

for (const backend of backends()) {
  test(`${backend.name}: dashboard read ports`, async (t) => {
    const store = await backend.create();
    const tmp = tempDir();
    const input = tmp.file('events.ndjson', ndjson([...events('acme'), ...events('other')]));
    const ing = await cliResult(['ingest', input, '--db', store.location, '--format', 'native', '--learning-runs', '2']);
    assert.equal(ing.status, 0, ing.stderr);
    // run 5 from Harden-Runner, whose dropped call carries the agent's policy and reason
    const hr = tmp.file(
      'harden-runner.ndjson',
      [
        { context: { owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: 1005, run_attempt: 1, job_id: 5005 } },
        {
          ipAddress: '198.51.100.9', port: '443(https)', domainName: 'exfil.example.', timestamp: '2026-10-01T05:00:00Z', status: 'Dropped',
          tool: { name: 'curl', sha256: 'c'.repeat(64), parent: { name: 'bash', sha256: '', parent: null } },
          matched_policy: 'block-unknown', reason: 'not in allowed endpoints',
        },
      ].map((r) => JSON.stringify(r)).join('\n') + '\n',
    );
    const ing2 = await cliResult(['ingest', hr, '--db', store.location, '--format', 'harden-runner', '--tenant', 'acme', '--learning-runs', '2']);
    assert.equal(ing2.status, 0, ing2.stderr);
    const c = await store.connect();
    try {
      await t.test('runCalls: every call of the run with process, verdict, baseline state and detections', async () => {
        const r = await c.runCalls.runCalls('acme', { owner: 'ACME', repo: 'Api', runId: '1003' });
        assert.ok(r);
        assert.deepEqual([r.owner, r.repo, r.runId], ['acme', 'api', '1003']);
        assert.deepEqual(
          r.legs.map((l) => [l.workflow, l.job, l.runAttempt, l.jobId, l.learning]),
          [['.github/workflows/ci.yml', 'build', 1, '5003', false]],
        );
        assert.deepEqual(
          r.calls.map((x) => [x.endpoint, x.ip, x.port, x.process.name, x.process.path, x.process.sha256, x.process.parent.map((p) => p.name), x.blocked, x.inBaseline]),
          [
            ['registry.npmjs.org:443', null, 443, 'node', '/usr/bin/node', fakeSha('node'), ['npm'], false, true],
            ['new.example:443', '203.0.113.7', 443, 'curl', '/usr/bin/curl', fakeSha('curl'), ['bash'], false, false],
            ['evil.example:443', null, 443, 'curl', '/usr/bin/curl', fakeSha('curl'), ['bash'], true, false],
          ],
        );
        assert.deepEqual(r.calls[0]!.detections, []);
        assert.deepEqual(r.calls[1]!.detections.map((d) => [d.type, d.status]), [['New-Outbound-Network-Call', 'new']]);
        // a blocked call is a Domain-Blocked detection (not also a new outbound one)
        assert.deepEqual(r.calls[2]!.detections.map((d) => [d.type, d.status]), [['Domain-Blocked', 'new']]);
        assert.deepEqual(r.otherDetections, []);
        assert.equal(r.calls[1]!.firstSeen, new Date(Date.UTC(2026, 9, 1) + 3 * 3_600_000 + 5000).toISOString());
      });

      await t.test("runCalls: a dropped call keeps the producer's policy and reason", async () => {
        const r = await c.runCalls.runCalls('acme', { owner: 'acme', repo: 'api', runId: '1005', jobId: '5005' });
        assert.deepEqual(
          r!.calls.map((x) => [x.endpoint, x.ip, x.blocked, x.matchedPolicy, x.reason, x.process.sha256, x.detections.map((d) => d.type)]),
          [['exfil.example:443', '198.51.100.9', true, 'block-unknown', 'not in allowed endpoints', 'c'.repeat(64), ['Domain-Blocked']]],
        );
        const plain = await c.runCalls.runCalls('acme', { owner: 'acme', repo: 'api', runId: '1003' });
        assert.deepEqual(plain!.calls.map((x) => [x.matchedPolicy, x.reason]), [[null, null], [null, null], [null, null]]);
      });

      await t.test('runCalls: a learning run is marked learning and has no detection', async () => {
        const r = await c.runCalls.runCalls('acme', { owner: 'acme', repo: 'api', runId: '1001' });
        assert.deepEqual(r!.legs.map((l) => l.learning), [true]);
        assert.deepEqual(r!.calls.map((x) => [x.endpoint, x.detections.length]), [['registry.npmjs.org:443', 0]]);
      });

      await t.test('runCalls: the legs of a matrix run, all or one by jobId', async () => {
        const all = await c.runCalls.runCalls('acme', { owner: 'acme', repo: 'api', runId: '1004' });
        assert.deepEqual(all!.legs.map((l) => l.jobId), ['9001', '9002']);
        assert.deepEqual(all!.calls.map((x) => [x.leg, x.endpoint, x.inBaseline]), [[0, 'registry.npmjs.org:443', true], [1, 'leg2.example:443', false]]);
        const one = await c.runCalls.runCalls('acme', { owner: 'acme', repo: 'api', runId: '1004', jobId: '9002' });
        assert.deepEqual(one!.legs.map((l) => l.jobId), ['9002']);
        assert.deepEqual(one!.calls.map((x) => [x.leg, x.endpoint]), [[0, 'leg2.example:443']]);
      });

      await t.test('runCalls: null for an unknown run, job id, repo or tenant', async () => {
        assert.equal(await c.runCalls.runCalls('acme', { owner: 'acme', repo: 'api', runId: '999' }), null);
        assert.equal(await c.runCalls.runCalls('acme', { owner: 'acme', repo: 'api', runId: '1004', jobId: '1' }), null);
        assert.equal(await c.runCalls.runCalls('acme', { owner: 'acme', repo: 'web', runId: '1003' }), null);
        assert.equal(await c.runCalls.runCalls('nobody', { owner: 'acme', repo: 'api', runId: '1003' }), null);
      });

      await t.test('overview: detections per day, type and status; top processes by open detections', async () => {
        // runs 3, 4 and 5 are an hour apart, on one day
        assert.equal(DAY(3), DAY(5));
        const rows = [
          { day: DAY(3), type: 'Domain-Blocked', status: 'new', n: 2 },
          { day: DAY(3), type: 'New-Outbound-Network-Call', status: 'new', n: 2 },
        ];
        assert.deepEqual(await c.overview.detectionsByDay('acme'), rows);
        assert.deepEqual(await c.overview.detectionsByDay('acme', { sinceDay: DAY(3) }), rows);
        assert.deepEqual(await c.overview.detectionsByDay('acme', { sinceDay: DAY(3) + 1 }), []);
        assert.deepEqual(await c.overview.topOpenProcesses('acme', 10), [
          { process: 'curl', n: 3 },
          { process: 'wget', n: 1 },
        ]);
        assert.deepEqual(await c.overview.topOpenProcesses('acme', 1), [{ process: 'curl', n: 3 }]);
        assert.deepEqual(await c.overview.topOpenProcesses('nobody', 10), []);
      });

      await t.test('overview: counts are the tenant stats without observations and baseline endpoints', async () => {
        const { observations, baselineEndpoints, ...rest } = await c.detections.stats('acme');
        assert.ok(observations > 0 && baselineEndpoints > 0);
        assert.deepEqual(await c.overview.counts('acme'), rest);
        assert.deepEqual(rest, {
          tenant: 'acme', jobs: 1, runs: 6, learningJobs: 0, rules: 0, // run 4's two legs are two runs
          detections: [{ type: 'Domain-Blocked', status: 'new', count: 2 }, { type: 'New-Outbound-Network-Call', status: 'new', count: 2 }],
        });
        assert.deepEqual(await c.overview.counts('nobody'), { tenant: 'nobody', jobs: 0, runs: 0, learningJobs: 0, rules: 0, detections: [] });
      });

      await t.test('overview: reads neither the counting list nor the stats that count every call', async () => {
        // detections.list totals every match, detections.stats counts every observation: the overview shows neither total
        const counting = new Set<PropertyKey>(['list', 'stats']);
        const detections = new Proxy(c.detections, {
          get: (target, key, receiver) =>
            counting.has(key) ? () => Promise.reject(new Error(`the overview called detections.${String(key)}, which counts`)) : Reflect.get(target, key, receiver),
        });
        const store: DashboardStore = { detections, runCalls: c.runCalls, overview: c.overview, dashboard: c.dashboard };
        const o = await loadOverview(store, 'acme');
        assert.deepEqual(o.stats, await c.overview.counts('acme'));
        const all = (await c.detections.list('acme', {}, 100)).detections;
        assert.equal(all.length, 4);
        // every detection of the tenant, newest first, as the Detections page lists them
        assert.deepEqual(o.newest.map((d) => d.id), all.map((d) => d.id));
        assert.deepEqual(o.newest.map((d) => d.endpoint), ['exfil.example:443', 'leg2.example:443', 'evil.example:443', 'new.example:443']);
      });
    } finally {
      await c.close();
      tmp.cleanup();
    }
  });
}
