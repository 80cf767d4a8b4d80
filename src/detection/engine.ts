import { endpointOf, isIpLiteral, splitEndpoint } from '../domain/endpoint.js';
import { jobIdentity } from '../domain/github-name.js';
import { MAX_PARENT_DEPTH, normalizeProcessName, parentChain } from '../domain/process-name.js';
import { DOMAIN_BLOCKED, NEW_OUTBOUND, type ImportedDetection, type NetworkCallEvent, type ProcessInfo } from '../domain/types.js';
import { NO_SUPPRESSION, type DetectionSubject, type Suppressor } from '../domain/subject.js';
import type { BaselineEntry, ProcessVariant } from '../storage/store.js';
import {
  observationKey,
  type BaselineWrite,
  type DetectionWrite,
  type ImportedDetectionWrite,
  type IngestReadRequest,
  type IngestReadResult,
  type IngestVersions,
  type IngestWriteBatch,
  type IngestWriteResult,
  type JobKey,
  type LeaseFence,
  type ObservationWrite,
  type RunKey,
  type SourceRecordWrite,
  type StoredBinary,
  type StoredRun,
} from '../storage/ingest-port.js';
import type { AdapterOutput } from '../ingest/adapters/types.js';
import { AllowedEndpoints } from './allowed-endpoints.js';
import { binaryKey, type BinaryRef } from '../analysis/impostor.js';
import { daemonClaim } from '../analysis/vpn-signatures.js';
import { riskyDestinations } from '../analysis/risky-destinations.js';

/**
 * Baseline policy (documented in docs/ingest-and-baselines.md):
 * - A job learns until it has `learningRuns` completed runs; runs that start while it learns raise
 *   no New-Outbound-Network-Call detections, and every endpoint they call joins the baseline when
 *   the run completes.
 * - After learning, an endpoint joins the baseline once it has been called in `promoteAfterRuns`
 *   completed runs (or is marked expected). Until then each run that calls it raises a detection.
 * - A run completes when the next run of the same job starts arriving. Runs are evaluated in the
 *   order they arrive, which makes the outcome a pure function of the input order.
 * - A late event (of an already completed run) is evaluated first, then counted towards the baseline.
 *
 * The engine does no I/O (the write contract in storage/ingest-port.ts): a driver asks it what state
 * a batch needs (plan), reads that from the store, hands it over (accept), lets it evaluate the batch
 * on memory (apply), and writes what it produced as one batch (takeWrite, then committed).
 */
export interface EngineConfig {
  learningRuns: number;
  promoteAfterRuns: number;
  allowed: AllowedEndpoints;
  expectedSampleSize: number;
  /**
   * Hosts that never join a baseline however often they are called: exfiltration and payload
   * staging destinations must keep raising detections (the never-suppress list). Asked for IP
   * addresses too: a named call whose address is on the list (a configured range) is treated alike.
   */
  neverBaseline: (host: string) => boolean;
  /**
   * How many runs keep their observation keys in memory between write batches (least recently used
   * first out; read from the store again when needed). Default HOT_RUNS.
   */
  hotRuns?: number;
}

export const DEFAULT_ENGINE_CONFIG: EngineConfig = {
  learningRuns: 5,
  promoteAfterRuns: 3,
  allowed: new AllowedEndpoints([]),
  expectedSampleSize: 20,
  neverBaseline: (host) => riskyDestinations().matchHost(host) !== null,
};

/** One leg of a job run (a matrix job has several, one per GitHub job id; '' when unknown). */
interface RunState {
  /** the store's id; negative while the run exists only in the pending write */
  ref: number;
  runId: string;
  attempt: number;
  leg: string;
  learning: boolean;
  completed: boolean;
  lastTs: number;
  firstTs: number;
  /**
   * Observation keys of the run. Only the most recently used runs keep them in memory (null
   * otherwise, read from the store again when needed), so memory does not grow with the number of
   * jobs whose runs are open. A run of the pending write always keeps them.
   */
  keys: Set<string> | null;
  /**
   * Endpoints of allowed calls, for baseline promotion on completion. For a late leg of a completed
   * run: the endpoints of all its legs, shared, so the run counts each endpoint once.
   */
  endpoints: Set<string> | null;
  /** endpoints of all its allowed observations as stored (suspected impostors' calls too) */
  allowed: Set<string> | null;
  /**
   * For endpoints read from the store, and endpoints only binaries named like a VPN daemon counted:
   * the binaries that called each. Completion counts such an endpoint only if one of them is not a
   * suspected impostor by then (one can be linked to a flagged binary after its call counted), as
   * handleCall counts only the calls of binaries that are not; an endpoint a call of any other
   * binary counted is removed from it (noteCaller).
   */
  callers?: Map<string, StoredBinary[]>;
  /** expected sample stored with the run; null when the run was read from the store */
  expected: string[] | null;
  /**
   * Calls of binaries that may yet be flagged as suspected impostors (Suppressor.canFlag) that raised
   * nothing, by binary (binaryKey), kept as long as the run's keys are. Should the binary be flagged later
   * in the run, they are raised then (raiseQuiet): a repeat of such a call after the flag is the
   * same call to the run's keys (and the parser's repeat fast path drops it before it gets here).
   */
  quiet?: Map<string, QuietCall[]>;
}

interface QuietCall {
  st: JobState;
  ev: NetworkCallEvent;
  endpoint: string;
  variant: ProcessVariant;
}

interface JobState {
  key: JobKey;
  ref: number;
  completedRuns: number;
  baseline: Map<string, BaselineEntry>;
  /** the job's open run: its legs by GitHub job id (the first leg is the one jobs.open_run names) */
  open: RunState | null;
  legs: Map<string, RunState>;
}

export interface EngineCounters {
  accepted: number;
  duplicates: number;
  detections: number;
  suppressedOnIngest: number;
  runsCreated: number;
  detectionsByType: Record<string, number>;
}

