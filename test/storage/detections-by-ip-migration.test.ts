import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlite, migrate } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS } from '../../src/storage/sqlite/core-migrations.js';

/**
 * Migration 11 adds detections_by_ip. On a store that was ANALYZEd, an index without statistics looks
 * perfectly selective to the planner, which then lists a tenant's detections through it and sorts;
 * the migration gives it statistics at once. A store never analysed is left so.
 */
test('migration 11: a store that was ANALYZEd gets statistics for detections_by_ip, and its detection list keeps the time index', () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-ipidx-'));
  try {
    for (const analysed of [true, false]) {
      const db = openSqlite(join(dir, `s-${analysed}.db`));
      try {
        migrate(db, CORE_MIGRATIONS.filter((m) => m.version <= 10));
        db.exec("INSERT INTO tenants (id, name, created_at) VALUES (1, 't', 0)");
        const ins = db.prepare(
          `INSERT INTO detections (tenant_id, type_id, job_ref, run_ref, endpoint_id, ip_id, direct_ip, port, protocol, process_id, ts, ext)
           VALUES (1, 1, 1, ?, ?, ?, 0, 443, 'tcp', 1, ?, '')`,
        );
        db.transaction(() => {
          for (let i = 0; i < 2000; i++) ins.run(i, i % 50, i % 3, 1_700_000_000_000 + i);
        })();
        if (analysed) db.exec('ANALYZE');
        migrate(db, CORE_MIGRATIONS);
        const stat = db.prepare("SELECT 1 FROM sqlite_schema WHERE name = 'sqlite_stat1'").get()
          ? (db.prepare("SELECT stat FROM sqlite_stat1 WHERE idx = 'detections_by_ip'").pluck().get() as string | undefined)
          : undefined;
        if (!analysed) {
          assert.equal(stat, undefined, 'a store never analysed is not analysed by the migration');
          continue;
        }
        assert.match(stat ?? '', /^2000 /, 'statistics for the new index');
        const plan = (db.prepare('EXPLAIN QUERY PLAN SELECT id FROM detections WHERE tenant_id = 1 ORDER BY ts DESC, id DESC LIMIT 50').all() as { detail: string }[])
          .map((r) => r.detail)
          .join('\n');
        assert.match(plan, /detections_by_time/);
        assert.doesNotMatch(plan, /TEMP B-TREE/);
      } finally {
        db.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
