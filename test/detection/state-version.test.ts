import assert from 'node:assert/strict';
import { DetectionEngine, DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import type { TenantIngest } from '../../src/storage/ingest-port.js';
import type { AdapterOutput } from '../../src/ingest/adapters/types.js';
import { call, proc, TS0 } from '../analysis/helpers.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();

/**
 * `baseline expect` writes job state outside the ingest lease, in one short transaction between two
 * of an ingest's transactions. The ingest must see it at its next transaction, exactly as an ingest
 * started afterwards would: no detection for the now expected endpoint, and its cached "pending"
 * baseline entry must not overwrite the expected one.
 */
/**
 * One write of the engine through a tenant's side of the ingest port, as the pipeline does it
 * (without its retries: nothing else writes while a test's batch is evaluated).
 */
async function evaluate(t: TenantIngest, engine: DetectionEngine, outs: AdapterOutput[], lease: { token: string; ttlMs: number }): Promise<void> {
  let at = 0;
  let req = engine.plan(outs, 0);
  for (;;) {
    const a = engine.accept(req, await t.read(req));
    if (a === 'stale') throw new Error('state changed under a pending write');
    if (a === 'replan') {
      req = engine.plan(outs, at);
      continue;
    }
    const o = engine.apply(outs, at);
    if (o.done) break;
    at = o.at;
    req = o.need;
  }
  const b = engine.takeWrite(lease);
  if (b) engine.committed(await t.write(b));
}

/** An ingest (engine + the ingest port of one connection) and a second connection, as the CLI process would be. */
async function twoWriters(at: StoreUnderTest) {
  const ingestStore = await at.open();
  const cliStore = await at.open();
  const lease = await ingestStore.leases.acquireIngestLease('acme', { source: 'test', pid: process.pid, host: 'test' });
  const scope = await ingestStore.ingest.beginSource({ atomic: false });
  const t = await scope.tenant('acme');
  const engine = new DetectionEngine({ ...DEFAULT_ENGINE_CONFIG, learningRuns: 1, promoteAfterRuns: 3 });
  const git = proc('git');
  // Each batch is settled: what another process sees once the ingest's write group (SQLite) is
  // committed, at most 200 ms later; in one thread, that group would block the other connection.
  const batch = async (run: number, domains: string[]) => {
    await evaluate(
      t,
      engine,
      domains.map((d, i) => ({ kind: 'call', event: call('acme', 'api', run, TS0 + run * 3_600_000 + i, git, { domain: d, port: 443 }) })),
      { token: lease.token, ttlMs: lease.ttlMs },
    );
    await scope.settle();
  };
  const jobStateVersion = async () => (await t.read({ jobs: [], runs: [], observations: [] })).versions.jobStateVersion;
  const flagged = async (run: number) =>
    Number(
      await at.value(
        `SELECT count(*) FROM detections d JOIN runs r ON r.id = d.run_ref JOIN endpoints e ON e.id = d.endpoint_id
         WHERE r.run_id = ? AND e.endpoint = 'new.example.com:443'`,
        [String(run)],
      ),
    );
  const close = async () => {
    await scope.commit();
    await lease.release();
    await ingestStore.close();
    await cliStore.close();
  };
  return { cliStore, batch, jobStateVersion, flagged, close };
}

storeTest('an endpoint marked expected while an ingest is running is honoured by that ingest', async (at) => {
  // cliStore is the `baseline expect` process
  const { cliStore, batch, jobStateVersion, flagged: newOutbound, close } = await twoWriters(at);

  await batch(1, ['github.com']); // learning run
  await batch(2, ['github.com', 'new.example.com']); // new.example.com raises a detection
  await batch(3, ['github.com']); // run 2 completes: new.example.com is pending (seen in 1 run of 3)
  assert.equal(await newOutbound(2), 1);
  const versionBefore = (await jobStateVersion());

  const marked = await cliStore.baselines.markExpected('acme', { owner: 'acme', repo: 'api' }, 'new.example.com:443');
  assert.equal(marked.jobs.length, 1);
  assert.equal((await jobStateVersion()), versionBefore + 1, 'the edit bumped the tenant job-state version');

  await batch(3, ['new.example.com']); // the same ingest, next transaction
  await batch(4, ['github.com']); // run 3 completes and counts new.example.com towards the baseline
  assert.equal(await newOutbound(3), 0, 'expected endpoint not flagged');
  const [row] = await at.rows(`SELECT b.in_baseline, b.source FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id WHERE e.endpoint = 'new.example.com:443'`);
  assert.deepEqual(row, { in_baseline: 1, source: 'expected' });
  assert.equal((await jobStateVersion()), versionBefore + 1, "the ingest's own baseline writes do not bump the version");
  await close();
});

storeTest('an endpoint un-expected while an ingest is running is flagged again by that ingest', async (at) => {
  // cliStore is the `baseline unexpect` process
  const { cliStore, batch, jobStateVersion, flagged, close } = await twoWriters(at);

  await batch(1, ['github.com']); // learning run
  await cliStore.baselines.markExpected('acme', { owner: 'acme', repo: 'api' }, 'new.example.com:443');
  await batch(2, ['github.com', 'new.example.com']); // expected: nothing raised, and the engine caches it as in the baseline
  assert.equal(await flagged(2), 0);
  const versionBefore = (await jobStateVersion());

  const removed = await cliStore.baselines.unmarkExpected('acme', { owner: 'acme', repo: 'api' }, 'new.example.com:443');
  assert.equal(removed.jobs.length, 1);
  assert.equal((await jobStateVersion()), versionBefore + 1, 'un-expecting bumped the tenant job-state version');

  await batch(3, ['github.com', 'new.example.com']); // the same ingest, next transaction: the cache must not keep it expected
  assert.equal(await flagged(3), 1, 'no longer expected: flagged again');
  await close();
});