function emptyCounters(): EngineCounters {
  return { accepted: 0, duplicates: 0, detections: 0, suppressedOnIngest: 0, runsCreated: 0, detectionsByType: {} };
}

export function addCounters(to: EngineCounters, c: EngineCounters): void {
  to.accepted += c.accepted;
  to.duplicates += c.duplicates;
  to.detections += c.detections;
  to.suppressedOnIngest += c.suppressedOnIngest;
  to.runsCreated += c.runsCreated;
  for (const k in c.detectionsByType) to.detectionsByType[k] = (to.detectionsByType[k] ?? 0) + c.detectionsByType[k]!;
}

export function toVariant(p: ProcessInfo): ProcessVariant {
  const name = p.name;
  return {
    name,
    normName: normalizeProcessName(name),
    path: p.path ?? null,
    sha256: p.sha256 && p.sha256 !== 'Unknown' ? p.sha256.toLowerCase() : null,
    parentChain: parentChain(p),
  };
}

/**
 * The same string as processVariantKey(toVariant(p)), built without allocating the variant:
 * most events are repeats, and this key is all that is needed to recognise them.
 */
export function variantKeyOf(p: ProcessInfo): string {
  const sha = p.sha256 && p.sha256 !== 'Unknown' ? p.sha256.toLowerCase() : '';
  let chain = '';
  let q = p.parent ?? null;
  for (let depth = 0; q && depth < MAX_PARENT_DEPTH; depth++) {
    chain += `${q.name}|${q.path ?? ''}|${q.sha256 ?? ''};`;
    q = q.parent ?? null;
  }
  return `${p.name}\u0001${p.path ?? ''}\u0001${sha}\u0001${chain}`;
}

/**
 * A process's variant and its key, derived once per ProcessInfo object: the parser shares one
 * object between the calls of a process (ProcessInterner), so this runs once per process and
 * batch instead of once per call. The variant is shared too; nothing writes to it.
 */
const derivedCache = new WeakMap<ProcessInfo, { key: string; variant: ProcessVariant }>();

function derivedOf(p: ProcessInfo): { key: string; variant: ProcessVariant } {
  let d = derivedCache.get(p);
  if (d === undefined) {
    d = { key: variantKeyOf(p), variant: toVariant(p) };
    derivedCache.set(p, d);
  }
  return d;
}

/** Marks the observation key of a call that went to an address in a configured risky range. */
const RISKY_ADDRESS_KEY = '\u0003risky-address';
/**
 * The external id of such a call's detection: a run can hold it next to a detection of the same
 * endpoint and process at another address, and a repeat of it, in this ingest or a later one, is
 * still one detection (the natural key holds the external id).
 */
const RISKY_ADDRESS_DETECTION = 'risky-address';

/** Endpoints whose neverBaseline answer an engine remembers. */
const NEVER_BASELINE_CACHE = 65_536;

/** How many runs keep their observation keys in memory between write batches. */
const HOT_RUNS = 256;

function sameJob(a: JobKey, c: NetworkCallEvent['ctx']): boolean {
  return a.job === c.job && a.repo === c.repo && a.owner === c.owner && a.workflow === c.workflow;
}

function sameLeg(a: NetworkCallEvent['ctx'], c: NetworkCallEvent['ctx']): boolean {
  // calls of one job run leg share their context object (record-parser.ts, ContextInterner)
  if (a === c) return true;
  return a.runId === c.runId && a.runAttempt === c.runAttempt && a.jobId === c.jobId && sameJob(a, c);
}

/** Thrown inside apply() when an event needs state that was not read: caught there, never escapes. */
class Missing {
  constructor(readonly at: number) {}
}

/** apply(): the whole batch was evaluated, or evaluation stopped at `at` and needs `need` read first. */
export type ApplyOutcome = { done: true } | { done: false; at: number; need: IngestReadRequest };

export class DetectionEngine {
  /**
   * Jobs in memory, for as long as the lease is held. Not evicted: an open run read back from the
   * store would count the endpoints of a suspected impostor's calls towards the baseline, which its
   * in-memory state (RunState.endpoints) does not.
   */
  private readonly jobs = new Map<string, JobState>();
  /** completed runs receiving late events; small, because late events are rare */
  private readonly lateRuns = new Map<string, RunState>();
  /** runs whose key sets are in memory, least recently used first */
  private readonly hot = new Set<RunState>();
  /** the runs holding quiet calls of each binary (RunState.quiet) */
  private readonly quietRuns = new Map<string, Set<RunState>>();
  /** the binaries (binaryKey) with quiet calls, by sha256: a flagged hash is a suspected impostor under any name */
  private readonly quietByHash = new Map<string, Set<string>>();
  /** the job of the last event (consecutive events are mostly of one job) */
  private lastJob: JobState | null = null;
  /** committed counts */
  readonly counters: EngineCounters = emptyCounters();
  /** detections stored suppressed by this engine, per binary (binaryKey), for released() */
  private readonly suppressedByBinary = new Map<string, number>();
  private suppressor: Suppressor = NO_SUPPRESSION;
  /** the rules version the suppressor was built for */
  private rulesVersion = -1;
  /** the store's versions as last read; the pending write was evaluated against them */
  private storeRulesVersion = -1;
  private jobStateVersion = -1;

  // The pending write: what was evaluated since the last committed write batch.
  private pendingCounters: EngineCounters = emptyCounters();
  /** every leg of the job runs met in this write batch, by job ref and run: read or created */
  private known = new Map<string, RunState[]>();
  /** jobs read but not yet used: null when not stored */
  private readJobs = new Map<string, { ref: number; completedRuns: number; openLegs: StoredRun[]; baseline: Map<string, BaselineEntry> } | null>();
  private nextTemp = -1;
  private newJobs: JobState[] = [];
  private newRuns: { run: RunState; jobRef: number }[] = [];
  /** stored runs whose span grew */
  private readonly dirtyRuns = new Set<RunState>();
  /** runs whose completion is to be written */
  private readonly completing = new Set<RunState>();
  private readonly jobStates = new Set<JobState>();
  private baseline = new Map<string, BaselineWrite>();
  private observations: ObservationWrite[] = [];
  private detections: { write: DetectionWrite; ruleRef: number; subject?: DetectionSubject }[] = [];
  private imported: ImportedDetectionWrite[] = [];
  /** runs of the last plan() whose observations were asked for, parallel to its request */
  private planned: RunState[] = [];

