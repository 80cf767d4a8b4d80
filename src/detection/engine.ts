import { endpointOf, splitEndpoint } from '../domain/endpoint.js';
import { normalizeProcessName, parentChain } from '../domain/process-name.js';
import { DOMAIN_BLOCKED, NEW_OUTBOUND, type ImportedDetection, type NetworkCallEvent, type ProcessInfo } from '../domain/types.js';
import { NO_SUPPRESSION, type DetectionSubject, type Suppressor } from '../domain/subject.js';
import type { BaselineEntry, IngestSession, JobRow, ProcessVariant, RunRow } from '../storage/store.js';
import { observationKey } from '../storage/sqlite/ingest-session.js';
import { AllowedEndpoints } from './allowed-endpoints.js';
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
 */
export interface EngineConfig {
  learningRuns: number;
  promoteAfterRuns: number;
  allowed: AllowedEndpoints;
  expectedSampleSize: number;
  /**
   * Hosts that never join a baseline however often they are called: exfiltration and payload
   * staging destinations must keep raising detections (the never-suppress list).
   */
  neverBaseline: (host: string) => boolean;
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
  ref: number;
  runId: string;
  attempt: number;
  leg: string;
  learning: boolean;
  completed: boolean;
  lastTs: number;
  firstTs: number;
  /**
   * Observation keys and allowed endpoints of the run. Only the most recently used runs keep them in
   * memory (null otherwise, reloaded from the store on demand), so memory does not grow with the
   * number of jobs whose runs are open.
   */
  keys: Set<string> | null;
  /**
   * Endpoints of allowed calls, for baseline promotion on completion. For a late leg of a completed
   * run: the endpoints of all its legs, shared, so the run counts each endpoint once.
   */
  endpoints: Set<string> | null;
  /** expected sample stored with the run; null when the run was reloaded from the store */
  expected: string[] | null;
}

interface JobState {
  row: JobRow;
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
  for (let depth = 0; q && depth < 16; depth++) {
    chain += `${q.name}|${q.path ?? ''}|${q.sha256 ?? ''};`;
    q = q.parent ?? null;
  }
  return `${p.name}\u0001${p.path ?? ''}\u0001${sha}\u0001${chain}`;
}

/** How many runs keep their observation keys in memory. */
const HOT_RUNS = 256;

export class DetectionEngine {
  private readonly jobs = new Map<string, JobState>();
  /** completed runs receiving late events; small, because late events are rare */
  private readonly lateRuns = new Map<string, RunState>();
  /** runs whose key sets are in memory, least recently used first */
  private readonly hot = new Set<RunState>();
  readonly counters: EngineCounters = { accepted: 0, duplicates: 0, detections: 0, suppressedOnIngest: 0, runsCreated: 0, detectionsByType: {} };
  private suppressor: Suppressor = NO_SUPPRESSION;
  /** runs whose time span grew in this batch; written once per batch instead of per event */
  private readonly dirtyRuns = new Set<RunState>();
  private rulesVersion = -1;
  private jobStateVersion = -1;

  constructor(
    private readonly session: IngestSession,
    private readonly cfg: EngineConfig,
    private readonly loadSuppressor: (() => Suppressor) | null = null,
  ) {}

  /**
   * Call at the start of every batch transaction: picks up rules created by other processes, and
   * drops cached job state that a write outside the ingest lease (baseline expect) made stale.
   */
  beginBatch(): void {
    const jv = this.session.jobStateVersion();
    if (jv !== this.jobStateVersion) {
      this.forgetJobState();
      this.jobStateVersion = jv;
    }
    if (!this.loadSuppressor) return;
    const v = this.session.rulesVersion();
    if (v !== this.rulesVersion) {
      this.suppressor = this.loadSuppressor();
      this.rulesVersion = v;
    }
  }

  /** Call at the end of every batch transaction. */
  endBatch(): void {
    for (const r of this.dirtyRuns) this.session.touchRun(r.ref, r.firstTs, r.lastTs);
    this.dirtyRuns.clear();
  }

  /**
   * Forget in-memory state (after a rolled-back batch, or on acquiring the ingest lease, when other
   * writers may have changed the tenant), so it is reloaded from the store.
   */
  reset(): void {
    this.forgetJobState();
    this.dirtyRuns.clear();
    this.session.resetCaches();
    this.rulesVersion = -1;
    this.jobStateVersion = -1;
  }

