import type { Detection } from '../domain/types.js';
import type { DetectionFilter } from '../domain/filter.js';
import type { BaselineView } from './store.js';

/**
 * What the dashboard's Detections, Destinations and Baselines pages read, in domain terms. Every
 * method is tenant-scoped and paged by keyset (never OFFSET), so a page costs about the same on the
 * first page as on the ten-thousandth of a store with millions of detections. Guarantees are
 * written down in docs/dashboard-data.md.
 *
 * Detection cursors are the shared (timestamp, id) cursor of storage/detection-cursor.ts: the same
 * value pages forward (`after`) or backward (`before`). Destination and baseline cursors are opaque
 * tokens of storage/dashboard-cursor.ts.
 */

/** How many detections match, counted no further than a bound so that counting stays cheap. */
export interface BoundedCount {
  /** exact when `exact`; otherwise at least this many ("10000+") */
  value: number;
  exact: boolean;
}

export interface DetectionWindowQuery {
  /** validated by domain/filter.ts, the parser the CLI uses */
  filter: DetectionFilter;
  limit: number;
  /** the page older than the one that ended with this cursor (its nextCursor) */
  after?: string | null;
  /** the page newer than the one that began with this cursor (its prevCursor) */
  before?: string | null;
  /** count matches up to this bound; 0 or absent: no count (an export needs none) */
  countUpTo?: number;
}

export interface DetectionWindow {
  /** newest first, whichever direction was paged */
  detections: Detection[];
  count: BoundedCount | null;
  /** cursor of the next (older) page, null when this page holds the oldest match */
  nextCursor: string | null;
  /** cursor of the previous (newer) page, null when this page holds the newest match */
  prevCursor: string | null;
}

/** One job that called a destination. */
export interface DestinationJob {
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  /** job runs (attempts) with at least one call to the endpoint, open runs included */
  runs: number;
  /** whether some call of the job to the endpoint was blocked */
  blocked: boolean;
  lastSeen: string;
  /** the job's baseline entry for the endpoint, if it has one */
  inBaseline: boolean;
  baselineRunsSeen: number;
  baselineSource: 'learned' | 'expected' | null;
}

/** An endpoint seen in a tenant's calls, with the jobs that call it (most recent first). */
export interface Destination {
  endpoint: string;
  host: string;
  port: number | null;
  isIp: boolean;
  /** at most `jobsPerDestination` of them */
  jobs: DestinationJob[];
  /** every job that calls it */
  jobsTotal: number;
  lastSeen: string;
}

export interface DestinationsPage {
  destinations: Destination[];
  nextCursor: string | null;
}

/** A job, by its key. */
export interface DashboardJobKey {
  owner: string;
  repo: string;
  workflow: string;
  job: string;
}

/**
 * An address a tenant's calls to an endpoint went to, as the store keeps them: the first call of
 * each job run, process and endpoint (observations), and every detection.
 */
export interface CallAddress {
  endpoint: string;
  ip: string;
  /** the job that called it; null when the query was not per job */
  job: DashboardJobKey | null;
}

export interface BaselineJobsPage {
  jobs: BaselineView[];
  nextCursor: string | null;
}

export interface DashboardQueries {
  /** One page of detections matching a filter, newest first, with a bounded count. */
  detectionWindow(tenant: string, q: DetectionWindowQuery): Promise<DetectionWindow>;
  /** Every endpoint the tenant's jobs called (observed calls, risky ones included), in endpoint order. */
  destinations(tenant: string, q: { limit: number; cursor?: string | null; jobsPerDestination: number }): Promise<DestinationsPage>;
  /**
   * The addresses the tenant's calls to these endpoints went to, each once (per job, with `jobs`:
   * then only those jobs' calls), in (endpoint, ip) order. For judging a page's destinations and
   * baseline entries against address ranges of the risky list (dashboard-data/views.ts).
   */
  callAddresses(tenant: string, q: { endpoints: readonly string[]; jobs?: readonly DashboardJobKey[] }): Promise<CallAddress[]>;
  /** The tenant's jobs in (owner, repo, workflow, job) order, each with its baseline state and entries. */
  baselineJobs(tenant: string, q: { limit: number; cursor?: string | null; owner?: string; repo?: string }): Promise<BaselineJobsPage>;
}

/** A bounded count from a probe that read at most `bound + 1` matches. */
export function boundedCount(seen: number, bound: number): BoundedCount {
  return seen > bound ? { value: bound, exact: false } : { value: seen, exact: true };
}
