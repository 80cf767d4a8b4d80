import pg from 'pg';
import type { StoreState } from '../../ingest/store-state.js';

/**
 * test/ingest/store-state.ts for a PostgreSQL store: the same lines, built from natural keys in the
 * same format (booleans as 0/1, as SQLite stores them), so a PostgreSQL state and a SQLite state
 * compare with deepEqual.
 */

const JOB = `j.owner || '/' || j.repo || '/' || j.workflow || '/' || j.job`;

export async function pgStoreState(url: string, tenant = 'default'): Promise<StoreState> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const t = (await c.query<{ tenant_id: string }>('SELECT tenant_id FROM tenants WHERE name = $1', [tenant])).rows[0]?.tenant_id;
    if (t === undefined) return { detections: [], jobs: [], runs: [], baseline: [] };
    const col = async (sql: string) => (await c.query<{ v: string }>(sql, [t])).rows.map((r) => r.v).sort();
    return {
      detections: await col(
        `SELECT ${JOB} || ' ' || r.run_id || '.' || r.run_attempt || '/' || coalesce(r.gh_job_id, '-') || ' ' || dt.name || ' ' || e.endpoint || ' ' || p.variant_key || ' ' || d.ext || ' ' || d.status AS v
         FROM detections d JOIN jobs j ON j.tenant_id = d.tenant_id AND j.id = d.job_ref JOIN runs r ON r.tenant_id = d.tenant_id AND r.id = d.run_ref
         JOIN detection_types dt ON dt.id = d.type_id JOIN endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
         JOIN processes p ON p.tenant_id = d.tenant_id AND p.id = d.process_id WHERE d.tenant_id = $1`,
      ),
      jobs: await col(
        `SELECT ${JOB} || ' completed=' || j.completed_runs || ' open=' ||
           coalesce((SELECT run_id || '.' || run_attempt FROM runs WHERE tenant_id = j.tenant_id AND id = j.open_run), '-') AS v
         FROM jobs j WHERE j.tenant_id = $1`,
      ),
      runs: await col(
        `SELECT ${JOB} || ' ' || r.run_id || '.' || r.run_attempt || '/' || coalesce(r.gh_job_id, '-') || ' completed=' || r.completed::int ||
           ' learning=' || r.learning::int || ' ' || r.first_ts || '-' || r.last_ts AS v
         FROM runs r JOIN jobs j ON j.tenant_id = r.tenant_id AND j.id = r.job_ref WHERE r.tenant_id = $1`,
      ),
      baseline: await col(
        `SELECT ${JOB} || ' ' || e.endpoint || ' seen=' || b.runs_seen || ' in=' || b.in_baseline::int || ' ' || b.source AS v
         FROM baseline b JOIN jobs j ON j.tenant_id = b.tenant_id AND j.id = b.job_ref JOIN endpoints e ON e.tenant_id = b.tenant_id AND e.id = b.endpoint_id
         WHERE b.tenant_id = $1`,
      ),
    };
  } finally {
    await c.end();
  }
}

/** The sources of a tenant in the order they were written (the order the ingest lease serialised them in). */
export async function pgSourcesInOrder(url: string, tenant = 'default'): Promise<{ source: string; startedAt: string; finishedAt: string }[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ source: string; startedAt: string; finishedAt: string }>(
      `SELECT s.source, s.started_at AS "startedAt", s.finished_at AS "finishedAt"
       FROM ingest_sources s JOIN tenants t ON t.tenant_id = s.tenant_id WHERE t.name = $1 ORDER BY s.id`,
      [tenant],
    );
    return r.rows;
  } finally {
    await c.end();
  }
}
