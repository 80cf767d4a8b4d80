import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from '../../helpers/postgres.js';
import { createPool } from '../../../src/storage/postgres/pool.js';
import { migratePostgres, schemaStatus, PG_MIGRATIONS, type PgMigration } from '../../../src/storage/postgres/migrations.js';
import { TABLE_PLACEMENT } from '../../../src/storage/postgres/distribution.js';

const server = usePostgres();

test('migrations are versioned: status shows what is pending, migrate applies it once', async () => {
  const pool = createPool(await (await server()).createDatabase('mig'));
  try {
    const before = await schemaStatus(pool);
    assert.deepEqual(before.applied, []);
    assert.deepEqual(before.pending.map((p) => p.version), PG_MIGRATIONS.map((m) => m.version));
    assert.deepEqual(await migratePostgres(pool), PG_MIGRATIONS.map((m) => m.version));
    const after = await schemaStatus(pool);
    assert.deepEqual(after.pending, []);
    assert.deepEqual(after.applied.map((a) => a.version), PG_MIGRATIONS.map((m) => m.version));
    assert.deepEqual(await migratePostgres(pool), [], 'a second run applies nothing');
  } finally {
    await pool.end();
  }
});

test('concurrent migrators are safe: each version is applied exactly once', async () => {
  const url = await (await server()).createDatabase('mig');
  const pools = Array.from({ length: 5 }, () => createPool(url, { max: 1 }));
  try {
    const results = await Promise.all(pools.map((p) => migratePostgres(p)));
    assert.deepEqual(results.flat().sort(), PG_MIGRATIONS.map((m) => m.version).sort());
    const rows = (await pools[0]!.query('SELECT version FROM schema_migrations')).rows;
    assert.equal(rows.length, PG_MIGRATIONS.length);
  } finally {
    await Promise.all(pools.map((p) => p.end()));
  }
});

test('a failing migration is rolled back whole and not recorded', async () => {
  const pool = createPool(await (await server()).createDatabase('mig'));
  const bad: PgMigration[] = [...PG_MIGRATIONS, { version: 99, name: 'broken', up: 'CREATE TABLE half_done (x int); SELECT no_such_function();' }];
  try {
    await assert.rejects(migratePostgres(pool, bad), /migration 99 \(broken\) failed and was rolled back/);
    assert.equal((await pool.query("SELECT to_regclass('half_done') AS t")).rows[0].t, null);
    const s = await schemaStatus(pool, bad);
    assert.deepEqual(s.pending.map((p) => p.version), [99]);
    assert.deepEqual(s.unknown, []);
  } finally {
    await pool.end();
  }
});

test('every table has a Citus placement, and tenant_id leads every key of every distributed table', async () => {
  const pool = createPool(await (await server()).createDatabase('mig'));
  try {
    await migratePostgres(pool);
    const tables = (await pool.query<{ t: string }>("SELECT tablename AS t FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")).rows.map((r) => r.t);
    assert.deepEqual([...TABLE_PLACEMENT.map((p) => p.table)].sort(), tables);
    const distributed = new Set(TABLE_PLACEMENT.filter((p) => p.kind === 'distributed').map((p) => p.table));
    // primary keys, unique constraints, foreign keys (both sides) and unique indexes
    const keys = (
      await pool.query<{ tbl: string; name: string; first: string; ref_tbl: string | null; ref_first: string | null }>(`
        SELECT c.conrelid::regclass::text AS tbl, c.conname AS name,
               (SELECT attname FROM pg_attribute WHERE attrelid = c.conrelid AND attnum = c.conkey[1]) AS first,
               CASE WHEN c.contype = 'f' THEN c.confrelid::regclass::text END AS ref_tbl,
               CASE WHEN c.contype = 'f' THEN (SELECT attname FROM pg_attribute WHERE attrelid = c.confrelid AND attnum = c.confkey[1]) END AS ref_first
        FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
        WHERE n.nspname = 'public' AND c.contype IN ('p', 'u', 'f')
        UNION ALL
        SELECT i.indrelid::regclass::text, ci.relname,
               (SELECT attname FROM pg_attribute WHERE attrelid = i.indrelid AND attnum = i.indkey[0]), NULL, NULL
        FROM pg_index i JOIN pg_class ci ON ci.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ci.relnamespace
        WHERE n.nspname = 'public' AND i.indisunique`)
    ).rows;
    const checked = keys.filter((k) => distributed.has(k.tbl));
    assert.ok(checked.length > 30, 'the catalog query found the keys');
    for (const k of checked) {
      assert.equal(k.first, 'tenant_id', `${k.tbl}.${k.name} must lead with tenant_id`);
      if (k.ref_tbl) assert.equal(k.ref_first, 'tenant_id', `${k.tbl}.${k.name} must reference ${k.ref_tbl} by tenant_id first`);
    }
  } finally {
    await pool.end();
  }
});
