import type { Detection, DetectionStatus, ParentLink } from '../domain/types.js';
import type { DetectionFilter } from '../domain/filter.js';

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


/*
 * Ingest writes go through the async write contract in ingest-port.ts (IngestPort): one read and one
 * write batch per transaction, never a call per event.
 */

/** Storage receives filters already validated and normalised by domain/filter.ts (the one parser). */
export type { DetectionFilter } from '../domain/filter.js';

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
  /** newest first; `offset` skips rows after the cursor position (1-based page numbers) */
  list(tenant: string, filter: DetectionFilter, limit: number, cursor?: string | null, offset?: number): Promise<DetectionPage>;
  get(tenant: string, id: string): Promise<Detection | null>;
  stats(tenant: string): Promise<TenantStats>;
  baselines(tenant: string, q: { owner?: string; repo?: string; workflow?: string; job?: string }): Promise<BaselineView[]>;
  tenants(): Promise<string[]>;
}

/*
 * Concurrent writers.
 *
 * Contract: concurrent ingests into one store give exactly the result of ingesting the same sources
 * one after the other, in some order. Every backend meets it with a per-tenant ingest lease:
 *
 * - Exclusive: at most one holder per tenant. An ingest holds the lease of every tenant it writes
 *   for the whole of one source, and caches job state (completed runs, open run, baseline) only
 *   while it holds it: it re-reads that state after every acquisition.
 * - Waiting is visible: acquireIngestLease() calls onWait with the current holder (which source,
 *   which process on which host, since when) when it has to wait, and again on a takeover.
 * - Expiry: a lease lives ttlMs after its last renewal. A holder renews it (heartbeat) at least every
 *   ttlMs / 3; a holder that died (kill -9, lost machine) stops renewing, and after expiry the next
 *   writer takes the lease over instead of waiting forever.
 * - Fencing: an expired holder may still be alive (stopped, swapped out). It must not keep writing:
 *   every write batch carries the holder's lease token (IngestWriteBatch.lease, ingest-port.ts), and
 *   the backend checks it inside the write transaction, before its writes, failing with
 *   IngestLeaseLostError unless the lease row still carries that token. The check and the
 *   writes are one transaction, and a takeover is itself a write to the lease row, so the backend's
 *   own serialisation (SQLite's single writer; a row lock in PostgreSQL) orders them: no write of an
 *   old holder can commit after a takeover.
 * - No endless wait: a holder of one tenant that waits for another tenant whose holder waits, directly
 *   or not, for the first one would wait forever; acquireIngestLease() detects the cycle and fails
 *   one waiter of it with IngestLeaseDeadlockError.
 * - Expiry is judged by one clock per store (the writers' machine for SQLite, the server's for a
 *   networked store), never by comparing clocks of different machines.
 *
 * Writes to job or baseline state that are not ingests (baseline expect) are single short
 * transactions; they do not take the lease but bump the tenant's job-state version, which every
 * ingest write checks inside its transaction (IngestWriteBatch.expect): a batch evaluated against
 * older state writes nothing and is evaluated again. Rule changes bump the rules version the same way.
 */

/** Who holds (or wants) a tenant's ingest lease; shown to the writers that wait for it. */
export interface IngestLeaseHolder {
  /** the source being ingested: a file path, or <stdin> */
  source: string;
  pid: number;
  host: string;
}

/** A lease as another writer sees it. Times are epoch ms on the store's clock. */
export interface IngestLeaseState {
  tenant: string;
  holder: IngestLeaseHolder;
  since: number;
  expiresAt: number;
}

export type IngestLeaseEvent =
  /** another live holder has the lease: the caller waits */
  | {
      kind: 'waiting';
      current: IngestLeaseState;
      now: number;
      /**
       * the holder is inside a write transaction that holds the lease (a --strict ingest keeps one
       * open for its whole source): its lease cannot be taken over before that transaction ends
       */
      busy?: true;
    }
  /** the previous holder's lease expired without release: the caller took it over */
  | { kind: 'takeover'; previous: IngestLeaseState; now: number };

export interface AcquireIngestLeaseOptions {
  /** lease lifetime after each renewal (default DEFAULT_INGEST_LEASE_TTL_MS) */
  ttlMs?: number;
  onWait?: (e: IngestLeaseEvent) => void;
  /** stops waiting: acquireIngestLease() then rejects with the signal's reason */
  signal?: AbortSignal;
  /** false: return null at once (after onWait) instead of waiting when another live holder has the lease */
  wait?: boolean;
}

export interface IngestLease {
  readonly tenant: string;
  /** unique per acquisition; a takeover gives a new token */
  readonly token: string;
  readonly ttlMs: number;
  /**
   * Heartbeat: extends the lease by ttlMs. Fails with IngestLeaseLostError if it was taken over.
   * May be async (a networked store); the SQLite lease does it at once.
   */
  renew(): void | Promise<void>;
  /** Gives the lease up (no-op if it was lost). May be async. */
  release(): void | Promise<void>;
}

export interface IngestLeases {
  acquireIngestLease(tenant: string, holder: IngestLeaseHolder, opts?: AcquireIngestLeaseOptions & { wait?: true }): Promise<IngestLease>;
  acquireIngestLease(tenant: string, holder: IngestLeaseHolder, opts: AcquireIngestLeaseOptions): Promise<IngestLease | null>;
}

/** Long enough that a busy but live holder never loses it; short enough that a killed one frees the tenant soon. */
export const DEFAULT_INGEST_LEASE_TTL_MS = 30_000;

/** A failure to hold an ingest lease: the message says which tenant and which writer has it. */
export class IngestLeaseError extends Error {}

/**
 * Holding one tenant's lease and waiting for another's could wait forever if the other holder waits
 * for ours (two multi-tenant sources meeting the tenants in opposite orders). The waiter that detects
 * such a cycle and is the greatest (host, pid) in it gets this error instead; the others keep waiting.
 */
export class IngestLeaseDeadlockError extends IngestLeaseError {
  override name = 'IngestLeaseDeadlockError';
}

/** --strict found a tenant held by another writer in the middle of its single transaction. */
export class IngestLeaseBusyError extends IngestLeaseError {
  override name = 'IngestLeaseBusyError';
}

export class IngestLeaseLostError extends IngestLeaseError {
  constructor(
    readonly tenant: string,
    readonly current: IngestLeaseState | null,
  ) {
    super(
      `lost the ingest lease of tenant "${tenant}"` +
        (current ? ` to the ingest of ${current.holder.source} (pid ${current.holder.pid} on ${current.holder.host})` : '') +
        ': this process stopped renewing it for longer than the lease lifetime; the open transaction was rolled back ' +
        '(committed batches stay, and re-running the ingest stores nothing twice)',
    );
    this.name = 'IngestLeaseLostError';
  }
}

/** The producer's own policy verdict on a call (Harden-Runner `matched_policy`, `reason`). */
export interface CallVerdict {
  matchedPolicy?: string;
  reason?: string;
}
