import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { resolve } from 'node:path';
import { backends, FakeClock, type Connection } from './backends.js';
import { IngestLeaseDeadlockError, IngestLeaseLostError, type IngestLeaseEvent } from '../../../src/storage/store.js';
import type { IngestPort, IngestWriteBatch } from '../../../src/storage/ingest-port.js';

/**
 * The ingest lease contract (src/storage/store.ts), identical on every backend: two connections
 * stand for two writer processes; a fake clock moves only when a waiter sleeps. The last test runs
 * real processes.
 */

const HOLDER_A = { source: 'a.ndjson', pid: 101, host: 'ci-1' };
const HOLDER_B = { source: 'b.ndjson', pid: 202, host: 'ci-2' };
const WORKER = resolve('dist/test/storage/contract/lease-worker.js');

function jobBatch(token: string, ttlMs: number, job: string): IngestWriteBatch {
  return {
    lease: { token, ttlMs }, expect: { rulesVersion: 0, jobStateVersion: 0 },
    newJobs: [{ tempRef: -1, key: { owner: 'acme', repo: 'api', workflow: 'ci.yml', job } }],
    newRuns: [], runSpans: [], completedRuns: [], jobStates: [], baseline: [], observations: [], detections: [], imported: [],
  };
}

async function write(port: IngestPort, tenant: string, batch: IngestWriteBatch) {
  const scope = await port.beginSource({ atomic: false });
  try {
    return await (await scope.tenant(tenant)).write(batch);
  } finally {
    await scope.commit();
  }
}

