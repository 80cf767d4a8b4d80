import type { SqliteDatabase } from './db.js';
import { Dictionaries } from './dictionaries.js';
import type { RiskyDestinations } from '../../analysis/risky-destinations.js';
import { assertExpectable } from '../../detection/baseline-guard.js';
import type { BaselineEditResult, BaselineEditor, ExpectResult, ExpectTarget } from '../baseline-port.js';

/** The baseline-edit port (storage/baseline-port.ts) on SQLite. */
export class SqliteBaselineRepository implements BaselineEditor {
  constructor(private readonly db: SqliteDatabase) {}

  private jobsOf(tenant: string, t: ExpectTarget): { id: number; workflow: string; job: string }[] {
    const tid = this.db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
    if (tid === undefined) return [];
    // owner and repo compare case-insensitively, as GitHub names and every other store query do
    const conds = ['tenant_id = ?', 'owner = ? COLLATE NOCASE', 'repo = ? COLLATE NOCASE'];
    const params: unknown[] = [tid, t.owner, t.repo];
    if (t.workflow) {
      conds.push('workflow = ?');
      params.push(t.workflow);
    }
    if (t.job) {
      conds.push('job = ?');
      params.push(t.job);
    }
    return this.db.prepare(`SELECT id, workflow, job FROM jobs WHERE ${conds.join(' AND ')} ORDER BY workflow, job, id`).all(...params) as { id: number; workflow: string; job: string }[];
  }

  async markExpected(tenant: string, t: ExpectTarget, endpoint: string, risky?: RiskyDestinations): Promise<ExpectResult> {
    assertExpectable(endpoint, risky);
    return this.db.transaction(() => {
      const jobs = this.jobsOf(tenant, t);
      if (jobs.length === 0) return { jobs: [], learned: [] };
      const endpointId = new Dictionaries(this.db).endpointId(endpoint.toLowerCase());
      const now = Date.now();
      // an entry learning put in the baseline is left learned (no change, so no row counts)
      const up = this.db.prepare(
        `INSERT INTO baseline (job_ref, endpoint_id, runs_seen, first_ts, last_ts, in_baseline, source) VALUES (?, ?, 0, ?, ?, 1, 'expected')
         ON CONFLICT (job_ref, endpoint_id) DO UPDATE SET in_baseline = 1, source = 'expected'
         WHERE NOT (baseline.source = 'learned' AND baseline.in_baseline = 1)`,
      );
      const name = (j: { workflow: string; job: string }) => ({ workflow: j.workflow, job: j.job });
      const r: ExpectResult = { jobs: [], learned: [] };
      for (const j of jobs) (up.run(j.id, endpointId, now, now).changes > 0 ? r.jobs : r.learned).push(name(j));
      return r;
    }).immediate();
  }

  async unmarkExpected(tenant: string, t: ExpectTarget, endpoint: string): Promise<BaselineEditResult> {
    return this.db.transaction(() => {
      const jobs = this.jobsOf(tenant, t);
      const endpointId = this.db.prepare('SELECT id FROM endpoints WHERE endpoint = ?').pluck().get(endpoint.toLowerCase()) as number | undefined;
      if (jobs.length === 0 || endpointId === undefined) return { jobs: [] };
      const down = this.db.prepare(
        `UPDATE baseline SET in_baseline = 0, runs_seen = 0, source = 'learned' WHERE job_ref = ? AND endpoint_id = ? AND source = 'expected'`,
      );
      const changed = jobs.filter((j) => down.run(j.id, endpointId).changes > 0);
      return { jobs: changed.map((j) => ({ workflow: j.workflow, job: j.job })) };
    }).immediate();
  }
}
