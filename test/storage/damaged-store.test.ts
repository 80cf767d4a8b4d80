import { test, after } from 'node:test';
import type { SpawnSyncReturns } from 'node:child_process';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrate, openSqlite, tableNames } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS, CORE_TABLES } from '../../src/storage/sqlite/core-migrations.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import { POLICY_MIGRATIONS, POLICY_TABLES } from '../../src/storage/sqlite/policy-migrations.js';
import { createPool } from '../../src/storage/postgres/pool.js';
import { migratePostgres, PG_MIGRATIONS, PG_TABLES, tableNames as pgTableNames } from '../../src/storage/postgres/migrations.js';
import { StoreDamagedError } from '../../src/storage/schema-version.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';
import { usePostgres } from '../helpers/postgres.js';
import { nativeEvent, ndjson, runCli, tempDir } from '../helpers.js';

/**
 * A store that lost a table its schema made is refused when it opens, with the table named and the
 * documented IO exit code: not answered at its first query as "no such table", an internal error.
 */

const tmp = tempDir('egress-triage-damaged-');
after(() => tmp.cleanup());
const server = usePostgres();
const { storeTest } = eachStore();

const sorted = (xs: Iterable<string>) => [...xs].filter((t) => t !== 'schema_migrations').sort();

test('the table lists the check holds a store to are exactly what the migrations make, on both backends', async () => {
  const core = openSqlite(':memory:');
  migrate(core, CORE_MIGRATIONS);
  assert.deepEqual(sorted(tableNames(core)), [...CORE_TABLES].sort());
  core.close();
  const policy = openSqlite(':memory:');
  migrate(policy, POLICY_MIGRATIONS);
  assert.deepEqual(sorted(tableNames(policy)), [...POLICY_TABLES].sort());
  policy.close();
  const pool = createPool(await (await server()).createDatabase('tables'));
  try {
    await migratePostgres(pool);
    assert.deepEqual(sorted(await pgTableNames(pool)), [...PG_TABLES].sort());
  } finally {
    await pool.end();
  }
});

/** Makes the store at `at` with a few runs, as a user's first ingest would. */
function ingestInto(at: StoreUnderTest, tag: string): void {
  const events = [1, 2, 3].map((run) => nativeEvent({ run, domain: 'registry.npmjs.org', process: 'node' }));
  const made = runCli(['ingest', tmp.file(`${at.backend}-${tag}.ndjson`, ndjson(events)), '--db', at.db, '--format', 'native']);
  assert.equal(made.status, 0, made.stderr);
}

function assertDamaged(r: SpawnSyncReturns<string>, table: string, what: string): void {
  assert.equal(r.status, EXIT.IO, `${what}: ${r.stderr}`);
  assert.match(r.stderr, new RegExp(`damaged: table ${table} is missing, though the migrations recorded in it made it\\. Restore it from a backup`), what);
  assert.doesNotMatch(r.stderr, /internal error|^\s+at /m, what);
}

storeTest('a store missing a table: every command that opens it exits 5 naming the table, and changes nothing', async (at) => {
  ingestInto(at, 'core');
  await at.rows('DROP TABLE risky_audit');
  const runsBefore = await at.value<number>('SELECT count(*) FROM runs');
  const fileBefore = at.backend === 'sqlite' ? readFileSync(at.db) : null;
  const more = tmp.file(`${at.backend}-more.ndjson`, ndjson([4].map((run) => nativeEvent({ run, domain: 'x.example', process: 'node' }))));
  for (const args of [['rules', 'list'], ['detections', 'list', '--json'], ['ingest', more, '--format', 'native'], ['db', 'migrate'], ['mcp'], ['serve', '--listen', '127.0.0.1:0']]) {
    // bounded: a server that took the store would run until killed
    assertDamaged(runCli([...args, '--db', at.db], { input: '', timeoutMs: 30_000 }), 'risky_audit', args.join(' '));
  }
  assert.equal(Number(await at.value<number>('SELECT count(*) FROM runs')), Number(runsBefore), 'the refused ingest stored nothing');
  if (fileBefore) assert.deepEqual(readFileSync(at.db), fileBefore, 'the SQLite file is unchanged');
  // db status reports it, and changes nothing either
  const status = runCli(['db', 'status', '--db', at.db]);
  assert.equal(status.status, EXIT.OK, status.stderr);
  assert.match(status.stdout, /: damaged: table risky_audit is missing, though its migrations made it; commands that need it refuse the store \(exit 5\)/);
  const json = JSON.parse(runCli(['db', 'status', '--db', at.db, '--json']).stdout) as { upToDate: boolean; missing: string[]; pending: unknown[] };
  assert.deepEqual([json.upToDate, json.missing, json.pending], [false, ['risky_audit'], []]);
});

