import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { openSqlite, migrate } from '../../src/storage/sqlite/db.js';
import { CORE_MIGRATIONS } from '../../src/storage/sqlite/core-migrations.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { tempDir } from '../helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

test('migration 6 keeps existing runs and keys a run row by its GitHub job id (matrix legs)', () => {
  const path = join(tmp.dir, 'v5.db');
  const db = openSqlite(path);
  migrate(db, CORE_MIGRATIONS.filter((m) => m.version <= 5));
  db.prepare("INSERT INTO tenants (id, name, created_at) VALUES (1, 'default', 0)").run();
  db.prepare("INSERT INTO jobs (id, tenant_id, owner, repo, workflow, job, completed_runs, open_run) VALUES (1, 1, 'o', 'r', 'w', 'j', 1, 2)").run();
  db.prepare("INSERT INTO runs (id, job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, completed, learning) VALUES (1, 1, '7', 1, '61', 10, 20, 1, 1), (2, 1, '8', 1, NULL, 30, 40, 0, 0)").run();
  assert.throws(() => db.prepare("INSERT INTO runs (job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts) VALUES (1, '7', 1, '62', 0, 0)").run(), /UNIQUE/);
  db.close();

  const store = SqliteStore.open(path);
  try {
    const rows = store.db.prepare('SELECT id, run_id, gh_job_id, first_ts, last_ts, completed, learning FROM runs ORDER BY id').all();
    assert.deepEqual(rows, [
      { id: 1, run_id: '7', gh_job_id: '61', first_ts: 10, last_ts: 20, completed: 1, learning: 1 },
      { id: 2, run_id: '8', gh_job_id: null, first_ts: 30, last_ts: 40, completed: 0, learning: 0 },
    ]);
    const ins = store.db.prepare('INSERT INTO runs (job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts) VALUES (1, ?, 1, ?, 0, 0)');
    ins.run('7', '62'); // another leg of run 7
    assert.throws(() => ins.run('7', '61'), /UNIQUE/);
    assert.throws(() => ins.run('8', null), /UNIQUE/, 'the leg without a job id is one leg too');
    const s = store.openIngestSession('default');
    assert.deepEqual(s.runLegs(1, '7', 1).map((r) => r.ghJobId), ['61', '62']);
    assert.equal(s.findRun(1, '8', 1, null)?.ref, 2);
    assert.equal(s.findRun(1, '7', 1, '62')?.completed, false);
  } finally {
    store.close();
  }
});
