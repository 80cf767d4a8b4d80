import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { migrate, openSqlite } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS } from '../../src/storage/sqlite/core-migrations.js';
import { runCli, tempDir } from '../helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * A copy of a current store with its runs as migration 8 left them (the sample's JSON text on each
 * run row), built from the runs table and indexes that migrations 1-8 themselves create.
 */
function asVersion8(current: string, dest: string): void {
  const fresh = openSqlite(join(tmp.dir, 'fresh-v8.db'));
  migrate(fresh, CORE_MIGRATIONS.filter((m) => m.version <= 8));
  const ddl = fresh.prepare("SELECT type, name, sql FROM sqlite_schema WHERE tbl_name = 'runs' AND sql IS NOT NULL").all() as { type: string; name: string; sql: string }[];
  fresh.close();
  copyFileSync(current, dest);
  const db = openSqlite(dest);
  try {
    db.pragma('foreign_keys = OFF');
    db.transaction(() => {
      db.exec(ddl.find((d) => d.type === 'table')!.sql.replace(/^CREATE TABLE "?runs"?/, 'CREATE TABLE runs_v8'));
      db.exec(`INSERT INTO runs_v8 (id, job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, completed, learning, expected_sample)
        SELECT r.id, r.job_ref, r.run_id, r.run_attempt, r.gh_job_id, r.first_ts, r.last_ts, r.completed, r.learning, coalesce(es.sample, '[]')
        FROM runs r LEFT JOIN expected_samples es ON es.id = r.expected_id`);
      db.exec('DROP TABLE runs; ALTER TABLE runs_v8 RENAME TO runs; DROP TABLE expected_samples; DELETE FROM schema_migrations WHERE version = 9');
      for (const d of ddl) if (d.type === 'index') db.exec(d.sql);
    })();
  } finally {
    db.close();
  }
}

/** Every detection's id with the expected endpoints it shows, as the store reports them. */
async function expectedById(path: string): Promise<Map<string, string[]>> {
  const store = SqliteStore.open(path);
  try {
    const page = await store.detections.list('default', {}, 100_000);
    return new Map(page.detections.map((d) => [d.id, d.expected_outbound_connections]));
  } finally {
    store.close();
  }
}

test('migration 9 stores each expected-endpoint sample once, and every detection still shows its own', async () => {
  const sample = join(tmp.dir, 'sample.ndjson');
  const current = join(tmp.dir, 'current.db');
  assert.equal(runCli(['generate', '--runs', '12', '--events', '6000', '--seed', '7', '--out', sample]).status, 0);
  const ing = runCli(['ingest', sample, '--db', current]);
  assert.equal(ing.status, 0, ing.stderr);
  const before = await expectedById(current);
  assert.ok(before.size > 50, `${before.size} detections`);
  const shown = [...before.values()].filter((e) => e.length > 0);
  assert.ok(shown.length > 0, 'some detections were raised after the baseline was learned');

  // the same data as migration 8 stored it: the sample's JSON text on every run row
  const v8 = join(tmp.dir, 'v8.db');
  asVersion8(current, v8);
  const legacy = openSqlite(v8);
  const texts = legacy.prepare("SELECT expected_sample FROM runs WHERE expected_sample <> '[]'").pluck().all() as string[];
  legacy.close();
  const distinct = new Set(texts);
  assert.ok(distinct.size < texts.length, `runs share samples (${distinct.size} distinct of ${texts.length})`);

  assert.deepEqual(await expectedById(v8), before, 'every detection shows the same expected endpoints after the migration');
  const db = openSqlite(v8);
  try {
    assert.equal(db.prepare('SELECT count(*) FROM expected_samples').pluck().get(), distinct.size);
    assert.deepEqual(new Set(db.prepare('SELECT sample FROM expected_samples').pluck().all()), distinct);
    assert.equal(db.prepare('SELECT count(*) FROM runs WHERE expected_id IS NOT NULL').pluck().get(), texts.length);
    const columns = (db.prepare('PRAGMA table_info(runs)').all() as { name: string }[]).map((c) => c.name);
    assert.ok(!columns.includes('expected_sample'), 'the text column is gone');
  } finally {
    db.close();
  }

  // New runs written after the migration name the samples already stored.
  const more = join(tmp.dir, 'more.ndjson');
  assert.equal(runCli(['generate', '--runs', '14', '--events', '7000', '--seed', '7', '--out', more]).status, 0);
  for (const db of [v8, current]) assert.equal(runCli(['ingest', more, '--db', db]).status, 0);
  const after2 = await expectedById(v8);
  assert.deepEqual(after2, await expectedById(current), 'the migrated store and the current one store the same');
  const check = openSqlite(v8);
  try {
    const rows = check.prepare('SELECT count(*) AS n, count(DISTINCT sample) AS d FROM expected_samples').get() as { n: number; d: number };
    assert.equal(rows.n, rows.d);
    const used = check.prepare('SELECT count(DISTINCT expected_id) FROM runs').pluck().get() as number;
    assert.equal(used, rows.n, 'every stored sample is some run\'s');
  } finally {
    check.close();
  }
});
