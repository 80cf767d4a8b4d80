import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import pg from 'pg';
import { PostgresServer, postgresBinDir, usePostgres } from '../../helpers/postgres.js';

const server = usePostgres();

test('a missing PostgreSQL installation fails with how to install it', () => {
  assert.throws(() => postgresBinDir({ EGRESS_TRIAGE_PG_BIN: '/nonexistent/pg/bin' }), /found none.*apt-get install -y postgresql/);
});

test('the test server is a real PostgreSQL 15+, owned by an unprivileged user, with one fresh database per caller', async () => {
  const s = await server();
  const [a, b] = [await s.createDatabase('harness'), await s.createDatabase('harness')];
  assert.notEqual(a, b);
  const c = new pg.Client({ connectionString: a });
  await c.connect();
  try {
    const v = await c.query<{ server_version_num: string }>('SHOW server_version_num');
    assert.ok(Number(v.rows[0]!.server_version_num) >= 150000);
    await c.query('CREATE TABLE only_in_a (x int)');
    assert.equal((await c.query('SHOW fsync')).rows[0].fsync, 'off');
  } finally {
    await c.end();
  }
  const d = new pg.Client({ connectionString: b });
  await d.connect();
  try {
    assert.equal((await d.query("SELECT count(*)::int AS n FROM pg_tables WHERE tablename = 'only_in_a'")).rows[0].n, 0);
  } finally {
    await d.end();
  }
  if (process.getuid?.() === 0) assert.notEqual(statSync(s.dir).uid, 0, 'the server runs as a non-root user (initdb refuses root)');
});

test('stop() shuts the server down and removes its folder', async () => {
  const own = await PostgresServer.start();
  assert.ok(existsSync(own.dir));
  await own.stop();
  assert.equal(existsSync(own.dir), false);
  const c = new pg.Client({ connectionString: own.url(), connectionTimeoutMillis: 2000 });
  await assert.rejects(c.connect());
});
