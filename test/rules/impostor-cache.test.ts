import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { SqliteRulesRepo } from '../../src/storage/sqlite/rules-repo.js';
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
