import type { PgClient } from './pool.js';
import { asciiNocaseEq } from './ascii-nocase.js';
import {
  addStoredObservation,
  observationKey,
  type IngestReadRequest,
  type IngestReadResult,
  type IngestVersions,
  type JobKey,
  type RunObservations,
  type StoredJob,
  type StoredRun,
} from '../ingest-port.js';
import type { BaselineEntry } from '../store.js';

/** The versions the ingest engine evaluates against (rules version is store-wide, as in SQLite). */
export async function readVersions(c: PgClient, tenantId: number, lock = false): Promise<IngestVersions> {
  // FOR SHARE inside a write: a concurrent bump waits for this transaction, or committed before it
  // and is seen here; either way no batch is written against versions it did not evaluate.
  const share = lock ? ' FOR SHARE' : '';
  const [rules, jobState] = await Promise.all([
    c.query<{ value: string }>(`SELECT value FROM meta WHERE key = 'rules_version'${share}`),
    c.query<{ v: number }>(`SELECT job_state_version AS v FROM tenants WHERE tenant_id = $1${share}`, [tenantId]),
  ]);
  return { rulesVersion: Number(rules.rows[0]?.value ?? 0), jobStateVersion: jobState.rows[0]?.v ?? 0 };
}

interface RunRecord {
  id: number;
  job_ref: number;
  run_id: string;
  run_attempt: number;
  gh_job_id: string | null;
  first_ts: number;
  last_ts: number;
  completed: boolean;
  learning: boolean;
}

const RUN_COLUMNS = 'id, job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, completed, learning';

async function observationsOf(c: PgClient, tenantId: number, runRefs: number[]): Promise<Map<number, RunObservations>> {
  const out = new Map<number, RunObservations>(runRefs.map((r) => [r, { keys: new Set(), allowedEndpoints: new Set(), callers: new Map() }]));
  if (runRefs.length === 0) return out;
  const rows = await c.query<{ run_ref: number; endpoint: string; variant_key: string; blocked: boolean; norm_name: string; sha256: string | null; path: string | null }>(
    `SELECT o.run_ref, e.endpoint, p.variant_key, o.blocked, p.norm_name, p.sha256, p.path FROM observations o
     JOIN endpoints e ON e.tenant_id = o.tenant_id AND e.id = o.endpoint_id
     JOIN processes p ON p.tenant_id = o.tenant_id AND p.id = o.process_id
     WHERE o.tenant_id = $1 AND o.run_ref = ANY($2::bigint[])`,
    [tenantId, runRefs],
  );
  for (const r of rows.rows) {
    addStoredObservation(out.get(r.run_ref)!, r.endpoint, observationKey(r.endpoint, r.variant_key, r.blocked), r.blocked, { process: r.norm_name, sha256: r.sha256, path: r.path });
  }
  return out;
}

function storedRun(r: RunRecord, observations: RunObservations): StoredRun {
  return {
    ref: r.id, jobRef: r.job_ref, runId: r.run_id, runAttempt: r.run_attempt, ghJobId: r.gh_job_id,
    firstTs: r.first_ts, lastTs: r.last_ts, completed: r.completed, learning: r.learning, observations,
  };
}

/**
 * Jobs by natural key (null where not stored), each with its id. Owner and repo match without ASCII
 * case, as the engine keys jobs (domain/github-name.ts); where a store made before that holds one
 * job under two spellings, the older one goes on.
 */
export async function findJobs(c: PgClient, tenantId: number, keys: JobKey[]): Promise<({ id: number; completed_runs: number; open_run: number | null } | null)[]> {
  if (keys.length === 0) return [];
  const rows = await c.query<{ i: number; id: number; completed_runs: number; open_run: number | null }>(
    `SELECT DISTINCT ON (k.i) k.i::int AS i, j.id, j.completed_runs, j.open_run FROM jobs j
     JOIN unnest($2::text[], $3::text[], $4::text[], $5::text[]) WITH ORDINALITY AS k (owner, repo, workflow, job, i)
       ON ${asciiNocaseEq('j.owner', 'k.owner')} AND ${asciiNocaseEq('j.repo', 'k.repo')} AND j.workflow = k.workflow AND j.job = k.job
     WHERE j.tenant_id = $1
     ORDER BY k.i, j.id`,
    [tenantId, keys.map((k) => k.owner), keys.map((k) => k.repo), keys.map((k) => k.workflow), keys.map((k) => k.job)],
  );
  const byIndex = new Map(rows.rows.map((r) => [r.i - 1, r]));
  return keys.map((_, i) => byIndex.get(i) ?? null);
}