  private forgetJobState(): void {
    this.jobs.clear();
    this.lateRuns.clear();
    this.hot.clear();
  }

  private job(owner: string, repo: string, workflow: string, job: string): JobState {
    const key = `${owner}\u0001${repo}\u0001${workflow}\u0001${job}`;
    let st = this.jobs.get(key);
    if (st) return st;
    const row = this.session.getJob(owner, repo, workflow, job);
    st = { row, baseline: this.session.loadBaseline(row.ref), open: null, legs: new Map() };
    const open = row.openRun === null ? null : this.session.findRunByRef(row.openRun);
    if (open) {
      st.open = this.loadRun(open, false);
      st.legs.set(st.open.leg, st.open);
      for (const leg of this.session.runLegs(row.ref, open.runId, open.runAttempt)) {
        if (!leg.completed && leg.ref !== open.ref) st.legs.set(leg.ghJobId ?? '', this.loadRun(leg, false));
      }
    }
    this.jobs.set(key, st);
    return st;
  }

  private loadRun(r: RunRow, completed: boolean): RunState {
    return {
      ref: r.ref,
      runId: r.runId,
      attempt: r.runAttempt,
      leg: r.ghJobId ?? '',
      learning: r.learning,
      completed,
      firstTs: r.firstTs,
      lastTs: r.lastTs,
      keys: null,
      endpoints: null,
      expected: null,
    };
  }

  /** Makes the run's key sets resident, evicting the least recently used run's sets if needed. */
  private resident(run: RunState): { keys: Set<string>; endpoints: Set<string> } {
    if (this.hot.has(run)) {
      this.hot.delete(run);
      this.hot.add(run);
    } else {
      if (!run.keys || !run.endpoints) {
        const loaded = this.session.runObservationKeys(run.ref);
        run.keys = loaded.keys;
        run.endpoints ??= loaded.endpoints;
      }
      this.hot.add(run);
      if (this.hot.size > HOT_RUNS) {
        // Keys go (they are most of the memory); the run's few endpoints stay for its completion.
        const cold = this.hot.values().next().value!;
        this.hot.delete(cold);
        cold.keys = null;
      }
    }
    return { keys: run.keys!, endpoints: run.endpoints! };
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
    for (const leg of st.legs.values()) {
      for (const e of leg.endpoints ?? this.session.runEndpointsAllowed(leg.ref)) endpoints.add(e);
      this.hot.delete(leg);
      leg.keys = null;
      leg.endpoints = null;
      leg.completed = true;
      lastTs = Math.max(lastTs, leg.lastTs);
      this.session.completeRun(leg.ref);
    }
    for (const endpoint of endpoints) this.promote(st, endpoint, open.learning, lastTs);
    st.row.completedRuns += 1;
    st.open = null;
    st.legs.clear();
  }

  private promote(st: JobState, endpoint: string, learning: boolean, ts: number): void {
    const prev = st.baseline.get(endpoint);
    // Risky destinations never join a baseline, whatever a store written before this check holds.
    if (this.cfg.neverBaseline(splitEndpoint(endpoint).host)) return;
    const runsSeen = (prev?.runsSeen ?? 0) + 1;
    const entry: BaselineEntry = {
      runsSeen,
      inBaseline: prev?.inBaseline === true || learning || runsSeen >= this.cfg.promoteAfterRuns,
      source: prev?.source ?? 'learned',
    };
    st.baseline.set(endpoint, entry);
    this.session.upsertBaseline(st.row.ref, endpoint, entry, ts);
  }

  private expectedSample(st: JobState): string[] {
    const out: string[] = [];
    for (const [endpoint, e] of st.baseline) if (e.inBaseline) out.push(endpoint);
    out.sort();
    return out.slice(0, this.cfg.expectedSampleSize);
  }

