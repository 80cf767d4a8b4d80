import type { JobContext } from '../domain/types.js';
import type { Releases, Suppressor } from '../domain/subject.js';
import { addCounters, DetectionEngine, type EngineConfig, type EngineCounters } from '../detection/engine.js';
import { DEFAULT_INGEST_LEASE_TTL_MS, IngestLeaseBusyError, type IngestLease, type IngestLeaseEvent } from '../storage/store.js';
import { IngestStateChangedError, type IngestPort, type IngestScope, type SourceRecordWrite, type TenantIngest } from '../storage/ingest-port.js';
import type { AdapterOutput } from './adapters/types.js';
import { Worker } from 'node:worker_threads';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import type { IngestFormat } from './adapters/types.js';
import { parseSource, type ParseError, type ParsedBatch, type SourceChunk } from './record-parser.js';
import type { WorkerInput, WorkerMessage } from './parse-worker.js';
import { SourceReadError } from './input.js';
import { HeapBound } from './heap-growth.js';
import { fromColumns } from './call-columns.js';

/** What the pipeline needs of a store: the ingest write contract. */
export interface IngestStore {
  readonly ingest: IngestPort;
}

export interface IngestOptions<S extends IngestStore = IngestStore> {
  tenant: string;
  format: IngestFormat | 'auto';
  strict: boolean;
  defaults: Partial<JobContext>;
  engine: EngineConfig;
  /** builds the suppressor from the active rules of a tenant (same matcher as preview/create) */
  suppressorFor?(store: S, tenant: string): Suppressor | Promise<Suppressor>;
  batchSize?: number;
  /** parse in this thread instead of a worker (stdin always is) */
  inThread?: boolean;
  /** files at least this big are parsed in a worker thread, smaller ones in this thread (default WORKER_FROM_BYTES; 0: every file) */
  workerFromBytes?: number;
  /** how many individual errors to keep per file (all are counted) */
  maxErrors?: number;
  onProgress?: (p: { source: string; bytes: number; size: number | null; records: number }) => void;
  /** told when this ingest waits for another writer of a tenant, or takes over from a dead one */
  onLeaseEvent?: (e: IngestLeaseEvent) => void;
  /** lifetime of the per-tenant ingest lease (default DEFAULT_INGEST_LEASE_TTL_MS) */
  leaseTtlMs?: number;
  /** skip known repeats by their text before JSON.parse (default true; false only to compare) */
  repeatFastPath?: boolean;
  /**
   * The extra risky destinations (config and store, rules/risky-memory.ts). The parser keeps a
   * named call that went to an address in one of their ranges apart from the same call elsewhere,
   * and prefers their names when DNS answers name an address (record-parser.ts).
   */
  riskyDestinations?: readonly string[];
  /**
   * Stops the ingest (the CLI aborts it on SIGINT / SIGTERM): waiting for a lease or for the next
   * batch ends at once, the source's scope is rolled back as on any error (what earlier batches of a
   * non-strict source committed stays) and its leases are released, so the next ingest does not
   * wait for them to expire. ingest() then rejects with the signal's reason.
   */
  signal?: AbortSignal;
}

export type IngestError = ParseError;

/*
 * Each parsed batch is one write batch (one transaction): holding several for one larger
 * transaction kept them alive longer, which cost more in garbage collection and peak memory than
 * the fewer commits saved. A quiet source (a pipe, `tail -f | ingest -`) is written as soon as the
 * reader hands on what it has (records.ts, IDLE_FLUSH_MS), so nothing stays unwritten.
 */

interface SourceBatch extends SourceChunk {
  /** tells the producer the batch is applied (flow control for the worker) */
  ack: () => void;
}

