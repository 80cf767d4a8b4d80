import { assembleRunCalls, type RunCallRow, type RunDetectionRow, type RunLegRow } from '../run-calls-rows.js';
import type { RunCalls, RunCallsReader } from '../run-calls-port.js';
import type { SqliteDatabase } from './db.js';

/** The run-calls port (storage/run-calls-port.ts) on SQLite. */
export class SqliteRunCallsRepository implements RunCallsReader {
  constructor(private readonly db: SqliteDatabase) {}

  async runCalls(tenant: string, q: { owner: string; repo: string; runId: string; jobId?: string }): Promise<RunCalls | null> {
    const params: unknown[] = [tenant, q.owner, q.repo, q.runId];
    if (q.jobId !== undefined) params.push(q.jobId);
    const legs = this.db
      .prepare(
        `SELECT r.id AS run_ref, j.owner, j.repo, j.workflow, j.job, r.run_id, r.run_attempt, r.gh_job_id, r.first_ts, r.last_ts, r.completed, r.learning
         FROM runs r JOIN jobs j ON j.id = r.job_ref JOIN tenants t ON t.id = j.tenant_id
         WHERE t.name = ? AND j.owner = ? COLLATE NOCASE AND j.repo = ? COLLATE NOCASE AND r.run_id = ?
         ${q.jobId !== undefined ? 'AND r.gh_job_id = ?' : ''}
         ORDER BY j.workflow, j.job, r.run_attempt, coalesce(r.gh_job_id, ''), r.id`,
      )
      .all(...params) as RunLegRow[];
    if (legs.length === 0) return null;
    const refs = legs.map((l) => l.run_ref);
    const marks = refs.map(() => '?').join(',');
    const calls = this.db
      .prepare(
        `SELECT o.run_ref, o.endpoint_id, o.process_id, o.blocked, o.protocol, o.first_ts, e.endpoint, e.host, e.port, i.ip,
                p.name AS pname, p.path, p.sha256, p.parent_chain, v.matched_policy, v.reason,
                coalesce((SELECT b.in_baseline FROM baseline b WHERE b.job_ref = r.job_ref AND b.endpoint_id = o.endpoint_id), 0) AS in_baseline
         FROM observations o JOIN runs r ON r.id = o.run_ref
         JOIN endpoints e ON e.id = o.endpoint_id JOIN processes p ON p.id = o.process_id
         LEFT JOIN ips i ON i.id = o.ip_id
         LEFT JOIN call_verdicts v ON v.run_ref = o.run_ref AND v.endpoint_id = o.endpoint_id AND v.process_id = o.process_id AND v.blocked = o.blocked
         WHERE o.run_ref IN (${marks})
         ORDER BY o.first_ts, e.endpoint, p.name, o.blocked`,
      )
      .all(...refs) as RunCallRow[];
    const detections = this.db
      .prepare(
        `SELECT d.id, t.name AS type, coalesce(s.status, 0) AS status, d.run_ref, d.endpoint_id, d.process_id
         FROM detections d JOIN detection_types t ON t.id = d.type_id LEFT JOIN detection_status s ON s.id = d.id
         WHERE d.run_ref IN (${marks}) ORDER BY d.id`,
      )
      .all(...refs) as RunDetectionRow[];
    return assembleRunCalls(legs, calls, detections);
  }
}
