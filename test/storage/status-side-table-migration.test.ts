import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { RulesService } from '../../src/rules/service.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { openSqlite } from '../../src/storage/sqlite/db.js';
import { call, coarseMismatches, ingest, proc, rollupMismatches, tmpStore, TS0 } from '../analysis/helpers.js';
import { DETECTIONS } from '../helpers.js';
import { writeLegacyStore } from './legacy-store.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';

const T = 'upg';
const NOC = 'New-Outbound-Network-Call';

function events(tenant: string, offset: number): NetworkCallEvent[] {
  const evs: NetworkCallEvent[] = [];
  for (let i = 0; i < 120; i++) {
    const ts = TS0 + offset + i * 3_600_000;
    const repo = ['web', 'api', 'lib'][i % 3]!;
    evs.push(call(tenant, repo, 500 + i + offset / 1000, ts, proc(i % 4 ? 'curl' : 'node'), { domain: `h${i % 13}.example.com`, port: 443 }));
    evs.push(call(tenant, repo, 500 + i + offset / 1000, ts + 5, proc('Unknown'), { ip: `198.51.100.${i % 9}`, port: 443 }));
  }
  return evs;
}

/** (id, status, rule uid) of every detection, and the per-status totals, as the store reports them. */
async function snapshot(store: SqliteStore): Promise<{ rows: string[]; stats: unknown; totals: number[] }> {
  const rows = (
    store.db
      .prepare(`SELECT d.id, t.name, d.status, coalesce(r.rule_uid, '-') FROM ${DETECTIONS} d JOIN tenants t ON t.id = d.tenant_id LEFT JOIN rules r ON r.id = d.rule_id ORDER BY d.id`)
      .raw()
      .all() as unknown[][]
  ).map((r) => r.join('|'));
  const totals: number[] = [];
  for (const tenant of [T, 'other']) {
    for (const s of ['new', 'suppressed', 'resolved'] as const) totals.push((await store.detections.list(tenant, { statuses: [s] }, 1)).total);
  }
  return { rows, stats: [await store.detections.stats(T), await store.detections.stats('other')], totals };
}

test('migration 7 upgrades a store built at migration 6: every status and rule kept, rollups exact, rules still move', async () => {
  const src = tmpStore();
  const path = join(src.dir, 'v6.db');
  try {
    // a current store with suppressions made retroactively and at ingest, in two tenants
    await ingest(src.store, T, events(T, 0));
    await ingest(src.store, 'other', events('other', 0));
    const svc = new RulesService(src.store);
    const rule = await svc.create(T, { detection_id: NOC, conditions: { process: 'Unknown' } }, 't');
    assert.ok(rule.suppressed > 0);
    await svc.create('other', { detection_id: NOC, conditions: { process: 'node' } }, 't');
    assert.ok((await ingest(src.store, T, events(T, 10 * 86_400_000))).suppressedOnIngest > 0);
    src.store.close();
    // the same data as version 6 stored it, with a few detections resolved at the source
    writeLegacyStore(src.path, path, 6, [1, 2, 3, 250, 251]);
    const legacy = openSqlite(path);
    const expected = (
      legacy
        .prepare(`SELECT d.id, t.name, d.status, coalesce(r.rule_uid, '-') FROM detections d JOIN tenants t ON t.id = d.tenant_id LEFT JOIN rules r ON r.id = d.rule_id ORDER BY d.id`)
        .raw()
        .all() as unknown[][]
    ).map((r) => r.join('|'));
    const byStatus = legacy.prepare('SELECT status, count(*) FROM detections GROUP BY 1 ORDER BY 1').raw().all();
    assert.deepEqual(byStatus.map((r) => (r as number[])[0]), [0, 1, 2], 'the legacy store has every status');
    legacy.close();

    const store = SqliteStore.open(path);
    try {
      const cols = (store.db.prepare('PRAGMA table_info(detections)').all() as { name: string }[]).map((c) => c.name);
      assert.ok(!cols.includes('status') && !cols.includes('rule_id'), cols.join(','));
      assert.equal(store.db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'detections_by_rule'").pluck().get(), 0);
      const snap = await snapshot(store);
      assert.deepEqual(snap.rows, expected);
      assert.equal(store.db.prepare('SELECT count(*) FROM detection_status').pluck().get(), expected.filter((r) => r.split('|')[2] !== '0').length);
      assert.equal(rollupMismatches(store), 0);
      assert.equal(coarseMismatches(store), 0);
      assert.deepEqual(snap.totals.slice(0, 3).map((n) => n > 0), [true, true, true]);
      // rules keep working on the upgraded store: restore gives back exactly the rule's detections
      const upgraded = new RulesService(store);
      const own = expected.filter((r) => r.split('|')[3] === rule.rule.rule_id).length;
      const del = await upgraded.delete(T, rule.rule.rule_id, { restore: true }, 't');
      assert.equal(del.restored, own);
      assert.equal(rollupMismatches(store), 0);
      assert.equal(coarseMismatches(store), 0);
      const unknownNew = store.db
        .prepare(`SELECT count(*) FROM ${DETECTIONS} d JOIN processes p ON p.id = d.process_id JOIN tenants t ON t.id = d.tenant_id
                  WHERE t.name = ? AND p.norm_name = 'unknown' AND d.status = 0`)
        .pluck()
        .get(T) as number;
      const again = await upgraded.create(T, { detection_id: NOC, conditions: { process: 'Unknown' } }, 't');
      assert.equal(again.suppressed, unknownNew);
      assert.equal(rollupMismatches(store), 0);
    } finally {
      store.close();
    }
  } finally {
    src.cleanup();
  }
});
