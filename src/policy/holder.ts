import { EventEmitter } from 'node:events';
import { watch, watchFile, unwatchFile, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { loadPolicyFile, parsePolicy, policyReadError, PolicyLoadError, type LoadedPolicy } from './load.js';
import { SlidingWindowLimiter } from './rate-limiter.js';
import { writeFileAtomicSync } from './write-file.js';
import { withFileLockSync } from './file-lock.js';
import type { RateCounters } from '../storage/policy-state.js';

export interface ReloadEvent {
  previous: LoadedPolicy;
  current: LoadedPolicy;
  hiddenChanged: boolean;
  /** who put the new version in force: `dashboard:<identity>` through replace(), `file` when found on disk */
  by: string;
}

/** replace() was given the hash of a file that has changed on disk since: someone else edited it. */
export class PolicyConflictError extends Error {
  override name = 'PolicyConflictError';
  constructor(
    readonly expectedHash: string,
    readonly actualHash: string | undefined,
  ) {
    super(actualHash === undefined ? 'the policy file cannot be read any more' : 'the policy file changed on disk since it was read');
  }
}

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** How long the watcher waits after the last change it saw before it reads the file, in milliseconds. */
const DEBOUNCE_MS = 30;

/**
 * How long a changed file must read the same before it is put in force, in milliseconds. A file
 * written in place (`cat > policy.yaml`, an editor that does not save by renaming) can be read half
 * written, and its first part can be a valid policy without the entries after the cut: a tool denied
 * there falls to `default` (allow unless set) until the rest is written. Read twice this far apart, a
 * write still under way shows as a difference, and the version in force stays until the file settles.
 * A writer that stops longer than this in the middle of the file is not told apart; saving by rename
 * (as the dashboard does) never shows half a file.
 */
export const SETTLE_MS = 100;

/** Runs `fn` once after `ms` unless cancelled; tests pass their own to run the watcher's steps by hand. */
export type Schedule = (fn: () => void, ms: number) => () => void;

const unrefTimeout: Schedule = (fn, ms) => {
  const t = setTimeout(fn, ms);
  t.unref();
  return () => clearTimeout(t);
};

/**
 * The policy in force plus its rate-limit counters. Hot reload swaps the engine atomically
 * (calls already decided keep their decision); counters stay with the holder, keyed by rule path,
 * so a reload does not reset quotas. They come from the policy-state backend (in this process's
 * memory by default, shared in Redis with --state). A file that fails validation is reported and ignored.
 *
 * Events: 'reload' (ReloadEvent), 'invalid' (PolicyLoadError).
 */
export class PolicyHolder extends EventEmitter {
  current: LoadedPolicy;
  readonly limiter: RateCounters;
  private watcher?: FSWatcher;
  /** cancels the watcher's next step (its debounce, or the read that checks the file has settled) */
  private cancelStep?: () => void;
  private polling = false;

  constructor(
    readonly path: string,
    initial?: LoadedPolicy,
    counters?: RateCounters,
    private readonly schedule: Schedule = unrefTimeout,
  ) {
    super();
    this.path = resolve(path);
    this.current = initial ?? loadPolicyFile(this.path);
    this.limiter = counters ?? new SlidingWindowLimiter();
  }

  /**
   * Writes `text` as the policy file and puts it in force now, as `by`, in one synchronous step (so
   * the watcher cannot pick it up first and call it a change from `file`):
   * - the file on disk must still hash to `expectedHash` (what the editor was shown), else
   *   PolicyConflictError and nothing is written;
   * - `text` must be a valid policy, else PolicyLoadError and nothing is written;
   * - the write is atomic (write-file.ts), so a reader never sees half a file;
   * - the compare and the write hold the file's lock (file-lock.ts) against other processes doing
   *   the same, else FileLockBusyError when the lock stays taken.
   * Returns the reload event, or undefined when the text is the version already in force.
   */
  replace(text: string, expectedHash: string, by: string): ReloadEvent | undefined {
    parsePolicy(text, this.path);
    // Compare and write under the file's lock: another process saving at the same moment cannot
    // read the same old version and have its change silently overwritten by ours, or ours by its.
    withFileLockSync(this.path, () => {
      let onDisk: string | undefined;
      try {
        onDisk = readFileSync(this.path, 'utf8');
      } catch {
        onDisk = undefined;
      }
      const actual = onDisk === undefined ? undefined : sha256(onDisk);
      if (actual !== expectedHash) throw new PolicyConflictError(expectedHash, actual);
      writeFileAtomicSync(this.path, text);
    });
    let event: ReloadEvent | undefined;
    const take = (ev: ReloadEvent) => (event = ev);
    this.prependOnceListener('reload', take);
    try {
      this.reload(by);
    } finally {
      this.off('reload', take);
    }
    return event;
  }

  /** Re-reads the file now and puts it in force as it reads. Returns true when a new version was put in force. */
  reload(by = 'file'): boolean {
    const text = this.read();
    return text !== undefined && this.put(text, by);
  }

  /**
   * What the watcher does on a change: once the file has been quiet DEBOUNCE_MS it is read, and a
   * new text is put in force only when a read SETTLE_MS later gives the same text; a change in
   * between starts the wait again (a file still being written).
   */
  fileChanged(): void {
    this.step(() => this.settle(undefined), DEBOUNCE_MS);
  }

  private step(fn: () => void, ms: number): void {
    this.cancelStep?.();
    this.cancelStep = this.schedule(() => {
      this.cancelStep = undefined;
      fn();
    }, ms);
  }

  private settle(before: string | undefined): void {
    const text = this.read();
    if (text === undefined || sha256(text) === this.current.hash) return;
    if (text !== before) this.step(() => this.settle(text), SETTLE_MS);
    else this.put(text, 'file');
  }

  /** The file's text, or undefined when it cannot be read (reported as 'invalid'; the version in force stays). */
  private read(): string | undefined {
    try {
      return readFileSync(this.path, 'utf8');
    } catch (e) {
      this.emit('invalid', policyReadError(this.path, e));
      return undefined;
    }
  }

  private put(text: string, by: string): boolean {
    if (sha256(text) === this.current.hash) return false;
    let next: LoadedPolicy;
    try {
      next = parsePolicy(text, this.path);
    } catch (e) {
      this.emit('invalid', e instanceof PolicyLoadError ? e : new PolicyLoadError(this.path, [{ path: '', message: String(e) }]));
      return false;
    }
    const previous = this.current;
    this.current = next;
    const ev: ReloadEvent = {
      previous,
      current: next,
      hiddenChanged: previous.engine.hiddenFingerprint() !== next.engine.hiddenFingerprint(),
      by,
    };
    this.emit('reload', ev);
    return true;
  }

  /**
   * Watches the file. fs.watch on the directory catches editors that save by rename; a slow
   * stat poll backs it up on filesystems where fs.watch is unreliable.
   */
  watch(pollMs = 1000): this {
    if (this.watcher || this.polling) return this;
    const schedule = () => this.fileChanged();
    try {
      const name = basename(this.path);
      this.watcher = watch(dirname(this.path), { persistent: false }, (_ev, f) => {
        if (!f || f.toString() === name) schedule();
      });
      this.watcher.on('error', () => undefined);
    } catch {
      // fall back to polling only
    }
    watchFile(this.path, { interval: pollMs, persistent: false }, schedule);
    this.polling = true;
    return this;
  }

  close(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.polling) unwatchFile(this.path);
    this.polling = false;
    this.cancelStep?.();
    this.cancelStep = undefined;
  }
}
