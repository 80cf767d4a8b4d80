import type { DetectionStatus, Protocol } from '../domain/types.js';
import type { BaselineEntry, CallVerdict, IngestLeases, ProcessVariant } from './store.js';

/**
 * The ingest write contract: what a store implements so that `ingest` can write into it.
 *
 * The detection engine never talks to the store per event. For each parsed batch it asks once for
 * the state it lacks (read), evaluates the batch synchronously on memory, and hands the store one
 * write batch per transaction (write). Both calls are async, so a networked store implements them
 * with a few round trips per batch. The full contract (ordering, fencing, versions, --strict) is in
 * docs/ingest-and-baselines.md, "The ingest write contract".
 *
 * References: a job or run already stored is named by its ref (positive, the store's id). A job or
 * run created by a write batch is named, inside that batch only, by a negative temporary ref that
 * the batch itself declares (newJobs / newRuns); the result says which ref each one got.
 */

/** A job as GitHub names it (the natural key of a jobs row, within a tenant). */
export interface JobKey {
  owner: string;
  repo: string;
  workflow: string;
  job: string;
}

/** One job run (all its legs): a job, a workflow run id and its attempt. */
export interface RunKey extends JobKey {
  runId: string;
  runAttempt: number;
}

/** What a run already holds, so that a repeat is not stored or evaluated twice. */
export interface RunObservations {
  /** observationKey() of every observation stored for the run */
  keys: Set<string>;
  /** endpoints of the run's allowed (not blocked) observations */
  allowedEndpoints: Set<string>;
  /**
   * The binaries (normalised name, sha256, path) of each allowed endpoint's observations: the engine
   * counts an endpoint of a reloaded run towards the baseline only if a binary that is not a
   * suspected impostor called it, as it does for calls it sees itself.
   */
  callers: Map<string, StoredBinary[]>;
}

/** A process as the impostor verdict names its binary (analysis/impostor.ts BinaryRef). */
export interface StoredBinary {
  process: string;
  sha256: string | null;
  path: string | null;
}

/** Adds one stored observation to a run's observations (both backends read them alike). */
export function addStoredObservation(o: RunObservations, endpoint: string, key: string, blocked: boolean, binary: StoredBinary): void {
  o.keys.add(key);
  if (blocked) return;
  o.allowedEndpoints.add(endpoint);
  const list = o.callers.get(endpoint);
  if (list) list.push(binary);
  else o.callers.set(endpoint, [binary]);
}

/** One stored leg of a job run, with its observations. */
export interface StoredRun {
  ref: number;
  jobRef: number;
  runId: string;
  runAttempt: number;
  /** GitHub job id of the leg (a matrix job has several legs); null: the leg with no job id */
  ghJobId: string | null;
  firstTs: number;
  lastTs: number;
  completed: boolean;
  learning: boolean;
  observations: RunObservations;
}

/** A stored job with the state the engine evaluates against. */
export interface StoredJob {
  ref: number;
  completedRuns: number;
  /** the run ref jobs.open_run names, or null */
  openRun: number | null;
  /** the job's baseline, by endpoint ("host:port") */
  baseline: Map<string, BaselineEntry>;
  /** the legs of the open run that are not completed: the one openRun names first, then oldest first */
  openLegs: StoredRun[];
}

/**
 * Counters that other writers bump (contract in store.ts, "Concurrent writers"): the engine drops
 * its cached job state when jobStateVersion moves, and reloads rules when rulesVersion moves.
 */
export interface IngestVersions {
  rulesVersion: number;
  jobStateVersion: number;
}

export interface IngestReadRequest {
  /** jobs to load; a job not stored yet comes back as null (nothing is created by a read) */
  jobs: JobKey[];
  /** job runs to load: every stored leg, oldest first, with observations */
  runs: RunKey[];
  /** stored run refs whose observations are needed (a run whose keys the engine let go) */
  observations: number[];
}

export interface IngestReadResult {
  versions: IngestVersions;
  /** parallel to request.jobs */
  jobs: (StoredJob | null)[];
  /** parallel to request.runs; [] when the run has no stored leg */
  runs: StoredRun[][];
  /** parallel to request.observations */
  observations: RunObservations[];
}

/** A job created by this batch. */
export interface NewJobWrite {
  /** negative, unique within the batch */
  tempRef: number;
  key: JobKey;
}

/** A run leg created by this batch, with its final span and state as of this batch. */
export interface NewRunWrite {
  /** negative, unique within the batch */
  tempRef: number;
  jobRef: number;
  runId: string;
  runAttempt: number;
  ghJobId: string | null;
  firstTs: number;
  lastTs: number;
  learning: boolean;
  completed: boolean;
  /** the sample of baseline endpoints stored with the run (shown by `runs`) */
  expected: string[];
}

/** Widens a stored run's span to include [firstTs, lastTs] (never narrows it). */
export interface RunSpanWrite {
  ref: number;
  firstTs: number;
  lastTs: number;
}

/** Sets a job's completed-run count and open run (last write for a job wins). */
export interface JobStateWrite {
  ref: number;
  completedRuns: number;
  openRun: number | null;
}

/**
 * Upserts a baseline entry: runsSeen, inBaseline and source are replaced; the stored first-seen time
 * stays (firstTs is used when the entry is new) and the last-seen time becomes max(stored, lastTs).
 */
export interface BaselineWrite {
  jobRef: number;
  endpoint: string;
  entry: BaselineEntry;
  firstTs: number;
  lastTs: number;
}