export interface SourceSummary {
  source: string;
  format: IngestFormat | null;
  records: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
  /**
   * Records read but not stored as calls, or stored with a caveat, by kind: dns-records,
   * blank-lines, named-by-dns, skipped-not-egress, direction-uncertain, skipped-no-destination, skipped-not-network, process-events,
   * hash-not-a-hash, zero-time-took-previous, dns-unusable, domain-unusable, reverse-dns-name-ignored, named-by-risky-request-name,
   * renamed-risky-by-dns, parent-chain-cut, risky-lookup, process-unknown, process-name-from-executable, container-image
   * (docs/ingest-and-baselines.md).
   */
  notes: Record<string, number>;
  errors: IngestError[];
  detections: number;
  detectionsByType: Record<string, number>;
  suppressedOnIngest: number;
  /**
   * Stored detections (suppressed or resolved before this source) moved back to `new` because a
   * binary of this source turned out to be a suspected impostor: a flagged daemon hash can bring back
   * every detection a rule hid of it.
   */
  releasedOnIngest: number;
  /** The binaries this source showed to be suspected impostors (flagged or linked), with why. */
  suspectedImpostors: Releases['binaries'];
  runsCreated: number;
  /**
   * Tenants other than the ingest's own that records of this source named in their own `tenant`
   * field, and were written into: said in the summary, never silently (a source meant for one
   * tenant can otherwise fill another's baselines, or keep its calls out of its own).
   */
  otherTenants: string[];
  /** false when --strict rolled the file back */
  stored: boolean;
  elapsedMs: number;
}

interface TenantPipe {
  tenant: string;
  engine: DetectionEngine;
  /** the tenant's side of the current source's scope */
  io: TenantIngest | null;
  /** the outputs evaluated into the pending write, to evaluate again if it turns out stale */
  window: AdapterOutput[][];
  /** the suppressor the engine evaluates with (its store writes are awaited before each write batch) */
  suppressor?: Suppressor;
  /** suppressors replaced during a --strict source, whose store writes wait for its commit */
  retired: Suppressor[];
}

function snapshot(c: EngineCounters): EngineCounters {
  return { ...c, detectionsByType: { ...c.detectionsByType } };
}

/**
 * A file smaller than this is parsed in this thread. Starting the parse worker costs about 0.15 s of
 * CPU (its own Node bootstrap and modules), and the worker only pays off by overlapping parsing with
 * writing on big files: the CLI's ingest of a 3.9 MB native file took 0.41 s wall / 0.53 s CPU in
 * this thread against 0.51 s / 0.64 s with the worker (2026-12-02). On disk size: a gzip file this
 * small parses in this thread too.
 */
export const WORKER_FROM_BYTES = 4 << 20;

/** The pending write was evaluated against rules or job state another writer has since changed. */
const STALE = Symbol('stale');
/** Evaluating again after a concurrent change: bounded, a writer cannot change state faster forever. */
const MAX_REPLAYS = 20;

/**
 * Streams one source into the store. Records are parsed in batches; the detection engine evaluates
 * each on memory and writes it through the ingest write contract (storage/ingest-port.ts) as one
 * write batch, one transaction, so a killed process leaves whole committed transactions and a consistent baseline; re-running is idempotent
 * because observations and detections have natural unique keys. --strict makes the whole source one
 * atomic scope instead (one transaction), so a bad record stores nothing from that source.
 */
export class IngestPipeline<S extends IngestStore = IngestStore> {
  private readonly tenants = new Map<string, TenantPipe>();
  /** what suspected impostors' flags moved back to `new` during the current source */
  private releases: Releases = { released: 0, binaries: [] };

  constructor(
    private readonly store: S,
    private readonly opts: IngestOptions<S>,
  ) {}

  private pipe(tenant: string): TenantPipe {
    let p = this.tenants.get(tenant);
    if (!p) {
      p = { tenant, engine: new DetectionEngine(this.opts.engine), io: null, window: [], retired: [] };
      this.tenants.set(tenant, p);
    }
    return p;
  }

  private totals(): EngineCounters {
    const t: EngineCounters = { accepted: 0, duplicates: 0, detections: 0, suppressedOnIngest: 0, runsCreated: 0, detectionsByType: {} };
    for (const { engine } of this.tenants.values()) addCounters(t, engine.counters);
    return t;
  }