  /** neverBaselineEndpoint's answers (cleared when the suppressor is replaced: the list can grow with the rules) */
  private readonly neverByEndpoint = new Map<string, boolean>();
  private readonly neverByHost = new Map<string, boolean>();

  constructor(private readonly cfg: EngineConfig) {}

  /** True when anything waits to be written. */
  get pending(): boolean {
    return this.newJobs.length > 0 || this.newRuns.length > 0 || this.dirtyRuns.size > 0 || this.completing.size > 0 ||
      this.jobStates.size > 0 || this.baseline.size > 0 || this.observations.length > 0 || this.detections.length > 0 ||
      this.imported.length > 0 || this.pendingCounters.accepted > 0;
  }

  /** The store's rules version when the suppressor is older than it (rebuild it), else null. */
  get rulesChanged(): number | null {
    return this.rulesVersion === this.storeRulesVersion ? null : this.storeRulesVersion;
  }

  setSuppressor(s: Suppressor, rulesVersion: number): void {
    this.suppressor = s;
    this.rulesVersion = rulesVersion;
    // the never-baseline list may have grown with the rules (rules/risky-memory.ts): ask it again
    this.neverByEndpoint.clear();
    this.neverByHost.clear();
  }

  /**
   * Forget all in-memory state and the pending write (after a failed write, or on acquiring the
   * ingest lease, when other writers may have changed the tenant), so it is read from the store again.
   */
  reset(): void {
    this.forgetJobState();
    this.clearPending();
    this.rulesVersion = -1;
    this.storeRulesVersion = -1;
    this.jobStateVersion = -1;
  }

  private forgetJobState(): void {
    this.lastJob = null;
    this.jobs.clear();
    this.lateRuns.clear();
    this.hot.clear();
    this.quietRuns.clear();
    this.quietByHash.clear();
  }

  private clearPending(): void {
    this.pendingCounters = emptyCounters();
    this.known = new Map();
    this.readJobs = new Map();
    this.newJobs = [];
    this.newRuns = [];
    this.dirtyRuns.clear();
    this.completing.clear();
    this.jobStates.clear();
    this.baseline = new Map();
    this.observations = [];
    this.detections = [];
    this.imported = [];
    this.planned = [];
  }

  /** What the store must be asked for before outputs[from..] can be evaluated (as far as can be told up front). */
  plan(outputs: readonly AdapterOutput[], from = 0): IngestReadRequest {
    const req: IngestReadRequest = { jobs: [], runs: [], observations: [] };
    const jobsAsked = new Set<string>();
    const runsAsked = new Set<string>();
    this.planned = [];
    const wantKeys = (r: RunState | undefined) => {
      if (r && r.keys === null && !this.planned.includes(r)) {
        this.planned.push(r);
        req.observations.push(r.ref);
      }
    };
    let prev: NetworkCallEvent['ctx'] | null = null;
    for (let i = from; i < outputs.length; i++) {
      const out = outputs[i]!;
      if (out.kind !== 'call') continue;
      const c = out.event.ctx;
      // most events follow one of the same job run leg: nothing new to ask for
      if (prev !== null && sameLeg(prev, c)) continue;
      prev = c;
      const jk = jobIdentity(c.owner, c.repo, c.workflow, c.job);
      const st = this.jobs.get(jk);
      const rk = `${jk}\u0001${c.runId}\u0001${c.runAttempt}`;
      if (!st) {
        if (!this.readJobs.has(jk) && !jobsAsked.has(jk)) {
          jobsAsked.add(jk);
          req.jobs.push({ owner: c.owner, repo: c.repo, workflow: c.workflow, job: c.job });
        }
        if (!this.known.has(rk) && !runsAsked.has(rk)) {
          runsAsked.add(rk);
          req.runs.push({ owner: c.owner, repo: c.repo, workflow: c.workflow, job: c.job, runId: c.runId, runAttempt: c.runAttempt });
        }
        continue;
      }
      const leg = c.jobId ?? '';
      if (st.open && st.open.runId === c.runId && st.open.attempt === c.runAttempt) {
        wantKeys(st.legs.get(leg));
        continue;
      }
      const late = this.lateRuns.get(`${rk}\u0001${leg}`);
      if (late) {
        wantKeys(late);
        continue;
      }
      const legs = this.known.get(rk);
      if (legs) {
        wantKeys(legs.find((l) => l.leg === leg));
        continue;
      }
      if (!runsAsked.has(rk)) {
        runsAsked.add(rk);
        req.runs.push({ owner: c.owner, repo: c.repo, workflow: c.workflow, job: c.job, runId: c.runId, runAttempt: c.runAttempt });
      }
    }
    return req;
  }

