import { assembleRunCalls, type RunCallRow, type RunDetectionRow, type RunLegRow } from '../run-calls-rows.js';
import type { RunCalls, RunCallsReader } from '../run-calls-port.js';
import type { PgPool } from './pool.js';

/**
 * The run-calls port (storage/run-calls-port.ts) on PostgreSQL, answering as SQLite's does: every join
 * is on tenant_id as well as the id; text sorts byte-wise (COLLATE "C") as SQLite's BINARY does.
 */
export class PgRunCallsRepository implements RunCallsReader {
  constructor(private readonly pool: PgPool) {}

  async runCalls(tenant: string, q: { owner: string; repo: string; runId: string; jobId?: string }): Promise<RunCalls | null> {
    const params: unknown[] = [tenant, q.owner, q.repo, q.runId];
    if (q.jobId !== undefined) params.push(q.jobId);
    const legs = await this.pool.query<RunLegRow & { tenant_id: number }>(
      `SELECT r.tenant_id, r.id AS run_ref, j.owner, j.repo, j.workflow, j.job, r.run_id, r.run_attempt, r.gh_job_id, r.first_ts, r.last_ts, r.completed, r.learning
       FROM runs r JOIN jobs j ON j.tenant_id = r.tenant_id AND j.id = r.job_ref JOIN tenants t ON t.tenant_id = j.tenant_id
       WHERE t.name = $1 AND lower(j.owner) = lower($2) AND lower(j.repo) = lower($3) AND r.run_id = $4
       ${q.jobId !== undefined ? 'AND r.gh_job_id = $5' : ''}
       ORDER BY j.workflow COLLATE "C", j.job COLLATE "C", r.run_attempt, coalesce(r.gh_job_id, '') COLLATE "C", r.id`,
      params,
    );
    if (legs.rows.length === 0) return null;
    const tid = legs.rows[0]!.tenant_id;
    const refs = legs.rows.map((l) => l.run_ref);
    const [calls, detections] = await Promise.all([
      this.pool.query<RunCallRow>(
        `SELECT o.run_ref, o.endpoint_id, o.process_id, o.blocked, o.protocol, o.first_ts, e.endpoint, e.host, e.port, i.ip,
                p.name AS pname, p.path, p.sha256, p.parent_chain, v.matched_policy, v.reason,
                coalesce((SELECT b.in_baseline FROM baseline b WHERE b.tenant_id = o.tenant_id AND b.job_ref = r.job_ref AND b.endpoint_id = o.endpoint_id), false) AS in_baseline
         FROM observations o JOIN runs r ON r.tenant_id = o.tenant_id AND r.id = o.run_ref
         JOIN endpoints e ON e.tenant_id = o.tenant_id AND e.id = o.endpoint_id
         JOIN processes p ON p.tenant_id = o.tenant_id AND p.id = o.process_id
         LEFT JOIN ips i ON i.tenant_id = o.tenant_id AND i.id = o.ip_id
         LEFT JOIN call_verdicts v ON v.tenant_id = o.tenant_id AND v.run_ref = o.run_ref AND v.endpoint_id = o.endpoint_id
           AND v.process_id = o.process_id AND v.blocked = o.blocked
         WHERE o.tenant_id = $1 AND o.run_ref = ANY($2::bigint[])
         ORDER BY o.first_ts, e.endpoint COLLATE "C", p.name COLLATE "C", o.blocked`,
        [tid, refs],
      ),
      this.pool.query<RunDetectionRow>(
        `SELECT d.id, t.name AS type, d.status, d.run_ref, d.endpoint_id, d.process_id
         FROM detections d JOIN detection_types t ON t.id = d.type_id
         WHERE d.tenant_id = $1 AND d.run_ref = ANY($2::bigint[]) ORDER BY d.id`,
        [tid, refs],
      ),
    ]);
    return assembleRunCalls(legs.rows, calls.rows, detections.rows);
  }
}