  /**
   * Resolves the run leg an event belongs to, opening a new run (and completing the previous) as
   * needed. A new GitHub job id within the open run is a new leg of it (a matrix job), not a new run.
   */
  private runFor(st: JobState, runId: string, attempt: number, ghJobId: string | undefined, ts: number): RunState {
    const leg = ghJobId ?? '';
    const open = st.open;
    if (open && open.runId === runId && open.attempt === attempt) {
      const known = st.legs.get(leg);
      if (known) return known;
      const expected = open.learning ? [] : open.expected ?? this.expectedSample(st);
      const ref = this.session.createRun(st.row.ref, runId, attempt, ghJobId ?? null, ts, open.learning, expected);
      this.counters.runsCreated++;
      const run: RunState = {
        ref, runId, attempt, leg, learning: open.learning, completed: false, firstTs: ts, lastTs: ts,
        keys: new Set(), endpoints: new Set(), expected,
      };
      st.legs.set(leg, run);
      return run;
    }
    const lateKey = `${st.row.ref}\u0001${runId}\u0001${attempt}\u0001${leg}`;
    const cached = this.lateRuns.get(lateKey);
    if (cached) return cached;
    const legs = this.session.runLegs(st.row.ref, runId, attempt);
    if (legs.length > 0) {
      // A late event of an earlier run; possibly of a leg not seen before, stored as completed at once.
      let row = legs.find((l) => (l.ghJobId ?? '') === leg);
      if (!row) {
        const ref = this.session.createRun(st.row.ref, runId, attempt, ghJobId ?? null, ts, legs[0]!.learning, []);
        this.session.completeRun(ref);
        this.counters.runsCreated++;
        row = { ...legs[0]!, ref, ghJobId: ghJobId ?? null, firstTs: ts, lastTs: ts, completed: true };
      }
      const late = this.loadRun(row, true);
      late.endpoints = this.lateRunEndpoints(st, runId, attempt, legs);
      if (this.lateRuns.size >= 256) this.lateRuns.delete(this.lateRuns.keys().next().value!);
      this.lateRuns.set(lateKey, late);
      return late;
    }
    if (open) this.completeOpenRun(st);
    const learning = st.row.completedRuns < this.cfg.learningRuns;
    const expected = learning ? [] : this.expectedSample(st);
    const ref = this.session.createRun(st.row.ref, runId, attempt, ghJobId ?? null, ts, learning, expected);
    this.counters.runsCreated++;
    const run: RunState = {
      ref, runId, attempt, leg, learning, completed: false, firstTs: ts, lastTs: ts,
      keys: new Set(), endpoints: new Set(), expected,
    };
    st.open = run;
    st.legs.set(leg, run);
    this.session.setJobState(st.row.ref, st.row.completedRuns, ref);
    return run;
  }

  /** The allowed endpoints of every leg of a completed run, one set shared by its late legs. */
  private lateRunEndpoints(st: JobState, runId: string, attempt: number, legs: RunRow[]): Set<string> {
    const prefix = `${st.row.ref}\u0001${runId}\u0001${attempt}\u0001`;
    for (const [k, r] of this.lateRuns) if (k.startsWith(prefix) && r.endpoints) return r.endpoints;
    const out = new Set<string>();
    for (const l of legs) for (const e of this.session.runEndpointsAllowed(l.ref)) out.add(e);
    return out;
  }

