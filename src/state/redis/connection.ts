import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Redis } from 'ioredis';
import type { RedisAddress } from './url.js';
import { PolicyStateUnavailableError } from '../../storage/policy-state.js';
import { COMMIT, REFUND, RESERVE, RESTORE, USED } from './scripts.js';
import { APPROVAL_SCRIPTS } from './approval-scripts.js';
import { HANDLE_LIVE, HANDLE_TOUCH } from './handle-scripts.js';
import { restoreCharges, type Charge } from './counters.js';
import { LostDataError } from './lost-data.js';
import { restoreConsumed } from './approval-journal.js';

// ioredis is loaded when a connection is made, not at import: it costs a third of a second of CPU,
// which every process without --state (each CLI run, each gateway on its own store) would pay.
const require = createRequire(import.meta.url);

const KEY_HMAC = 'egress-triage:args-hmac-key';
const KEY_EPOCH = 'egress-triage:epoch';
/** How often an idle replica reads the marker key: well within the default recovery hold of 2 s. */
const MARKER_CHECK_MS = 500;

export interface ConnectionOptions {
  address: RedisAddress;
  /** Injected clock (tests): the scripts then use it instead of Redis TIME. */
  clock?: () => number;
  /** How long every replica waits for the others to put their charges back when Redis lost its data. */
  recoveryHoldMs?: number;
  /** How long ready() waits for the first connection. */
  connectWaitMs?: number;
  log?: (line: string) => void;
}

const SCRIPTS = { reserve: [2, RESERVE], refund: [2, REFUND], commit: [1, COMMIT], used: [2, USED], restore: [2, RESTORE], handle_touch: [1, HANDLE_TOUCH], handle_live: [1, HANDLE_LIVE], ...APPROVAL_SCRIPTS } as const;
export type ScriptName = keyof typeof SCRIPTS;

/**
 * One Redis connection with the rules that make policy state fail closed:
 * - no offline queue and no resending: a command while Redis is away fails at once (the call is
 *   denied with the reason) instead of waiting or running twice later;
 * - reconnection in the background (every 50-500 ms), so the gateway recovers without a restart;
 * - on every (re)connection, a check that Redis still has our data. A marker key ("epoch") is
 *   written once; when it is gone or changed, Redis restarted without its data. A new server process
 *   (its `run_id`) is a restart too, even with the marker there: reloaded from a snapshot or a short
 *   append-only file, it lost the writes made after that was saved. After a restart every replica
 *   puts back the charges it made that are still inside their windows, and marks the approvals it used
 *   as used again, then waits `recoveryHoldMs` (denying) so the other replicas can do the same before
 *   anything is admitted on the rebuilt counts. What was seen is remembered only once that worked,
 *   so a put-back that fails is tried again;
 * - a check that fails while the connection stays up (out of memory, read-only, a timeout) is tried
 *   again on a timer: no reconnection would run it, and the replica would deny for good.
 */
export class RedisConnection {
  readonly redis: Redis;
  readonly journal = new Map<string, Charge>();
  /** approvals this process used (key → their expiry), to mark them used again after a restart */
  readonly consumed = new Map<string, number>();
  readonly injected: boolean;
  private key?: Buffer;
  private epoch?: string;
  /** the server process last checked (INFO run_id); null when the server does not say */
  private runId?: string | null;
  private checking = false;
  private recheck = false;
  private failedChecks = 0;
  private retryTimer?: NodeJS.Timeout;
  private usable = false;
  private holdUntil = 0;
  private lastError?: string;
  private closed = false;
  private readonly readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  /** a reason this Redis can never hold the state (no such database, keys evicted): calls are denied, ready() fails at once */
  private fatal?: string;
  private readonly holdMs: number;