  /**
   * Takes what the store returned for `req` (the last plan()). Returns false when the tenant's job
   * state changed under a write batch still pending: that batch was evaluated against stale state,
   * and the caller must reset() and evaluate it again. (With nothing pending, stale job state is
   * simply dropped and read again by the next plan.)
   */
  accept(req: IngestReadRequest, res: IngestReadResult): 'ok' | 'stale' | 'replan' {
    const v = res.versions;
    if (v.jobStateVersion !== this.jobStateVersion || v.rulesVersion !== this.storeRulesVersion) {
      // Evaluated against other rules or job state: the pending write must be evaluated again.
      if (this.pending) return 'stale';
      this.storeRulesVersion = v.rulesVersion;
    }
    if (v.jobStateVersion !== this.jobStateVersion) {
      const hadState = this.jobs.size > 0 || this.lateRuns.size > 0 || this.known.size > 0 || this.readJobs.size > 0;
      this.forgetJobState();
      this.clearPending();
      this.jobStateVersion = v.jobStateVersion;
      // What was read for a plan made on the dropped state may be of no use now.
      if (hadState) return 'replan';
    }
    for (const [i, k] of req.jobs.entries()) {
      const j = res.jobs[i]!;
      const jk = jobIdentity(k.owner, k.repo, k.workflow, k.job);
      if (this.jobs.has(jk)) continue;
      this.readJobs.set(jk, j && { ref: j.ref, completedRuns: j.completedRuns, openLegs: j.openLegs, baseline: j.baseline });
    }
    for (const [i, k] of req.runs.entries()) {
      const rk = `${jobIdentity(k.owner, k.repo, k.workflow, k.job)}\u0001${k.runId}\u0001${k.runAttempt}`;
      if (this.known.has(rk)) continue;
      const st = this.jobs.get(jobIdentity(k.owner, k.repo, k.workflow, k.job));
      this.known.set(rk, res.runs[i]!.map((r) => this.liveRun(st, r)));
    }
    for (const [i, r] of this.planned.entries()) {
      if (req.observations[i] !== r.ref) throw new Error('internal: observations read for another plan');
      const o = res.observations[i]!;
      if (r.keys === null) r.keys = o.keys;
      if (r.endpoints === null) {
        r.endpoints = new Set(o.allowedEndpoints);
        r.callers = o.callers;
      }
      r.allowed ??= o.allowedEndpoints;
    }
    this.planned = [];
    return 'ok';
  }

  /** The in-memory state of a stored run: the object already used for it, or a new one. */
  private liveRun(st: JobState | undefined, r: StoredRun): RunState {
    if (st) for (const l of st.legs.values()) if (l.ref === r.ref) return l;
    for (const l of this.lateRuns.values()) if (l.ref === r.ref) return l;
    return this.fromStored(r);
  }

  private fromStored(r: StoredRun): RunState {
    return {
      ref: r.ref, runId: r.runId, attempt: r.runAttempt, leg: r.ghJobId ?? '', learning: r.learning, completed: r.completed,
      // a set of its own: handleCall adds an impostor's endpoint to `allowed`, never to `endpoints`
      firstTs: r.firstTs, lastTs: r.lastTs, keys: r.observations.keys, endpoints: new Set(r.observations.allowedEndpoints),
      allowed: r.observations.allowedEndpoints, callers: r.observations.callers, expected: null,
    };
  }

  /**
   * Who counted `endpoint` for the run (see RunState.callers). A binary whose name claims no VPN daemon is
   * never flagged by its calls, and one whose file is flagged already does not get here (a suspect
   * call counts nothing): its call counts whatever the callers were. One with such a name
   * can still be found to be one before the run completes, linked to a flagged binary as the same
   * file (analysis/impostor-links.ts): it joins the callers, and completion judges them then.
   */
  private noteCaller(run: RunState, endpoint: string, variant: ProcessVariant, fresh: boolean): void {
    if (daemonClaim(variant.normName) === null) {
      run.callers?.delete(endpoint);
      return;
    }
    const list = run.callers?.get(endpoint);
    const binary = { process: variant.normName, sha256: variant.sha256, path: variant.path };
    if (list) list.push(binary);
    else if (fresh) (run.callers ??= new Map()).set(endpoint, [binary]);
  }

  /**
   * An endpoint of a completing run that counts towards the baseline (see RunState.callers): one a
   * caller counted that is no suspected impostor and runs at no file one was seen at. The link that
   * makes such a binary an impostor is found only after this batch's write (link()), and the run may
   * complete in the batch that flags its file, so completion fails closed here, as a late call does
   * (handleCall).
   */
  private counts(leg: RunState, endpoint: string): boolean {
    const callers = leg.callers?.get(endpoint);
    if (callers === undefined) return true;
    const s = this.suppressor;
    return callers.some((b) => !(s.suspected?.(b) ?? false) && !(s.mayBeLinked?.(b) ?? false));
  }

  /**
   * Evaluates outputs[from..] on memory. Stops before the first event whose state was not read,
   * saying what to read; nothing of that event has been applied then.
   */
  apply(outputs: readonly AdapterOutput[], from = 0): ApplyOutcome {
    for (let i = from; i < outputs.length; i++) {
      const out = outputs[i]!;
      try {
        if (out.kind === 'call') this.handleCall(out.event, i);
        else if (out.kind === 'detection') this.handleImported(out.detection);
      } catch (err) {
        if (!(err instanceof Missing)) throw err;
        const need = this.plan(outputs, i);
        if (need.jobs.length + need.runs.length + need.observations.length === 0) throw new Error('internal: an event needs state that no read provides');
        return { done: false, at: i, need };
      }
    }
    return { done: true };
  }

  private job(c: NetworkCallEvent['ctx'], at: number): JobState {
    const last = this.lastJob;
    if (last !== null && sameJob(last.key, c)) return last;
    const jk = jobIdentity(c.owner, c.repo, c.workflow, c.job);
    let st = this.jobs.get(jk);
    if (st) {
      this.lastJob = st;
      return st;
    }
    const read = this.readJobs.get(jk);
    if (read === undefined) throw new Missing(at);
    const key: JobKey = { owner: c.owner, repo: c.repo, workflow: c.workflow, job: c.job };
    if (read === null) {
      st = { key, ref: this.nextTemp--, completedRuns: 0, baseline: new Map(), open: null, legs: new Map() };
      this.newJobs.push(st);
    } else {
      st = { key, ref: read.ref, completedRuns: read.completedRuns, baseline: read.baseline, open: null, legs: new Map() };
      const [open, ...others] = read.openLegs;
      if (open) {
        // the objects a read of the same run in this batch made, if any: one state per leg
        const same = this.known.get(`${jk}\u0001${open.runId}\u0001${open.runAttempt}`);
        const live = (r: StoredRun) => same?.find((l) => l.ref === r.ref) ?? this.fromStored(r);
        st.open = live(open);
        // the run jobs.open_run names is open, whatever its row says
        st.open.completed = false;
        st.legs.set(st.open.leg, st.open);
        for (const l of others) st.legs.set(l.ghJobId ?? '', live(l));
      }
    }
    this.readJobs.delete(jk);
    this.jobs.set(jk, st);
    this.lastJob = st;
    return st;
  }

