import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CLI, runCli, tempDir } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { IngestPipeline, WORKER_FROM_BYTES } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { openStore } from '../../src/storage/open-store.js';

// A file parsed by the worker thread streams batches steadily. When the worker runs ahead of the
// main thread (a loaded machine), the main thread took its messages one after another within one turn
// of the event loop, and a SIGINT or SIGTERM sent meanwhile waited for the loop's poll phase: the
// ingest ran to the end and exited 0. The first test makes the main thread slow on purpose, so the
// worker is always ahead; the others send real signals to the CLI on the worker path.

const tmp = tempDir();
after(() => tmp.cleanup());

const file = join(tmp.dir, 'tenant.ndjson');
const made = runCli(['generate', '--events', '400000', '--seed', '7', '--out', file]);
assert.equal(made.status, EXIT.OK, made.stderr);

function count(db: string, sql: string): number {
  try {
    const d = new Database(db, { readonly: true, fileMustExist: true });
    try {
      d.pragma('busy_timeout = 1000');
      return Number(d.prepare(sql).pluck().get());
    } finally {
      d.close();
    }
  } catch {
    return 0;
  }
}

test('an abort from a timer stops a worker-parsed ingest at the next batch, even with the worker always ahead', async () => {
  const path = join(tmp.dir, 'in-process.db');
  const store = await openStore({ backend: 'sqlite', target: path, display: path, from: '--db' }, 'create');
  try {
    const stop = new AbortController();
    let batches = 0;
    let abortedAt = -1;
    const pipeline = new IngestPipeline(store, {
      tenant: 'default', format: 'native', strict: false, defaults: {}, engine: DEFAULT_ENGINE_CONFIG,
      workerFromBytes: 0, batchSize: 200, signal: stop.signal,
      onProgress: () => {
        batches++;
        if (batches === 1) setTimeout(() => { abortedAt = batches; stop.abort(new Error('stopped by the test')); }, 0);
        // a slow main thread: the worker's next batches are always waiting when this one is done
        const until = Date.now() + 20;
        while (Date.now() < until);
      },
    });
    await assert.rejects(pipeline.ingest(file), /stopped by the test/);
    // the timer runs in the loop turn after batch 1's; without the turn it waited for the source to end
    assert.ok(abortedAt >= 1 && abortedAt <= 2, `the timer ran after batch ${abortedAt}`);
    assert.ok(batches <= abortedAt + 1, `${batches} batches handled, the abort came after batch ${abortedAt}`);
  } finally {
    await store.close();
  }
});

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  test(`${signal} while the worker streams a file's batches ends the ingest by ${signal}, its lease released, before the source is read`, async () => {
    assert.ok(statSync(file).size >= 10 * WORKER_FROM_BYTES, 'the file goes through the parse worker, with many batches');
    const db = join(tmp.dir, `${signal}.db`);
    const env: NodeJS.ProcessEnv = { ...process.env, EGRESS_TRIAGE_INGEST_LEASE_MS: '600000' };
    for (const k of ['EGRESS_TRIAGE_DB', 'EGRESS_TRIAGE_TENANT', 'EGRESS_TRIAGE_CONFIG']) delete env[k];
    const child = spawn(process.execPath, [CLI, 'ingest', file, '--db', db, '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
    try {
      // batches are being written: the first group is committed
      await waitFor(() => count(db, 'SELECT count(*) FROM observations') > 40_000, 60_000, 10, 'a third of the calls stored, batches streaming');
      child.kill(signal);
      const end = await exited;
      assert.deepEqual(end, { code: null, signal }, `${stderr}\n${stdout.slice(0, 400)}`);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    assert.equal(count(db, 'SELECT count(*) FROM ingest_leases'), 0, 'the lease was released');
    assert.equal(count(db, 'SELECT count(*) FROM ingest_sources'), 0, 'the source was not recorded as read');
  });
}
