import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from '../../helpers/postgres.js';
import { createPool, type PgPool } from '../../../src/storage/postgres/pool.js';
import { migratePostgres, PG_MIGRATIONS } from '../../../src/storage/postgres/migrations.js';
import { PgDictionaries } from '../../../src/storage/postgres/dictionaries.js';

/**
 * Migration 13 on a populated version-12 store: each tenant's distinct expected-endpoint samples are
 * stored once, every run names its own by id (none for '[]'), and the dictionary the ingest uses
 * afterwards finds the migrated samples instead of storing them again.
 */

const server = usePostgres();
const A = JSON.stringify(['api.github.com:443', 'registry.npmjs.org:443']);
const B = JSON.stringify(['api.github.com:443']);
// longer than a btree entry may be: the unique key is the text's SHA-256, not the text
const LONG = JSON.stringify(Array.from({ length: 20 }, (_, i) => `${'x'.repeat(240)}${i}.example.com:443`));

async function seedV12(pool: PgPool): Promise<void> {
  await migratePostgres(pool, PG_MIGRATIONS.filter((m) => m.version <= 12));
  await pool.query(`
    INSERT INTO tenants (name, created_at) VALUES ('acme', 0), ('other', 0);
    INSERT INTO jobs (tenant_id, owner, repo, workflow, job) VALUES (1, 'o', 'r', 'ci.yml', 'build'), (2, 'x', 'y', 'ci.yml', 'build');`);
  const runs: [tenant: number, job: number, sample: string][] = [[1, 1, A], [1, 1, A], [1, 1, '[]'], [1, 1, B], [1, 1, LONG], [2, 2, A], [2, 2, '[]']];
  for (const [i, [tenant, job, sample]] of runs.entries()) {
    await pool.query('INSERT INTO runs (tenant_id, job_ref, run_id, run_attempt, first_ts, last_ts, expected_sample) VALUES ($1, $2, $3, 1, 0, 0, $4)', [tenant, job, String(i), sample]);
  }
}

const SAMPLE_OF_RUN = `SELECT r.tenant_id, r.run_id, coalesce(es.sample, '[]') AS sample FROM runs r
  LEFT JOIN expected_samples es ON es.tenant_id = r.tenant_id AND es.id = r.expected_id ORDER BY r.tenant_id, r.run_id`;

test('migration 13 stores each tenant’s samples once and every run keeps its own; the ingest dictionary reuses them', async () => {
  const pool = createPool(await (await server()).createDatabase('mig13'));
  try {
    await seedV12(pool);
    const before = (await pool.query('SELECT tenant_id, run_id, expected_sample AS sample FROM runs ORDER BY tenant_id, run_id')).rows;
    // 13, and whatever came after it
    assert.deepEqual(await migratePostgres(pool), PG_MIGRATIONS.filter((m) => m.version >= 13).map((m) => m.version));
    assert.deepEqual((await pool.query(SAMPLE_OF_RUN)).rows, before, 'every run shows the sample it had');
    const stored = (await pool.query('SELECT tenant_id, sample FROM expected_samples ORDER BY tenant_id, id')).rows;
    assert.deepEqual(stored, [
      { tenant_id: 1, sample: A }, { tenant_id: 1, sample: B }, { tenant_id: 1, sample: LONG }, { tenant_id: 2, sample: A },
    ], 'once per tenant, in first-use order, none for "[]"');
    assert.equal(Number((await pool.query('SELECT count(*) AS n FROM runs WHERE expected_id IS NULL')).rows[0].n), 2);
    const columns = (await pool.query("SELECT column_name FROM information_schema.columns WHERE table_name = 'runs'")).rows.map((r) => r.column_name);
    assert.ok(!columns.includes('expected_sample'), 'the text column is gone');

    const c = await pool.connect();
    try {
      await c.query('BEGIN');
      const dict = new PgDictionaries(1);
      const ids = await dict.sampleIds(c, [A, LONG, '["new.example:443"]']);
      const idOf = async (tenant: number, sample: string) =>
        Number((await c.query('SELECT id FROM expected_samples WHERE tenant_id = $1 AND sample = $2', [tenant, sample])).rows[0].id);
      assert.equal(ids.get(A), await idOf(1, A), 'a migrated sample is found, not stored again');
      assert.equal(ids.get(LONG), await idOf(1, LONG));
      assert.notEqual(ids.get(A), await idOf(2, A), "another tenant's copy is its own");
      assert.equal(Number((await c.query('SELECT count(*) AS n FROM expected_samples WHERE tenant_id = 1')).rows[0].n), 4, 'only the new sample was added');
      await c.query('ROLLBACK');
    } finally {
      c.release();
    }
  } finally {
    await pool.end();
  }
});
