import { closeSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/** Another process held the file's lock for longer than the caller was willing to wait. */
export class FileLockBusyError extends Error {
  override name = 'FileLockBusyError';
  constructor(
    readonly path: string,
    readonly holderPid: number | null,
  ) {
    super(`another process${holderPid === null ? '' : ` (pid ${holderPid})`} is writing ${path}; try again`);
  }
}

export interface FileLockOptions {
  /** how long to wait for a live holder before FileLockBusyError */
  waitMs?: number;
  /** a lock file older than this is taken over whoever wrote it (holds last milliseconds) */
  staleMs?: number;
  /** where the wait's time comes from (tests drive it by hand; the default is the real clock) */
  clock?: LockClock;
}

/** The time a lock waiter reads, and its blocking pause between attempts. */
export interface LockClock {
  now(): number;
  sleep(ms: number): void;
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

const REAL_CLOCK: LockClock = {
  now: () => Date.now(),
  // Atomics.wait: the only blocking pause Node has outside a busy loop
  sleep: (ms) => void Atomics.wait(sleeper, 0, 0, ms),
};

/** The pause between two attempts to take a held lock. */
export const LOCK_RETRY_MS = 5;

/**
 * Runs `fn` while holding an exclusive lock on `path` shared by every process of this program: a
 * lock file `.<name>.lock` beside it, created with O_EXCL and holding the owner's pid. Read, compare
 * and write inside one such call cannot interleave with another process's (no lost update when two
 * dashboards save the same policy at once). Editors do not take it; the caller's compare-and-swap on
 * the file's hash still catches their changes.
 *
 * Synchronous (the caller compares, writes and reloads in one turn of the event loop), so waiting is
 * a blocking sleep; the lock is held for the milliseconds of one write. A lock left by a process that
 * died (its pid is gone, or the file is older than staleMs) is removed and taken.
 */
export function withFileLockSync<T>(path: string, fn: () => T, opts: FileLockOptions = {}): T {
  const lock = join(dirname(path), `.${basename(path)}.lock`);
  const clock = opts.clock ?? REAL_CLOCK;
  const deadline = clock.now() + (opts.waitMs ?? 2000);
  const staleMs = opts.staleMs ?? 30_000;
  let fd: number;
  for (;;) {
    try {
      fd = openSync(lock, 'wx', 0o600);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const holder = readHolder(lock, clock);
    if (holder.stale(staleMs)) {
      // Two waiters may both find it stale; the O_EXCL create above still admits only one of them.
      removeIfSame(lock, holder.ino);
      continue;
    }
    if (clock.now() >= deadline) throw new FileLockBusyError(path, holder.pid);
    clock.sleep(LOCK_RETRY_MS);
  }
  try {
    writeSync(fd, String(process.pid));
  } finally {
    closeSync(fd);
  }
  try {
    return fn();
  } finally {
    try {
      unlinkSync(lock);
    } catch {
      // removed by a waiter that judged it stale: nothing left to release
    }
  }
}

interface Holder {
  pid: number | null;
  ino: number | null;
  stale(staleMs: number): boolean;
}

function readHolder(lock: string, clock: LockClock): Holder {
  let ino: number | null = null;
  let mtimeMs = clock.now();
  let pid: number | null = null;
  try {
    const st = statSync(lock);
    ino = st.ino;
    mtimeMs = st.mtimeMs;
    const n = Number(readFileSync(lock, 'utf8'));
    pid = Number.isSafeInteger(n) && n > 0 ? n : null;
  } catch {
    // gone meanwhile (the next create will tell), or its pid not written yet (judged by age alone)
  }
  return {
    pid,
    ino,
    stale: (staleMs) => ino !== null && ((pid !== null && !alive(pid)) || clock.now() - mtimeMs > staleMs),
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes the lock file only if it is still the one judged stale, not a new holder's. */
function removeIfSame(lock: string, ino: number | null): void {
  try {
    if (statSync(lock).ino === ino) unlinkSync(lock);
  } catch {
    // already gone
  }
}