  /**
   * Reads what the engine lacks for `outs`, then evaluates them: as many rounds as the batch needs
   * (usually one). Throws STALE when the pending write must be evaluated again.
   */
  private async evaluate(p: TenantPipe, outs: readonly AdapterOutput[]): Promise<void> {
    const e = p.engine;
    let at = 0;
    let req = e.plan(outs, 0);
    for (;;) {
      const res = await p.io!.read(req);
      const a = e.accept(req, res);
      if (a === 'stale') throw STALE;
      if (a === 'replan') {
        req = e.plan(outs, at);
        continue;
      }
      const v = e.rulesChanged;
      const load = this.opts.suppressorFor;
      // Rules changed by another process are applied from this batch on (nothing is pending here).
      if (v !== null && load) {
        // the writes the old one owes (impostor releases) are stored before it is replaced
        if (p.suppressor) await this.settle(p, p.suppressor);
        p.suppressor = await load.call(this.opts, this.store, p.tenant);
        e.setSuppressor(p.suppressor, v);
      }
      const o = e.apply(outs, at);
      if (o.done) return;
      at = o.at;
      req = o.need;
    }
  }

  /**
   * Forgets what a rolled-back source left in memory: the engine's state, and the suppressors with
   * the flags they owe. Those flags came from records that are not stored, so they are neither stored
   * nor told under the next source; its first batch loads a suppressor afresh (the reset engine asks
   * for one).
   */
  private discard(p: TenantPipe): void {
    p.engine.reset();
    p.window = [];
    p.retired = [];
    p.suppressor = undefined;
  }

  /** Evaluates the pending write of a tenant again from scratch, after another writer changed its state. */
  private async replay(p: TenantPipe): Promise<void> {
    for (let n = 0; ; n++) {
      p.engine.reset();
      try {
        for (const w of p.window) await this.evaluate(p, w);
        return;
      } catch (err) {
        if (err !== STALE || n >= MAX_REPLAYS) throw err === STALE ? new Error(`tenant "${p.tenant}": its state kept changing under this ingest`) : err;
      }
    }
  }

  private async applyBatch(p: TenantPipe, outs: AdapterOutput[]): Promise<void> {
    p.window.push(outs);
    try {
      await this.evaluate(p, outs);
    } catch (err) {
      if (err !== STALE) throw err;
      await this.replay(p);
    }
  }

  /**
   * Stores what a suppressor owes (impostor flags and the release of their past suppressions). A
   * --strict source is one transaction that holds locks the release needs on a networked store, so
   * there it waits for the commit (settleAfterCommit).
   */
  private async settle(p: TenantPipe, s: Suppressor): Promise<void> {
    if (this.opts.strict) {
      if (!p.retired.includes(s)) p.retired.push(s);
      return;
    }
    await s.settle?.();
    this.collectReleases(s);
  }

  /**
   * The binaries flagged (and stored) so far while reading a source that has not finished: what an
   * interrupted ingest must still tell (that source never gets its summary). Empty between sources.
   */
  flaggedInSource(): readonly Releases['binaries'][number][] {
    return this.releases.binaries;
  }

  /** What the suppressor's last store writes flagged and moved back to `new`, for the source's summary. */
  private collectReleases(s: Suppressor | undefined): void {
    const r = s?.takeReleases?.();
    if (!r) return;
    this.releases.released += r.released;
    for (const b of r.binaries) {
      if (!this.releases.binaries.some((x) => x.tenant === b.tenant && x.process === b.process && x.sha256 === b.sha256 && x.path === b.path)) this.releases.binaries.push(b);
    }
  }

  private async settleAfterCommit(): Promise<void> {
    for (const p of this.tenants.values()) {
      const all = [...new Set([...p.retired, ...(p.suppressor ? [p.suppressor] : [])])];
      p.retired = [];
      for (const s of all) {
        await s.settle?.();
        p.engine.released((await s.link?.()) ?? []);
        this.collectReleases(s);
      }
    }
  }

  /** Writes the tenant's pending write as one batch (with the source record, when given). */
  private async flush(p: TenantPipe, lease: IngestLease, source?: SourceRecordWrite): Promise<void> {
    // A write states the versions it was evaluated against: an engine that never read has none yet.
    if (p.engine.versions().jobStateVersion === -1) await this.applyBatch(p, []);
    // An impostor flagged while evaluating: its past suppressions are released before this batch is stored.
    if (p.suppressor) await this.settle(p, p.suppressor);
    for (let n = 0; ; n++) {
      const batch = p.engine.takeWrite({ token: lease.token, ttlMs: lease.ttlMs }, source);
      if (!batch) break;
      try {
        p.engine.committed(await p.io!.write(batch));
        // a --strict source is one transaction: its links wait for the commit, as its flags do
        if (!this.opts.strict) {
          p.engine.released((await p.suppressor?.link?.()) ?? []);
          this.collectReleases(p.suppressor);
        }
        break;
      } catch (err) {
        if (!(err instanceof IngestStateChangedError) || n >= MAX_REPLAYS) throw err;
        await this.replay(p);
      }
    }
    p.window = [];
  }