export async function readIngestState(c: PgClient, tenantId: number, req: IngestReadRequest): Promise<IngestReadResult> {
  const versions = await readVersions(c, tenantId);
  const jobRows = await findJobs(c, tenantId, req.jobs);
  const jobIds = jobRows.filter((j) => j !== null).map((j) => j!.id);

  const baselines = new Map<number, Map<string, BaselineEntry>>(jobIds.map((id) => [id, new Map()]));
  const openLegRows = new Map<number, RunRecord[]>();
  if (jobIds.length) {
    const b = await c.query<{ job_ref: number; endpoint: string; runs_seen: number; in_baseline: boolean; source: string }>(
      `SELECT b.job_ref, e.endpoint, b.runs_seen, b.in_baseline, b.source FROM baseline b
       JOIN endpoints e ON e.tenant_id = b.tenant_id AND e.id = b.endpoint_id WHERE b.tenant_id = $1 AND b.job_ref = ANY($2::bigint[])`,
      [tenantId, jobIds],
    );
    for (const r of b.rows) baselines.get(r.job_ref)!.set(r.endpoint, { runsSeen: r.runs_seen, inBaseline: r.in_baseline, source: r.source as BaselineEntry['source'] });
    // the legs of each job's open run that are not completed: the named one first, then oldest first
    const legs = await c.query<RunRecord & { open_run: number }>(
      `SELECT ${RUN_COLUMNS.split(', ').map((col) => `r.${col}`).join(', ')}, j.open_run FROM jobs j
       JOIN runs o ON o.tenant_id = j.tenant_id AND o.id = j.open_run
       JOIN runs r ON r.tenant_id = j.tenant_id AND r.job_ref = j.id AND r.run_id = o.run_id AND r.run_attempt = o.run_attempt
       WHERE j.tenant_id = $1 AND j.id = ANY($2::bigint[]) AND NOT r.completed
       ORDER BY r.job_ref, (r.id = j.open_run) DESC, r.id`,
      [tenantId, jobIds],
    );
    for (const r of legs.rows) {
      const list = openLegRows.get(r.job_ref) ?? [];
      list.push(r);
      openLegRows.set(r.job_ref, list);
    }
  }

  const runJobs = await findJobs(c, tenantId, req.runs);
  const runLegRows: RunRecord[][] = req.runs.map(() => []);
  const runPairs = req.runs.map((k, i) => ({ i, job: runJobs[i], k })).filter((p) => p.job);
  if (runPairs.length) {
    const rows = await c.query<RunRecord & { i: number }>(
      `SELECT k.i, ${RUN_COLUMNS.split(', ').map((col) => `r.${col}`).join(', ')}
       FROM unnest($2::int[], $3::bigint[], $4::text[], $5::int[]) AS k (i, job_ref, run_id, run_attempt)
       JOIN runs r ON r.tenant_id = $1 AND r.job_ref = k.job_ref AND r.run_id = k.run_id AND r.run_attempt = k.run_attempt
       ORDER BY k.i, r.id`,
      [tenantId, runPairs.map((p) => p.i), runPairs.map((p) => p.job!.id), runPairs.map((p) => p.k.runId), runPairs.map((p) => p.k.runAttempt)],
    );
    for (const r of rows.rows) runLegRows[r.i]!.push(r);
  }

  const needObs = new Set<number>(req.observations);
  for (const legs of openLegRows.values()) for (const r of legs) needObs.add(r.id);
  for (const legs of runLegRows) for (const r of legs) needObs.add(r.id);
  const obs = await observationsOf(c, tenantId, [...needObs]);

  return {
    versions,
    jobs: jobRows.map((j): StoredJob | null =>
      j === null
        ? null
        : {
            ref: j.id,
            completedRuns: j.completed_runs,
            openRun: j.open_run,
            baseline: baselines.get(j.id)!,
            openLegs: (openLegRows.get(j.id) ?? []).map((r) => storedRun(r, obs.get(r.id)!)),
          },
    ),
    runs: runLegRows.map((legs) => legs.map((r) => storedRun(r, obs.get(r.id)!))),
    observations: req.observations.map((r) => obs.get(r)!),
  };
}