  constructor(private readonly o: ConnectionOptions) {
    this.injected = o.clock !== undefined;
    this.holdMs = o.recoveryHoldMs ?? 2000;
    const { Redis: RedisClient } = require('ioredis') as typeof import('ioredis');
    this.redis = new RedisClient({
      host: o.address.host,
      port: o.address.port,
      db: o.address.db,
      lazyConnect: true,
      enableOfflineQueue: false,
      autoResendUnfulfilledCommands: false,
      maxRetriesPerRequest: 0,
      connectTimeout: 2000,
      commandTimeout: 2000,
      retryStrategy: (n: number) => (this.closed ? null : Math.min(50 * n, 500)),
    });
    for (const [name, [numberOfKeys, lua]] of Object.entries(SCRIPTS)) this.redis.defineCommand(`et_${name}`, { numberOfKeys, lua });
    this.redis.on('error', (e: Error) => (this.lastError = e.message));
    this.redis.on('close', () => {
      if (this.usable) this.o.log?.(`lost the connection to ${this.o.address.display}; calls that need policy state are denied until it is back`);
      this.usable = false;
    });
    this.redis.on('ready', () => void this.onReady());
    this.redis.connect().catch((e: Error) => (this.lastError = e.message));
    this.markerTimer = setInterval(() => void this.watchMarker(), MARKER_CHECK_MS);
    this.markerTimer.unref();
  }

  private readonly markerTimer: NodeJS.Timeout;

  /**
   * A replica that admits nothing would not learn from its calls that Redis lost its data while
   * connected (runAdmitting), and would not put its charges back while another one holds for it:
   * the marker key is read on a timer too, well within the recovery hold.
   */
  private async watchMarker(): Promise<void> {
    if (!this.usable || this.checking || this.closed) return;
    const epoch = await this.redis.get(KEY_EPOCH).catch(() => undefined);
    if (epoch === undefined || epoch === this.epoch || !this.usable) return;
    this.lostData();
  }

  /** The marker key is gone or changed on a live connection: deny, and recover as after a restart (check). */
  private lostData(): void {
    if (!this.usable) return;
    this.usable = false;
    this.lastError = 'its data was lost while connected (the marker key is gone: FLUSHALL, FLUSHDB or an eviction)';
    this.o.log?.(`${this.display} lost its data while connected; calls that need policy state are denied while the charges are put back`);
    void this.onReady();
  }

  get display(): string {
    return this.o.address.display;
  }

  now(): number {
    return this.o.clock ? this.o.clock() : Date.now();
  }

  /** ARGV "now" for the counter scripts: the injected clock, or -1 for Redis TIME. */
  nowArg(): string {
    return this.o.clock ? String(this.o.clock()) : '-1';
  }

  get hashKey(): Buffer {
    if (!this.key) throw new Error(`policy state at ${this.display} is not available yet (${this.lastError ?? 'connecting'})`);
    return this.key;
  }

  /** Throws the reason calls are denied right now, if they are. */
  assertUsable(): void {
    if (this.fatal !== undefined) throw new Error(this.fatal);
    if (!this.usable) {
      // connected, but the check on connecting failed (it is tried again): not "unreachable"
      const what = this.redis.status === 'ready' ? 'cannot be used' : 'is unreachable';
      throw new Error(`Redis at ${this.display} ${what} (${this.lastError ?? this.redis.status}); calls that need rate-limit or approval state are denied until it is back`);
    }
    if (Date.now() < this.holdUntil) {
      throw new Error(`Redis at ${this.display} is new or restarted without some of its data; the gateways are putting their charges and used approvals back (until ${new Date(this.holdUntil).toISOString()})`);
    }
  }

  /** A readable error for a failed command. */
  explain(e: unknown): Error {
    const m = (e as Error).message ?? String(e);
    if (m.startsWith('Redis at ')) return e as Error;
    // The client's own words for a lost connection ("Stream isn't writeable ...") say less than ours.
    // A refusal on a live connection (NOPERM, OOM) keeps its own words, also during the check.
    if (this.redis.status !== 'ready' || /writeable|Connection is closed|ECONNREFUSED|ECONNRESET/.test(m)) {
      this.lastError ??= m;
      this.usable = false;
      return new Error(`Redis at ${this.display} is unreachable (${this.lastError}); calls that need rate-limit or approval state are denied until it is back`);
    }
    return new Error(`Redis at ${this.display}: ${m}`);
  }

