import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir } from '../helpers.js';
import { FileLockBusyError, LOCK_RETRY_MS, withFileLockSync, type LockClock } from '../../src/policy/file-lock.js';
import { sha256 } from '../../src/policy/holder.js';

/**
 * The policy file's cross-process lock: two processes that save the same version of the policy at
 * the same moment must not both succeed (one change would be silently lost), and a lock left by a
 * dead process must not block saves for ever.
 */

const tmp = tempDir('egress-triage-file-lock-');
after(() => tmp.cleanup());

const V1 = 'version: 1\ntools:\n  read_me: { action: allow }\n';
const version = (i: number) => `version: 1\ntools:\n  read_me: { action: allow }\n  tool_${i}: { action: deny, reason: "saved by writer ${i}" }\n`;

/** A process that loads the policy, waits for `go` to exist, then saves its own version over V1. */
const SAVER = `
import { existsSync } from 'node:fs';
import { PolicyHolder, PolicyConflictError } from ${JSON.stringify(pathToFileURL(resolve('dist/src/policy/holder.js')).href)};
const [policy, go, text] = process.argv.slice(2);
const holder = new PolicyHolder(policy);
const pause = new Int32Array(new SharedArrayBuffer(4));
process.stdout.write('ready\\n');
while (!existsSync(go)) Atomics.wait(pause, 0, 0, 1);
try {
  holder.replace(text, holder.current.hash, 'dashboard:' + process.pid);
  process.stdout.write('saved\\n');
} catch (e) {
  process.stdout.write((e instanceof PolicyConflictError ? 'conflict' : 'error ' + e.message) + '\\n');
}
`;

function saver(script: string, policy: string, go: string, text: string): { ready: Promise<void>; done: Promise<string> } {
  const child = spawn(process.execPath, [script, policy, go, text], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  child.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    if (out.startsWith('ready\n')) onReady();
  });
  const done = new Promise<string>((r) => child.on('close', () => r(out.replace('ready\n', '').trim())));
  return { ready, done };
}

/** A clock the test drives: each pause of the waiter moves it on, and may run what the test scheduled. */
function fakeClock(start: number, onSleep: (now: number) => void = () => undefined): LockClock & { sleeps: number } {
  let t = start;
  return {
    sleeps: 0,
    now: () => t,
    sleep(ms) {
      this.sleeps++;
      t += ms;
      onSleep(t);
    },
  };
}

/** The lock file's modification time, on the fake clock's scale. */
function touch(lock: string, ms: number): void {
  utimesSync(lock, ms / 1000, ms / 1000);
}

const T0 = Date.UTC(2026, 11, 3, 12, 0, 0);

describe('withFileLockSync (the policy file lock)', () => {
  it('lets exactly one of several processes saving the same version at once succeed; the others are told it changed', async () => {
    const script = tmp.file('saver.mjs', SAVER);
    for (let round = 0; round < 3; round++) {
      const policy = tmp.file(`race-${round}.yaml`, V1);
      const go = join(tmp.dir, `go-${round}`);
      const savers = Array.from({ length: 6 }, (_, i) => saver(script, policy, go, version(i)));
      await Promise.all(savers.map((s) => s.ready));
      writeFileSync(go, '');
      const results = await Promise.all(savers.map((s) => s.done));
      assert.deepEqual(results.filter((r) => r !== 'saved' && r !== 'conflict'), [], `round ${round}: only saves and conflicts`);
      const winners = results.flatMap((r, i) => (r === 'saved' ? [i] : []));
      assert.equal(winners.length, 1, `round ${round}: one save wins, got ${results.join(', ')}`);
      assert.equal(readFileSync(policy, 'utf8'), version(winners[0]!), 'the file holds the winner');
      assert.equal(existsSync(join(tmp.dir, `.race-${round}.yaml.lock`)), false, 'no lock is left behind');
    }
  });

  it('waits for a live holder, then gives up with FileLockBusyError without running the write', () => {
    const file = tmp.file('held.yaml', V1);
    const lock = tmp.file('.held.yaml.lock', String(process.pid));
    touch(lock, T0);
    const clock = fakeClock(T0);
    let ran = false;
    assert.throws(
      () => withFileLockSync(file, () => (ran = true), { waitMs: 2000, clock }),
      (e) => e instanceof FileLockBusyError && e.holderPid === process.pid && /another process \(pid \d+\) is writing/.test(e.message),
    );
    assert.equal(ran, false);
    assert.equal(clock.sleeps, 2000 / LOCK_RETRY_MS, 'it tried again after every pause until the wait was over, and no longer');
    assert.equal(readFileSync(lock, 'utf8'), String(process.pid), "the holder's lock is left alone");
  });

  it('takes the lock as soon as the holder releases it during the wait', () => {
    const file = tmp.file('released.yaml', V1);
    const lock = tmp.file('.released.yaml.lock', String(process.pid));
    touch(lock, T0);
    // the holder finishes its write after the waiter's third pause
    const clock = fakeClock(T0, (now) => {
      if (now === T0 + 3 * LOCK_RETRY_MS) rmSync(lock);
    });
    assert.equal(withFileLockSync(file, () => readFileSync(lock, 'utf8'), { waitMs: 2000, clock }), String(process.pid));
    assert.equal(clock.sleeps, 3);
    assert.equal(existsSync(lock), false);
  });

  it('takes over a lock whose process is gone, or that is older than staleMs, and releases it after', () => {
    const file = tmp.file('stale.yaml', V1);
    const lock = join(tmp.dir, '.stale.yaml.lock');
    const gone = spawnSync(process.execPath, ['-e', '']).pid!;
    writeFileSync(lock, String(gone));
    assert.equal(withFileLockSync(file, () => readFileSync(lock, 'utf8'), { waitMs: 0 }), String(process.pid), 'held with our pid while the write runs');
    assert.equal(existsSync(lock), false);

    // a live pid, but the file is older than staleMs on the waiter's clock: a holder that hung
    writeFileSync(lock, String(process.pid));
    touch(lock, T0 - 30_001);
    assert.equal(withFileLockSync(file, () => 'written', { waitMs: 0, staleMs: 30_000, clock: fakeClock(T0) }), 'written');
    assert.equal(existsSync(lock), false);

    // ...and one exactly staleMs old is still the holder's
    writeFileSync(lock, String(process.pid));
    touch(lock, T0 - 30_000);
    assert.throws(() => withFileLockSync(file, () => 'written', { waitMs: 0, staleMs: 30_000, clock: fakeClock(T0) }), FileLockBusyError);
    assert.equal(existsSync(lock), true);
    rmSync(lock);
  });

  it('releases the lock when the write throws', () => {
    const file = tmp.file('throws.yaml', V1);
    assert.throws(() => withFileLockSync(file, () => { throw new Error('disk full'); }), /disk full/);
    assert.equal(existsSync(join(tmp.dir, '.throws.yaml.lock')), false);
    assert.equal(withFileLockSync(file, () => sha256(readFileSync(file, 'utf8'))), sha256(V1));
  });
});
