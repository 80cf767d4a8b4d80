import type { JobContext } from '../domain/types.js';
import type { Suppressor } from '../domain/subject.js';
import { DetectionEngine, type EngineConfig, type EngineCounters } from '../detection/engine.js';
import type { SqliteStore } from '../storage/sqlite/sqlite-store.js';
import { DEFAULT_INGEST_LEASE_TTL_MS, IngestLeaseBusyError, type IngestLease, type IngestLeaseEvent, type IngestSession } from '../storage/store.js';
import { Worker } from 'node:worker_threads';
import { hostname } from 'node:os';
import type { IngestFormat } from './adapters/types.js';
import { parseSource, type ParseError, type ParsedBatch, type SourceChunk } from './record-parser.js';
import type { WorkerInput, WorkerMessage } from './parse-worker.js';
import { SourceReadError } from './input.js';

export interface IngestOptions {
  tenant: string;
  format: IngestFormat | 'auto';
  strict: boolean;
  defaults: Partial<JobContext>;
  engine: EngineConfig;
  /** builds the suppressor from the active rules of a tenant (same matcher as preview/create) */
  suppressorFor?: (store: SqliteStore, tenant: string) => Suppressor;
  batchSize?: number;
  /** parse in this thread instead of a worker (stdin always is) */
  inThread?: boolean;
  /** how many individual errors to keep per file (all are counted) */
  maxErrors?: number;
  onProgress?: (p: { source: string; bytes: number; size: number | null; records: number }) => void;
  /** told when this ingest waits for another writer of a tenant, or takes over from a dead one */
  onLeaseEvent?: (e: IngestLeaseEvent) => void;
  /** lifetime of the per-tenant ingest lease (default DEFAULT_INGEST_LEASE_TTL_MS) */
  leaseTtlMs?: number;
  /** skip known repeats by their text before JSON.parse (default true; false only to compare) */
  repeatFastPath?: boolean;
}

export type IngestError = ParseError;

/** Parsed batches per write transaction, and the longest a transaction stays open. */
const COMMIT_BATCHES = 8;
const COMMIT_MS = 500;

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
   * named-by-dns, skipped-not-egress, skipped-no-destination, skipped-not-network, process-events,
   * hash-not-a-hash, zero-time-took-previous, dns-unusable (docs/ingest-and-baselines.md).
   */
  notes: Record<string, number>;
  errors: IngestError[];
  detections: number;
  detectionsByType: Record<string, number>;
  suppressedOnIngest: number;
  runsCreated: number;
  /** false when --strict rolled the file back */
  stored: boolean;
  elapsedMs: number;
}

interface TenantPipe {
  session: IngestSession;
  engine: DetectionEngine;
}

function snapshot(c: EngineCounters): EngineCounters {
  return { ...c, detectionsByType: { ...c.detectionsByType } };
}

/**
 * Streams one source into the store. Records are parsed in batches and evaluated and written in
 * transactions of up to COMMIT_BATCHES batches (at most COMMIT_MS open), so a killed process leaves
 * whole committed transactions and a consistent baseline; re-running is
 * idempotent because observations and detections have natural unique keys. --strict wraps the whole
 * source in a single transaction instead, so a bad record stores nothing from that source.
 */
export class IngestPipeline {
  private readonly tenants = new Map<string, TenantPipe>();

  constructor(
    private readonly store: SqliteStore,
    private readonly opts: IngestOptions,
  ) {}

  private pipe(tenant: string): TenantPipe {
    let p = this.tenants.get(tenant);
    if (!p) {
      const session = this.store.openIngestSession(tenant);
      const sup = this.opts.suppressorFor;
      const engine = new DetectionEngine(session, this.opts.engine, sup ? () => sup(this.store, tenant) : null);
      p = { session, engine };
      this.tenants.set(tenant, p);
    }
    return p;
  }

  private totals(): EngineCounters {
    const t: EngineCounters = { accepted: 0, duplicates: 0, detections: 0, suppressedOnIngest: 0, runsCreated: 0, detectionsByType: {} };
    for (const { engine } of this.tenants.values()) {
      const c = engine.counters;
      t.accepted += c.accepted;
      t.duplicates += c.duplicates;
      t.detections += c.detections;
      t.suppressedOnIngest += c.suppressedOnIngest;
      t.runsCreated += c.runsCreated;
      for (const [k, v] of Object.entries(c.detectionsByType)) t.detectionsByType[k] = (t.detectionsByType[k] ?? 0) + v;
    }
    return t;
  }

