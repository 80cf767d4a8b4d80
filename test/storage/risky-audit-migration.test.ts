import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlite, migrate } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS } from '../../src/storage/sqlite/core-migrations.js';
import { createPool } from '../../src/storage/postgres/pool.js';
import { migratePostgres, PG_MIGRATIONS } from '../../src/storage/postgres/migrations.js';
import { UNRECORDED_ACTOR } from '../../src/storage/rules-port.js';
import { usePostgres } from '../helpers/postgres.js';

/**
 * The risky audit (SQLite migration 12, PostgreSQL 19) starts with a row for every entry the store
 * remembered before it, at the time it was remembered, with no actor: the audit's first rows are
 * the list as it stands, so a later `forget` is never the only trace of an entry.
 */

const server = usePostgres();
const EXPECTED = [
  { entry: '203.0.113.0/24', action: 'remember', actor: UNRECORDED_ACTOR, at: '2026-11-02T09:00:00.000Z' },
  { entry: '*.exfil.example', action: 'remember', actor: UNRECORDED_ACTOR, at: '2026-11-01T08:30:00.000Z' },
];

test('SQLite migration 12: every entry remembered before it has its audit row, newest first', () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-riskyaudit-'));
  const db = openSqlite(join(dir, 's.db'));
  try {
    migrate(db, CORE_MIGRATIONS.filter((m) => m.version <= 11));
    const ins = db.prepare('INSERT INTO risky_destinations (entry, added_at) VALUES (?, ?)');
    ins.run('203.0.113.0/24', '2026-11-02T09:00:00.000Z');
    ins.run('*.exfil.example', '2026-11-01T08:30:00.000Z');
    migrate(db, CORE_MIGRATIONS);
    assert.deepEqual(db.prepare('SELECT entry, action, actor, at FROM risky_audit ORDER BY id DESC').all(), EXPECTED);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('PostgreSQL migration 19: every entry remembered before it has its audit row, newest first', async () => {
  const pool = createPool(await (await server()).createDatabase('riskyaudit'));
  try {
    await migratePostgres(pool, PG_MIGRATIONS.filter((m) => m.version <= 18));
    await pool.query("INSERT INTO risky_destinations (entry, added_at) VALUES ('203.0.113.0/24', '2026-11-02T09:00:00Z'), ('*.exfil.example', '2026-11-01T08:30:00Z')");
    await migratePostgres(pool);
    assert.deepEqual((await pool.query('SELECT entry, action, actor, at FROM risky_audit ORDER BY id DESC')).rows, EXPECTED);
  } finally {
    await pool.end();
  }
});
