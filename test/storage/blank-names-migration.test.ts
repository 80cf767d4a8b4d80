import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { migrate, openSqlite } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS } from '../../src/storage/sqlite/core-migrations.js';
import { createPool } from '../../src/storage/postgres/pool.js';
import { migratePostgres, PG_MIGRATIONS } from '../../src/storage/postgres/migrations.js';
import { usePostgres } from '../helpers/postgres.js';
import { tempDir } from '../helpers.js';

/**
 * SQLite core migration 15 and PostgreSQL migration 22: process names stored before characters drawn
 * blank, private-use and unassigned code points were stripped are stored as the name they show, and
 * so are the suspected-impostor flags that name them (a flag meets its binary by name).
 */

const tmp = tempDir('egress-triage-blank-names-');
after(() => tmp.cleanup());
const server = usePostgres();

// stored name -> what it is now
const NAMES: [stored: string, now: string][] = [
  ['tailscaled\u2800', 'tailscaled'],
  ['tail\u{1D159}scaled', 'tailscaled'],
  ['tailscaled\uE000', 'tailscaled'],
  ['tailscale\u2800\u0301d', 'tailscal\u00e9d'],
  ['zerotier-one', 'zerotier-one'],
  ['node', 'node'],
  ['таilscaled', 'таilscaled'],
];
const SHA = (i: number) => String(i).repeat(64).slice(0, 64);
// two flags of one hash-less binary, under its old and its new name: one is kept
const FLAGS: [process: string, binary: string][] = [
  ['tailscaled\u2800', 'sha:' + SHA(1)],
  ['tailscaled\uE000', 'path:/tmp/.x/tailscaled'],
  ['tailscaled', 'path:/tmp/.x/tailscaled'],
  ['node', 'path:/usr/bin/node'],
];

const EXPECTED_NAMES = NAMES.map(([, now]) => now);
const EXPECTED_FLAGS = [
  ['node', 'path:/usr/bin/node'],
  ['tailscaled', 'path:/tmp/.x/tailscaled'],
  ['tailscaled', 'sha:' + SHA(1)],
];

test('SQLite migration 15: stored process names and flags lose the characters drawn blank, private-use or unassigned', () => {
  const db = openSqlite(join(tmp.dir, 'v14.db'));
  try {
    migrate(db, CORE_MIGRATIONS.filter((m) => m.version <= 14));
    db.prepare("INSERT INTO tenants (id, name, created_at) VALUES (1, 'acme', 0)").run();
    const proc = db.prepare("INSERT INTO processes (id, variant_key, name, norm_name, path, sha256, parent_chain) VALUES (?, ?, ?, ?, NULL, ?, '[]')");
    NAMES.forEach(([stored], i) => proc.run(i + 1, `k${i}`, stored, stored, SHA(i + 1)));
    const flag = db.prepare("INSERT INTO suspected_impostors (tenant_id, process, binary, sha256, path, reason) VALUES (1, ?, ?, NULL, NULL, 'r')");
    for (const [p, b] of FLAGS) flag.run(p, b);
    assert.deepEqual(migrate(db, CORE_MIGRATIONS), CORE_MIGRATIONS.filter((m) => m.version > 14).map((m) => m.version));
    assert.deepEqual(db.prepare('SELECT norm_name FROM processes ORDER BY id').pluck().all(), EXPECTED_NAMES);
    assert.deepEqual(db.prepare('SELECT process, binary FROM suspected_impostors ORDER BY process, binary').raw().all(), EXPECTED_FLAGS);
  } finally {
    db.close();
  }
});

test('PostgreSQL migration 22: stored process names and flags lose the characters drawn blank, private-use or unassigned', async () => {
  const pool = createPool(await (await server()).createDatabase('blank_names'));
  try {
    await migratePostgres(pool, PG_MIGRATIONS.filter((m) => m.version <= 21));
    await pool.query("INSERT INTO tenants (tenant_id, name, created_at) VALUES (1, 'acme', 0)");
    for (const [i, [stored]] of NAMES.entries()) {
      await pool.query("INSERT INTO processes (tenant_id, id, variant_key, name, norm_name, path, sha256, parent_chain) VALUES (1, $1, $2, $3, $3, NULL, $4, '[]')", [i + 1, `k${i}`, stored, SHA(i + 1)]);
    }
    for (const [p, b] of FLAGS) {
      await pool.query(`INSERT INTO suspected_impostors (tenant_id, process, "binary", sha256, path, reason) VALUES (1, $1, $2, NULL, NULL, 'r')`, [p, b]);
    }
    assert.deepEqual(await migratePostgres(pool), PG_MIGRATIONS.filter((m) => m.version > 21).map((m) => m.version));
    assert.deepEqual((await pool.query('SELECT norm_name FROM processes ORDER BY id')).rows.map((r) => r.norm_name), EXPECTED_NAMES);
    const flags = (await pool.query('SELECT process, "binary" FROM suspected_impostors ORDER BY process COLLATE "C", "binary" COLLATE "C"')).rows;
    assert.deepEqual(flags.map((r) => [r.process, r.binary]), EXPECTED_FLAGS);
  } finally {
    await pool.end();
  }
});
