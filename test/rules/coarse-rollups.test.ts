import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RulesService } from '../../src/rules/service.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { openSqlite, migrate } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS } from '../../src/storage/sqlite/core-migrations.js';
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
    ingest(store, T, events(T));
    ingest(store, 'other', events('other'));
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
    const later = ingest(store, T, events(T, 3 * 86_400_000));
    assert.ok(later.suppressedOnIngest > 0);
    assert.equal(coarseMismatches(store), 0, 'after ingest with active rules');
    await svc.delete(T, b.rule.rule_id, {}, 't');
    assert.equal(coarseMismatches(store), 0, 'after delete');
    const r = await svc.delete(T, a.rule.rule_id, { restore: true }, 't');
    assert.ok(r.restored > 0);
    assert.equal(coarseMismatches(store), 0, 'after delete --restore');
    assert.equal(store.db.prepare('SELECT count(*) FROM rollup_process_endpoint WHERE n <= 0').pluck().get(), 0);
    assert.equal(store.db.prepare("SELECT count(*) FROM meta WHERE key = 'coarse_rollup_bulk'").pluck().get(), 0);
  } finally {
    cleanup();
  }
});

test('migration 2 backfills the coarse rollups of an existing store', () => {
  const { store, path, cleanup } = tmpStore();
  try {
    // A store with data, then taken back to how it stood before migration 2: every object that
    // migration 2 creates is dropped and its version forgotten, so opening it applies 2 again.
    ingest(store, T, events(T));
    const expected = store.db.prepare('SELECT count(*) FROM rollup_process_endpoint').pluck().get() as number;
    assert.ok(expected > 0);
    store.close();
    const created = objectsOfMigration2();
    const db = openSqlite(path);
    for (const type of ['trigger', 'index', 'table']) {
      for (const name of created.filter((o) => o.type === type).map((o) => o.name)) db.exec(`DROP ${type.toUpperCase()} IF EXISTS "${name}"`);
    }
    db.prepare('DELETE FROM schema_migrations WHERE version = 2').run();
    db.close();
    const s2 = SqliteStore.open(path);
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

/** The schema objects that migration 2 adds: all migrations' objects less those of all but 2. */
function objectsOfMigration2(): { type: string; name: string }[] {
  const list = (versions: (v: number) => boolean) => {
    const db = openSqlite(':memory:');
    try {
      migrate(db, CORE_MIGRATIONS.filter((m) => versions(m.version)));
      return db.prepare("SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'").all() as { type: string; name: string }[];
    } finally {
      db.close();
    }
  };
  const without = new Set(list((v) => v !== 2).map((o) => `${o.type}:${o.name}`));
  return list(() => true).filter((o) => !without.has(`${o.type}:${o.name}`));
}