for (const backend of backends()) {
  test(`${backend.name}: ingest lease contract`, async (t) => {
    const store = await backend.create();
    const conns: Connection[] = [];
    /** two writers on one fresh tenant each time, sharing one fake clock */
    const writers = async (clock: FakeClock) => {
      const [a, b] = [await store.connect(), await store.connect()];
      conns.push(a, b);
      return { a: a.ingest(clock), b: b.ingest(clock), reader: a.detections };
    };
    let tenantNo = 0;
    const fresh = () => `tenant-${tenantNo++}`;
    try {
      await t.test('exclusive per tenant: a second writer waits, says for whom, and gets the lease once released', async () => {
        const clock = new FakeClock();
        const w = await writers(clock);
        const [acme, globex] = [fresh(), fresh()];
        const la = await w.a.leases.acquireIngestLease(acme, HOLDER_A, { ttlMs: 10_000 });
        assert.ok(await w.b.leases.acquireIngestLease(globex, HOLDER_B, { ttlMs: 10_000 }), 'another tenant is not blocked');
        const events: IngestLeaseEvent[] = [];
        let polls = 0;
        clock.onSleep = async () => {
          if (++polls < 5) await la.renew();
          else if (polls === 5) await la.release();
        };
        const lb = await w.b.leases.acquireIngestLease(acme, HOLDER_B, { ttlMs: 10_000, onWait: (e) => events.push(e) });
        assert.deepEqual(events.map((e) => e.kind), ['waiting'], 'announced once');
        assert.deepEqual(events[0]!.kind === 'waiting' && events[0]!.current.holder, HOLDER_A);
        assert.equal(polls, 5);
        assert.notEqual(lb.token, la.token);
        await assert.rejects(async () => la.renew(), IngestLeaseLostError);
      });

      await t.test('a holder that stops renewing is taken over at expiry, and its writes are fenced off', async () => {
        const clock = new FakeClock();
        const w = await writers(clock);
        const tenant = fresh();
        const start = clock.t;
        const la = await w.a.leases.acquireIngestLease(tenant, HOLDER_A, { ttlMs: 1_000 });
        clock.t += 600;
        await la.renew(); // heartbeat: valid until +1600
        clock.t += 900;
        assert.equal(await w.b.leases.acquireIngestLease(tenant, HOLDER_B, { ttlMs: 1_000, wait: false }), null, 'a renewed lease is still held');
        const events: IngestLeaseEvent[] = [];
        const lb = await w.b.leases.acquireIngestLease(tenant, HOLDER_B, { ttlMs: 1_000, onWait: (e) => events.push(e) });
        assert.deepEqual(events.map((e) => e.kind), ['waiting', 'takeover']);
        assert.equal(clock.t, start + 1_600, 'taken over exactly at expiry');

        // The old holder wakes up: its next write batch is refused before anything is written.
        await assert.rejects(write(w.a, tenant, jobBatch(la.token, 1_000, 'old')), (err: unknown) =>
          err instanceof IngestLeaseLostError && /to the ingest of b\.ndjson \(pid 202 on ci-2\)/.test(err.message));
        assert.equal((await w.reader.stats(tenant)).jobs, 0, 'nothing of the fenced batch was written');
        await assert.rejects(async () => la.renew(), IngestLeaseLostError);
        await la.release(); // must not free the new holder's lease
        assert.equal(await w.a.leases.acquireIngestLease(tenant, HOLDER_A, { ttlMs: 1_000, wait: false }), null);
        const r = await write(w.b, tenant, jobBatch(lb.token, 1_000, 'new'));
        assert.equal(r.jobRefs.length, 1);
        assert.equal((await w.reader.stats(tenant)).jobs, 1);
      });

      await t.test("an expired lease nobody took over is still the holder's: its next write extends it", async () => {
        const clock = new FakeClock();
        const w = await writers(clock);
        const tenant = fresh();
        const la = await w.a.leases.acquireIngestLease(tenant, HOLDER_A, { ttlMs: 1_000 });
        clock.t += 5_000;
        await write(w.a, tenant, jobBatch(la.token, 1_000, 'late'));
        assert.equal(await w.b.leases.acquireIngestLease(tenant, HOLDER_B, { ttlMs: 1_000, wait: false }), null);
      });

      await t.test('waiting stops when the signal aborts', async () => {
        const clock = new FakeClock();
        const w = await writers(clock);
        const tenant = fresh();
        const la = await w.a.leases.acquireIngestLease(tenant, HOLDER_A, { ttlMs: 60_000 });
        const ac = new AbortController();
        clock.onSleep = async () => {
          await la.renew();
          ac.abort(new Error('gave up'));
        };
        await assert.rejects(w.b.leases.acquireIngestLease(tenant, HOLDER_B, { ttlMs: 60_000, signal: ac.signal }), /gave up/);
      });

      await t.test('two writers each holding a tenant the other waits for: the greater gives up, the other gets both', async () => {
        const clock = new FakeClock();
        const w = await writers(clock);
        const [x, y] = [fresh(), fresh()];
        const ttlMs = 1_000_000_000;
        const ax = await w.a.leases.acquireIngestLease(x, HOLDER_A, { ttlMs });
        const by = await w.b.leases.acquireIngestLease(y, HOLDER_B, { ttlMs });
        const aWantsY = w.a.leases.acquireIngestLease(y, HOLDER_A, { ttlMs });
        const bWantsX = w.b.leases.acquireIngestLease(x, HOLDER_B, { ttlMs });
        await assert.rejects(bWantsX, (err: unknown) => err instanceof IngestLeaseDeadlockError && /waiting for a\.ndjson \(pid 101 on ci-1\) would never end/.test(err.message));
        await by.release();
        const ay = await aWantsY;
        assert.equal(ay.tenant, y);
        await ax.release();
        await ay.release();
      });

      await t.test('real processes: concurrent read-modify-write under the lease loses no update', async () => {
        const tenant = fresh();
        const c = await store.connect();
        conns.push(c);
        const port = c.ingest();
        const lease = await port.leases.acquireIngestLease(tenant, { source: 'setup', pid: process.pid, host: 'test' });
        const { jobRefs } = await write(port, tenant, { ...jobBatch(lease.token, lease.ttlMs, 'counter'), expect: (await (await (await port.beginSource({ atomic: false })).tenant(tenant)).read({ jobs: [], runs: [], observations: [] })).versions });
        await lease.release();
        const [workers, iterations] = [3, 12];
        const exits = await Promise.all(
          Array.from({ length: workers }, () =>
            new Promise<{ code: number | null; stderr: string }>((done) => {
              const child = spawn(process.execPath, [WORKER, store.location, tenant, String(jobRefs[0]), String(iterations)], { stdio: ['ignore', 'ignore', 'pipe'] });
              let stderr = '';
              child.stderr.on('data', (d) => (stderr += d));
              child.once('exit', (code) => done({ code, stderr }));
            }),
          ),
        );
        for (const e of exits) assert.equal(e.code, 0, e.stderr);
        const [view] = await c.detections.baselines(tenant, {});
        assert.equal(view!.completedRuns, workers * iterations);
      });
    } finally {
      for (const c of conns) await c.close();
    }
  });
}
