import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nativeEvent, ndjson, runCli, tempDir } from '../helpers.js';

/**
 * Every command leaves the SQLite store whole in its main file: all its connections (the commit
 * watcher of the impostor cache too) are closed on exit, so SQLite checkpoints the WAL and removes
 * it. A WAL left behind doubles the store's size on disk and is one more file to copy in a backup.
 */
const tmp = tempDir();
after(() => tmp.cleanup());

test('ingest, analyze and rules leave no WAL or shared-memory file behind', () => {
  const db = join(tmp.dir, 'store.db');
  const events = [];
  for (let run = 1; run <= 8; run++) {
    events.push(nativeEvent({ run, domain: 'github.com' }));
    events.push(nativeEvent({ run, domain: `cdn-${run}.example.com`, process: 'node' }));
  }
  const file = join(tmp.dir, 'events.ndjson');
  writeFileSync(file, ndjson(events));
  const leftovers = () => ['-wal', '-shm'].filter((s) => existsSync(db + s));
  for (const args of [
    ['ingest', file, '--db', db],
    ['analyze', '--db', db, '--json'],
    ['rules', 'preview', '--db', db, '--condition', 'process=node'],
    ['rules', 'create', '--db', db, '--condition', 'process=node', '--name', 'mesh', '--yes'],
    ['stats', '--db', db],
  ]) {
    const r = runCli(args);
    assert.equal(r.status, 0, `${args[0]} ${args[1]}: ${r.stderr}`);
    assert.deepEqual(leftovers(), [], `after ${args.slice(0, 2).join(' ')}`);
  }
});