  /** Parsed batches of one source: from a worker thread for files, in this thread for stdin. */
  private async *parsedBatches(path: string, stdin?: NodeJS.ReadableStream): AsyncGenerator<SourceBatch> {
    const batchSize = this.opts.batchSize ?? 5_000;
    if (path === '-' || this.opts.inThread || sizeBelow(path, this.opts.workerFromBytes ?? WORKER_FROM_BYTES)) {
      const o = {
        format: this.opts.format, tenant: this.opts.tenant, defaults: this.opts.defaults, batchSize, stdin, repeatFastPath: this.opts.repeatFastPath,
        riskyDestinations: this.opts.riskyDestinations,
      };
      for await (const chunk of parseSource(path, o)) yield { ...chunk, ack: () => undefined };
      return;
    }
    const data: WorkerInput = {
      path, format: this.opts.format, tenant: this.opts.tenant, defaults: this.opts.defaults, batchSize, window: 2,
      repeatFastPath: this.opts.repeatFastPath, riskyDestinations: this.opts.riskyDestinations,
    };
    // A capped young generation keeps the parser's heap small next to the main thread's (peak RSS budget).
    const worker = new Worker(new URL('./parse-worker.js', import.meta.url), { workerData: data, resourceLimits: { maxYoungGenerationSizeMb: 16 } });
    const queue: WorkerMessage[] = [];
    let notify: (() => void) | null = null;
    let failure: Error | null = null;
    worker.on('message', (m: WorkerMessage) => {
      queue.push(m);
      notify?.();
    });
    worker.on('error', (err) => {
      failure = err;
      notify?.();
    });
    worker.on('exit', () => {
      queue.push({ type: 'done' });
      notify?.();
    });
    try {
      for (;;) {
        while (queue.length === 0 && !failure) await new Promise<void>((r) => (notify = r));
        notify = null;
        if (failure) throw failure;
        const m = queue.shift()!;
        if (m.type === 'done') return;
        if (m.type === 'error') {
          if (m.read) throw new SourceReadError(m.read.source, m.read.reason, m.read.byte, m.read.detail);
          throw new Error(`${path}: ${m.message}`);
        }
        // Back to the event loop before each batch: the worker's messages are taken one after another
        // in one turn of it (each ack brings the next while the batch is written), and a SIGINT or
        // SIGTERM waits for the loop's poll phase, so it would not be seen before the source ended.
        await new Promise<void>((r) => setImmediate(r));
        yield { batch: fromColumns(m.batch), bytes: m.bytes, size: m.size, name: m.name, ack: () => worker.postMessage({ type: 'ack' }) };
      }
    } finally {
      await worker.terminate();
    }
  }

