import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { usePostgres } from '../helpers/postgres.js';
import { openStore, StoreMissingError, StoreUnavailableError } from '../../src/storage/open-store.js';
import { resolveStoreLocation } from '../../src/storage/location.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const server = usePostgres();

test('SQLite: read mode wants an existing store; create mode makes one', async () => {
  const loc = resolveStoreLocation(join(tmp.dir, 'open.db'));
  await assert.rejects(openStore(loc, 'read'), (e: unknown) => e instanceof StoreMissingError && /no store at .*open\.db \(from --db\)/.test((e as Error).message));
  assert.equal(existsSync(loc.target), false);
  const s = await openStore(loc, 'create');
  try {
    assert.equal(s.backend, 'sqlite');
    assert.deepEqual(await s.detections.tenants(), []);
  } finally {
    await s.close();
  }
  const again = await openStore(loc, 'read');
  await again.close();
});

test('PostgreSQL: read mode refuses a database without the schema; create mode migrates it; the ports work on it', async () => {
  const url = await (await server()).createDatabase('open');
  const loc = resolveStoreLocation(undefined, { EGRESS_TRIAGE_DB: url });
  await assert.rejects(openStore(loc, 'read'), (e: unknown) => e instanceof StoreMissingError && /no egress-triage schema in postgres:\/\/.*\(from EGRESS_TRIAGE_DB\): run "egress-triage db migrate/.test((e as Error).message));
  const s = await openStore(loc, 'create');
  try {
    assert.equal(s.backend, 'postgres');
    const lease = await s.leases.acquireIngestLease('acme', { source: 'x', pid: 1, host: 'h' });
    const scope = await s.ingest!.beginSource({ atomic: false });
    const t = await scope.tenant('acme');
    const versions = (await t.read({ jobs: [], runs: [], observations: [] })).versions;
    await t.write({
      lease: { token: lease.token, ttlMs: lease.ttlMs }, expect: versions, newJobs: [{ tempRef: -1, key: { owner: 'o', repo: 'r', workflow: 'w', job: 'j' } }],
      newRuns: [], runSpans: [], completedRuns: [], jobStates: [], baseline: [], observations: [], detections: [], imported: [],
    });
    await scope.commit();
    await lease.release();
    assert.deepEqual(await s.detections.tenants(), ['acme']);
    assert.equal((await s.detections.stats('acme')).jobs, 1);
  } finally {
    await s.close();
  }
  const read = await openStore(loc, 'read');
  await read.close();
});

test('PostgreSQL: an unreachable server is a StoreUnavailableError naming the store without its password', async () => {
  const loc = resolveStoreLocation('postgres://postgres:hunter2@127.0.0.1:1/egress');
  await assert.rejects(openStore(loc, 'read'), (e: unknown) =>
    e instanceof StoreUnavailableError && e.kind === 'io' && /postgres:\/\/postgres:\*\*\*@127\.0\.0\.1:1\/egress: cannot reach the server/.test(e.message) && !e.message.includes('hunter2'));
});
