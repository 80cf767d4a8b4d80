import type { SqliteDatabase } from './db.js';
import { Dictionaries } from './dictionaries.js';
import { splitEndpoint } from '../../domain/endpoint.js';
import { riskyDestinations, type RiskyDestinations } from '../../analysis/risky-destinations.js';

export interface ExpectTarget {
  owner: string;
  repo: string;
  workflow?: string;
  job?: string;
}

/** A baseline write that is refused (a risky destination) or names nothing. */
export class BaselineError extends Error {
  constructor(
    readonly code: 'refused_risky' | 'not_expected',
    message: string,
  ) {
    super(message);
    this.name = 'BaselineError';
  }
}

/** Writes to baselines made by people rather than learned from runs. */
export class SqliteBaselineRepository {
  constructor(private readonly db: SqliteDatabase) {}

  private jobsOf(tenant: string, t: ExpectTarget): { id: number; workflow: string; job: string }[] {
    const tid = this.db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
    if (tid === undefined) return [];
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
    return this.db.prepare(`SELECT id, workflow, job FROM jobs WHERE ${conds.join(' AND ')}`).all(...params) as { id: number; workflow: string; job: string }[];
  }

  /**
   * Marks an endpoint as expected for every matching job: it joins the baseline at once, so later
   * runs do not flag it. Returns the jobs changed. Past detections are left as they are.
   * A risky destination is refused before anything is written: it must keep raising detections.
   */
  markExpected(tenant: string, t: ExpectTarget, endpoint: string, risky: RiskyDestinations = riskyDestinations()): { jobs: { workflow: string; job: string }[] } {
    const covered = risky.coveredBy(splitEndpoint(endpoint).host);
    if (covered) {
      throw new BaselineError(
        'refused_risky',
        `${endpoint} is the risky destination ${covered} (payload staging / exfiltration): it can never be expected or join a baseline`,
      );
    }
    return this.db.transaction(() => {
      const jobs = this.jobsOf(tenant, t);
      if (jobs.length === 0) return { jobs: [] };
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

  /**
   * Undoes `markExpected`: in every matching job where the endpoint is expected, it leaves the
   * baseline and its run count restarts at 0, so it raises detections again until it is learned anew
   * (promote_after_runs completed runs) or expected again. Learned entries are not touched.
   * Returns the jobs changed (empty when the endpoint was expected in none of them).
   */
  unmarkExpected(tenant: string, t: ExpectTarget, endpoint: string): { jobs: { workflow: string; job: string }[] } {
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
