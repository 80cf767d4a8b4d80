import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { INGEST_PAGE_CACHE_KIB, INGEST_WAL_AUTOCHECKPOINT_PAGES } from '../../src/storage/sqlite/ingest-port.js';

/**
 * While a source is ingested the connection's page cache is the smaller ingest one (a bound on the
 * ingest's peak RSS, docs/benchmarks.md) and its WAL is checkpointed less often; when the last
 * source ends, committed or rolled back, the connection gets its own settings back for the readers
 * that share it.
 */

const tmp = tempDir();
after(() => tmp.cleanup());

test('SQLite ingest: the page cache is the ingest size while sources are open, and restored after', async () => {
  const store = SqliteStore.open(join(tmp.dir, 'cache.db'));
  try {
    const size = () => store.db.pragma('cache_size', { simple: true }) as number;
    const checkpointAt = () => store.db.pragma('wal_autocheckpoint', { simple: true }) as number;
    const before = size();
    const checkpointBefore = checkpointAt();
    assert.notEqual(before, -INGEST_PAGE_CACHE_KIB);
    assert.notEqual(checkpointBefore, INGEST_WAL_AUTOCHECKPOINT_PAGES);

    const a = await store.ingest.beginSource({ atomic: false });
    assert.equal(size(), -INGEST_PAGE_CACHE_KIB);
    assert.equal(checkpointAt(), INGEST_WAL_AUTOCHECKPOINT_PAGES, 'checkpoints are rarer while a source is ingested');
    const b = await store.ingest.beginSource({ atomic: true });
    await b.rollback();
    assert.equal(size(), -INGEST_PAGE_CACHE_KIB, 'still ingesting source a');
    await a.commit();
    assert.equal(size(), before);
    assert.equal(checkpointAt(), checkpointBefore);
    await a.commit();
    assert.equal(size(), before, 'ending a scope twice restores once');

    const c = await store.ingest.beginSource({ atomic: true });
    assert.equal(size(), -INGEST_PAGE_CACHE_KIB);
    await c.commit();
    assert.equal(size(), before);
  } finally {
    store.close();
  }
});
