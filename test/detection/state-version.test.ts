import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { DetectionEngine, DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { call, evaluateSync, proc, TS0 } from '../analysis/helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * `baseline expect` writes job state outside the ingest lease, in one short transaction between two
 * of an ingest's transactions. The ingest must see it at its next transaction, exactly as an ingest
 * started afterwards would: no detection for the now expected endpoint, and its cached "pending"
 * baseline entry must not overwrite the expected one.
 */
/** An ingest (engine + session on one connection) and a second connection, as the CLI process would be. */
function twoWriters(name: string) {
  const path = join(tmp.dir, name);
  const ingestStore = SqliteStore.open(path);
  const cliStore = SqliteStore.open(path);
  const session = ingestStore.openIngestSession('acme');
  const engine = new DetectionEngine({ ...DEFAULT_ENGINE_CONFIG, learningRuns: 1, promoteAfterRuns: 3 });
  const git = proc('git');
  const batch = (run: number, domains: string[]) =>
    evaluateSync(
      session,
      engine,
      domains.map((d, i) => ({ kind: 'call', event: call('acme', 'api', run, TS0 + run * 3_600_000 + i, git, { domain: d, port: 443 }) })),
    );
  const flagged = (run: number) =>
    ingestStore.db
      .prepare(`SELECT count(*) FROM detections d JOIN runs r ON r.id = d.run_ref JOIN endpoints e ON e.id = d.endpoint_id
                WHERE r.run_id = ? AND e.endpoint = 'new.example.com:443'`)
      .pluck()
      .get(String(run)) as number;
  const close = () => {
    ingestStore.close();
    cliStore.close();
  };
  return { ingestStore, cliStore, session, batch, flagged, close };
}

test('an endpoint marked expected while an ingest is running is honoured by that ingest', async () => {
  // cliStore is the `baseline expect` process
  const { ingestStore, cliStore, session, batch, flagged: newOutbound, close } = twoWriters('expect.db');

  batch(1, ['github.com']); // learning run
  batch(2, ['github.com', 'new.example.com']); // new.example.com raises a detection
  batch(3, ['github.com']); // run 2 completes: new.example.com is pending (seen in 1 run of 3)
  assert.equal(newOutbound(2), 1);
  const versionBefore = session.jobStateVersion();

  const marked = await cliStore.baselines.markExpected('acme', { owner: 'acme', repo: 'api' }, 'new.example.com:443');
  assert.equal(marked.jobs.length, 1);
  assert.equal(session.jobStateVersion(), versionBefore + 1, 'the edit bumped the tenant job-state version');

  batch(3, ['new.example.com']); // the same ingest, next transaction
  batch(4, ['github.com']); // run 3 completes and counts new.example.com towards the baseline
  assert.equal(newOutbound(3), 0, 'expected endpoint not flagged');
  const row = ingestStore.db
    .prepare(`SELECT b.in_baseline, b.source FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id WHERE e.endpoint = 'new.example.com:443'`)
    .get();
  assert.deepEqual(row, { in_baseline: 1, source: 'expected' });
  assert.equal(session.jobStateVersion(), versionBefore + 1, "the ingest's own baseline writes do not bump the version");
  close();
});

test('an endpoint un-expected while an ingest is running is flagged again by that ingest', async () => {
  // cliStore is the `baseline unexpect` process
  const { cliStore, session, batch, flagged, close } = twoWriters('unexpect.db');

  batch(1, ['github.com']); // learning run
  await cliStore.baselines.markExpected('acme', { owner: 'acme', repo: 'api' }, 'new.example.com:443');
  batch(2, ['github.com', 'new.example.com']); // expected: nothing raised, and the engine caches it as in the baseline
  assert.equal(flagged(2), 0);
  const versionBefore = session.jobStateVersion();

  const removed = await cliStore.baselines.unmarkExpected('acme', { owner: 'acme', repo: 'api' }, 'new.example.com:443');
  assert.equal(removed.jobs.length, 1);
  assert.equal(session.jobStateVersion(), versionBefore + 1, 'un-expecting bumped the tenant job-state version');

  batch(3, ['github.com', 'new.example.com']); // the same ingest, next transaction: the cache must not keep it expected
  assert.equal(flagged(3), 1, 'no longer expected: flagged again');
  close();
});
