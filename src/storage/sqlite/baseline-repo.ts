import type { SqliteDatabase } from './db.js';
import { Dictionaries } from './dictionaries.js';

export interface ExpectTarget {
  owner: string;
  repo: string;
  workflow?: string;
  job?: string;
}

/** Writes to baselines made by people rather than learned from runs. */
export class SqliteBaselineRepository {
  constructor(private readonly db: SqliteDatabase) {}

  /**
   * Marks an endpoint as expected for every matching job: it joins the baseline at once, so later
   * runs do not flag it. Returns the jobs changed. Past detections are left as they are.
   */
  markExpected(tenant: string, t: ExpectTarget, endpoint: string): { jobs: { workflow: string; job: string }[] } {
    return this.db.transaction(() => {
      const tid = this.db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
      if (tid === undefined) return { jobs: [] };
      const conds = ['tenant_id = ?', 'owner = ?', 'repo = ?'];
      const params: unknown[] = [tid, t.owner, t.repo];
      if (t.workflow) {
        conds.push('workflow = ?');
        params.push(t.workflow);
      }
      if (t.job) {
        conds.push('job = ?');
        params.push(t.job);
      }
      const jobs = this.db.prepare(`SELECT id, workflow, job FROM jobs WHERE ${conds.join(' AND ')}`).all(...params) as {
        id: number;
        workflow: string;
        job: string;
      }[];
      const endpointId = new Dictionaries(this.db).endpointId(endpoint.toLowerCase());
      const now = Date.now();
      const up = this.db.prepare(
        `INSERT INTO baseline (job_ref, endpoint_id, runs_seen, first_ts, last_ts, in_baseline, source) VALUES (?, ?, 0, ?, ?, 1, 'expected')
         ON CONFLICT (job_ref, endpoint_id) DO UPDATE SET in_baseline = 1, source = 'expected'`,
      );
      for (const j of jobs) up.run(j.id, endpointId, now, now);
      return { jobs: jobs.map((j) => ({ workflow: j.workflow, job: j.job })) };
    }).immediate();
  }
}
