import type { JobContext } from '../domain/types.js';
import type { Suppressor } from '../domain/subject.js';
import { DetectionEngine, type EngineConfig, type EngineCounters } from '../detection/engine.js';
import type { SqliteStore } from '../storage/sqlite/sqlite-store.js';
import type { IngestSession } from '../storage/store.js';
import { adapterFor, detectFormat } from './adapters/detect-format.js';
import { RecordError, type IngestFormat, type RecordAdapter, type RecordContext } from './adapters/types.js';
import { openInput } from './input.js';
import { readRecords, type RecordBatch } from './records.js';

export interface IngestOptions {
  tenant: string;
  format: IngestFormat | 'auto';
  strict: boolean;
  defaults: Partial<JobContext>;
  engine: EngineConfig;
  /** builds the suppressor from the active rules of a tenant (same matcher as preview/create) */
  suppressorFor?: (store: SqliteStore, tenant: string) => Suppressor;
  batchSize?: number;
  /** how many individual errors to keep per file (all are counted) */
  maxErrors?: number;
  onProgress?: (p: { source: string; bytes: number; size: number | null; records: number }) => void;
}

export interface IngestError {
  location: string;
  reason: string;
  field: string | null;
  message: string;
}

export interface SourceSummary {
  source: string;
  format: IngestFormat | null;
  records: number;
  accepted: number;
  duplicates: number;
  rejected: number;
  rejectedByReason: Record<string, number>;
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
 * Streams one source into the store. Each batch of records is parsed, evaluated and written in one
 * transaction, so a killed process leaves whole batches and a consistent baseline; re-running is
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

  async ingest(path: string, stdin?: NodeJS.ReadableStream): Promise<SourceSummary> {
    const started = Date.now();
    const startedIso = new Date(started).toISOString();
    const input = await openInput(path, stdin as never);
    const db = this.store.db;
    const strict = this.opts.strict;
    const maxErrors = this.opts.maxErrors ?? 50;
    const before = snapshot(this.totals());
    const summary: SourceSummary = {
      source: input.name, format: this.opts.format === 'auto' ? null : this.opts.format, records: 0, accepted: 0,
      duplicates: 0, rejected: 0, rejectedByReason: {}, errors: [], detections: 0, detectionsByType: {},
      suppressedOnIngest: 0, runsCreated: 0, stored: true, elapsedMs: 0,
    };
    let adapter: RecordAdapter | null = this.opts.format === 'auto' ? null : adapterFor(this.opts.format);
    const rc: RecordContext = { source: input.name, line: 0, tenant: this.opts.tenant, defaults: { ...this.opts.defaults } };
    let fatal = false;

    const reject = (location: string, e: RecordError) => {
      summary.rejected++;
      summary.rejectedByReason[e.reason] = (summary.rejectedByReason[e.reason] ?? 0) + 1;
      if (summary.errors.length < maxErrors) summary.errors.push({ location, reason: e.reason, field: e.field, message: e.message });
    };

    const handle = (value: unknown, location: string) => {
      if (!adapter) {
        const f = detectFormat(value);
        if (!f) {
          reject(location, new RecordError('unknown-format', null, 'cannot tell the format from the first record; pass --format native|harden-runner|ecs|stepsecurity'));
          fatal = true;
          return;
        }
        summary.format = f;
        adapter = adapterFor(f);
      }
      const a = adapter as RecordAdapter;
      // A whole {"data":{"detections":[...]}} envelope on one line.
      const env = (value as { data?: { detections?: unknown } } | null)?.data?.detections;
      if (a.format === 'stepsecurity' && Array.isArray(env)) {
        env.forEach((d, i) => handle(d, `${location}: data.detections[${i}]`));
        return;
      }
      let out;
      try {
        out = a.parse(value, rc);
      } catch (err) {
        if (err instanceof RecordError) return reject(location, err);
        throw err;
      }
      switch (out.kind) {
        case 'call':
          this.pipe(out.event.tenant).engine.handleCall(out.event);
          break;
        case 'detection':
          this.pipe(out.detection.tenant).engine.handleImported(out.detection);
          break;
        case 'context':
          rc.defaults = { ...this.opts.defaults, ...out.ctx };
          break;
        case 'skip':
          break;
      }
    };

    const beginBatch = () => {
      for (const p of this.tenants.values()) p.engine.beginBatch();
      // make sure the default tenant's rules are loaded before its first event
      this.pipe(this.opts.tenant).engine.beginBatch();
    };

    const processBatch = (batch: RecordBatch) => {
      if (batch.kind === 'error') {
        summary.records++;
        reject(`${input.name}:${batch.line}`, batch.error);
        if (batch.error.reason === 'binary-input') fatal = true;
        return;
      }
      beginBatch();
      if (batch.kind === 'lines') {
        const { lines, firstLine } = batch;
        for (let i = 0; i < lines.length && !fatal; i++) {
          const text = lines[i]!;
          const lineNo = firstLine + i;
          summary.records++;
          if (text.length === 0 || text.trim() === '') continue;
          let value: unknown;
          try {
            value = JSON.parse(text);
          } catch (err) {
            reject(`${input.name}:${lineNo}`, new RecordError('malformed-json', null, `malformed JSON: ${(err as Error).message}`));
            continue;
          }
          rc.line = lineNo;
          handle(value, `${input.name}:${lineNo}`);
        }
      } else {
        for (let i = 0; i < batch.values.length && !fatal; i++) {
          summary.records++;
          const idx = batch.firstIndex + i;
          rc.line = idx;
          handle(batch.values[i], `${input.name}: ${batch.path ? batch.path : ''}[${idx}]`);
        }
      }
    };

    const endBatch = () => {
      for (const p of this.tenants.values()) p.engine.endBatch();
    };

    const rollbackState = () => {
      for (const p of this.tenants.values()) p.engine.reset();
    };

    try {
      if (strict) db.exec('BEGIN IMMEDIATE');
      for await (const batch of readRecords(input.stream, this.opts.batchSize ?? 10_000)) {
        if (strict) {
          processBatch(batch);
          endBatch();
        } else {
          try {
            db.transaction(() => {
              processBatch(batch);
              endBatch();
            }).immediate();
          } catch (err) {
            rollbackState();
            throw err;
          }
        }
        this.opts.onProgress?.({ source: input.name, bytes: input.bytesRead(), size: input.size, records: summary.records });
        if (fatal || (strict && summary.rejected > 0)) break;
      }
      const after = this.totals();
      summary.accepted = after.accepted - before.accepted;
      summary.duplicates = after.duplicates - before.duplicates;
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
        const rec = () =>
          this.pipe(this.opts.tenant).session.recordSource(
            input.name, summary.format ?? 'unknown',
            { lines: summary.records, accepted: summary.accepted, rejected: summary.rejected, detections: summary.detections },
            startedIso,
          );
        if (strict) {
          rec();
          db.exec('COMMIT');
        } else db.transaction(rec).immediate();
      }
    } catch (err) {
      if (db.inTransaction) db.exec('ROLLBACK');
      rollbackState();
      throw err;
    }
    summary.elapsedMs = Date.now() - started;
    return summary;
  }
}