  /** Makes the run's key sets resident (reading them is the driver's job: Missing when absent). */
  private resident(run: RunState, at: number): { keys: Set<string>; endpoints: Set<string> } {
    if (run.keys === null) throw new Missing(at);
    this.hot.delete(run);
    this.hot.add(run);
    return { keys: run.keys, endpoints: run.endpoints! };
  }

  /**
   * Completes the job's open run, all its legs at once: the legs of a matrix job ran in parallel in
   * one workflow run attempt, so together they are one run of the job for the baseline (an endpoint
   * called by every leg counts once, and the run counts once towards learning).
   */
  private completeOpenRun(st: JobState): void {
    const open = st.open!;
    const endpoints = new Set<string>();
    let lastTs = open.lastTs;
    const legs = [...st.legs.values()];
    for (const leg of legs) {
      for (const e of leg.endpoints!) if (this.counts(leg, e)) endpoints.add(e);
      leg.completed = true;
      lastTs = Math.max(lastTs, leg.lastTs);
      this.completing.add(leg);
    }
    // A late event of this run in the same write batch finds its legs here, key sets and all.
    const rk = `${jobIdentity(st.key.owner, st.key.repo, st.key.workflow, st.key.job)}\u0001${open.runId}\u0001${open.attempt}`;
    this.known.set(rk, legs);
    for (const endpoint of endpoints) this.promote(st, endpoint, open.learning, lastTs);
    st.completedRuns += 1;
    st.open = null;
    st.legs.clear();
  }

  private promote(st: JobState, endpoint: string, learning: boolean, ts: number): void {
    const prev = st.baseline.get(endpoint);
    // Risky destinations never join a baseline, whatever a store written before this check holds.
    if (this.neverBaselineEndpoint(endpoint)) return;
    const runsSeen = (prev?.runsSeen ?? 0) + 1;
    const entry: BaselineEntry = {
      runsSeen,
      inBaseline: prev?.inBaseline === true || learning || runsSeen >= this.cfg.promoteAfterRuns,
      source: prev?.source ?? 'learned',
    };
    st.baseline.set(endpoint, entry);
    // One upsert per (job, endpoint) per write batch: the first time it was written, the latest value.
    const k = `${st.ref}\u0001${endpoint}`;
    const w = this.baseline.get(k);
    if (w) {
      w.entry = entry;
      w.lastTs = Math.max(w.lastTs, ts);
    } else this.baseline.set(k, { jobRef: st.ref, endpoint, entry, firstTs: ts, lastTs: ts });
  }

  /**
   * neverBaseline of an endpoint's host, remembered per endpoint (bounded): a run's completion asks
   * it for each endpoint the run called, and splitting the endpoint each time was measurable.
   */
  private neverBaselineEndpoint(endpoint: string): boolean {
    let never = this.neverByEndpoint.get(endpoint);
    if (never === undefined) {
      never = this.cfg.neverBaseline(splitEndpoint(endpoint).host);
      if (this.neverByEndpoint.size >= NEVER_BASELINE_CACHE) this.neverByEndpoint.clear();
      this.neverByEndpoint.set(endpoint, never);
    }
    return never;
  }

  /**
   * A named call whose address is on the never-baseline list (a configured risky range). Its
   * endpoint is counted towards the baseline like any (the baseline knows endpoints, not the
   * addresses they resolved to), but such a call raises a detection whatever the baseline holds.
   */
  private riskyAddress(domain: string | undefined, ip: string | null): boolean {
    return domain !== undefined && ip !== null && this.neverBaselineHost(ip);
  }

  /** neverBaseline of a call's host, remembered per host (bounded): asked for every new call. */
  private neverBaselineHost(host: string): boolean {
    let never = this.neverByHost.get(host);
    if (never === undefined) {
      never = this.cfg.neverBaseline(host);
      if (this.neverByHost.size >= NEVER_BASELINE_CACHE) this.neverByHost.clear();
      this.neverByHost.set(host, never);
    }
    return never;
  }

  private expectedSample(st: JobState): string[] {
    const out: string[] = [];
    for (const [endpoint, e] of st.baseline) if (e.inBaseline) out.push(endpoint);
    out.sort();
    return out.slice(0, this.cfg.expectedSampleSize);
  }

  private createRun(st: JobState, runId: string, attempt: number, leg: string, ts: number, learning: boolean, expected: string[]): RunState {
    const run: RunState = {
      ref: this.nextTemp--, runId, attempt, leg, learning, completed: false, firstTs: ts, lastTs: ts,
      keys: new Set(), endpoints: new Set(), allowed: new Set(), expected,
    };
    this.newRuns.push({ run, jobRef: st.ref });
    this.pendingCounters.runsCreated++;
    return run;
  }

