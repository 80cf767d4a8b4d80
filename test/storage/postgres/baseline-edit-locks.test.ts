import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from '../../helpers/postgres.js';
import { PgStore } from '../../../src/storage/postgres/pg-store.js';
import { PgIngestPort } from '../../../src/storage/postgres/ingest-port.js';
import { HOLDER } from '../contract/fixture.js';
import { JOB, seedInventoryTenant } from '../contract/inventory-fixture.js';
import type { IngestVersions, IngestWriteBatch } from '../../../src/storage/ingest-port.js';

/**
 * A baseline edit racing an open ingest transaction on PostgreSQL: the ingest holds the tenant row
 * (FOR SHARE, its version check) and goes on to write a job the edit names. The edit must wait on
 * the tenant row before it locks any job, or the two deadlock and one of them fails.
 */

const server = usePostgres();

const batch = (token: string, ttlMs: number, expect: IngestVersions, over: Partial<IngestWriteBatch> = {}): IngestWriteBatch => ({
  lease: { token, ttlMs }, expect, newJobs: [], newRuns: [], runSpans: [], completedRuns: [], jobStates: [], baseline: [],
  observations: [], detections: [], imported: [], ...over,
});

test('a baseline edit waits for an open ingest transaction instead of deadlocking with it, then bumps the version', async () => {
  const s = PgStore.connect(await (await server()).createDatabase('baseline_locks'));
  try {
    await s.migrate();
    const port = new PgIngestPort(s.pool);
    await seedInventoryTenant(port, 'acme');
    const lease = await port.leases.acquireIngestLease('acme', HOLDER);
    const scope = await port.beginSource({ atomic: true });
    let committed = false;
    try {
      const ti = await scope.tenant('acme');
      const read = await ti.read({ jobs: [JOB.build], runs: [], observations: [] });
      const v = read.versions;
      await ti.write(batch(lease.token, lease.ttlMs, v));

      const edit = s.baselines.markExpected('acme', { owner: 'acme', repo: 'api', job: 'build' }, 'cdn.example.com:443');
      for (const deadline = Date.now() + 30_000; ; ) {
        const n = (await s.pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()")).rows[0].n;
        if (n === 1) break;
        assert.ok(Date.now() < deadline, 'the edit never waited for the ingest transaction');
      }
      // the ingest now writes the job the edit names, inside the same open transaction
      await ti.write(batch(lease.token, lease.ttlMs, v, { jobStates: [{ ref: read.jobs[0]!.ref, completedRuns: 1, openRun: null }] }));
      await scope.commit();
      committed = true;
      assert.deepEqual(await edit, { jobs: [{ workflow: '.github/workflows/ci.yml', job: 'build' }], learned: [] });
      const after = await port.beginSource({ atomic: false });
      const now = (await (await after.tenant('acme')).read({ jobs: [], runs: [], observations: [] })).versions;
      await after.rollback();
      assert.ok(now.jobStateVersion > v.jobStateVersion);
      const views = await s.detections.baselines('acme', { job: 'build' });
      assert.equal(views[0]!.completedRuns, 1, "the ingest's write landed");
      assert.ok(views[0]!.endpoints.some((e) => e.endpoint === 'cdn.example.com:443' && e.source === 'expected'), "the edit's write landed");
    } finally {
      if (!committed) await scope.rollback().catch(() => undefined);
      await lease.release();
    }
  } finally {
    await s.close();
  }
});
