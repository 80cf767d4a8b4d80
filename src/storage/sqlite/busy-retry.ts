/**
 * Waiting for the SQLite write lock without stopping the process. better-sqlite3 is synchronous:
 * with a busy_timeout, a write waits inside SQLite, and the whole event loop with it. The policy
 * state (the gateway's approvals, session handles and audit table) shares the store file with
 * ingests and rule changes of other processes, so its connection does not wait inside SQLite at
 * all (busy_timeout 0): a write that meets the lock is retried on a timer, up to the same 15 s the
 * store waits, and other calls, cancellations and notifications go on meanwhile. Even a short wait
 * inside SQLite adds up: with 10 ms per attempt, 30 writes waiting at once kept the event loop busy
 * all the time (a review's run, 2026-12-04), where failing at once costs microseconds.
 */

/** How long a policy-state write keeps trying before it fails (the store's own busy_timeout). */
export const POLICY_BUSY_DEADLINE_MS = 15_000;
/** The first pause between attempts; each pause doubles, up to LONGEST_PAUSE_MS. */
export const FIRST_PAUSE_MS = 2;
const LONGEST_PAUSE_MS = 100;

export function nextPause(ms: number): number {
  return Math.min(ms * 2, LONGEST_PAUSE_MS);
}

export interface BusyClock {
  /** milliseconds; only differences are used */
  now: () => number;
  sleep: (ms: number) => Promise<void>;
}

export const realBusyClock: BusyClock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
};

/** SQLite's "another connection holds the lock" (better-sqlite3 sets the extended code). */
export function isBusy(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code === 'SQLITE_BUSY' || code.startsWith('SQLITE_BUSY_'));
}

/**
 * Runs `write` (one statement, or one IMMEDIATE transaction: either fails whole when busy, so a
 * retry repeats nothing) until it does not fail as busy. After `deadlineMs` the last busy error is
 * thrown, unchanged, so callers that deny on a state error still deny (fail closed) and the CLI
 * still explains a locked store.
 */
export async function whenUnlocked<T>(write: () => T, clock: BusyClock = realBusyClock, deadlineMs = POLICY_BUSY_DEADLINE_MS): Promise<T> {
  const pauseAfter = busyBackoff(clock.now, deadlineMs);
  for (;;) {
    try {
      return write();
    } catch (e) {
      await clock.sleep(pauseAfter(e));
    }
  }
}

/**
 * The retry rule both loops share: after a failed attempt, the pause before the next one (doubling
 * from FIRST_PAUSE_MS), or the error itself thrown when it is no busy refusal or `deadlineMs` has
 * passed since the first attempt.
 */
function busyBackoff(now: () => number, deadlineMs: number): (e: unknown) => number {
  const start = now();
  let pause = FIRST_PAUSE_MS;
  return (e) => {
    if (!isBusy(e) || now() - start >= deadlineMs) throw e;
    const current = pause;
    pause = nextPause(pause);
    return current;
  };
}

/** A pause that blocks the thread, for code that runs before any event loop work (opening a store). */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/**
 * whenUnlocked for synchronous code: runs `attempt` until it does not fail as busy, pausing between
 * attempts (blocking), and throws the last busy error after `deadlineMs`. For opening a store: a
 * busy error SQLite returns without waiting (a brand-new file is still in rollback-journal mode,
 * where two connections upgrading their locks at once would deadlock, so one is refused at once
 * instead of waiting its busy_timeout) is worth the same patience as a lock held.
 */
export function untilUnlockedSync<T>(attempt: () => T, clock: { now: () => number; sleep: (ms: number) => void } = { now: () => performance.now(), sleep: sleepSync }, deadlineMs = POLICY_BUSY_DEADLINE_MS): T {
  const pauseAfter = busyBackoff(clock.now, deadlineMs);
  for (;;) {
    try {
      return attempt();
    } catch (e) {
      clock.sleep(pauseAfter(e));
    }
  }
}
