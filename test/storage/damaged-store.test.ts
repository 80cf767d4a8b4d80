import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { migrate, openSqlite, tableNames } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS, CORE_TABLES } from '../../src/storage/sqlite/core-migrations.js';
import { POLICY_MIGRATIONS, POLICY_TABLES, SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import { createPool } from '../../src/storage/postgres/pool.js';
import { migratePostgres, PG_TABLES, tableNames as pgTableNames } from '../../src/storage/postgres/migrations.js';
import { StoreDamagedError } from '../../src/storage/schema-version.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { eachStore } from '../helpers/each-store.js';
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

storeTest('a store missing a table: every command that opens it exits 5 naming the table, and changes nothing', async (at) => {
  const events = [1, 2, 3].map((run) => nativeEvent({ run, domain: 'registry.npmjs.org', process: 'node' }));
  const made = runCli(['ingest', tmp.file(`${at.backend}.ndjson`, ndjson(events)), '--db', at.db, '--format', 'native']);
  assert.equal(made.status, 0, made.stderr);
  await at.rows('DROP TABLE risky_audit');
  const runsBefore = await at.value<number>('SELECT count(*) FROM runs');
  const fileBefore = at.backend === 'sqlite' ? readFileSync(at.db) : null;
  const more = tmp.file(`${at.backend}-more.ndjson`, ndjson([4].map((run) => nativeEvent({ run, domain: 'x.example', process: 'node' }))));
  for (const args of [['rules', 'list'], ['detections', 'list', '--json'], ['ingest', more, '--format', 'native'], ['db', 'migrate']]) {
    const r = runCli([...args, '--db', at.db]);
    assert.equal(r.status, EXIT.IO, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /damaged: table risky_audit is missing, though its schema \(version \d+\) made it/, args.join(' '));
    assert.doesNotMatch(r.stderr, /internal error|^\s+at /m, args.join(' '));
  }
  assert.equal(Number(await at.value<number>('SELECT count(*) FROM runs')), Number(runsBefore), 'the refused ingest stored nothing');
  // db status reports it, and changes nothing either
  const status = runCli(['db', 'status', '--db', at.db]);
  assert.equal(status.status, EXIT.OK, status.stderr);
  assert.match(status.stdout, /: damaged: table\(s\) risky_audit missing/);
  const json = JSON.parse(runCli(['db', 'status', '--db', at.db, '--json']).stdout) as { upToDate: boolean; missing: string[]; pending: unknown[] };
  assert.deepEqual([json.upToDate, json.missing, json.pending], [false, ['risky_audit'], []]);
  if (fileBefore) assert.deepEqual(readFileSync(at.db), fileBefore, 'the SQLite file is unchanged');
});

test('the policy state in a SQLite store refuses a store that lost one of its tables', () => {
  const db = join(tmp.dir, 'policy.db');
  new SqlitePolicyState({ dbPath: db, auditFile: false }).db.close();
  const raw = openSqlite(db);
  raw.exec('DROP TABLE policy_session_handles');
  raw.close();
  assert.throws(() => new SqlitePolicyState({ dbPath: db, auditFile: false }), (e: unknown) => e instanceof StoreDamagedError && /table policy_session_handles is missing/.test(e.message));
});