  async run(name: ScriptName, keys: string[], args: string[]): Promise<unknown> {
    const fn = (this.redis as unknown as Record<string, (...a: string[]) => Promise<unknown>>)[`et_${name}`]!;
    try {
      return await fn.call(this.redis, ...keys, ...args);
    } catch (e) {
      throw this.explain(e);
    }
  }

  /**
   * Runs a script that admits (a charge), in one round trip with a read of the marker key: a Redis
   * that lost its data while connected (FLUSHALL, FLUSHDB, a key evicted) raises no reconnection, so
   * the check on connecting never ran, and every counter started again from zero. Finding the marker
   * gone or changed, the call is refused and the same recovery as after a restart runs (charges put
   * back, a hold). A flush between the two commands is found by the next call.
   */
  async runAdmitting(name: ScriptName, keys: string[], args: string[]): Promise<unknown> {
    const p = this.redis.pipeline().get(KEY_EPOCH);
    (p as unknown as Record<string, (...a: string[]) => unknown>)[`et_${name}`]!.call(p, ...keys, ...args);
    let out: [Error | null, unknown][] | null;
    try {
      out = await p.exec();
    } catch (e) {
      throw this.explain(e);
    }
    const [[epochErr, epoch] = [null, null], [err, result] = [null, null]] = out ?? [];
    if (epochErr) throw this.explain(epochErr);
    if (epoch !== this.epoch) {
      this.lostData();
      throw new LostDataError(`Redis at ${this.display} lost its data while connected (FLUSHALL, FLUSHDB or an evicted key); the gateways are putting their charges back, and calls that need rate-limit or approval state are denied until then`, err ? undefined : result);
    }
    if (err) throw this.explain(err);
    return result;
  }

  private async onReady(): Promise<void> {
    // one check at a time; a 'ready' or a retry arriving meanwhile runs it again afterwards
    if (this.checking) {
      this.recheck = true;
      return;
    }
    this.checking = true;
    clearTimeout(this.retryTimer);
    try {
      await this.check();
      this.failedChecks = 0;
    } catch (e) {
      this.usable = false;
      this.lastError = (e as Error).message.replace(`Redis at ${this.display}: `, '');
      if (!this.closed && this.redis.status === 'ready' && this.fatal === undefined) {
        this.retryTimer = setTimeout(() => void this.onReady(), Math.min(100 * 2 ** this.failedChecks++, 2000));
        this.retryTimer.unref();
      }
      // else the connection retries on its own; the next 'ready' runs this check again
    } finally {
      this.checking = false;
    }
    if (this.recheck) {
      this.recheck = false;
      void this.onReady();
    }
  }

  private async check(): Promise<void> {
    let fresh = false;
    await this.selectOwnDatabase();
    await this.refuseEviction();
    if (this.key) await this.redis.set(KEY_HMAC, this.key, 'NX');
    else {
      await this.redis.set(KEY_HMAC, randomBytes(32), 'NX');
      this.key = (await this.redis.getBuffer(KEY_HMAC)) ?? undefined;
    }
    const runId = await this.serverRunId();
    const seen = await this.redis.get(KEY_EPOCH);
    if (seen === null) fresh = (await this.redis.set(KEY_EPOCH, randomBytes(8).toString('hex'), 'NX')) === 'OK';
    const epoch = (await this.redis.get(KEY_EPOCH)) ?? undefined;
    const known = this.epoch !== undefined;
    // A server that does not give its run_id could have restarted at any reconnection.
    const restarted = known && (epoch !== this.epoch || runId === null || runId !== this.runId);
    if (restarted) {
      const now = this.now();
      const charges = await restoreCharges(this, this.journal, now);
      const used = await restoreConsumed(this, this.consumed, now);
      this.o.log?.(`${this.display} restarted and lost writes: put back ${charges} charge(s) and ${used} used approval(s) of this process`);
    }
    // Remembered only now: had a put-back failed, the next check would find the restart again.
    this.epoch = epoch;
    this.runId = runId;
    // Whoever finds the state empty or restarted waits for the others; a replica joining a live state does not.
    if (restarted || fresh) this.holdUntil = Date.now() + this.holdMs;
    this.usable = true;
    if (this.lastError) this.o.log?.(`connected to ${this.display} again`);
    this.lastError = undefined;
    const wake = this.readyWaiters.splice(0);
    // +1: a timer may fire up to a millisecond early, and assertUsable() would still see the hold.
    const wait = Math.max(0, this.holdUntil - Date.now() + 1);
    setTimeout(() => wake.forEach((w) => w.resolve()), wait).unref();
    this.onUsable?.();
  }

