import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backends } from './backends.js';
import { HOLDER, proc } from './fixture.js';
import { IngestLeaseLostError } from '../../../src/storage/store.js';
import { IngestStateChangedError, observationKey, processVariantKey, type IngestPort, type IngestWriteBatch, type TenantIngest } from '../../../src/storage/ingest-port.js';

/**
 * The ingest write contract (src/storage/ingest-port.ts): reads, temporary refs, version checks,
 * atomic scopes, imported detections, duplicates within a batch.
 *
 * It runs on every backend that implements the whole port. SQLite's implementation (SqliteIngestPort)
 * is not on this branch yet; once it is, Connection.ingest() returns it and the filter below goes.
 */

const CURL = proc('curl', '/usr/bin/curl', 'sha-curl');
const JOB = { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build' };
const T = Date.UTC(2026, 9, 1);

function batch(token: string, ttlMs: number, expect: IngestWriteBatch['expect'], over: Partial<IngestWriteBatch> = {}): IngestWriteBatch {
  return { lease: { token, ttlMs }, expect, newJobs: [], newRuns: [], runSpans: [], completedRuns: [], jobStates: [], baseline: [], observations: [], detections: [], imported: [], ...over };
}

function obs(runRef: number, endpoint: string, blocked = false) {
  return { runRef, endpoint, ip: null, process: CURL, variantKey: processVariantKey(CURL), blocked, protocol: 'tcp' as const, ts: T };
}

function det(jobRef: number, runRef: number, endpoint: string, ts = T) {
  return { type: 'New-Outbound-Network-Call', jobRef, runRef, endpoint, ip: null, directIp: false, port: 443, protocol: 'tcp' as const, process: CURL, ts, status: 'new' as const, ruleRef: 0, externalId: '' };
}

const EMPTY = { jobs: [], runs: [], observations: [] };

async function tenantOf(port: IngestPort, tenant: string, atomic = false): Promise<{ t: TenantIngest; end: (commit: boolean) => Promise<void> }> {
  const scope = await port.beginSource({ atomic });
  return { t: await scope.tenant(tenant), end: (commit) => (commit ? scope.commit() : scope.rollback()) };
}

for (const backend of backends()) {
  test(`${backend.name}: ingest write contract`, { timeout: 120_000 }, async (t) => {
    const store = await backend.create();
    const c = await store.connect();
    const port = c.ingest();
    let n = 0;
    try {
      await t.test('reads: what is stored comes back by natural key, open legs named first, observations per run', async () => {
        const tenant = `read-${n++}`;
        const lease = await port.leases.acquireIngestLease(tenant, HOLDER);
        const { t: ti, end } = await tenantOf(port, tenant);
        const none = await ti.read({ jobs: [JOB], runs: [{ ...JOB, runId: '1', runAttempt: 1 }], observations: [] });
        assert.deepEqual([none.jobs, none.runs], [[null], [[]]], 'nothing is created by a read');
        const v = none.versions;
        const leg = (tempRef: number, gh: string, completed = false) => ({
          tempRef, jobRef: -1, runId: '7', runAttempt: 1, ghJobId: gh, firstTs: T, lastTs: T, learning: true, completed, expected: [],
        });
        const w = await ti.write(batch(lease.token, lease.ttlMs, v, {
          newJobs: [{ tempRef: -1, key: JOB }],
          newRuns: [leg(-10, 'a'), leg(-11, 'b'), leg(-12, 'c', true)],
          jobStates: [{ ref: -1, completedRuns: 3, openRun: -11 }],
          baseline: [{ jobRef: -1, endpoint: 'github.com:443', entry: { runsSeen: 2, inBaseline: false, source: 'learned' }, firstTs: T, lastTs: T }],
          observations: [obs(-10, 'github.com:443'), obs(-10, 'evil.example:443', true), obs(-11, 'pypi.org:443')],
        }));
        const [a, b, done] = w.runRefs as [number, number, number];
        const r = await ti.read({ jobs: [JOB, { ...JOB, job: 'other' }], runs: [{ ...JOB, runId: '7', runAttempt: 1 }], observations: [a] });
        const job = r.jobs[0]!;
        assert.deepEqual([job.ref, job.completedRuns, job.openRun], [w.jobRefs[0], 3, b]);
        assert.deepEqual([...job.baseline], [['github.com:443', { runsSeen: 2, inBaseline: false, source: 'learned' }]]);
        assert.deepEqual(job.openLegs.map((l) => l.ref), [b, a], 'the named open leg first, then the others oldest first; completed legs left out');
        assert.equal(r.jobs[1], null);
        assert.deepEqual(r.runs[0]!.map((l) => [l.ref, l.ghJobId, l.completed, l.learning]), [[a, 'a', false, true], [b, 'b', false, true], [done, 'c', true, true]]);
        assert.deepEqual(r.observations[0], {
          keys: new Set([observationKey('github.com:443', processVariantKey(CURL), false), observationKey('evil.example:443', processVariantKey(CURL), true)]),
          allowedEndpoints: new Set(['github.com:443']),
          callers: new Map([['github.com:443', [{ process: 'curl', sha256: CURL.sha256, path: CURL.path }]]]),
        });
        await end(true);
        await lease.release();
      });

      await t.test('a batch evaluated against older versions writes nothing', async () => {
        const tenant = `versions-${n++}`;
        const lease = await port.leases.acquireIngestLease(tenant, HOLDER);
        const { t: ti, end } = await tenantOf(port, tenant);
        const v = (await ti.read(EMPTY)).versions;
        // a person's `baseline expect` bumps the job-state version
        await ti.write(batch(lease.token, lease.ttlMs, v, {
          newJobs: [{ tempRef: -1, key: JOB }],
          baseline: [{ jobRef: -1, endpoint: 'npmjs.org:443', entry: { runsSeen: 0, inBaseline: true, source: 'expected' }, firstTs: T, lastTs: T }],
        }));
        const now = (await ti.read(EMPTY)).versions;
        assert.equal(now.jobStateVersion, v.jobStateVersion + 1);
        await assert.rejects(ti.write(batch(lease.token, lease.ttlMs, v, { newJobs: [{ tempRef: -1, key: { ...JOB, job: 'stale' } }] })), IngestStateChangedError);
        assert.equal((await c.detections.stats(tenant)).jobs, 1, 'the stale batch wrote nothing');
        await end(true);
        await lease.release();
      });

      await t.test('an atomic scope is one transaction: its reads see its writes, rollback undoes all, a failed batch only itself', async () => {
        const tenant = `atomic-${n++}`;
        // another writer's connection (on SQLite, the scope's own connection would see its transaction),
        // opened before the scope takes the write lock
        const other = await store.connect();
        const lease = await port.leases.acquireIngestLease(tenant, HOLDER);
        let { t: ti, end } = await tenantOf(port, tenant, true);
        const v = (await ti.read(EMPTY)).versions;
        await ti.write(batch(lease.token, lease.ttlMs, v, { newJobs: [{ tempRef: -1, key: JOB }] }));
        assert.notEqual((await ti.read({ ...EMPTY, jobs: [JOB] })).jobs[0], null, 'the scope reads its own write');
        assert.equal((await other.detections.stats(tenant)).jobs, 0, 'nobody else sees it before commit');
        await other.close();
        await end(false);
        assert.equal((await c.detections.stats(tenant)).jobs, 0, 'rolled back');

        ({ t: ti, end } = await tenantOf(port, tenant, true));
        await ti.write(batch(lease.token, lease.ttlMs, v, { newJobs: [{ tempRef: -1, key: JOB }] }));
        await assert.rejects(ti.write(batch('not-the-token', lease.ttlMs, v, { newJobs: [{ tempRef: -1, key: { ...JOB, job: 'x' } }] })), IngestLeaseLostError);
        await lease.renew(); // a heartbeat while the scope's transaction holds the lease row does not wait for it
        await end(true);
        assert.equal((await c.detections.stats(tenant)).jobs, 1, 'the fenced batch rolled back alone');
        await lease.release();
      });

      await t.test('duplicates: identical detections in one batch are stored once and counted once; a re-import creates nothing', async () => {
        const tenant = `dups-${n++}`;
        const lease = await port.leases.acquireIngestLease(tenant, HOLDER);
        const { t: ti, end } = await tenantOf(port, tenant);
        const v = (await ti.read(EMPTY)).versions;
        const w = await ti.write(batch(lease.token, lease.ttlMs, v, {
          newJobs: [{ tempRef: -1, key: JOB }],
          newRuns: [{ tempRef: -2, jobRef: -1, runId: '1', runAttempt: 1, ghJobId: null, firstTs: T, lastTs: T, learning: false, completed: false, expected: [] }],
          observations: [obs(-2, 'a.example:443'), obs(-2, 'a.example:443')],
          detections: [det(-1, -2, 'a.example:443'), det(-1, -2, 'a.example:443'), det(-1, -2, 'b.example:443')],
        }));
        assert.deepEqual(w.detectionsStored, [true, false, true]);
        assert.equal((await c.detections.list(tenant, {}, 10)).total, 2);
        assert.equal((await c.detections.stats(tenant)).observations, 1);

        const imported = (runId: string, endpoint: string, ts: number) => ({
          run: { ...JOB, runId, runAttempt: 1, ghJobId: 'gh-9' }, expected: ['github.com:443'],
          detection: { ...det(0, 0, endpoint, ts), externalId: `ext-${endpoint}` },
        });
        const i1 = await ti.write(batch(lease.token, lease.ttlMs, v, { imported: [imported('9', 'c.example:443', T + 5_000), imported('9', 'd.example:443', T)] }));
        assert.deepEqual([i1.importedStored, i1.importedRunsCreated], [[true, true], 1]);
        const i2 = await ti.write(batch(lease.token, lease.ttlMs, v, { imported: [imported('9', 'c.example:443', T + 5_000)] }));
        assert.deepEqual([i2.importedStored, i2.importedRunsCreated], [[false], 0]);
        const legs = (await ti.read({ ...EMPTY, runs: [{ ...JOB, runId: '9', runAttempt: 1 }] })).runs[0]!;
        assert.deepEqual(legs.map((l) => [l.completed, l.firstTs, l.lastTs]), [[true, T, T + 5_000]], 'one completed run spanning both imports');
        // the rollup (behind stats and unfiltered totals) counts exactly the stored detections (a time filter counts rows)
        for (const x of (await c.detections.stats(tenant)).detections) {
          assert.equal((await c.detections.list(tenant, { types: [x.type], statuses: [x.status], since: 0 }, 1)).total, x.count);
        }
        assert.equal((await c.detections.list(tenant, {}, 1)).total, (await c.detections.list(tenant, { since: 0 }, 1)).total);
        const got = (await c.detections.list(tenant, { runId: '9' }, 10)).detections;
        assert.deepEqual(got.map((d) => [d.external_id, d.expected_outbound_connections]), [['ext-c.example:443', ['github.com:443']], ['ext-d.example:443', ['github.com:443']]]);
        await end(true);
        await lease.release();
      });
    } finally {
      await c.close();
    }
  });
}
