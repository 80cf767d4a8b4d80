import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import pg from 'pg';
import { PostgresServer, SHARED_SERVER_ENV, postgresBinDir, usePostgres } from '../../helpers/postgres.js';

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

test('a borrowed server (the suite runner\'s) outlives stop(), which drops the databases this process made, connections and all', async () => {
  const own = await PostgresServer.start();
  try {
    const borrowed = PostgresServer.borrow({ ...process.env, [SHARED_SERVER_ENV]: `${own.port} ${own.dir}` });
    assert.ok(borrowed);
    const url = await borrowed.createDatabase('borrowed');
    const name = new URL(url).pathname.slice(1);
    // a test's pool may still hold a connection when its file ends
    const holder = new pg.Client({ connectionString: url });
    holder.on('error', () => undefined);
    await holder.connect();
    await borrowed.stop();
    const admin = new pg.Client({ connectionString: own.url() });
    await admin.connect();
    try {
      assert.equal((await admin.query('SELECT count(*)::int AS n FROM pg_database WHERE datname = $1', [name])).rows[0].n, 0, 'its database is gone');
      assert.equal((await admin.query('SELECT 1 AS one')).rows[0].one, 1, 'the server still answers');
    } finally {
      await admin.end();
    }
    await holder.end().catch(() => undefined);
  } finally {
    await own.stop();
  }
  assert.equal(PostgresServer.borrow({}), null, 'no announced server: nothing to borrow');
  assert.throws(() => PostgresServer.borrow({ [SHARED_SERVER_ENV]: 'nonsense' }), /must be "PORT DIR", got "nonsense"/);
});
