import type { EndpointCall, RunSummary } from './inventory-port.js';
import type { ParentLink } from '../domain/types.js';

/**
 * The rows every backend's inventory queries return, and the one mapping of each to the port's
 * answer, so SQLite and PostgreSQL answer alike. Flags come back as 0/1 from SQLite and as
 * booleans from PostgreSQL.
 */

export const iso = (ms: number): string => new Date(ms).toISOString();

export interface EndpointCallRow {
  first_ts: number;
  blocked: number | boolean;
  endpoint: string;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  run_id: string;
  run_attempt: number;
  gh_job_id: string | null;
  pname: string;
  sha256: string | null;
  path: string | null;
  /** JSON array of ParentLink, as stored */
  parent_chain: string;
}

export function toEndpointCall(r: EndpointCallRow): EndpointCall {
  return {
    endpoint: r.endpoint,
    owner: r.owner,
    repo: r.repo,
    workflow: r.workflow,
    job: r.job,
    run_id: r.run_id,
    run_attempt: r.run_attempt,
    job_id: r.gh_job_id,
    process: r.pname,
    process_sha256: r.sha256,
    process_path: r.path,
    process_parent_chain: JSON.parse(r.parent_chain) as ParentLink[],
    blocked: Boolean(r.blocked),
    timestamp: iso(r.first_ts),
  };
}

export interface RunSummaryRow {
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  run_id: string;
  run_attempt: number;
  gh_job_id: string | null;
  first_ts: number;
  last_ts: number;
  completed: number | boolean;
  learning: number | boolean;
  detections: number;
  new_detections: number;
}

export function toRunSummary(r: RunSummaryRow): RunSummary {
  return {
    owner: r.owner,
    repo: r.repo,
    workflow: r.workflow,
    job: r.job,
    run_id: r.run_id,
    run_attempt: r.run_attempt,
    job_id: r.gh_job_id,
    started_at: iso(r.first_ts),
    ended_at: iso(r.last_ts),
    completed: Boolean(r.completed),
    learning: Boolean(r.learning),
    detections: r.detections,
    new_detections: r.new_detections,
  };
}
