import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RulesService } from '../../src/rules/service.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { join } from 'node:path';
import { openSqlite } from '../../src/storage/sqlite/db.js';
import { writeLegacyStore } from '../storage/legacy-store.js';
import { call, coarseMismatches, ingest, proc, tailscaled, tmpStore, TS0 } from '../analysis/helpers.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';

const T = 'coarse';
const NOC = 'New-Outbound-Network-Call';

function events(tenant: string, offset = 0): NetworkCallEvent[] {
  const evs: NetworkCallEvent[] = [];
  for (let i = 0; i < 40; i++) {
    const ts = TS0 + offset + i * 5_400_000;
    const repo = ['web', 'api', 'lib'][i % 3]!;
    const run = 900 + i + offset;
    evs.push(call(tenant, repo, run, ts, tailscaled(true), { ip: `100.64.1.${i % 7}`, port: 41641 }, i % 2 ? 'acme' : 'globex'));
    evs.push(call(tenant, repo, run, ts + 1, tailscaled(false), { domain: 'gist.githubusercontent.com', port: 443 }));
    evs.push(call(tenant, repo, run, ts + 2, proc('curl'), { domain: `api${i % 4}.example.com`, port: 443 }, 'acme', i % 2 ? 'build' : 'test'));
  }
  return evs;
}

test('coarse rollups equal GROUP BYs of detections after ingest, create, update, delete, delete --restore', async () => {
  const { store, cleanup } = tmpStore();
  try {
    await ingest(store, T, events(T));
    await ingest(store, 'other', events('other'));
    assert.equal(coarseMismatches(store), 0, 'after ingest');
    const svc = new RulesService(store);
    const a = await svc.create(T, { detection_id: NOC, conditions: { process: 'tailscaled', process_sha256: 'a'.repeat(64), repo: 'web' } }, 't');
    assert.ok(a.suppressed > 0);
    assert.equal(coarseMismatches(store), 0, 'after create');
    const b = await svc.create(T, { detection_id: NOC, conditions: { endpoint: 'api1.example.com:443' } }, 't');
    assert.ok(b.suppressed > 0);
    assert.equal(coarseMismatches(store), 0, 'after second create');
    const u = await svc.update(T, a.rule.rule_id, { conditions: { process: 'tailscaled', process_sha256: 'a'.repeat(64) } }, 't');
    assert.ok(u.suppressed > 0);
    assert.equal(coarseMismatches(store), 0, 'after update');
    // new detections matching a rule are suppressed at ingest: coarse rows follow the upserts
    const later = await ingest(store, T, events(T, 3 * 86_400_000));
    assert.ok(later.suppressedOnIngest > 0);
    assert.equal(coarseMismatches(store), 0, 'after ingest with active rules');
    await svc.delete(T, b.rule.rule_id, {}, 't');
    assert.equal(coarseMismatches(store), 0, 'after delete');
    const r = await svc.delete(T, a.rule.rule_id, { restore: true }, 't');
    assert.ok(r.restored > 0);
    assert.equal(coarseMismatches(store), 0, 'after delete --restore');
    assert.equal(store.db.prepare('SELECT count(*) FROM rollup_process_endpoint WHERE n <= 0').pluck().get(), 0);
  } finally {
    cleanup();
  }
});

test('migration 2 backfills the coarse rollups of an existing store', async () => {
  const { store, dir, path, cleanup } = tmpStore();
  try {
    // The data of a store with data, as version 1 stored it (no coarse rollups); opening it applies
    // every later migration, 2 included.
    await ingest(store, T, events(T));
    const expected = store.db.prepare('SELECT count(*) FROM rollup_process_endpoint').pluck().get() as number;
    assert.ok(expected > 0);
    store.close();
    const v1 = join(dir, 'v1.db');
    writeLegacyStore(path, v1, 1);
    const db = openSqlite(v1);
    assert.equal(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'rollup_process_endpoint'").pluck().get(), 0);
    db.close();
    const s2 = SqliteStore.open(v1);
    try {
      assert.equal(s2.db.prepare('SELECT count(*) FROM rollup_process_endpoint').pluck().get(), expected);
      assert.equal(coarseMismatches(s2), 0);
    } finally {
      s2.close();
    }
  } finally {
    cleanup();
  }
});
