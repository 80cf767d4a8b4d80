import { EventEmitter } from 'node:events';
import { watch, watchFile, unwatchFile, readFileSync, type FSWatcher } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { loadPolicyFile, parsePolicy, PolicyLoadError, type LoadedPolicy } from './load.js';
import { SlidingWindowLimiter } from './rate-limiter.js';
import type { RateCounters } from '../storage/policy-state.js';

export interface ReloadEvent {
  previous: LoadedPolicy;
  current: LoadedPolicy;
  hiddenChanged: boolean;
}

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
  private debounce?: NodeJS.Timeout;
  private polling = false;

  constructor(
    readonly path: string,
    initial?: LoadedPolicy,
    counters?: RateCounters,
  ) {
    super();
    this.path = resolve(path);
    this.current = initial ?? loadPolicyFile(this.path);
    this.limiter = counters ?? new SlidingWindowLimiter();
  }

  /** Re-reads the file now. Returns true when a new version was put in force. */
  reload(): boolean {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      this.emit('invalid', new PolicyLoadError(this.path, [{ path: '', message: `cannot read: ${(e as Error).message}` }]));
      return false;
    }
    const hash = createHash('sha256').update(text).digest('hex');
    if (hash === this.current.hash) return false;
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
    const schedule = () => {
      if (this.debounce) clearTimeout(this.debounce);
      this.debounce = setTimeout(() => this.reload(), 30);
      this.debounce.unref();
    };
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
    if (this.debounce) clearTimeout(this.debounce);
  }
}