  async ingest(path: string, stdin?: NodeJS.ReadableStream): Promise<SourceSummary> {
    // This thread's garbage, not its live data, is what took peak RSS over budget (heap-growth.ts).
    const heap = new HeapBound();
    const started = Date.now();
    const startedIso = new Date(started).toISOString();
    const port = this.store.ingest;
    const strict = this.opts.strict;
    const maxErrors = this.opts.maxErrors ?? 50;
    const before = snapshot(this.totals());
    const summary: SourceSummary = {
      source: path === '-' ? '<stdin>' : path, format: this.opts.format === 'auto' ? null : this.opts.format, records: 0, accepted: 0,
      duplicates: 0, rejected: 0, rejectedByReason: {}, notes: {}, errors: [], detections: 0, detectionsByType: {},
      suppressedOnIngest: 0, releasedOnIngest: 0, suspectedImpostors: [], runsCreated: 0, otherTenants: [], stored: true, elapsedMs: 0,
    };
    this.releases = { released: 0, binaries: [] };
    let repeats = 0;
    let scope: IngestScope | null = null;

    // Concurrent writers (contract in storage/store.ts): this source is written under the ingest
    // lease of every tenant it touches, taken before the first write for that tenant and released
    // at the end, so concurrent ingests apply whole sources one after the other.
    const leases = new Map<string, IngestLease>();
    const ttlMs = this.opts.leaseTtlMs ?? DEFAULT_INGEST_LEASE_TTL_MS;
    const holder = { source: summary.source, pid: process.pid, host: hostname() };
    const flushAll = async () => {
      for (const p of this.tenants.values()) {
        const lease = leases.get(p.tenant);
        if (lease && p.io) await this.flush(p, lease);
      }
    };
    const hold = async (tenant: string): Promise<void> => {
      let waited: IngestLeaseEvent | null = null;
      const lease = await port.leases.acquireIngestLease(tenant, holder, {
        ttlMs,
        ...(this.opts.signal ? { signal: this.opts.signal } : {}),
        // --strict cannot wait in the middle of its one transaction: the holder needs the file to finish.
        wait: !(strict && scope !== null),
        onWait: (e) => {
          waited = e;
          this.opts.onLeaseEvent?.(e);
        },
      });
      if (!lease) {
        const e = waited as IngestLeaseEvent | null;
        const by = e?.kind === 'waiting' ? ` by the ingest of ${e.current.holder.source} (pid ${e.current.holder.pid} on ${e.current.holder.host})` : '';
        throw new IngestLeaseBusyError(`tenant "${tenant}" is being written${by}: --strict cannot wait for it in the middle of ${summary.source}; nothing from it was stored`);
      }
      leases.set(tenant, lease);
      // Other writers may have changed the tenant since this process last held it: no stale cache.
      const p = this.pipe(tenant);
      p.engine.reset();
      p.window = [];
      if (scope) p.io = await scope.tenant(tenant);
    };
    const holdAll = async (b: ParsedBatch): Promise<void> => {
      for (const out of b.outputs) {
        const t = out.kind === 'call' ? out.event.tenant : out.kind === 'detection' ? out.detection.tenant : null;
        if (t === null || leases.has(t)) continue;
        // Nothing pending while waiting: what was read so far is stored before this ingest may wait long.
        if (!strict) await flushAll();
        await hold(t);
      }
    };
    const heartbeat = setInterval(() => {
      for (const l of leases.values()) {
        // a lost lease is caught by the fence of the next write
        Promise.resolve()
          .then(() => l.renew())
          .catch(() => undefined);
      }
    }, Math.max(1, Math.floor(ttlMs / 3)));
    heartbeat.unref();

    const apply = async (b: ParsedBatch) => {
      const byTenant = new Map<string, AdapterOutput[]>();
      for (const out of b.outputs) {
        const t = out.kind === 'call' ? out.event.tenant : out.kind === 'detection' ? out.detection.tenant : null;
        if (t === null) continue;
        let list = byTenant.get(t);
        if (!list) byTenant.set(t, (list = []));
        list.push(out);
      }
      for (const [t, outs] of byTenant) await this.applyBatch(this.pipe(t), outs);
    };

    try {
      await hold(this.opts.tenant);
      scope = await port.beginSource({ atomic: strict });
      for (const t of leases.keys()) this.pipe(t).io = await scope.tenant(t);
      this.opts.signal?.throwIfAborted();
      for await (const sb of untilAborted(this.parsedBatches(path, stdin), this.opts.signal)) {
        const b = sb.batch;
        summary.source = sb.name;
        summary.records += b.records;
        if (b.format) summary.format = b.format;
        repeats += b.repeats;
        for (const [k, v] of Object.entries(b.notes)) summary.notes[k] = (summary.notes[k] ?? 0) + v;
        for (const e of b.errors) {
          summary.rejected++;
          summary.rejectedByReason[e.reason] = (summary.rejectedByReason[e.reason] ?? 0) + 1;
          if (summary.errors.length < maxErrors) summary.errors.push(e);
        }
        if (!strict || summary.rejected === 0) {
          await holdAll(b);
          await apply(b);
          // One write batch per parsed batch: a crash loses at most the batch being written.
          await flushAll();
        }
        sb.ack();
        heap.check();
        this.opts.onProgress?.({ source: sb.name, bytes: sb.bytes, size: sb.size, records: summary.records });
        if (b.fatal || (strict && summary.rejected > 0)) break;
      }
      await flushAll();
      const after = this.totals();
      summary.accepted = after.accepted - before.accepted + repeats;
      summary.duplicates = after.duplicates - before.duplicates + repeats;
      summary.detections = after.detections - before.detections;
      summary.suppressedOnIngest = after.suppressedOnIngest - before.suppressedOnIngest;
      summary.runsCreated = after.runsCreated - before.runsCreated;
      for (const [k, v] of Object.entries(after.detectionsByType)) {
        const d = v - (before.detectionsByType[k] ?? 0);
        if (d) summary.detectionsByType[k] = d;
      }
      const failedStrict = strict && summary.rejected > 0;
      if (failedStrict) {
        await scope.rollback();
        for (const p of this.tenants.values()) this.discard(p);
        summary.stored = false;
        // nothing of it is stored, so nothing of it counts: the repeats the parser dropped included
        Object.assign(summary, { accepted: 0, duplicates: 0, detections: 0, detectionsByType: {}, suppressedOnIngest: 0, runsCreated: 0 });
      } else {
        const p = this.pipe(this.opts.tenant);
        await this.flush(p, leases.get(this.opts.tenant)!, {
          source: summary.source, format: summary.format ?? 'unknown', startedAt: startedIso,
          lines: summary.records, accepted: summary.accepted, rejected: summary.rejected, detections: summary.detections,
        });
        await scope.commit();
        if (strict) {
          await this.settleAfterCommit();
          // binaries linked after the commit: their detections are new, no longer suppressed
          summary.suppressedOnIngest = this.totals().suppressedOnIngest - before.suppressedOnIngest;
        }
        summary.releasedOnIngest = this.releases.released;
        summary.suspectedImpostors = this.releases.binaries;
      }
    } catch (err) {
      await scope?.rollback();
      for (const p of this.tenants.values()) this.discard(p);
      throw err;
    } finally {
      clearInterval(heartbeat);
      for (const p of this.tenants.values()) p.io = null;
      for (const l of leases.values()) {
        try {
          await l.release();
        } catch {
          // the lease then ends by expiry; the source itself is committed or rolled back already
        }
      }
    }
    summary.otherTenants = summary.stored ? [...leases.keys()].filter((t) => t !== this.opts.tenant).sort() : [];
    summary.elapsedMs = Date.now() - started;
    // told in the summary now: flaggedInSource() is about a source not finished
    this.releases = { released: 0, binaries: [] };
    return summary;
  }
}

