import { isUtf8 } from 'node:buffer';
import { endpointOf } from '../domain/endpoint.js';
import type { JobContext, ProcessInfo } from '../domain/types.js';
import { jobIdentity } from '../domain/github-name.js';
import { adapterFor, detectFormat } from './adapters/detect-format.js';
import { BUILTIN_RISKY, isRfc3339At } from './adapters/validate.js';
import { askerKey, RecordError, type AdapterOutput, type IngestFormat, type RecordAdapter, type RecordContext, type ResolvedNames } from './adapters/types.js';
import { IDLE_FLUSH_MS, MAX_LINE_BYTES, readRecords, type RecordBatch } from './records.js';
import { LineTemplates } from './line-templates.js';
import { riskyDestinations, type RiskyDestinations } from '../analysis/risky-destinations.js';
import { openInput } from './input.js';

export interface ParseError {
  location: string;
  reason: string;
  field: string | null;
  message: string;
}

/** Errors after which nothing more of the source can be read. */
const FATAL_REASONS = new Set(['binary-input', 'truncated-input', 'corrupt-input', 'trailing-garbage', 'unreadable']);

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
  /** records read but not stored as calls, or stored with a caveat, by kind (see RecordContext.notes) */
  notes: Record<string, number>;
}

/**
 * Parses and validates records, with no access to the store, so it can run in a worker thread.
 * It also drops exact repeats of a call already seen in the same job run of this source: the engine
 * would discard them anyway, and most telemetry is repeats, so this halves the main thread's work.
 * Only the current run of each job is remembered, which keeps memory flat.
 */
/** Jobs whose current run's calls are remembered for repeat detection (least recently used evicted). */
const RECENT_JOBS = 256;
/** Job runs whose DNS answers are remembered, and IPs remembered per run (oldest evicted first). */
const DNS_RUNS = 256;
const DNS_IPS_PER_RUN = 4_096;
/** Lines per generation remembered for the repeat fast path (LineTemplates). */
const TEMPLATES = 4_096;
/** Distinct processes shared between calls (ProcessInterner); cleared when full. */
const PROCESSES = 4_096;
/** Distinct job run legs whose context calls share (ContextInterner); cleared when full. */
const CONTEXTS = 4_096;

interface SeenRun {
  run: string;
  keys: Set<string>;
}

/** A native line already fully validated and found to be this call of this job run. */
interface LineTemplate {
  job: string;
  st: SeenRun;
  key: string;
}

export class RecordParser {
  private adapter: RecordAdapter | null;
  private readonly rc: RecordContext;
  private readonly seen = new Map<string, SeenRun>();
  /** the most recently used key of `seen` (re-inserting it would change nothing) */
  private lastJob: string | null = null;
  /** the context of the last call handled in full, with its tenant, and the keys built from them */
  private lastCtx: JobContext | null = null;
  private lastTenant = '';
  private ctxJob = '';
  private ctxRun = '';
  /**
   * Native lines with their timestamp value cut out → what the full path made of them. Most
   * telemetry repeats a call with only a new timestamp; such a line is skipped without JSON.parse.
   */
  private readonly templates = new LineTemplates<LineTemplate>(TEMPLATES);
  /** the native line being handled by the full path (the templates' last match), remembered as a template if it is a call */
  private pending = false;
  /** repeats recognised by the fast path (also counted in ParsedBatch.repeats) */
  fastRepeats = 0;
  /** per job run: IP → the names DNS answers gave it (see DnsNames) */
  private readonly dns = new Map<string, Map<string, DnsNames>>();
  private readonly processes = new ProcessInterner(PROCESSES);
  /** keyed by the job run leg's SeenRun: no key string to build and hash per call */
  private readonly contexts = new ContextInterner<SeenRun>(CONTEXTS);
  /** the built-in list plus the extra one, for DNS naming and for risky addresses */
  private readonly risky: RiskyDestinations;

  constructor(
    format: IngestFormat | 'auto',
    source: string,
    tenant: string,
    private readonly defaults: Partial<JobContext>,
    /** recognise repeats by their text before JSON.parse (off only to check it changes nothing) */
    private readonly repeatFastPath = true,
    /** the extra risky destinations (pipeline.ts IngestOptions.riskyDestinations) */
    riskyExtra: readonly string[] = [],
  ) {
    this.adapter = format === 'auto' ? null : adapterFor(format);
    this.risky = riskyExtra.length === 0 ? BUILTIN_RISKY : riskyDestinations(riskyExtra);
    this.rc = { source, line: 0, tenant, defaults: { ...defaults }, notes: {}, risky: this.risky };
  }

