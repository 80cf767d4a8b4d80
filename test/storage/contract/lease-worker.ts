import { hostname } from 'node:os';
import { openConnection } from './backends.js';

/**
 * A writer process for the lease contract: `iterations` times, it takes the tenant's ingest lease,
 * reads a job's completed-run count, writes it back plus one through the ingest port (fenced by the
 * lease) and releases. Without exclusion, concurrent workers lose increments.
 */
const [location, tenant, jobRef, iterations] = process.argv.slice(2) as [string, string, string, string];
const c = await openConnection(location);
const port = c.ingest();
const holder = { source: `worker-${process.pid}`, pid: process.pid, host: hostname() };
try {
  for (let i = 0; i < Number(iterations); i++) {
    const lease = await port.leases.acquireIngestLease(tenant, holder, { ttlMs: 30_000 });
    try {
      const scope = await port.beginSource({ atomic: false });
      const t = await scope.tenant(tenant);
      const versions = (await t.read({ jobs: [], runs: [], observations: [] })).versions;
      const [view] = await c.detections.baselines(tenant, {});
      // give another process every chance to interleave here if the lease did not exclude it
      await new Promise((r) => setImmediate(r));
      await t.write({
        lease: { token: lease.token, ttlMs: lease.ttlMs }, expect: versions, newJobs: [], newRuns: [], runSpans: [], completedRuns: [],
        jobStates: [{ ref: Number(jobRef), completedRuns: view!.completedRuns + 1, openRun: null }], baseline: [], observations: [], detections: [], imported: [],
      });
      await scope.commit();
    } finally {
      await lease.release();
    }
  }
} finally {
  await c.close();
}