  /** Parsed batches of one source: from a worker thread for files, in this thread for stdin. */
  private async *parsedBatches(path: string, stdin?: NodeJS.ReadableStream): AsyncGenerator<SourceBatch> {
    const batchSize = this.opts.batchSize ?? 5_000;
    if (path === '-' || this.opts.inThread) {
      const o = { format: this.opts.format, tenant: this.opts.tenant, defaults: this.opts.defaults, batchSize, stdin, repeatFastPath: this.opts.repeatFastPath };
      for await (const chunk of parseSource(path, o)) yield { ...chunk, ack: () => undefined };
      return;
    }
    const data: WorkerInput = {
      path, format: this.opts.format, tenant: this.opts.tenant, defaults: this.opts.defaults, batchSize, window: 2,
      repeatFastPath: this.opts.repeatFastPath,
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
        yield { batch: m.batch, bytes: m.bytes, size: m.size, name: m.name, ack: () => worker.postMessage({ type: 'ack' }) };
      }
    } finally {
      await worker.terminate();
    }
  }

  async ingest(path: string, stdin?: NodeJS.ReadableStream): Promise<SourceSummary> {
    const started = Date.now();
    const startedIso = new Date(started).toISOString();
    const db = this.store.db;
    const strict = this.opts.strict;
    const maxErrors = this.opts.maxErrors ?? 50;
    const before = snapshot(this.totals());
    const summary: SourceSummary = {
      source: path === '-' ? '<stdin>' : path, format: this.opts.format === 'auto' ? null : this.opts.format, records: 0, accepted: 0,
      duplicates: 0, rejected: 0, rejectedByReason: {}, notes: {}, errors: [], detections: 0, detectionsByType: {},
      suppressedOnIngest: 0, runsCreated: 0, stored: true, elapsedMs: 0,
    };
    let repeats = 0;
    let txStarted = 0;
    let txBatches = 0;
    let idleCommit: NodeJS.Timeout | undefined;

    // Concurrent writers (contract in storage/store.ts): this source is written under the ingest
    // lease of every tenant it touches, taken before the first write for that tenant and released
    // at the end, so concurrent ingests apply whole sources one after the other.
    const leases = new Map<string, IngestLease>();
    const ttlMs = this.opts.leaseTtlMs ?? DEFAULT_INGEST_LEASE_TTL_MS;
    const holder = { source: summary.source, pid: process.pid, host: hostname() };
    const hold = async (tenant: string): Promise<void> => {
      let waited: IngestLeaseEvent | null = null;
      const lease = await this.store.leases.acquireIngestLease(tenant, holder, {
        ttlMs,
        // --strict cannot wait in the middle of its one transaction: the holder needs the file to finish.
        wait: !(strict && db.inTransaction),
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
      this.pipe(tenant).engine.reset();
    };
    const holdAll = async (b: ParsedBatch): Promise<void> => {
      for (const out of b.outputs) {
        const t = out.kind === 'call' ? out.event.tenant : out.kind === 'detection' ? out.detection.tenant : null;
        if (t === null || leases.has(t)) continue;
        // Never wait while holding the write lock: the holder we wait for needs it to finish.
        if (!strict && db.inTransaction) db.exec('COMMIT');
        await hold(t);
      }
    };
    const fence = () => {
      for (const l of leases.values()) l.fence();
    };
    const heartbeat = setInterval(() => {
      for (const l of leases.values()) {
        try {
          l.renew();
        } catch {
          // a lost lease is caught by the fence of the next write transaction
        }
      }
    }, Math.max(1, Math.floor(ttlMs / 3)));
    heartbeat.unref();

    const apply = (b: ParsedBatch) => {
      for (const p of this.tenants.values()) p.engine.beginBatch();
      // make sure the default tenant's rules are loaded before its first event
      this.pipe(this.opts.tenant).engine.beginBatch();
      for (const out of b.outputs) {
        if (out.kind === 'call') this.pipe(out.event.tenant).engine.handleCall(out.event);
        else if (out.kind === 'detection') this.pipe(out.detection.tenant).engine.handleImported(out.detection);
      }
      for (const p of this.tenants.values()) p.engine.endBatch();
    };

    const rollbackState = () => {
      for (const p of this.tenants.values()) p.engine.reset();
    };

    try {
      await hold(this.opts.tenant);
      if (strict) {
        db.exec('BEGIN IMMEDIATE');
        fence();
      }
      for await (const sb of this.parsedBatches(path, stdin)) {
        clearTimeout(idleCommit);
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
        if (strict) {
          if (summary.rejected === 0) {
            await holdAll(b);
            apply(b);
          }
        } else {
          await holdAll(b);
          // Several parsed batches share one transaction (committed at least every COMMIT_MS):
          // fewer commits write each hot page fewer times. A crash loses only the open transaction.
          if (!db.inTransaction) {
            db.exec('BEGIN IMMEDIATE');
            fence();
            txStarted = Date.now();
            txBatches = 0;
          }
          apply(b);
          if (++txBatches >= COMMIT_BATCHES || Date.now() - txStarted >= COMMIT_MS) db.exec('COMMIT');
          // A source that goes quiet (a pipe, `tail -f | ingest -`) must not keep what it sent
          // uncommitted, nor hold the write lock that other writers wait for: commit once idle.
          else idleCommit = setTimeout(() => db.inTransaction && db.exec('COMMIT'), COMMIT_MS);
        }
        sb.ack();
        this.opts.onProgress?.({ source: sb.name, bytes: sb.bytes, size: sb.size, records: summary.records });
        if (b.fatal || (strict && summary.rejected > 0)) break;
      }
      if (!strict && db.inTransaction) db.exec('COMMIT');
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
        db.exec('ROLLBACK');
        rollbackState();
        summary.stored = false;
      } else {
        const rec = () => {
          fence();
          this.pipe(this.opts.tenant).session.recordSource(
            summary.source, summary.format ?? 'unknown',
            { lines: summary.records, accepted: summary.accepted, rejected: summary.rejected, detections: summary.detections },
            startedIso,
          );
        };
        if (strict) {
          rec();
          db.exec('COMMIT');
        } else db.transaction(rec).immediate();
      }
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      rollbackState();
      throw err;
    } finally {
      clearTimeout(idleCommit);
      clearInterval(heartbeat);
      for (const l of leases.values()) {
        try {
          l.release();
        } catch {
          // the lease then ends by expiry; the source itself is committed or rolled back already
        }
      }
    }
    summary.elapsedMs = Date.now() - started;
    return summary;
  }
}