  get format(): IngestFormat | null {
    return this.adapter?.format ?? null;
  }

  /** Parses `batch`, adding to `into` when given (the pieces of one batch, see parseSource). */
  parseBatch(batch: RecordBatch, into?: ParsedBatch): ParsedBatch {
    const out: ParsedBatch = into ?? { outputs: [], errors: [], records: 0, repeats: 0, fatal: false, format: null, notes: {} };
    this.rc.notes = out.notes;
    const src = this.rc.source;
    if (batch.kind === 'error') {
      out.records = 1;
      out.errors.push(toError(`${src}:${batch.at ?? batch.line}`, batch.error));
      out.fatal = FATAL_REASONS.has(batch.error.reason);
    } else if (batch.kind === 'lines') {
      const { bufs, starts, ends, firstLine } = batch;
      const fastPath = this.repeatFastPath;
      for (let i = 0; i < bufs.length && !out.fatal; i++) {
        const buf = bufs[i]!;
        const from = starts[i]!;
        const to = ends[i]!;
        out.records++;
        this.pending = false;
        // a blank line is read, so counted among the records, and said, so the summary adds up
        if (from === to) {
          noteBlankLine(out);
          continue;
        }
        if (fastPath && this.adapter?.format === 'native' && this.knownRepeat(buf, from, to)) {
          out.repeats++;
          continue;
        }
        const text = buf.toString('utf8', from, to);
        if (text.includes('\uFFFD') && !isUtf8(buf.subarray(from, to))) {
          // Read with U+FFFD in place of each byte sequence that is not UTF-8, and said so in the
          // summary. Such a line is never a template (pending), so every one comes here and is counted.
          out.notes['invalid-utf8'] = (out.notes['invalid-utf8'] ?? 0) + 1;
          this.pending = false;
        }
        if (text.trim() === '') {
          noteBlankLine(out);
          continue;
        }
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
        this.pending = false;
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
    // a line is a template only if reading it noted nothing (notes count every record, repeats too)
    const notesBefore = this.pending ? noteTotal(out.notes) : 0;
    try {
      res = a.parse(value, this.rc);
    } catch (err) {
      // A record that breaks an adapter in an unforeseen way is rejected like any bad record: one
      // record must not end the source, nor the files after it. The fuzz tests assert none occur.
      const e = err instanceof RecordError ? err : new RecordError('internal-error', null, `could not read the record: ${String((err as Error)?.message ?? err)}`);
      out.errors.push(toError(location, e));
      return;
    }
    if (res.kind === 'context') {
      // New defaults can give the same line another job: what the templates say no longer holds.
      this.templates.clear();
      this.rc.defaults = { ...this.defaults, ...res.ctx };
      return;
    }
    if (res.kind === 'dns') {
      this.remember(res.names);
      out.notes['dns-records'] = (out.notes['dns-records'] ?? 0) + 1;
      return;
    }
    if (res.kind === 'call') {
      if (res.names) this.remember(res.names);
      let ev = res.event;
      // A call named by a DNS answer depends on what was read before it, not on its line alone.
      const byDns = ev.ip !== undefined && this.dns.size > 0;
      if (byDns) {
        const names = this.dns.get(runKey(ev.tenant, ev.ctx))?.get(ev.ip!);
        const asker = askerKey(ev.process.pid, ev.process.name);
        const named = ev.domain === undefined ? nameFor(names, asker) : riskyInstead(names, asker, ev.domain, this.risky);
        if (named !== undefined) {
          const note = ev.domain === undefined ? 'named-by-dns' : 'renamed-risky-by-dns';
          ev = { ...ev, domain: named };
          res = { kind: 'call', event: ev };
          out.notes[note] = (out.notes[note] ?? 0) + 1;
        }
      }
      const c = ev.ctx;
      // Consecutive calls of one job run leg share their context object (the adapters' ContextBuilder),
      // and contexts are never changed: its keys are built once, not per call.
      if (c !== this.lastCtx || ev.tenant !== this.lastTenant) {
        // per leg: the legs of a matrix job (same job and run, own GitHub job id) each keep their calls
        this.ctxJob = `${ev.tenant}\u0001${jobIdentity(c.owner, c.repo, c.workflow, c.job)}\u0001${c.jobId ?? ''}`;
        this.ctxRun = `${c.runId}\u0001${c.runAttempt}`;
        this.lastCtx = c;
        this.lastTenant = ev.tenant;
      }
      const job = this.ctxJob;
      const run = this.ctxRun;
      let st = this.seen.get(job);
      if (!st || st.run !== run) {
        st = { run, keys: new Set() };
        // re-inserted: Map order is least recently used first
        this.seen.delete(job);
        this.seen.set(job, st);
        if (this.seen.size > RECENT_JOBS) this.seen.delete(this.seen.keys().next().value!);
      } else if (this.lastJob !== job) {
        this.seen.delete(job);
        this.seen.set(job, st);
      }
      this.lastJob = job;
      const clears = this.processes.clears;
      const proc = this.processes.intern(ev.process);
      // The templates stand for call keys by process number: one the full path would number anew
      // (after a clear, or a process not held) must not be matched by them, or the fast path would
      // drop a line the full path keeps.
      if (this.processes.clears !== clears) this.templates.clear();
      // A named call that went to an address in a configured risky range is kept apart from the same
      // call elsewhere: its host may resolve there only later in the run, and that call must reach
      // the engine (detection/engine.ts riskyAddress).
      const riskyAddress = this.risky.hasRanges && ev.domain !== undefined && ev.ip !== undefined && this.risky.matchHost(ev.ip) !== null;
      const key = `${endpointOf(ev.domain, ev.ip, ev.port)}\u0002${proc.id}\u0002${ev.status}${riskyAddress ? '\u0002risky-address' : ''}`;
      if (this.pending && proc.held && !byDns && a.format === 'native' && noteTotal(out.notes) === notesBefore) {
        this.templates.rememberLast({ job, st, key });
      }
      if (st.keys.has(key)) {
        out.repeats++;
        return;
      }
      st.keys.add(key);
      // Calls of one process share one object: a batch crosses to the main thread with each process
      // once (structured clone keeps identity), and the engine derives its variant once per object.
      // Calls of one job run leg likewise share one context: it would cross once per call, and the
      // main thread would allocate its strings again for each.
      const shared = proc.p;
      const sharedCtx = this.contexts.intern(st, c);
      if (shared !== ev.process || sharedCtx !== c) {
        ev = { ...ev, process: shared, ctx: sharedCtx };
        res = { kind: 'call', event: ev };
      }
    }
    if (res.kind !== 'skip') out.outputs.push(res);
  }

  /**
   * True when buf[from, to) is a repeat that the full path would drop: it equals a line already
   * validated (same job run, same call) except for a plain timestamp value, that value is a valid
   * RFC 3339 time, and that job run is still the one remembered for the job. The cut-out span is
   * always the whole content of one JSON string value (the template parsed as JSON, and the value
   * holds no quote or backslash), so the line parses to the template's record with that one string
   * changed; the native adapter reads nothing else from it. Anything else takes the full path, which
   * reports errors with their line. Also leaves the line's cut with the templates for handle()
   * (this.pending).
   */
  private knownRepeat(buf: Buffer, from: number, to: number): boolean {
    this.pending = true;
    const tt = this.templates;
    const t = tt.match(buf, from, to);
    if (t === undefined) return false;
    if (this.seen.get(t.job) !== t.st || !t.st.keys.has(t.key)) return false;
    const time = tt.cutValue();
    if (!isRfc3339At(time, 0, time.length)) return false;
    this.pending = false;
    this.fastRepeats++;
    // the same bookkeeping as the full path: this job is now the most recently used
    if (this.lastJob !== t.job) {
      this.seen.delete(t.job);
      this.seen.set(t.job, t.st);
      this.lastJob = t.job;
    }
    return true;
  }

  /** Records DNS answers for the job run they belong to (bounded: DNS_RUNS × DNS_IPS_PER_RUN). */
  private remember(n: ResolvedNames): void {
    const key = runKey(n.tenant, n.ctx);
    let ips = this.dns.get(key);
    if (ips) this.dns.delete(key); // re-inserted below: least recently used first
    else ips = new Map();
    this.dns.set(key, ips);
    if (this.dns.size > DNS_RUNS) this.dns.delete(this.dns.keys().next().value!);
    const risky = this.risky.matchHost(n.domain) !== null;
    for (const ip of n.ips) {
      const known = ips.get(ip);
      const e: DnsNames = known ?? { last: n.domain, risky: null, byAsker: null };
      if (known) ips.delete(ip); // re-inserted: the IP answered last is the newest
      e.last = n.domain;
      if (risky) e.risky = n.domain;
      if (n.asker !== undefined) {
        e.byAsker ??= new Map();
        const asked = e.byAsker.get(n.asker);
        // a process that looked up a risky name keeps it: looking up another name for the same
        // address afterwards does not rename its calls away from it
        const name = asked !== undefined && !risky && this.risky.matchHost(asked) !== null ? asked : n.domain;
        e.byAsker.delete(n.asker);
        e.byAsker.set(n.asker, name);
        if (e.byAsker.size > ASKERS_PER_IP) e.byAsker.delete(e.byAsker.keys().next().value!);
      }
      ips.set(ip, e);
      if (ips.size > DNS_IPS_PER_RUN) ips.delete(ips.keys().next().value!);
    }
  }
}

/**
 * The names DNS answers gave one IP within one job run. Shared addresses answer for many names
 * (GitHub's 185.199.108.133 for both raw.githubusercontent.com and gist.githubusercontent.com), so
 * the last answer alone can name a call after another process's lookup: a call to gist, named raw.
 */
interface DnsNames {
  /** the name of the newest answer */
  last: string;
  /** the newest answer that was a risky destination, if any */
  risky: string | null;
  /** per process that looked the IP up (askerKey): the name it asked for last, or a risky one it asked for */
  byAsker: Map<string, string> | null;
}

/** Processes remembered per IP and run, for naming their own calls (oldest dropped). */
const ASKERS_PER_IP = 64;

/**
 * The name for a call to an IP: what its own process asked for when it looked the IP up (a risky
 * name first); failing that (a Harden-Runner DNS record names no process, or another process
 * asked), a risky name among the run's answers for it, so a call is never named away from one
 * (fail closed); else the last.
 */
function nameFor(names: DnsNames | undefined, asker: string | undefined): string | undefined {
  if (names === undefined) return undefined;
  return (asker === undefined ? undefined : names.byAsker?.get(asker)) ?? names.risky ?? names.last;
}

/**
 * For a call that came with a name that is not risky: the risky name its own process asked for when
 * it looked the address up; when it did not look it up itself, a risky name the run's answers gave
 * the address. A producer's name comes from its own DNS cache, where the last answer wins
 * (Harden-Runner's agent, Auditbeat, Elastic Defend): after one process's lookup of gist and another's
 * of raw on the same address, the first one's call to gist arrives named raw. A process whose own
 * lookup was not risky keeps the name it came with.
 */
function riskyInstead(names: DnsNames | undefined, asker: string | undefined, domain: string, risky: RiskyDestinations): string | undefined {
  if (names?.risky == null || risky.matchHost(domain) !== null) return undefined;
  const own = asker === undefined ? undefined : names.byAsker?.get(asker);
  if (own !== undefined) return risky.matchHost(own) !== null ? own : undefined;
  return names.risky;
}

/** Processes of one name an interner holds; more are numbered but not held (see ProcessInterner). */
const PROCESSES_PER_NAME = 32;

/**
 * One ProcessInfo object and one number per distinct process (bounded; cleared when full). Two
 * processes are the same when they are equal in every field the store and the rules read (name,
 * path, sha256, and those of each parent): a shared object may carry another call's `pid`, which
 * nothing after the adapters reads (the store keeps no pid).
 *
 * The number stands for the process in the parser's call keys: a key then holds a few digits
 * where it would hold the names, paths and hashes of the parent chain (300 characters in the
 * benchmark file), so the keys of the runs remembered, which the line templates point at, take a
 * fraction of the memory and of the hashing. Numbers are never reused, not even after a clear, so
 * two processes never share one; a process met again after a clear gets a new number, and a
 * repeat of it may then go unrecognised here (the engine still drops it).
 *
 * Looked up by name, then compared field by field: building and hashing a key of every field (the
 * engine's variant key) for each call took 0.39 s of the parse worker's 1M-event run (CPU profile,
 * 2026-12-04). Beyond PROCESSES_PER_NAME processes of one name, a process is numbered but not held,
 * so a source with thousands of binaries under one name cannot make each lookup scan them all.
 */
export class ProcessInterner {
  private readonly byName = new Map<string, { p: ProcessInfo; id: number; held: boolean }[]>();
  private held = 0;
  private next = 0;
  /**
   * How many times the interner was cleared. A number handed out before a clear is never handed
   * out again, so whatever remembered a call key by it (the line templates) must be forgotten too.
   */
  clears = 0;

  constructor(private readonly max: number) {}

  /** `held`: the process will get this number again (false beyond PROCESSES_PER_NAME of its name). */
  intern(p: ProcessInfo): { p: ProcessInfo; id: number; held: boolean } {
    const bucket = this.byName.get(p.name);
    if (bucket !== undefined) {
      for (let i = 0; i < bucket.length; i++) if (sameProcess(bucket[i]!.p, p)) return bucket[i]!;
    }
    const e = { p, id: this.next++, held: true };
    if (this.held >= this.max) {
      this.byName.clear();
      this.held = 0;
      this.clears++;
    }
    const b = this.byName.get(p.name);
    if (b === undefined) this.byName.set(p.name, [e]);
    else if (b.length < PROCESSES_PER_NAME) b.push(e);
    else return { p, id: e.id, held: false };
    this.held++;
    return e;
  }
}

/**
 * One JobContext object per job run leg (bounded; cleared when full). `key` narrows the search (the
 * parser's state of the job run leg, whose key does not tell an absent job id from an empty one);
 * every field is compared, so contexts that differ in any are never merged.
 */
export class ContextInterner<K = string> {
  private readonly byKey = new Map<K, JobContext>();

  constructor(private readonly max: number) {}

  intern(key: K, c: JobContext): JobContext {
    const known = this.byKey.get(key);
    if (known !== undefined && sameContext(known, c)) return known;
    if (known === undefined) {
      if (this.byKey.size >= this.max) this.byKey.clear();
      this.byKey.set(key, c);
    }
    return c;
  }
}

function sameContext(a: JobContext, b: JobContext): boolean {
  if (a === b) return true;
  if (a.owner !== b.owner || a.repo !== b.repo || a.workflow !== b.workflow || a.job !== b.job) return false;
  if (a.runId !== b.runId || a.runAttempt !== b.runAttempt || a.jobId !== b.jobId) return false;
  // the same own properties too (an absent job id and an undefined one cross the thread boundary apart)
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i]);
}