  /**
   * Resolves the run leg an event belongs to, opening a new run (and completing the previous) as
   * needed. A new GitHub job id within the open run is a new leg of it (a matrix job), not a new run.
   */
  private runFor(st: JobState, runId: string, attempt: number, ghJobId: string | undefined, ts: number, at: number): RunState {
    const leg = ghJobId ?? '';
    const open = st.open;
    if (open && open.runId === runId && open.attempt === attempt) {
      const known = st.legs.get(leg);
      if (known) return known;
      const expected = open.learning ? [] : open.expected ?? this.expectedSample(st);
      const run = this.createRun(st, runId, attempt, leg, ts, open.learning, expected);
      st.legs.set(leg, run);
      return run;
    }
    const rk = `${jobIdentity(st.key.owner, st.key.repo, st.key.workflow, st.key.job)}\u0001${runId}\u0001${attempt}`;
    const lateKey = `${rk}\u0001${leg}`;
    const cached = this.lateRuns.get(lateKey);
    if (cached) return cached;
    const legs = this.known.get(rk);
    if (legs === undefined) throw new Missing(at);
    if (legs.length > 0) {
      // A late event of an earlier run; possibly of a leg not seen before, stored as completed at once.
      let late = legs.find((l) => l.leg === leg);
      if (late && late.keys === null) throw new Missing(at);
      const shared = this.lateRunEndpoints(rk, legs);
      if (!late) {
        late = this.createRun(st, runId, attempt, leg, ts, legs[0]!.learning, []);
        late.completed = true;
        this.completing.add(late);
        legs.push(late);
      }
      late.completed = true;
      late.endpoints = shared;
      if (this.lateRuns.size >= 256) this.lateRuns.delete(this.lateRuns.keys().next().value!);
      this.lateRuns.set(lateKey, late);
      return late;
    }
    if (open) this.completeOpenRun(st);
    const learning = st.completedRuns < this.cfg.learningRuns;
    const expected = learning ? [] : this.expectedSample(st);
    const run = this.createRun(st, runId, attempt, leg, ts, learning, expected);
    st.open = run;
    st.legs.set(leg, run);
    legs.push(run);
    this.jobStates.add(st);
    return run;
  }

  /** The allowed endpoints of every leg of a completed run, one set shared by its late legs. */
  private lateRunEndpoints(rk: string, legs: RunState[]): Set<string> {
    const prefix = `${rk}\u0001`;
    for (const [k, r] of this.lateRuns) if (k.startsWith(prefix) && r.endpoints) return r.endpoints;
    const out = new Set<string>();
    for (const l of legs) for (const e of l.allowed!) out.add(e);
    return out;
  }

  private handleCall(ev: NetworkCallEvent, at: number): void {
    const c = ev.ctx;
    const st = this.job(c, at);
    const run = this.runFor(st, c.runId, c.runAttempt, c.jobId, ev.timestamp, at);
    const sets = this.resident(run, at);
    // Nothing above changed state unless it went through; below, nothing is missing any more.
    const endpoint = endpointOf(ev.domain, ev.ip, ev.port);
    const derived = derivedOf(ev.process);
    const vkey = derived.key;
    const blocked = ev.status === 'blocked';
    const okey = observationKey(endpoint, vkey, blocked);
    const ip = ev.ip ?? null;
    const atRiskyAddress = this.riskyAddress(ev.domain, ip);
    const riskyAddress = !blocked && atRiskyAddress;
    this.pendingCounters.accepted++;
    if (sets.keys.has(okey)) {
      // A call the run made before, now to an address in a configured risky range: its host may
      // resolve there only later in the run. It is evaluated once more, as a detection of its own.
      const again = okey + RISKY_ADDRESS_KEY;
      if (!riskyAddress || sets.keys.has(again)) {
        this.pendingCounters.duplicates++;
        return;
      }
      sets.keys.add(again);
      // the address is evidence about the binary too: a daemon's name reaching a risky range is an impostor's
      const suspect = this.observeCall(derived.variant, ev);
      if (suspect) this.suspected(derived.variant);
      this.evaluate(st, run, ev, endpoint, derived.variant, blocked, suspect, atRiskyAddress);
      return;
    }
    sets.keys.add(okey);
    if (riskyAddress) sets.keys.add(okey + RISKY_ADDRESS_KEY);
    if (!blocked) run.allowed!.add(endpoint);
    const variant = derived.variant;
    const verdict = ev.matchedPolicy === undefined && ev.reason === undefined ? undefined : { matchedPolicy: ev.matchedPolicy, reason: ev.reason };
    this.observations.push({
      runRef: run.ref, endpoint, ip, process: variant, variantKey: vkey, blocked, protocol: ev.protocol ?? null, ts: ev.timestamp, verdict,
    });
    if (ev.timestamp > run.lastTs || ev.timestamp < run.firstTs) {
      run.lastTs = Math.max(run.lastTs, ev.timestamp);
      run.firstTs = Math.min(run.firstTs, ev.timestamp);
      if (run.ref > 0) this.dirtyRuns.add(run);
    }
    // A suspected impostor's calls never teach the baseline (its detections stay visible too).
    const suspect = this.observeCall(variant, ev);
    // A late event of an already completed run counts towards the baseline straight away, but only
    // after it has been evaluated: counted first, it could promote itself and raise nothing.
    if (suspect) this.suspected(variant);
    let countLate = false;
    if (!blocked && !suspect) {
      const fresh = !sets.endpoints.has(endpoint);
      this.noteCaller(run, endpoint, variant, fresh);
      if (fresh) {
        sets.endpoints.add(endpoint);
        // a late call is counted at once: not one that may yet be linked to a suspected impostor
        countLate = run.completed && !(this.suppressor.mayBeLinked?.({ process: variant.normName, sha256: variant.sha256, path: variant.path }) ?? false);
      }
    }
    const raised = this.evaluate(st, run, ev, endpoint, variant, blocked, suspect, atRiskyAddress);
    if (!raised && (this.suppressor.canFlag?.(variant.normName) ?? false)) this.keepQuiet(run, { st, ev, endpoint, variant });
    if (countLate) this.promote(st, endpoint, run.learning, ev.timestamp);
  }

  /** A call of a suspected impostor: what of its binary was suppressed or quiet is raised. */
  private suspected(v: ProcessVariant): void {
    this.unsuppressPending(v);
    this.raiseQuiet(v);
  }

  private keepQuiet(run: RunState, q: QuietCall): void {
    const v = q.variant;
    const k = binaryKey({ process: v.normName, sha256: v.sha256, path: v.path });
    const quiet = (run.quiet ??= new Map());
    const calls = quiet.get(k);
    if (calls) calls.push(q);
    else quiet.set(k, [q]);
    let runs = this.quietRuns.get(k);
    if (!runs) this.quietRuns.set(k, (runs = new Set()));
    runs.add(run);
    if (v.sha256 !== null) {
      let same = this.quietByHash.get(v.sha256);
      if (!same) this.quietByHash.set(v.sha256, (same = new Set()));
      same.add(k);
    }
  }