/** True when `path` is a file smaller than `bytes`; anything else (missing, unreadable) is left to openInput to report. */
function sizeBelow(path: string, bytes: number): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && st.size < bytes;
  } catch {
    return false;
  }
}

/**
 * `batches` until `signal` aborts: then the wait for the next one ends at once with the signal's
 * reason (a quiet pipe may never send it), and the batches are closed without waiting for that.
 */
export async function* untilAborted<T>(batches: AsyncGenerator<T>, signal: AbortSignal | undefined): AsyncGenerator<T> {
  if (!signal) return yield* batches;
  try {
    for (;;) {
      signal.throwIfAborted();
      const n = await nextOrAbort(batches, signal);
      if (n.done) return;
      yield n.value;
    }
  } finally {
    // after an abort, a next() still pending would hold return() back: close them in the background
    if (signal.aborted) batches.return(undefined).catch(() => undefined);
    else await batches.return(undefined);
  }
}

/**
 * The next batch, or the signal's reason once it aborts. A listener per call, removed when the batch
 * comes: racing one long-lived abort promise instead (Promise.race) leaves a reaction on it per batch,
 * each holding its batch, until the ingest ends (974 MiB peak on the 5M-event benchmark file).
 */
function nextOrAbort<T>(batches: AsyncGenerator<T>, signal: AbortSignal): Promise<IteratorResult<T>> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    batches.next().then(
      (n) => {
        signal.removeEventListener('abort', onAbort);
        resolve(n);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
