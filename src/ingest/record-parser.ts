import { endpointOf } from '../domain/endpoint.js';
import type { JobContext } from '../domain/types.js';
import { variantKeyOf } from '../detection/engine.js';
import { adapterFor, detectFormat } from './adapters/detect-format.js';
import { RecordError, type AdapterOutput, type IngestFormat, type RecordAdapter, type RecordContext } from './adapters/types.js';
import { readRecords, type RecordBatch } from './records.js';
import { openInput } from './input.js';

export interface ParseError {
  location: string;
  reason: string;
  field: string | null;
  message: string;
}

/** Errors after which nothing more of the source can be read. */
const FATAL_REASONS = new Set(['binary-input', 'truncated-input', 'corrupt-input', 'unreadable']);

/** The result of parsing one batch: store-ready outputs plus what was rejected or repeated. */
export interface ParsedBatch {
  outputs: AdapterOutput[];
  errors: ParseError[];
  records: number;
  /** calls identical (same run, endpoint, process, status) to an earlier call of this source */
  repeats: number;
  /** the source cannot be read further (binary data, unknown format) */
  fatal: boolean;
  format: IngestFormat | null;
}

/**
 * Parses and validates records, with no access to the store, so it can run in a worker thread.
 * It also drops exact repeats of a call already seen in the same job run of this source: the engine
 * would discard them anyway, and most telemetry is repeats, so this halves the main thread's work.
 * Only the current run of each job is remembered, which keeps memory flat.
 */
/** Jobs whose current run's calls are remembered for repeat detection (least recently used evicted). */
const RECENT_JOBS = 256;

export class RecordParser {
  private adapter: RecordAdapter | null;
  private readonly rc: RecordContext;
  private readonly seen = new Map<string, { run: string; keys: Set<string> }>();

  constructor(
    format: IngestFormat | 'auto',
    source: string,
    tenant: string,
    private readonly defaults: Partial<JobContext>,
  ) {
    this.adapter = format === 'auto' ? null : adapterFor(format);
    this.rc = { source, line: 0, tenant, defaults: { ...defaults } };
  }

  get format(): IngestFormat | null {
    return this.adapter?.format ?? null;
  }

  parseBatch(batch: RecordBatch): ParsedBatch {
    const out: ParsedBatch = { outputs: [], errors: [], records: 0, repeats: 0, fatal: false, format: null };
    const src = this.rc.source;
    if (batch.kind === 'error') {
      out.records = 1;
      out.errors.push(toError(`${src}:${batch.line}`, batch.error));
      out.fatal = FATAL_REASONS.has(batch.error.reason);
    } else if (batch.kind === 'lines') {
      const { lines, firstLine } = batch;
      for (let i = 0; i < lines.length && !out.fatal; i++) {
        const text = lines[i]!;
        out.records++;
        if (text.length === 0 || text.trim() === '') continue;
        const lineNo = firstLine + i;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (err) {
          out.errors.push({ location: `${src}:${lineNo}`, reason: 'malformed-json', field: null, message: `malformed JSON: ${(err as Error).message}` });
          continue;
        }
        this.rc.line = lineNo;
        this.handle(value, `${src}:${lineNo}`, out);
      }
    } else {
      for (let i = 0; i < batch.values.length && !out.fatal; i++) {
        out.records++;
        const idx = batch.firstIndex + i;
        this.rc.line = idx;
        this.handle(batch.values[i], `${src}: ${batch.path}[${idx}]`, out);
      }
    }
    out.format = this.format;
    return out;
  }

  private handle(value: unknown, location: string, out: ParsedBatch): void {
    if (!this.adapter) {
      const f = detectFormat(value);
      if (!f) {
        out.errors.push({
          location, reason: 'unknown-format', field: null,
          message: 'cannot tell the format from the first record; pass --format native|harden-runner|ecs|stepsecurity',
        });
        out.fatal = true;
        return;
      }
      this.adapter = adapterFor(f);
    }
    const a = this.adapter;
    // A whole {"data":{"detections":[...]}} envelope on one line.
    const env = (value as { data?: { detections?: unknown } } | null)?.data?.detections;
    if (a.format === 'stepsecurity' && Array.isArray(env)) {
      env.forEach((d, i) => this.handle(d, `${location}: data.detections[${i}]`, out));
      return;
    }
    let res: AdapterOutput;
    try {
      res = a.parse(value, this.rc);
    } catch (err) {
      if (err instanceof RecordError) {
        out.errors.push(toError(location, err));
        return;
      }
      throw err;
    }
    if (res.kind === 'context') {
      this.rc.defaults = { ...this.defaults, ...res.ctx };
      return;
    }
    if (res.kind === 'call') {
      const ev = res.event;
      const c = ev.ctx;
      const job = `${ev.tenant}\u0001${c.owner}\u0001${c.repo}\u0001${c.workflow}\u0001${c.job}`;
      const run = `${c.runId}\u0001${c.runAttempt}`;
      let st = this.seen.get(job);
      if (st) this.seen.delete(job); // re-inserted below: Map order is least recently used first
      if (!st || st.run !== run) st = { run, keys: new Set() };
      this.seen.set(job, st);
      if (this.seen.size > RECENT_JOBS) this.seen.delete(this.seen.keys().next().value!);
      const key = `${endpointOf(ev.domain, ev.ip, ev.port)}\u0002${variantKeyOf(ev.process)}\u0002${ev.status}`;
      if (st.keys.has(key)) {
        out.repeats++;
        return;
      }
      st.keys.add(key);
    }
    if (res.kind !== 'skip') out.outputs.push(res);
  }
}

function toError(location: string, e: RecordError): ParseError {
  return { location, reason: e.reason, field: e.field, message: e.message };
}

/** One parsed batch of a source, with read progress. */
export interface SourceChunk {
  batch: ParsedBatch;
  /** raw bytes read so far */
  bytes: number;
  /** raw size when known (files) */
  size: number | null;
  name: string;
}

/** Reads and parses a whole source (file path or "-" for stdin). Used in the worker and in-thread. */
export async function* parseSource(
  path: string,
  o: { format: IngestFormat | 'auto'; tenant: string; defaults: Partial<JobContext>; batchSize: number; stdin?: NodeJS.ReadableStream },
): AsyncGenerator<SourceChunk> {
  const input = await openInput(path, o.stdin as never);
  const parser = new RecordParser(o.format, input.name, o.tenant, o.defaults);
  for await (const records of readRecords(input.stream, o.batchSize)) {
    const batch = parser.parseBatch(records);
    yield { batch, bytes: input.bytesRead(), size: input.size, name: input.name };
    if (batch.fatal) return;
  }
}
