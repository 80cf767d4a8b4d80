import { test } from 'node:test';
import assert from 'node:assert/strict';
import { usePostgres } from '../../helpers/postgres.js';
import { waitFor } from '../../helpers/wait.js';
import { createPool, queryWithSignal, transaction } from '../../../src/storage/postgres/pool.js';
import { citusStatements } from '../../../src/storage/postgres/distribution.js';
import { readFences } from '../../docs/fences.js';

const server = usePostgres();

test('an aborted statement is cancelled on the server, and the connection stays usable', async () => {
  const pool = createPool(await (await server()).createDatabase('pool'), { max: 3 });
  try {
    const c = await pool.connect();
    try {
      const ac = new AbortController();
      const running = queryWithSignal(pool, c, 'SELECT pg_sleep(60)', [], ac.signal);
      // abort once the server is really running it
      for (const deadline = Date.now() + 20_000; ; ) {
        const n = (await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'SELECT pg_sleep(60)' AND state = 'active'")).rows[0].n;
        if (n === 1) break;
        assert.ok(Date.now() < deadline, 'the statement never started');
      }
      ac.abort(new Error('client gave up'));
      await assert.rejects(running, /client gave up/);
      // The statement was cancelled (the query failed with the server's own error); the backend then
      // marks itself idle as it readies for the next command, which a loaded machine may show a
      // moment after the client read the error: waited for, with a deadline far below the 60 s sleep.
      await waitFor(
        async () => (await pool.query("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND query = 'SELECT pg_sleep(60)' AND state = 'active'")).rows[0].n === 0 || undefined,
        20_000,
        10,
        'nothing left running on the server',
      );
      assert.equal((await c.query('SELECT 1 AS one')).rows[0].one, 1);
    } finally {
      c.release();
    }
  } finally {
    await pool.end();
  }
});

test('the pool sets a server-side statement timeout', async () => {
  const pool = createPool(await (await server()).createDatabase('pool'), { statementTimeoutMs: 200 });
  try {
    assert.equal((await pool.query('SHOW statement_timeout')).rows[0].statement_timeout, '200ms');
    await assert.rejects(pool.query('SELECT pg_sleep(5)'), /statement timeout/);
  } finally {
    await pool.end();
  }
});

test('a transaction commits when its function resolves and rolls back when it throws', async () => {
  const pool = createPool(await (await server()).createDatabase('pool'));
  try {
    await pool.query('CREATE TABLE t (x int)');
    await transaction(pool, (c) => c.query('INSERT INTO t VALUES (1)'));
    await assert.rejects(transaction(pool, async (c) => {
      await c.query('INSERT INTO t VALUES (2)');
      throw new Error('boom');
    }), /boom/);
    assert.deepEqual((await pool.query('SELECT x FROM t')).rows, [{ x: 1 }]);
  } finally {
    await pool.end();
  }
});

test('docs/scale-out.md shows exactly the Citus statements the schema needs', () => {
  const blocks = readFences('docs/scale-out.md').filter((f) => f.text.includes('create_distributed_table'));
  assert.equal(blocks.length, 1);
  assert.equal(blocks[0]!.text.trim(), citusStatements());
});

test('an unreachable server is an error, not a hang', async () => {
  const pool = createPool('postgres://postgres@127.0.0.1:1/none', { connectionTimeoutMs: 2_000 });
  try {
    await assert.rejects(pool.query('SELECT 1'), (e: NodeJS.ErrnoException) => e.code === 'ECONNREFUSED' || /timeout/.test(e.message));
  } finally {
    await pool.end();
  }
});
