import type { CallAddress, Destination, DestinationJob } from './dashboard-port.js';

/**
 * A destination as every backend's query returns it (one row per endpoint and job of observed
 * calls, the job's baseline entry joined), and the one mapping of those rows to the domain's
 * Destination, so both stores answer the Destinations page alike.
 */

/** One (endpoint, job) group of observed calls, as both backends read it. */
export interface DestinationJobRow {
  endpoint_id: number;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  runs: number;
  /** SQLite 0/1, PostgreSQL boolean */
  blocked: number | boolean;
  last_ts: number;
  in_baseline: number | boolean | null;
  runs_seen: number | null;
  source: string | null;
}

export function destination(
  e: { endpoint: string; host: string; port: number | null; is_ip: number | boolean },
  rows: DestinationJobRow[],
  jobsPerDestination: number,
): Destination {
  const jobs: DestinationJob[] = rows.slice(0, jobsPerDestination).map((j) => ({
    owner: j.owner,
    repo: j.repo,
    workflow: j.workflow,
    job: j.job,
    runs: Number(j.runs),
    blocked: Boolean(j.blocked),
    lastSeen: new Date(Number(j.last_ts)).toISOString(),
    inBaseline: Boolean(j.in_baseline),
    baselineRunsSeen: j.runs_seen ?? 0,
    baselineSource: j.source === 'learned' || j.source === 'expected' ? j.source : null,
  }));
  return {
    endpoint: e.endpoint,
    host: e.host,
    port: e.port,
    isIp: Boolean(e.is_ip),
    jobs,
    jobsTotal: rows.length,
    lastSeen: new Date(Math.max(...rows.map((r) => Number(r.last_ts)))).toISOString(),
  };
}

/** One address row of callAddresses, as both backends read it (owner null when not per job). */
export interface CallAddressRow {
  owner: string | null;
  repo: string | null;
  workflow: string | null;
  job: string | null;
  endpoint: string;
  ip: string;
}

export function callAddress(r: CallAddressRow): CallAddress {
  const job = r.owner === null ? null : { owner: r.owner, repo: r.repo!, workflow: r.workflow!, job: r.job! };
  return { endpoint: r.endpoint, ip: r.ip, job };
}
