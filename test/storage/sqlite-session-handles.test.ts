import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir } from '../helpers.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';

/**
 * Gateway processes on one SQLite store share one cap on live session handles: several real
 * processes register handles for one identity at the same time, and exactly max_handles get one.
 */

const tmp = tempDir();
after(() => tmp.cleanup());

interface Worker {
  ready: Promise<void>;
  go(): void;
  done: Promise<{ admitted: number }>;
}

/** A process that opens the store, says it is ready, and on "go" registers its own handle for every identity. */
function worker(dbPath: string, id: number, identities: number): Worker {
  const mod = pathToFileURL(resolve('dist/src/storage/sqlite/policy-state.js')).href;
  const code = `
    const { SqlitePolicyState } = await import(${JSON.stringify(mod)});
    const st = new SqlitePolicyState({ dbPath: ${JSON.stringify(dbPath)}, auditFile: false });
    process.stdout.write('ready\\n');
    process.stdin.once('data', async () => {
      let admitted = 0;
      for (let k = 0; k < ${identities}; k++) if ((await st.sessionHandles.touch('agent-' + k, 'p${id}', { maxLive: 1, ttlMs: 3600000 })).ok) admitted++;
      st.close();
      process.stdout.write(JSON.stringify({ admitted }) + '\\n');
      process.exit(0);
    });
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', code], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<{ admitted: number }>((resolveP, reject) => {
    child.on('error', reject);
    child.on('exit', (c) => (c === 0 ? resolveP(JSON.parse(out.slice('ready\n'.length)) as { admitted: number }) : reject(new Error(`worker ${id} exited ${c}: ${err}`))));
  });
  return { ready, go: () => child.stdin.end('go\n'), done };
}

test('three processes registering handles for the same identities at once: each identity gets exactly max_handles', async () => {
  const dbPath = join(tmp.dir, 'shared.db');
  new SqlitePolicyState({ dbPath, auditFile: false }).close(); // migrated before the workers start
  const identities = 300;
  const workers = [0, 1, 2].map((id) => worker(dbPath, id, identities));
  await Promise.all(workers.map((w) => w.ready));
  workers.forEach((w) => w.go());
  const results = await Promise.all(workers.map((w) => w.done));
  // max_handles is 1: of the three processes' handles, exactly one per identity is admitted.
  assert.equal(results.reduce((n, r) => n + r.admitted, 0), identities, JSON.stringify(results));
  const st = new SqlitePolicyState({ dbPath, auditFile: false });
  try {
    for (let k = 0; k < identities; k++) assert.equal(st.sessionHandles.live(`agent-${k}`, 3_600_000).length, 1, `agent-${k}`);
  } finally {
    st.close();
  }
});