function sameProcess(a: ProcessInfo, b: ProcessInfo): boolean {
  let x: ProcessInfo | null | undefined = a;
  let y: ProcessInfo | null | undefined = b;
  while (x && y) {
    if (x === y) return true;
    if (x.name !== y.name || x.path !== y.path || x.sha256 !== y.sha256) return false;
    x = x.parent;
    y = y.parent;
  }
  return (x ?? null) === (y ?? null);
}

/**
 * One job run: DNS answers name IPs only within the run they were seen in. Its job is the store's
 * (owner and repo without ASCII case, jobIdentity): `Acme` in the answer's context and `acme` in the
 * connection's are one job run, and the call must be named as the store keeps it.
 */
function runKey(tenant: string, c: JobContext): string {
  return `${tenant}\u0001${jobIdentity(c.owner, c.repo, c.workflow, c.job)}\u0001${c.runId}\u0001${c.runAttempt}\u0001${c.jobId ?? ''}`;
}

function noteTotal(notes: Record<string, number>): number {
  let n = 0;
  for (const k in notes) n += notes[k]!;
  return n;
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
  o: {
    format: IngestFormat | 'auto';
    tenant: string;
    defaults: Partial<JobContext>;
    batchSize: number;
    stdin?: NodeJS.ReadableStream;
    repeatFastPath?: boolean;
    riskyDestinations?: readonly string[];
  },
): AsyncGenerator<SourceChunk> {
  const input = await openInput(path, o.stdin as never);
  const parser = new RecordParser(o.format, input.name, o.tenant, o.defaults, o.repeatFastPath ?? true, o.riskyDestinations);
  let batch: ParsedBatch | undefined;
  for await (const records of readRecords(input.stream, o.batchSize, MAX_LINE_BYTES, PARSE_STEP, input.live ? IDLE_FLUSH_MS : null)) {
    batch = parser.parseBatch(records, batch);
    // the batch is whole: the same batches as before, each parsed as its lines arrive
    if (records.kind === 'lines' && records.more && !batch.fatal) continue;
    yield { batch, bytes: input.bytesRead(), size: input.size, name: input.name };
    if (batch.fatal) return;
    batch = undefined;
  }
  const garbage = input.trailingGarbage();
  if (garbage !== null) {
    // every record before it was read and kept; the rest is not gzip data and is not read
    const message = `data after the end of the gzip data at byte ${garbage} is not gzip: ignored (every record before it was read)`;
    const error: RecordBatch = { kind: 'error', line: 0, at: `byte ${garbage}`, error: new RecordError('trailing-garbage', null, message) };
    yield { batch: parser.parseBatch(error), bytes: input.bytesRead(), size: input.size, name: input.name };
  }
}

/**
 * Lines are parsed in pieces of this many as they are read, not once a whole batch is read: the
 * raw text of a piece is garbage right after, young enough for V8's cheap young-generation
 * collection, instead of living (and being promoted) until its whole batch is read.
 */
const PARSE_STEP = 256;

function noteBlankLine(out: ParsedBatch): void {
  out.notes['blank-lines'] = (out.notes['blank-lines'] ?? 0) + 1;
}