  /**
   * A binary just seen to be a suspected impostor: the calls it made earlier in runs still in memory,
   * and that raised nothing, are raised now, as every call of a suspected impostor is (evaluate). So
   * are those of the same file under another name (the same sha256): the flag is the file's.
   */
  private raiseQuiet(v: ProcessVariant): void {
    if (this.quietRuns.size === 0) return;
    const keys = new Set([binaryKey({ process: v.normName, sha256: v.sha256, path: v.path })]);
    if (v.sha256 !== null) {
      for (const k of this.quietByHash.get(v.sha256) ?? []) keys.add(k);
      this.quietByHash.delete(v.sha256);
    }
    for (const k of keys) {
      const runs = this.quietRuns.get(k);
      if (!runs) continue;
      this.quietRuns.delete(k);
      for (const run of runs) {
        const calls = run.quiet?.get(k);
        run.quiet?.delete(k);
        for (const q of calls ?? []) this.evaluate(q.st, run, q.ev, q.endpoint, q.variant, false, true, false);
      }
    }
  }

  /**
   * A completed run's keys leave memory, and its quiet calls with them: its calls were written, and
   * a flag after that is no longer a repeat in the same run. A run still open keeps its quiet calls
   * when only its keys are evicted (they are few: calls of daemon-named binaries that raised nothing).
   */
  private dropKeys(run: RunState): void {
    run.keys = null;
    if (!run.quiet) return;
    for (const k of run.quiet.keys()) {
      const runs = this.quietRuns.get(k);
      runs?.delete(run);
      if (runs?.size === 0) this.quietRuns.delete(k);
    }
    run.quiet = undefined;
  }

  /** Shows the call to the suppressor's impostor verdict; true when its binary is a suspected impostor. */
  private observeCall(variant: ProcessVariant, ev: NetworkCallEvent): boolean {
    return (
      this.suppressor.observe?.({
        process: variant.normName, processSha256: variant.sha256, processPath: variant.path, parentChain: variant.parentChain,
        host: ev.domain ?? ev.ip ?? '', port: ev.port, isIp: !ev.domain, ip: ev.ip ?? null,
      }) ?? false
    );
  }

  /** `atRiskyAddress`: riskyAddress(ev.domain, ev.ip), as handleCall found it. True when it raised a detection. */
  private evaluate(st: JobState, run: RunState, ev: NetworkCallEvent, endpoint: string, variant: ProcessVariant, blocked: boolean, suspect: boolean, atRiskyAddress: boolean): boolean {
    const c = ev.ctx;
    const ip = ev.ip ?? null;
    let type: string | null = null;
    const host = ev.domain ?? ev.ip ?? '';
    if (blocked) type = DOMAIN_BLOCKED;
    else if (suspect || this.neverBaselineHost(host) || atRiskyAddress) {
      // Defence in depth: a risky destination raises a detection even while the job learns, and even
      // if a store or an allowed-endpoints list from before this check lets it in. So does every call
      // of a suspected impostor: a renamed binary talking to api.github.com or to an endpoint the job
      // expects is exactly the exfiltration a baseline or an allow-list must not hide.
      type = NEW_OUTBOUND;
    } else if (!run.learning && st.baseline.get(endpoint)?.inBaseline !== true) {
      if (!this.cfg.allowed.matches(host, ev.port)) type = NEW_OUTBOUND;
    }
    if (!type) return false;
    const subject: DetectionSubject = {
      type,
      owner: c.owner,
      repo: c.repo,
      workflow: c.workflow,
      job: c.job,
      endpoint,
      host,
      port: ev.port,
      ip,
      process: variant.normName,
      processSha256: variant.sha256,
      processPath: variant.path,
    };
    const ruleRef = this.suppressor.match(subject);
    this.detections.push({
      ruleRef,
      subject: ruleRef ? subject : undefined,
      write: {
        type,
        jobRef: st.ref,
        runRef: run.ref,
        endpoint,
        ip,
        directIp: !ev.domain,
        port: ev.port,
        protocol: ev.protocol ?? null,
        process: variant,
        ts: ev.timestamp,
        status: ruleRef ? 'suppressed' : 'new',
        ruleRef,
        // apart from a detection of the same call at another address (handleCall)
        externalId: atRiskyAddress ? RISKY_ADDRESS_DETECTION : '',
      },
    });
    return true;
  }

  /**
   * A binary just found to be a suspected impostor is never suppressed, in the past included: the
   * suppressor moves its stored detections back to `new`, and this does the same for those of this
   * write batch, not stored yet.
   */
  private unsuppressPending(v: ProcessVariant): void {
    for (const d of this.detections) {
      const s = d.subject;
      if (!s || d.ruleRef === 0 || s.process !== v.normName || s.processSha256 !== v.sha256 || s.processPath !== v.path) continue;
      if (this.suppressor.match(s) !== 0) continue;
      d.ruleRef = 0;
      d.subject = undefined;
      d.write.status = 'new';
      d.write.ruleRef = 0;
    }
    // imported ones of the same binary, suppressed by a rule or upstream
    for (const { detection: w } of this.imported) {
      if (w.status === 'new' || w.process.normName !== v.normName || w.process.sha256 !== v.sha256 || w.process.path !== v.path) continue;
      w.status = 'new';
      w.ruleRef = 0;
    }
  }

  private countSuppressed(v: ProcessVariant): void {
    const k = binaryKey({ process: v.normName, sha256: v.sha256, path: v.path });
    this.suppressedByBinary.set(k, (this.suppressedByBinary.get(k) ?? 0) + 1);
  }

  /**
   * These binaries' stored detections were moved back to `new` after they were written (the
   * suppressor's link()): the ones this engine counted as suppressed on ingest are not.
   */
  released(binaries: readonly BinaryRef[]): void {
    for (const b of binaries) {
      const k = binaryKey(b);
      const n = this.suppressedByBinary.get(k);
      if (n === undefined) continue;
      this.counters.suppressedOnIngest -= n;
      this.suppressedByBinary.delete(k);
    }
  }