/** A distinct call of a run: stored once per (run, endpoint, process variant, blocked). */
export interface ObservationWrite {
  runRef: number;
  endpoint: string;
  ip: string | null;
  process: ProcessVariant;
  /** processVariantKey(process), already computed by the engine */
  variantKey: string;
  blocked: boolean;
  protocol: Protocol | null;
  ts: number;
  /** the producer's own verdict on the call, when it gave one */
  verdict?: CallVerdict;
}

export interface DetectionWrite {
  type: string;
  jobRef: number;
  runRef: number;
  endpoint: string;
  ip: string | null;
  directIp: boolean;
  port: number | null;
  protocol: Protocol | null;
  process: ProcessVariant;
  ts: number;
  status: DetectionStatus;
  /** internal rule id when stored as suppressed, else 0 */
  ruleRef: number;
  /** the export's own id for imported detections, '' otherwise */
  externalId: string;
}

/**
 * A detection from an export (StepSecurity): its run is found by natural key, or created already
 * completed with `expected` as its sample; a found run's span widens to include ts. Jobs are
 * created as needed.
 */
export interface ImportedDetectionWrite {
  run: RunKey & { ghJobId: string | null };
  expected: string[];
  detection: Omit<DetectionWrite, 'jobRef' | 'runRef'>;
}

/** The record of one ingested source (`ingest_sources`), written with the source's last batch. */
export interface SourceRecordWrite {
  source: string;
  format: string;
  startedAt: string;
  lines: number;
  accepted: number;
  rejected: number;
  detections: number;
}

/** The writer's hold on the tenant's ingest lease, checked inside the write transaction. */
export interface LeaseFence {
  token: string;
  ttlMs: number;
}

/**
 * Everything one transaction writes for one tenant. The backend applies it in this order: newJobs,
 * newRuns, runSpans, completedRuns, jobStates, baseline, observations, detections, imported, source.
 */
export interface IngestWriteBatch {
  /**
   * Checked first, in the same transaction as the writes: the lease row must still carry this
   * token (else IngestLeaseLostError and nothing is written); the lease is then extended by ttlMs.
   */
  lease: LeaseFence;
  /**
   * The versions the batch was evaluated against: if the store's differ, nothing is written and
   * write() rejects with IngestStateChangedError (the engine reloads and evaluates again).
   */
  expect: IngestVersions;
  newJobs: NewJobWrite[];
  newRuns: NewRunWrite[];
  runSpans: RunSpanWrite[];
  /** stored runs that completed */
  completedRuns: number[];
  jobStates: JobStateWrite[];
  baseline: BaselineWrite[];
  /** all new: the engine sends only calls not in the run's observations */
  observations: ObservationWrite[];
  /** inserted unless an identical detection is stored (re-ingest) */
  detections: DetectionWrite[];
  imported: ImportedDetectionWrite[];
  source?: SourceRecordWrite;
}

export interface IngestWriteResult {
  /** the stored ref of each new job, parallel to batch.newJobs */
  jobRefs: number[];
  /** the stored ref of each new run, parallel to batch.newRuns */
  runRefs: number[];
  /** parallel to batch.detections: true when inserted, false when an identical one was stored */
  detectionsStored: boolean[];
  /** parallel to batch.imported: true when inserted */
  importedStored: boolean[];
  /** runs created for imported detections */
  importedRunsCreated: number;
}

/** One tenant's side of an ingest scope. */
export interface TenantIngest {
  readonly tenant: string;
  /** In an atomic scope, reads see the scope's own earlier writes. */
  read(req: IngestReadRequest): Promise<IngestReadResult>;
  /**
   * All or nothing: one transaction, or part of a larger one that only ever commits whole batches
   * (an atomic scope's, or a backend's group of batches committed together, as SQLite's is).
   */
  write(batch: IngestWriteBatch): Promise<IngestWriteResult>;
}

/**
 * The writes of one source. Atomic (--strict): every write of the scope belongs to one transaction
 * that commit() commits and rollback() undoes. Otherwise each write() is stored whole by itself
 * (committed at once, or with the batches of a short group, at the latest when the scope ends), and
 * commit() / rollback() only end the scope, committing what was written.
 */
export interface IngestScope {
  tenant(name: string): Promise<TenantIngest>;
  /**
   * Not atomic: commits the writes a backend may still hold in a group (SQLite's, write-group.ts),
   * so that other connections see them and may write; a backend that commits each write at once
   * has nothing to do. Atomic: nothing (the scope commits whole).
   */
  settle(): Promise<void>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

/** What a store implements for `ingest`. */
export interface IngestPort {
  readonly leases: IngestLeases;
  beginSource(opts: { atomic: boolean }): Promise<IngestScope>;
}

/** write() found versions other than batch.expect: another writer changed rules or job state. */
export class IngestStateChangedError extends Error {
  constructor(
    readonly expected: IngestVersions,
    readonly found: IngestVersions,
  ) {
    super(
      `the tenant's rules or job state changed since the batch was evaluated (rules ${expected.rulesVersion} -> ${found.rulesVersion}, ` +
        `job state ${expected.jobStateVersion} -> ${found.jobStateVersion}); nothing was written`,
    );
    this.name = 'IngestStateChangedError';
  }
}

/** The identity of a call within its run: one observation row per key. */
export function observationKey(endpoint: string, variantKey: string, blocked: boolean): string {
  return `${endpoint}\u0002${variantKey}\u0002${blocked ? 1 : 0}`;
}

/** The stable key of a process variant; also its identity in observations and detections. */
export function processVariantKey(p: ProcessVariant): string {
  let chain = '';
  for (const l of p.parentChain) chain += `${l.name}|${l.path ?? ''}|${l.sha256 ?? ''};`;
  return `${p.name}\u0001${p.path ?? ''}\u0001${p.sha256 ?? ''}\u0001${chain}`;
}
