import type { IndicatorKind } from '../domain/indicator.js';
import type { ParentLink } from '../domain/types.js';

/**
 * Read-only inventory of a tenant (IOC lookups, endpoint usage, orgs, runs), as the MCP tools and
 * the CLI ask for it. Every method is tenant-scoped: no answer includes another tenant's jobs,
 * runs, calls or baselines. Indicators are interpreted by domain/indicator.ts in every backend;
 * cursors are opaque tokens of the backend that issued them (a bad one is an InventoryError).
 */

export interface BaselineMatch {
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  endpoint: string;
  runs_seen: number;
  in_baseline: boolean;
  source: string;
  first_seen: string;
  last_seen: string;
}

export interface CallSummary {
  endpoint: string;
  owner: string;
  repo: string;
  runs: number;
  blocked_runs: number;
  processes: string[];
  first_seen: string;
  last_seen: string;
}

export interface EndpointCall {
  endpoint: string;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  run_id: string;
  run_attempt: number;
  job_id: string | null;
  process: string;
  process_sha256: string | null;
  /**
   * The rest of the process variant: one binary run under two parent chains in one run is two calls
   * (two observations), and without these the two rows would look like duplicates.
   */
  process_path: string | null;
  process_parent_chain: ParentLink[];
  blocked: boolean;
  timestamp: string;
}

export interface RepoUsage {
  owner: string;
  repo: string;
  matched_endpoints: string[];
  runs: number;
  jobs: number;
  workflows: string[];
  processes: string[];
  in_baseline_jobs: number;
  first_seen: string;
  last_seen: string;
}

export interface OrgSummary {
  owner: string;
  repos: number;
  jobs: number;
  runs: number;
  last_run: string | null;
}

export interface RunSummary {
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  run_id: string;
  run_attempt: number;
  job_id: string | null;
  started_at: string;
  ended_at: string;
  completed: boolean;
  learning: boolean;
  detections: number;
  new_detections: number;
}

/** What an indicator matched: `truncated` when it named more endpoints than a lookup covers. */
interface IndicatorScope {
  kind: IndicatorKind;
  truncated: boolean;
}

export interface IocReport extends IndicatorScope {
  baseline: BaselineMatch[];
  baseline_total: number;
  calls: CallSummary[];
  calls_total: number;
  detections: { new: number; suppressed: number; resolved: number };
}

export interface EndpointCallsPage extends IndicatorScope {
  total: number;
  distinct_runs: number;
  calls: EndpointCall[];
  next_cursor: string | null;
}

export interface RepoUsageReport extends IndicatorScope {
  repos: RepoUsage[];
}

export interface RunsPage {
  total: number;
  runs: RunSummary[];
  next_cursor: string | null;
}

export interface InventoryRepository {
  /** Baseline entries and observed calls matching an indicator, optionally within one owner. */
  checkIocInBaseline(tenant: string, q: { indicator: string; owner?: string; limit: number }): Promise<IocReport>;
  /** Every (run, endpoint, process variant, blocked) observation of an endpoint tenant-wide, newest first, paged. */
  findEndpointCalls(tenant: string, q: { endpoint: string; owner?: string; limit: number; cursor?: string | null }): Promise<EndpointCallsPage>;
  /** Per-repo inventory of an endpoint within one owner (org). */
  findReposUsingEndpoint(tenant: string, q: { owner: string; endpoint: string }): Promise<RepoUsageReport>;
  listOrgs(tenant: string): Promise<OrgSummary[]>;
  /** Job runs of an owner (optionally one repo), newest first, paged. */
  listRecentRuns(tenant: string, q: { owner: string; repo?: string; limit: number; cursor?: string | null }): Promise<RunsPage>;
}
