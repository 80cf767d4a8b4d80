import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { toVariant } from '../../src/detection/engine.js';

/**
 * The baselines page asks for the addresses of every named entry of its jobs when a risky range is
 * configured: a job can hold more endpoints than SQLite takes bound variables (32,766), and the page
 * must still answer (it failed with "too many SQL variables", found by review).
 */
test('SQLite: callAddresses answers for more endpoints than SQLite takes bound variables', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-addr-'));
  const store = SqliteStore.open(join(dir, 's.db'));
  try {
    const s = store.openIngestSession('t');
    const key = { owner: 'o', repo: 'r', workflow: 'w.yml', job: 'build' };
    const N = 40_000;
    const endpoints = Array.from({ length: N }, (_, i) => `h${i}.example:443`);
    s.transaction(() => {
      const job = s.getJob(key.owner, key.repo, key.workflow, key.job);
      const run = s.createRun(job.ref, '1', 1, null, 1_000, false, []);
      const curl = toVariant({ name: 'curl', path: '/usr/bin/curl', sha256: 'a'.repeat(64) });
      endpoints.forEach((e, i) => s.insertObservation(run, e, `198.51.${(i >> 8) & 255}.${i & 255}`, curl, false, 'tcp', 1_000 + i));
    });
    const perJob = await store.dashboard.callAddresses('t', { endpoints, jobs: [key] });
    assert.equal(perJob.length, N);
    assert.deepEqual(perJob.find((a) => a.endpoint === 'h39999.example:443'), { endpoint: 'h39999.example:443', ip: '198.51.156.63', job: key });
    const all = await store.dashboard.callAddresses('t', { endpoints: [...endpoints, ...endpoints.map((e) => `x${e}`)] });
    assert.equal(all.length, N);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