  private countDetection(c: EngineCounters, type: string, ruleRef: number): void {
    c.detections++;
    c.detectionsByType[type] = (c.detectionsByType[type] ?? 0) + 1;
    if (ruleRef) c.suppressedOnIngest++;
  }

  /** StepSecurity exports: stored as detections as they are; runs are recorded but not evaluated. */
  private handleImported(d: ImportedDetection): void {
    const c = d.ctx;
    this.pendingCounters.accepted++;
    const { host, port } = splitEndpoint(d.endpoint);
    const variant = toVariant(d.process);
    const dest = d.host ?? host;
    // An imported call is evidence like any other: it can flag its binary as a suspected impostor.
    const suspect =
      this.suppressor.observe?.({
        process: variant.normName, processSha256: variant.sha256, processPath: variant.path, parentChain: variant.parentChain,
        host: dest, port: d.port ?? port, isIp: isIpLiteral(dest), ip: d.ip ?? d.directIp ?? null, detectionType: d.type,
      }) ?? false;
    if (suspect) this.suspected(variant);
    let status = d.status;
    // An export may carry a suppression or a resolution made upstream; neither silences a risky
    // destination or a suspected impostor here: those arrive as new.
    const address = d.ip ?? d.directIp ?? null;
    if (status !== 'new' && (suspect || this.cfg.neverBaseline(dest) || (address !== null && this.cfg.neverBaseline(address)))) status = 'new';
    let ruleRef = 0;
    if (status === 'new') {
      ruleRef = this.suppressor.match({
        type: d.type, owner: c.owner, repo: c.repo, workflow: c.workflow, job: c.job,
        endpoint: d.endpoint, host: d.host ?? host, port: d.port ?? port, ip: d.ip ?? d.directIp ?? null,
        process: variant.normName, processSha256: variant.sha256, processPath: variant.path,
      });
      if (ruleRef) status = 'suppressed';
    }
    const run: RunKey & { ghJobId: string | null } = {
      owner: c.owner, repo: c.repo, workflow: c.workflow, job: c.job, runId: c.runId, runAttempt: c.runAttempt, ghJobId: c.jobId ?? null,
    };
    this.imported.push({
      run,
      expected: d.expected,
      detection: {
        type: d.type,
        endpoint: d.endpoint,
        ip: d.ip ?? d.directIp ?? null,
        directIp: Boolean(d.directIp),
        port: d.port ?? port,
        protocol: d.protocol ?? null,
        process: variant,
        ts: d.timestamp,
        status,
        ruleRef,
        externalId: d.externalId,
      },
    });
  }

  /** The pending write as one batch (null when there is nothing to write and no source to record). */
  takeWrite(lease: LeaseFence, source?: SourceRecordWrite): IngestWriteBatch | null {
    if (!this.pending && !source) return null;
    const spans = [];
    for (const r of this.dirtyRuns) spans.push({ ref: r.ref, firstTs: r.firstTs, lastTs: r.lastTs });
    const completed: number[] = [];
    for (const r of this.completing) if (r.ref > 0) completed.push(r.ref);
    return {
      lease,
      expect: this.versions(),
      newJobs: this.newJobs.map((j) => ({ tempRef: j.ref, key: j.key })),
      newRuns: this.newRuns.map(({ run, jobRef }) => ({
        tempRef: run.ref, jobRef, runId: run.runId, runAttempt: run.attempt, ghJobId: run.leg === '' ? null : run.leg,
        firstTs: run.firstTs, lastTs: run.lastTs, learning: run.learning, completed: this.completing.has(run), expected: run.expected ?? [],
      })),
      runSpans: spans,
      completedRuns: completed,
      jobStates: [...this.jobStates].map((j) => ({ ref: j.ref, completedRuns: j.completedRuns, openRun: j.open?.ref ?? null })),
      baseline: [...this.baseline.values()],
      observations: this.observations,
      detections: this.detections.map((d) => d.write),
      imported: this.imported,
      source,
    };
  }

  /** The versions the pending write was evaluated against. */
  versions(): IngestVersions {
    return { rulesVersion: this.storeRulesVersion, jobStateVersion: this.jobStateVersion };
  }

  /** The batch from takeWrite() was committed: stored refs replace temporary ones, counts become final. */
  committed(res: IngestWriteResult): void {
    for (const [i, j] of this.newJobs.entries()) j.ref = res.jobRefs[i]!;
    for (const [i, { run }] of this.newRuns.entries()) run.ref = res.runRefs[i]!;
    const c = this.pendingCounters;
    for (const [i, d] of this.detections.entries()) {
      if (!res.detectionsStored[i]) continue;
      this.countDetection(c, d.write.type, d.ruleRef);
      if (d.ruleRef) this.countSuppressed(d.write.process);
    }
    for (const [i, d] of this.imported.entries()) {
      if (res.importedStored[i]) {
        this.countDetection(c, d.detection.type, d.detection.ruleRef);
        if (d.detection.ruleRef) this.countSuppressed(d.detection.process);
      } else c.duplicates++;
    }
    c.runsCreated += res.importedRunsCreated;
    addCounters(this.counters, c);
    // Completed runs of this batch keep no key sets: a late event reads them from the store.
    for (const r of this.completing) {
      if (this.isLate(r)) continue;
      this.hot.delete(r);
      this.dropKeys(r);
      r.endpoints = null;
      r.allowed = null;
      r.callers = undefined;
    }
    this.clearPending();
    while (this.hot.size > (this.cfg.hotRuns ?? HOT_RUNS)) {
      // Keys go (they are most of the memory); the run's few endpoints stay for its completion.
      const cold = this.hot.values().next().value!;
      this.hot.delete(cold);
      cold.keys = null;
    }
  }

  private isLate(r: RunState): boolean {
    for (const l of this.lateRuns.values()) if (l === r) return true;
    return false;
  }
}
