import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import { runCli, runCliAsync, tempDir } from '../helpers.js';
import { writeTenant } from '../../src/generate/index.js';

const tmp = tempDir();
after(() => tmp.cleanup());

function snapshot(dbPath: string) {
  const db = new Database(dbPath, { readonly: true });
  const one = (sql: string) => db.prepare(sql).pluck().get() as number;
  const s = {
    integrity: db.prepare('PRAGMA integrity_check').pluck().get() as string,
    observations: one('SELECT count(*) FROM observations'),
    detections: one('SELECT count(*) FROM detections'),
    runs: one('SELECT count(*) FROM runs'),
    rollup: one('SELECT coalesce(sum(n),0) FROM detection_rollup'),
    // every detection belongs to a stored run and observation: nothing half-written
    orphans: one(
      `SELECT count(*) FROM detections d WHERE d.ext = '' AND NOT EXISTS (
         SELECT 1 FROM observations o WHERE o.run_ref = d.run_ref AND o.endpoint_id = d.endpoint_id AND o.process_id = d.process_id)`,
    ),
    dupKeys: one('SELECT count(*) FROM (SELECT run_ref, type_id, endpoint_id, process_id, count(*) c FROM detections GROUP BY 1,2,3,4 HAVING c > 1)'),
  };
  db.close();
  return s;
}

test('kill -9 mid-ingest leaves committed batches intact; re-running completes without duplicates', async () => {
  const input = join(tmp.dir, 'big.ndjson');
  await writeTenant({ runs: 12, seed: 3, events: 400_000 }, input);
  const crashed = join(tmp.dir, 'crashed.db');
  const child = runCliAsync(['ingest', input, '--db', crashed, '--format', 'native']);
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  // wait until some batches are committed (the WAL grows), then kill without warning
  await new Promise<void>((resolve, reject) => {
    const deadline = Date.now() + 60_000;
    const poll = setInterval(() => {
      let rows = 0;
      try {
        if (existsSync(crashed)) {
          const db = new Database(crashed, { readonly: true, fileMustExist: true });
          db.pragma('busy_timeout = 1000');
          rows = db.prepare('SELECT count(*) FROM observations').pluck().get() as number;
          db.close();
        }
      } catch {
        /* schema not created yet */
      }
      if (rows > 0) {
        clearInterval(poll);
        child.kill('SIGKILL');
        resolve();
      } else if (Date.now() > deadline || child.exitCode !== null) {
        clearInterval(poll);
        reject(new Error(`ingest finished or stalled before it could be killed: ${stderr}`));
      }
    }, 20);
  });
  await new Promise((r) => child.once('exit', r));
  const mid = snapshot(crashed);
  assert.equal(mid.integrity, 'ok');
  assert.ok(mid.observations > 0);
  assert.equal(mid.orphans, 0);
  assert.equal(mid.rollup, mid.detections);

  const resumed = runCli(['ingest', input, '--db', crashed, '--format', 'native', '--json']);
  assert.equal(resumed.status, 0, resumed.stderr);
  const final = snapshot(crashed);

  const clean = join(tmp.dir, 'clean.db');
  const ref = runCli(['ingest', input, '--db', clean, '--format', 'native', '--json']);
  assert.equal(ref.status, 0, ref.stderr);
  const expected = snapshot(clean);
  assert.deepEqual(final, expected);
  assert.equal(final.dupKeys, 0);
});
