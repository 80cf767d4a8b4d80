import type { Detection, DetectionStatus, ParentLink, Protocol } from '../domain/types.js';

/**
 * Storage interfaces. The SQLite implementation is the embedded default; a PostgreSQL backend
 * implements the same contracts later. Every method is tenant-scoped: no call can read or write
 * another tenant's rows.
 */

export const STATUS_CODE: Record<DetectionStatus, number> = { new: 0, suppressed: 1, resolved: 2 };
export const STATUS_NAME: DetectionStatus[] = ['new', 'suppressed', 'resolved'];

/** A process as stored: one row per distinct (name, path, sha256, parent chain). */
export interface ProcessVariant {
  name: string;
  normName: string;
  path: string | null;
  sha256: string | null;
  parentChain: ParentLink[];
}

export interface JobRow {
  ref: number;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  completedRuns: number;
  openRun: number | null;
}

export interface RunRow {
  ref: number;
  jobRef: number;
  runId: string;
  runAttempt: number;
  ghJobId: string | null;
  firstTs: number;
  lastTs: number;
  completed: boolean;
  learning: boolean;
}

export interface BaselineEntry {
  runsSeen: number;
  inBaseline: boolean;
  source: 'learned' | 'expected';
}

export interface NewDetection {
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
  /** internal rule id (rules.id) when stored as suppressed, else 0 */
  ruleRef: number;
  externalId: string;
}

/**
 * Synchronous write session used by the ingest engine inside one transaction per batch.
 * Kept synchronous because it runs per event on the hot path; a networked backend buffers
 * these calls and flushes them at commit.
 */
export interface IngestSession {
  readonly tenant: string;
  readonly tenantId: number;
  transaction<T>(fn: () => T): T;
  /** Drop caches that may refer to rolled-back rows. */
  resetCaches(): void;
  getJob(owner: string, repo: string, workflow: string, job: string): JobRow;
  setJobState(jobRef: number, completedRuns: number, openRun: number | null): void;
  findRun(jobRef: number, runId: string, runAttempt: number): RunRow | null;
  findRunByRef(runRef: number): RunRow | null;
  createRun(jobRef: number, runId: string, runAttempt: number, ghJobId: string | null, ts: number, learning: boolean, expected: string[]): number;
  /** widens the run's time span to include [minTs, maxTs] */
  touchRun(runRef: number, minTs: number, maxTs?: number): void;
  completeRun(runRef: number): void;
  runObservationKeys(runRef: number): { keys: Set<string>; endpoints: Set<string> };
  runEndpointsAllowed(runRef: number): string[];
  loadBaseline(jobRef: number): Map<string, BaselineEntry>;
  upsertBaseline(jobRef: number, endpoint: string, entry: BaselineEntry, ts: number): void;
  /** returns true when the observation was not stored before */
  insertObservation(runRef: number, endpoint: string, ip: string | null, process: ProcessVariant, blocked: boolean, protocol: Protocol | null, ts: number, variantKey?: string, verdict?: CallVerdict): boolean;
  /** returns true when inserted, false when an identical detection already existed */
  insertDetection(d: NewDetection): boolean;
  /** rules version counter, bumped by every rule change; lets ingest reload rules mid-stream */
  rulesVersion(): number;
  recordSource(source: string, format: string, stats: { lines: number; accepted: number; rejected: number; detections: number }, startedAt: string): void;
}

export interface DetectionFilter {
  types?: string[];
  statuses?: DetectionStatus[];
  owner?: string;
  repo?: string;
  workflow?: string;
  job?: string;
  runId?: string;
  /** normalised process name */
  process?: string;
  endpoint?: string;
  /** epoch ms, inclusive */
  since?: number;
  /** epoch ms, exclusive */
  until?: number;
}

export interface DetectionPage {
  detections: Detection[];
  total: number;
  nextCursor: string | null;
}

export interface TenantStats {
  tenant: string;
  jobs: number;
  runs: number;
  observations: number;
  baselineEndpoints: number;
  learningJobs: number;
  detections: { type: string; status: DetectionStatus; count: number }[];
  rules: number;
}

export interface BaselineView {
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  completedRuns: number;
  learning: boolean;
  endpoints: { endpoint: string; runsSeen: number; inBaseline: boolean; source: string; firstSeen: string; lastSeen: string }[];
}

export interface DetectionRepository {
  list(tenant: string, filter: DetectionFilter, limit: number, cursor?: string | null): Promise<DetectionPage>;
  get(tenant: string, id: string): Promise<Detection | null>;
  stats(tenant: string): Promise<TenantStats>;
  baselines(tenant: string, q: { owner?: string; repo?: string; workflow?: string; job?: string }): Promise<BaselineView[]>;
  tenants(): Promise<string[]>;
}

/** The producer's own policy verdict on a call (Harden-Runner `matched_policy`, `reason`). */
export interface CallVerdict {
  matchedPolicy?: string;
  reason?: string;
}