  /**
   * The client selects the URL's database on connecting, and when the server has no such one (its
   * `databases` setting, 16 by default) it carried on in database 0, sharing another deployment's
   * counters and approvals without a word. Selected again here, a refusal is final.
   */
  private async selectOwnDatabase(): Promise<void> {
    try {
      await this.redis.select(this.o.address.db);
    } catch (e) {
      const m = (e as Error).message;
      if (/DB index is out of range|invalid DB index/i.test(m)) this.fail(`Redis at ${this.display} has no database ${this.o.address.db} (${m}); give a database its "databases" setting allows, such as /0`);
      throw e;
    }
  }

  /**
   * A Redis that evicts keys under memory pressure (any maxmemory-policy but noeviction) can drop a
   * counter, or the marker key, and admit calls past their limits: refused. When the setting cannot be
   * read (CONFIG refused by ACLs, a managed service), said once on the log.
   */
  private async refuseEviction(): Promise<void> {
    let policy: string | null = null;
    try {
      const r = (await this.redis.call('CONFIG', 'GET', 'maxmemory-policy')) as string[];
      policy = r[1] ?? null;
    } catch (e) {
      if (!this.evictionUnknownSaid) this.o.log?.(`cannot read maxmemory-policy of ${this.display} (${(e as Error).message}): it must be noeviction, or counters may be evicted and over-admit`);
      this.evictionUnknownSaid = true;
      return;
    }
    if (policy !== null && policy !== 'noeviction') {
      this.fail(`Redis at ${this.display} evicts keys under memory pressure (maxmemory-policy ${policy}): a rate-limit counter or an approval could vanish and calls be admitted past their limits; set maxmemory-policy noeviction`);
    }
  }
  private evictionUnknownSaid = false;

  /** This Redis can never hold the state: every waiter and every later call is refused with why. */
  private fail(reason: string): never {
    this.fatal = reason;
    this.usable = false;
    for (const w of this.readyWaiters.splice(0)) w.reject(new PolicyStateUnavailableError(reason));
    throw new Error(reason);
  }

  /** The server process's run_id (new at every start), or null when INFO is refused (ACLs, a proxy). */
  private async serverRunId(): Promise<string | null> {
    const info = await this.redis.info('server').catch((e: Error) => {
      if (/NOPERM|unknown command/i.test(e.message)) return null;
      throw e;
    });
    return info === null ? null : (/^run_id:([0-9a-f]+)\r?$/m.exec(info)?.[1] ?? null);
  }

  /** Called after every successful (re)connection check: approvals re-check their waiters. */
  onUsable?: () => void;

  /** Resolves once connected, checked, and out of any recovery hold; rejects after connectWaitMs. */
  ready(): Promise<void> {
    if (this.fatal !== undefined) return Promise.reject(new PolicyStateUnavailableError(this.fatal));
    if (this.usable && Date.now() >= this.holdUntil) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const ms = this.o.connectWaitMs ?? 10_000;
      const t = setTimeout(() => reject(new PolicyStateUnavailableError(`cannot reach Redis at ${this.display} (${this.lastError ?? this.redis.status})`)), ms + this.holdMs);
      t.unref();
      const w = {
        resolve: () => {
          clearTimeout(t);
          resolve();
        },
        reject: (e: Error) => {
          clearTimeout(t);
          reject(e);
        },
      };
      if (this.usable) setTimeout(w.resolve, Math.max(0, this.holdUntil - Date.now() + 1)).unref();
      else this.readyWaiters.push(w);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.usable = false;
    clearTimeout(this.retryTimer);
    clearInterval(this.markerTimer);
    await this.redis.quit().catch(() => this.redis.disconnect());
  }
}
