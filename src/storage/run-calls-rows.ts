import type { ParentLink } from '../domain/types.js';
import { iso, type RunSummaryRow } from './inventory-rows.js';
import { STATUS_NAME } from './store.js';
import type { RunCall, RunCalls, RunDetectionRef, RunLeg } from './run-calls-port.js';

/**
 * The rows both backends' run-calls queries return and the one assembly of them into the port's
 * answer, so SQLite and PostgreSQL answer alike. Flags are 0/1 in SQLite, booleans in PostgreSQL.
 */

/** A leg is a run summary's row without its detection counts, keyed by the run's row id. */
export interface RunLegRow extends Omit<RunSummaryRow, 'detections' | 'new_detections'> {
  run_ref: number;
}

export interface RunCallRow {
  run_ref: number;
  endpoint_id: number;
  process_id: number;
  blocked: number | boolean;
  protocol: string | null;
  first_ts: number;
  endpoint: string;
  host: string;
  port: number | null;
  ip: string | null;
  pname: string;
  path: string | null;
  sha256: string | null;
  parent_chain: string;
  matched_policy: string | null;
  reason: string | null;
  in_baseline: number | boolean;
}

export interface RunDetectionRow {
  id: number;
  type: string;
  status: number;
  run_ref: number;
  endpoint_id: number;
  process_id: number;
}

/** Legs must come ordered (workflow, job, attempt, job id); calls by first_ts, endpoint, process name. */
export function assembleRunCalls(legRows: RunLegRow[], callRows: RunCallRow[], detectionRows: RunDetectionRow[]): RunCalls | null {
  const first = legRows[0];
  if (!first) return null;
  const legIndex = new Map(legRows.map((r, i) => [r.run_ref, i]));
  const legs: RunLeg[] = legRows.map((r) => ({
    workflow: r.workflow,
    job: r.job,
    runAttempt: r.run_attempt,
    jobId: r.gh_job_id,
    startedAt: iso(r.first_ts),
    endedAt: iso(r.last_ts),
    completed: Boolean(r.completed),
    learning: Boolean(r.learning),
  }));
  const byCall = new Map<string, RunDetectionRef[]>();
  const key = (run: number, endpoint: number, process: number) => `${run}/${endpoint}/${process}`;
  for (const d of detectionRows) {
    const k = key(d.run_ref, d.endpoint_id, d.process_id);
    const list = byCall.get(k) ?? [];
    list.push({ id: String(d.id), type: d.type, status: STATUS_NAME[d.status]! });
    byCall.set(k, list);
  }
  const claimed = new Set<string>();
  const calls: RunCall[] = callRows.map((r) => {
    const k = key(r.run_ref, r.endpoint_id, r.process_id);
    claimed.add(k);
    return {
      leg: legIndex.get(r.run_ref)!,
      endpoint: r.endpoint,
      host: r.host,
      port: r.port,
      ip: r.ip,
      protocol: r.protocol,
      process: { name: r.pname, path: r.path, sha256: r.sha256, parent: JSON.parse(r.parent_chain) as ParentLink[] },
      blocked: Boolean(r.blocked),
      matchedPolicy: r.matched_policy,
      reason: r.reason,
      firstSeen: iso(r.first_ts),
      inBaseline: Boolean(r.in_baseline),
      detections: byCall.get(k) ?? [],
    };
  });
  calls.sort((a, b) => a.leg - b.leg);
  const otherDetections = [...byCall.entries()].filter(([k]) => !claimed.has(k)).flatMap(([, v]) => v);
  return { owner: first.owner, repo: first.repo, runId: first.run_id, legs, calls, otherDetections };
}
