import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { SqliteRulesRepo } from '../../src/storage/sqlite/rules-repo.js';
import { SqliteRulesPort } from '../../src/storage/sqlite/rules-port.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';

const tmp = tempDir();
after(() => tmp.cleanup());

const binary = (sha: string) => ({ process: 'tailscaled', sha256: sha.repeat(64), path: '/tmp/.cache/tailscaled', reason: 'test: flagged' });

/**
 * The impostor verdict is reused while the store is unchanged; a binary flagged by this connection
 * or by another process must be in the very next verdict, or a rule could hide it.
 */
test('the cached impostor verdict follows writes from this connection and from other processes', () => {
  const path = join(tmp.dir, 'cache.db');
  const a = SqliteStore.open(path);
  const b = SqliteStore.open(path); // another process (ingest) on the same store
  try {
    const tid = a.db.prepare("INSERT INTO tenants (name, created_at) VALUES ('t', 0) RETURNING id").pluck().get() as number;
    const repoA = new SqliteRulesRepo(a.db, riskyDestinations([]));
    const repoB = new SqliteRulesRepo(b.db, riskyDestinations([]));
    assert.equal(repoA.impostors(tid).set.size, 0);
    repoB.flagImpostor(tid, binary('a'));
    assert.equal(repoA.impostors(tid).set.size, 1, 'a commit by another connection is seen at once');
    repoA.flagImpostor(tid, binary('b'));
    assert.equal(repoA.impostors(tid).set.size, 2, "this connection's own write is seen at once");
    // a caller adding to its copy does not change what the next caller gets
    repoA.impostors(tid).set.add(binary('c'));
    assert.equal(repoA.impostors(tid).set.size, 2);
  } finally {
    a.close();
    b.close();
  }
});

/**
 * A rules write that has changed nothing yet sees the store at the commit its BEGIN IMMEDIATE found,
 * so it reuses a verdict cached at that commit (a preview then a create judge the binaries once);
 * a commit by another connection before it began, or its own first write, means a fresh verdict.
 */
test('a rules write reuses the verdict of the commit it began at, until it writes or another connection commits first', async () => {
  const path = join(tmp.dir, 'write-reuse.db');
  const a = SqliteStore.open(path);
  const b = SqliteStore.open(path);
  const proto = SqliteRulesRepo.prototype as unknown as { computeImpostors: (tid: number) => unknown };
  const compute = proto.computeImpostors;
  let computed = 0;
  proto.computeImpostors = function (this: unknown, tid: number) {
    computed++;
    return compute.call(this, tid);
  };
  try {
    const tid = a.db.prepare("INSERT INTO tenants (name, created_at) VALUES ('t', 0) RETURNING id").pluck().get() as number;
    const port = new SqliteRulesPort(a.db, riskyDestinations([]));
    const repoB = new SqliteRulesRepo(b.db, riskyDestinations([]));
    assert.equal(port.repo.impostors(tid).set.size, 0);
    assert.equal(computed, 1);

    await port.write(async () => {
      assert.equal(port.repo.impostors(tid).set.size, 0);
      assert.equal(computed, 1, 'nothing changed since the cached verdict: reused');
      port.repo.flagImpostor(tid, binary('a'));
      assert.equal(port.repo.impostors(tid).set.size, 1, 'its own write is in the next verdict');
      assert.equal(computed, 2);
    });

    assert.equal(port.repo.impostors(tid).set.size, 1);
    const before = computed;
    repoB.flagImpostor(tid, binary('b'));
    await port.write(async () => {
      assert.equal(port.repo.impostors(tid).set.size, 2, "another connection's commit before the write began is in its verdict");
      assert.equal(computed, before + 1);
    });

    // a write that ended leaves nothing behind for a later transaction of the connection (ingest's)
    repoB.flagImpostor(tid, binary('c'));
    a.db.exec('BEGIN IMMEDIATE');
    try {
      assert.equal(port.repo.impostors(tid).set.size, 3, 'another transaction of the connection judges afresh');
    } finally {
      a.db.exec('ROLLBACK');
    }
  } finally {
    proto.computeImpostors = compute;
    a.close();
    b.close();
  }
});
