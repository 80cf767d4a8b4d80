import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSqlite, migrate } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS } from '../../src/storage/sqlite/core-migrations.js';
import { riskyIpIndexOf } from '../../src/storage/sqlite/risky-ips.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';

/**
 * The connection's index of risky address ids judges each address once, and starts over when an
 * ingest rolled back gave its ids out again to other addresses.
 */
test('risky address index: kept per connection and list, exact across a rolled-back write whose ids are given out again', () => {
  const dir = mkdtempSync(join(tmpdir(), 'et-riskyips-'));
  const db = openSqlite(join(dir, 's.db'));
  try {
    migrate(db, CORE_MIGRATIONS);
    const add = db.prepare('INSERT INTO ips (id, ip) VALUES (?, ?)');
    add.run(1, '203.0.113.5');
    add.run(2, '198.51.100.1');
    const range = riskyDestinations(['203.0.113.0/24']);
    const index = riskyIpIndexOf(db, range);
    assert.equal(riskyIpIndexOf(db, riskyDestinations(['203.0.113.0/24'])), index, 'one index per connection and list');
    assert.notEqual(riskyIpIndexOf(db, riskyDestinations(['198.51.100.0/24'])), index);
    assert.deepEqual([...index.refresh(db)], [1]);

    // an ingest's write, seen by this connection before it rolls back
    db.exec('BEGIN');
    add.run(3, '203.0.113.6');
    assert.deepEqual([...index.refresh(db)].sort(), [1, 3]);
    db.exec('ROLLBACK');
    // the id again, for an ordinary address
    add.run(3, '198.51.100.9');
    assert.deepEqual([...index.refresh(db)], [1]);
    // and gone altogether
    db.exec('BEGIN');
    add.run(4, '203.0.113.7');
    assert.deepEqual([...index.refresh(db)].sort(), [1, 4]);
    db.exec('ROLLBACK');
    assert.deepEqual([...index.refresh(db)], [1]);
    add.run(4, '203.0.113.8');
    assert.deepEqual([...index.refresh(db)].sort(), [1, 4]);
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
