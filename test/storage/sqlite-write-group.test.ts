import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers.js';
import { openSqlite } from '../../src/storage/sqlite/db.js';
import { WriteGroup, writeGroupOf } from '../../src/storage/sqlite/write-group.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';

/**
 * The ingest's write batches share one SQLite transaction for a bounded time (write-group.ts).
 * Time and the timer are driven by hand: nothing here waits.
 */

const tmp = tempDir();
after(() => tmp.cleanup());

let n = 0;
function fixture() {
  const file = join(tmp.dir, `group-${++n}.db`);
  const db = openSqlite(file);
  db.exec('CREATE TABLE t (x INTEGER PRIMARY KEY)');
  // another connection sees only what is committed
  const other = new Database(file, { readonly: true });
  const seen = () => (other.prepare('SELECT group_concat(x) FROM (SELECT x FROM t ORDER BY x)').pluck().get() as string | null) ?? '';
  let clock = 0;
  const timers: { fn: () => void; cancelled: boolean }[] = [];
  const group = new WriteGroup(db, 200, () => clock, (fn) => {
    const t = { fn, cancelled: false };
    timers.push(t);
    return () => (t.cancelled = true);
  });
  const put = (x: number) => group.run(() => db.prepare('INSERT INTO t (x) VALUES (?)').run(x));
  const fire = () => {
    for (const t of timers.splice(0)) if (!t.cancelled) t.fn();
  };
  return { db, other, seen, group, put, fire, tick: (ms: number) => (clock += ms), close: () => (other.close(), db.close()) };
}

/** Runs `fn` on a fresh fixture and closes both connections after, whatever happens. */
function withFixture(fn: (f: ReturnType<typeof fixture>) => void): void {
  const f = fixture();
  try {
    fn(f);
  } finally {
    f.close();
  }
}

test('write group: batches are committed together once the group is old enough, not before', () =>
  withFixture((f) => {
    f.put(1);
    f.tick(150);
    f.put(2);
    assert.equal(f.seen(), '', 'nothing is committed inside the group');
    assert.equal(f.group.open, true);
    f.tick(50);
    f.put(3);
    assert.equal(f.seen(), '1,2,3', 'the batch that finds the group 200 ms old commits it');
    assert.equal(f.group.open, false);
    f.put(4);
    f.group.commit();
    assert.equal(f.seen(), '1,2,3,4');
  }),
);

test('write group: a quiet source is committed by the timer', () =>
  withFixture((f) => {
    f.put(1);
    assert.equal(f.seen(), '');
    f.fire();
    assert.equal(f.seen(), '1');
    assert.equal(f.group.open, false);
    assert.equal(f.db.inTransaction, false, 'the write lock is let go');
  }),
);

test('write group: a failed batch undoes only itself; the batches before it are committed', () =>
  withFixture((f) => {
    f.put(1);
    assert.throws(
      () =>
        f.group.run(() => {
          f.db.prepare('INSERT INTO t (x) VALUES (?)').run(2);
          f.db.prepare('INSERT INTO t (x) VALUES (?)').run(1); // primary key clash
        }),
      /UNIQUE/,
    );
    f.group.commit();
    assert.equal(f.seen(), '1');
  }),
);

test('write group: inside a transaction it did not open (--strict), a batch is a savepoint of it and the group stays shut', () =>
  withFixture((f) => {
    f.db.exec('BEGIN IMMEDIATE');
    f.put(1);
    assert.equal(f.group.open, false);
    f.tick(1000);
    f.put(2);
    assert.equal(f.db.inTransaction, true, 'the outer transaction is not committed by the group');
    f.db.exec('ROLLBACK');
    assert.equal(f.seen(), '');
  }),
);

test('write group: a group SQLite rolled back by itself fails its commit instead of passing for stored', () =>
  withFixture((f) => {
    f.put(1);
    f.db.exec('ROLLBACK'); // what SQLite does on a full disk or an I/O error
    assert.throws(() => f.put(9), /rolled back by SQLite; its last write batches were not stored/, 'not even the next batch on its own');
    assert.equal(f.seen(), '');
    f.put(2);
    f.group.commit();
    assert.equal(f.seen(), '2', 'the next group starts clean');
  }),
);

test('write group: a commit the timer could not make fails the next write', () =>
  withFixture((f) => {
    f.put(1);
    f.db.exec('ROLLBACK');
    f.fire();
    assert.throws(() => f.put(2), /not stored/);
    assert.equal(f.seen(), '');
  }),
);

test('write group: acquiring or releasing an ingest lease commits the open group first (a waiter must not hold the write lock)', async () => {
  const store = SqliteStore.open(join(tmp.dir, 'leases.db'));
  const other = new Database(join(tmp.dir, 'leases.db'), { readonly: true });
  try {
    const holder = { source: 'a.ndjson', pid: process.pid, host: 'here' };
    const count = () => other.prepare('SELECT count(*) FROM tenants').pluck().get() as number;
    const before = count();
    const group = writeGroupOf(store.db);
    group.run(() => store.db.prepare('INSERT INTO tenants (name, created_at) VALUES (?, ?)').run('t-one', 1));
    assert.equal(count(), before);
    const lease = await store.leases.acquireIngestLease('acme', holder);
    assert.equal(count(), before + 2, 'the open group, then the lease tenant');
    group.run(() => store.db.prepare('INSERT INTO tenants (name, created_at) VALUES (?, ?)').run('t-two', 1));
    assert.equal(group.open, true);
    lease.release();
    assert.equal(group.open, false);
    assert.equal(count(), before + 3);
    assert.equal(other.prepare('SELECT count(*) FROM ingest_leases').pluck().get(), 0);
  } finally {
    other.close();
    store.close();
  }
});