  handleCall(ev: NetworkCallEvent): void {
    const c = ev.ctx;
    const st = this.job(c.owner, c.repo, c.workflow, c.job);
    const run = this.runFor(st, c.runId, c.runAttempt, c.jobId, ev.timestamp);
    const endpoint = endpointOf(ev.domain, ev.ip, ev.port);
    const vkey = variantKeyOf(ev.process);
    const blocked = ev.status === 'blocked';
    const okey = observationKey(endpoint, vkey, blocked);
    this.counters.accepted++;
    const sets = this.resident(run);
    if (sets.keys.has(okey)) {
      this.counters.duplicates++;
      return;
    }
    sets.keys.add(okey);
    const variant = toVariant(ev.process);
    const ip = ev.ip ?? null;
    const verdict = ev.matchedPolicy === undefined && ev.reason === undefined ? undefined : { matchedPolicy: ev.matchedPolicy, reason: ev.reason };
    if (!this.session.insertObservation(run.ref, endpoint, ip, variant, blocked, ev.protocol ?? null, ev.timestamp, vkey, verdict)) {
      this.counters.duplicates++;
      return;
    }
    if (ev.timestamp > run.lastTs || ev.timestamp < run.firstTs) {
      run.lastTs = Math.max(run.lastTs, ev.timestamp);
      run.firstTs = Math.min(run.firstTs, ev.timestamp);
      this.dirtyRuns.add(run);
    }
    // A suspected impostor's calls never teach the baseline (its detections stay visible too).
    const suspect =
      this.suppressor.observe?.({
        process: variant.normName, processSha256: variant.sha256, processPath: variant.path, parentChain: variant.parentChain,
        host: ev.domain ?? ev.ip ?? '', port: ev.port, isIp: !ev.domain,
      }) ?? false;
    // A late event of an already completed run counts towards the baseline straight away, but only
    // after it has been evaluated: counted first, it could promote itself and raise nothing.
    let countLate = false;
    if (!blocked && !suspect && !sets.endpoints.has(endpoint)) {
      sets.endpoints.add(endpoint);
      countLate = run.completed;
    }
    this.evaluate(st, run, ev, endpoint, variant, blocked);
    if (countLate) this.promote(st, endpoint, run.learning, ev.timestamp);
  }

  private evaluate(st: JobState, run: RunState, ev: NetworkCallEvent, endpoint: string, variant: ProcessVariant, blocked: boolean): void {
    const c = ev.ctx;
    const ip = ev.ip ?? null;
    let type: string | null = null;
    const host = ev.domain ?? ev.ip ?? '';
    if (blocked) type = DOMAIN_BLOCKED;
    else if (this.cfg.neverBaseline(host)) {
      // Defence in depth: a risky destination raises a detection even while the job learns, and even
      // if a store or an allowed-endpoints list from before this check lets it in.
      type = NEW_OUTBOUND;
    } else if (!run.learning && st.baseline.get(endpoint)?.inBaseline !== true) {
      if (!this.cfg.allowed.matches(host, ev.port)) type = NEW_OUTBOUND;
    }
    if (!type) return;
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
    const inserted = this.session.insertDetection({
      type,
      jobRef: st.row.ref,
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
      externalId: '',
    });
    if (inserted) this.countDetection(type, ruleRef);
  }

  private countDetection(type: string, ruleRef: number): void {
    this.counters.detections++;
    this.counters.detectionsByType[type] = (this.counters.detectionsByType[type] ?? 0) + 1;
    if (ruleRef) this.counters.suppressedOnIngest++;
  }

  /** StepSecurity exports: stored as detections as they are; runs are recorded but not evaluated. */
  handleImported(d: ImportedDetection): void {
    const c = d.ctx;
    this.counters.accepted++;
    const row = this.session.getJob(c.owner, c.repo, c.workflow, c.job);
    let run = this.session.findRun(row.ref, c.runId, c.runAttempt, c.jobId ?? null);
    let runRef: number;
    if (run) {
      runRef = run.ref;
      this.session.touchRun(runRef, d.timestamp);
    } else {
      runRef = this.session.createRun(row.ref, c.runId, c.runAttempt, c.jobId ?? null, d.timestamp, false, d.expected);
      this.session.completeRun(runRef);
      this.counters.runsCreated++;
    }
    const { host, port } = splitEndpoint(d.endpoint);
    const variant = toVariant(d.process);
    let status = d.status;
    // An export may carry a suppression made upstream; a risky destination is never silenced here.
    if (status === 'suppressed' && this.cfg.neverBaseline(d.host ?? host)) status = 'new';
    let ruleRef = 0;
    if (status === 'new') {
      ruleRef = this.suppressor.match({
        type: d.type, owner: c.owner, repo: c.repo, workflow: c.workflow, job: c.job,
        endpoint: d.endpoint, host: d.host ?? host, port: d.port ?? port, ip: d.ip ?? d.directIp ?? null,
        process: variant.normName, processSha256: variant.sha256, processPath: variant.path,
      });
      if (ruleRef) status = 'suppressed';
    }
    const inserted = this.session.insertDetection({
      type: d.type,
      jobRef: row.ref,
      runRef,
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
    });
    if (inserted) this.countDetection(d.type, ruleRef);
    else this.counters.duplicates++;
  }
}