storeTest('a store that lost a policy table: the policy commands, a gateway and the store commands all exit 5 naming it; db status lists it', async (at) => {
  ingestInto(at, 'policy');
  const policy = tmp.file(`${at.backend}-allow.yaml`, 'version: 1\ndefault: allow\n');
  // a server with a policy makes the policy tables in the store
  const made = runCli(['mcp', '--policy', policy, '--db', at.db], { input: '' });
  assert.equal(made.status, 0, made.stderr);
  await at.rows('DROP TABLE policy_audit');
  for (const args of [['audit'], ['approvals', 'list'], ['detections', 'list'], ['mcp', '--policy', policy]]) {
    const r = runCli([...args, '--db', at.db], { input: '', timeoutMs: 30_000 });
    assertDamaged(r, 'policy_audit', args.join(' '));
    // the policy commands name the store as the gateways do (they said "store: it is damaged ...")
    if (args[0] === 'audit' || args[0] === 'approvals') assert.ok(r.stderr.startsWith(`egress-triage: --db ${at.db}: the store of approvals and audit: it is damaged`), r.stderr);
  }
  // both gateways name the store, as the store commands do: a user running several must know which to restore
  const gateways = [
    ['gateway', '--db', at.db, '--policy', policy, '--upstream', 'http://127.0.0.1:9/mcp', '--listen', '127.0.0.1:0'],
    ['gateway', '--db', at.db, '--policy', policy, '--', process.execPath, '-e', ''],
  ];
  for (const args of gateways) {
    const r = runCli(args, { input: '', timeoutMs: 30_000 });
    assertDamaged(r, 'policy_audit', args.join(' '));
    assert.ok(r.stderr.startsWith(`egress-triage: --db ${at.db}: the store of approvals and audit: it is damaged`), r.stderr);
  }
  const json = JSON.parse(runCli(['db', 'status', '--db', at.db, '--json']).stdout) as { missing: string[] };
  assert.deepEqual(json.missing, ['policy_audit']);
});

test('a pending migration that needs a lost table is refused as a damaged store, rolled back, on both backends', async () => {
  const file = join(tmp.dir, 'v14.db');
  const db = openSqlite(file);
  migrate(db, CORE_MIGRATIONS.filter((m) => m.version <= 14));
  db.exec('DROP TABLE suspected_impostors');
  db.close();
  const sqlite = runCli(['db', 'migrate', '--db', file]);
  assert.equal(sqlite.status, EXIT.IO, sqlite.stderr);
  assert.match(sqlite.stderr, /damaged: migration 15 \(.+\) needs table suspected_impostors, which is missing; the migration was rolled back/);
  assert.deepEqual(JSON.parse(runCli(['db', 'status', '--db', file, '--json']).stdout).pending.map((m: { version: number }) => m.version), [15]);

  const url = await (await server()).createDatabase('v21');
  const pool = createPool(url);
  try {
    await migratePostgres(pool, PG_MIGRATIONS.filter((m) => m.version <= 21));
    await pool.query('DROP TABLE suspected_impostors');
  } finally {
    await pool.end();
  }
  const pg = runCli(['db', 'migrate', '--db', url]);
  assert.equal(pg.status, EXIT.IO, pg.stderr);
  assert.match(pg.stderr, /damaged: migration 22 \(.+\) needs table suspected_impostors, which is missing; the migration was rolled back/);
});

test('PostgreSQL: a healthy store is never taken for a damaged one, whatever schema is first on the search path and whatever the role may read', async () => {
  const srv = await server();
  const url = await srv.createDatabase('healthy');
  const made = runCli(['db', 'migrate', '--db', url]);
  assert.equal(made.status, 0, made.stderr);
  const role = `reader_${url.slice(url.lastIndexOf('/') + 1)}`;
  const pool = createPool(url);
  try {
    // "$user", public: an empty schema named after the user comes first, the store stays in public
    await pool.query('CREATE SCHEMA postgres');
    // a role that may read the detections but not the policy tables
    await pool.query(`CREATE ROLE ${role} LOGIN`);
    await pool.query(`GRANT USAGE ON SCHEMA public TO ${role}`);
    await pool.query(`GRANT SELECT ON ALL TABLES IN SCHEMA public TO ${role}`);
    await pool.query(`REVOKE SELECT ON policy_meta, policy_session_handles, policy_audit, policy_approvals FROM ${role}`);
  } finally {
    await pool.end();
  }
  try {
    for (const db of [url, url.replace('postgres://postgres@', `postgres://${role}@`)]) {
      const r = runCli(['detections', 'list', '--db', db, '--json']);
      assert.equal(r.status, 0, `${db}: ${r.stderr}`);
      const st = JSON.parse(runCli(['db', 'status', '--db', db, '--json']).stdout) as { upToDate: boolean; missing: string[] };
      assert.deepEqual([st.upToDate, st.missing], [true, []], db);
    }
  } finally {
    const admin = createPool(url);
    await admin.query(`DROP OWNED BY ${role}; DROP ROLE ${role}`).finally(() => admin.end());
  }
});

test('the policy state in a SQLite store refuses a store that lost one of its tables', () => {
  const db = join(tmp.dir, 'policy.db');
  new SqlitePolicyState({ dbPath: db, auditFile: false }).db.close();
  const raw = openSqlite(db);
  raw.exec('DROP TABLE policy_session_handles');
  raw.close();
  assert.throws(() => new SqlitePolicyState({ dbPath: db, auditFile: false }), (e: unknown) => e instanceof StoreDamagedError && /table policy_session_handles is missing/.test(e.message));
});
