import { transaction, type PgClient, type PgPool } from './pool.js';
import { PgDictionaries, endpointMatches } from './dictionaries.js';
import type { RiskyDestinations } from '../../analysis/risky-destinations.js';
import { assertExpectable } from '../../detection/baseline-guard.js';
import type { BaselineEditResult, BaselineEditor, ExpectResult, ExpectTarget } from '../baseline-port.js';
import { asciiNocaseEq } from './ascii-nocase.js';

/**
 * The baseline-edit port (storage/baseline-port.ts) on PostgreSQL. Each edit is one transaction; the
 * baseline trigger of migration 1 bumps the tenant's job_state_version when an entry becomes, or
 * stops being, expected, so a concurrent ingest drops its cached job state (store.ts contract).
 */
export class PgBaselineRepository implements BaselineEditor {
  constructor(private readonly pool: PgPool) {}

  /** The target's jobs, owner and repo compared case-insensitively (GitHub names are), workflow and job exactly. */
  private async jobsOf(c: PgClient, tenant: string, t: ExpectTarget): Promise<{ tenantId: number; jobs: { id: number; workflow: string; job: string }[] }> {
    // The tenant row first, locked as the version bump will lock it: an ingest batch locks it (FOR
    // SHARE) before the jobs it writes, so taking jobs first and the tenant row last could deadlock
    // with it. This way an edit waits for an open ingest batch, or the batch waits and then sees
    // the bumped version.
    const tenantId = (await c.query<{ tenant_id: number }>('SELECT tenant_id FROM tenants WHERE name = $1 FOR NO KEY UPDATE', [tenant])).rows[0]?.tenant_id;
    if (tenantId === undefined) return { tenantId: -1, jobs: [] };
    const params: unknown[] = [tenantId, t.owner, t.repo];
    const conds = ['tenant_id = $1', asciiNocaseEq('owner', '$2'), asciiNocaseEq('repo', '$3')];
    if (t.workflow) conds.push(`workflow = $${params.push(t.workflow)}`);
    if (t.job) conds.push(`job = $${params.push(t.job)}`);
    // FOR UPDATE: the jobs stay as read until the edit commits
    const jobs = (await c.query<{ id: number; workflow: string; job: string }>(`SELECT id, workflow, job FROM jobs WHERE ${conds.join(' AND ')} ORDER BY workflow COLLATE "C", job COLLATE "C", id FOR UPDATE`, params)).rows;
    return { tenantId, jobs };
  }

  async markExpected(tenant: string, t: ExpectTarget, endpoint: string, risky?: RiskyDestinations): Promise<ExpectResult> {
    // before any statement: a refused edit writes nothing, not even the endpoint's dictionary entry
    assertExpectable(endpoint, risky);
    return transaction(this.pool, async (c) => {
      const { tenantId, jobs } = await this.jobsOf(c, tenant, t);
      if (jobs.length === 0) return { jobs: [], learned: [] };
      const ep = endpoint.toLowerCase();
      const endpointId = (await new PgDictionaries(tenantId).endpointIds(c, [ep])).get(ep)!;
      const now = Date.now();
      // an entry learning put in the baseline is left learned (not updated, so not returned)
      const marked = new Set(
        (
          await c.query<{ job_ref: string | number }>(
            `INSERT INTO baseline (tenant_id, job_ref, endpoint_id, runs_seen, first_ts, last_ts, in_baseline, source)
             SELECT $1, job_ref, $3, 0, $4, $4, true, 'expected' FROM unnest($2::bigint[]) AS job_ref
             ON CONFLICT (tenant_id, job_ref, endpoint_id) DO UPDATE SET in_baseline = true, source = 'expected'
             WHERE NOT (baseline.source = 'learned' AND baseline.in_baseline)
             RETURNING job_ref`,
            [tenantId, jobs.map((j) => j.id), endpointId, now],
          )
        ).rows.map((r) => Number(r.job_ref)),
      );
      const name = (j: { workflow: string; job: string }) => ({ workflow: j.workflow, job: j.job });
      return { jobs: jobs.filter((j) => marked.has(Number(j.id))).map(name), learned: jobs.filter((j) => !marked.has(Number(j.id))).map(name) };
    });
  }

  async unmarkExpected(tenant: string, t: ExpectTarget, endpoint: string): Promise<BaselineEditResult> {
    return transaction(this.pool, async (c) => {
      const { tenantId, jobs } = await this.jobsOf(c, tenant, t);
      if (jobs.length === 0) return { jobs: [] };
      const changed = new Set(
        (
          await c.query<{ job_ref: number }>(
            `UPDATE baseline b SET in_baseline = false, runs_seen = 0, source = 'learned'
             FROM endpoints e
             WHERE e.tenant_id = $1 AND ${endpointMatches('e.endpoint', '$3')} AND b.tenant_id = $1 AND b.endpoint_id = e.id
               AND b.job_ref = ANY($2::bigint[]) AND b.source = 'expected'
             RETURNING b.job_ref`,
            [tenantId, jobs.map((j) => j.id), endpoint.toLowerCase()],
          )
        ).rows.map((r) => r.job_ref),
      );
      return { jobs: jobs.filter((j) => changed.has(j.id)).map((j) => ({ workflow: j.workflow, job: j.job })) };
    });
  }
}
