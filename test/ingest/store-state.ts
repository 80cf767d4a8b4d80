import Database from 'better-sqlite3';
import { DETECTIONS } from '../helpers.js';
import { detectionsView, type StoreUnderTest } from '../helpers/each-store.js';

/**
 * Everything an ingest decides, keyed by natural keys (never row ids, which depend on write order
 * across tenants and jobs): detections, runs, job state and baselines. Two stores with equal states
 * hold the same result.
 */
export interface StoreState {
  detections: string[];
  jobs: string[];
  runs: string[];
  baseline: string[];
}

const JOB = `j.owner || '/' || j.repo || '/' || j.workflow || '/' || j.job`;

/** The queries of storeState; portable (booleans read as 0/1 on PostgreSQL too), over `detections` as a backend exposes it. */
function stateQueries(detections: string): Record<keyof StoreState, string> {
  return {
    detections: `SELECT ${JOB} || ' ' || r.run_id || '.' || r.run_attempt || '/' || coalesce(r.gh_job_id, '-') || ' ' || t.name || ' ' || e.endpoint || ' ' || p.variant_key || ' ' || d.ext || ' ' || d.status AS v
       FROM ${detections} d JOIN jobs j ON j.id = d.job_ref JOIN runs r ON r.id = d.run_ref JOIN detection_types t ON t.id = d.type_id
       JOIN endpoints e ON e.id = d.endpoint_id JOIN processes p ON p.id = d.process_id`,
    jobs: `SELECT ${JOB} || ' completed=' || j.completed_runs || ' open=' || coalesce((SELECT run_id || '.' || run_attempt FROM runs WHERE id = j.open_run), '-') AS v
       FROM jobs j`,
    runs: `SELECT ${JOB} || ' ' || r.run_id || '.' || r.run_attempt || '/' || coalesce(r.gh_job_id, '-') || ' completed=' || CAST(r.completed AS integer) || ' learning=' || CAST(r.learning AS integer) || ' ' || r.first_ts || '-' || r.last_ts AS v
       FROM runs r JOIN jobs j ON j.id = r.job_ref`,
    baseline: `SELECT ${JOB} || ' ' || e.endpoint || ' seen=' || b.runs_seen || ' in=' || CAST(b.in_baseline AS integer) || ' ' || b.source AS v
       FROM baseline b JOIN jobs j ON j.id = b.job_ref JOIN endpoints e ON e.id = b.endpoint_id`,
  };
}

export function storeState(path: string): StoreState {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const q = stateQueries(DETECTIONS);
    const col = (sql: string) => (db.prepare(sql).pluck().all() as string[]).sort();
    return { detections: col(q.detections), jobs: col(q.jobs), runs: col(q.runs), baseline: col(q.baseline) };
  } finally {
    db.close();
  }
}

/** storeState of a store on either backend (tenant ids are left out, so joins need no tenant key). */
export async function storeStateOf(s: StoreUnderTest): Promise<StoreState> {
  const q = stateQueries(detectionsView(s.backend));
  const col = async (sql: string) => (await s.rows<{ v: string }>(sql)).map((r) => r.v).sort();
  return { detections: await col(q.detections), jobs: await col(q.jobs), runs: await col(q.runs), baseline: await col(q.baseline) };
}

export interface JobInvariantViolation {
  job: string;
  what: string;
}

/**
 * Job-level invariants that hold at every commit. A run of a job is a (run id, attempt); its rows are
 * its legs (a matrix job has one per GitHub job id), which agree on completed and learning.
 * completed_runs counts the completed runs, no job has more than `learningRuns` learning runs (and a
 * job with that many runs has exactly that many), at most one run is open and it is the job's latest
 * run (the last to start), its first leg the one open_run names. The query is portable (booleans
 * compared as integers), so it reads a PostgreSQL store as well.
 */
const INVARIANT_SQL = `WITH g AS (
         SELECT job_ref, min(id) AS first, min(CAST(completed AS integer)) AS done,
                max(CAST(completed AS integer)) <> min(CAST(completed AS integer)) OR max(CAST(learning AS integer)) <> min(CAST(learning AS integer)) AS mixed,
                max(CAST(learning AS integer)) AS learning
         FROM runs GROUP BY job_ref, run_id, run_attempt)
       SELECT ${JOB} AS job, j.completed_runs AS completedRuns, j.open_run AS openRun,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id AND g.done = 1) AS completed,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id) AS runs,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id AND g.learning = 1) AS learning,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id AND g.done = 0) AS open,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id AND g.mixed) AS mixed,
         (SELECT max(first) FROM g WHERE g.job_ref = j.id) AS latest,
         (SELECT first FROM g WHERE g.job_ref = j.id AND g.done = 0) AS openId
       FROM jobs j`;

interface InvariantRow {
  job: string; completedRuns: number; openRun: number | null; completed: number; runs: number; learning: number; open: number; mixed: number;
  latest: number | null; openId: number | null;
}

export function jobInvariantViolations(db: Database.Database, learningRuns: number): JobInvariantViolation[] {
  return violations(db.prepare(INVARIANT_SQL).all() as InvariantRow[], learningRuns);
}

/** jobInvariantViolations of a store on either backend (PostgreSQL counts arrive as strings). */
export async function jobInvariantViolationsOf(s: StoreUnderTest, learningRuns: number): Promise<JobInvariantViolation[]> {
  const num = (v: unknown) => (v === null ? null : Number(v));
  const rows = (await s.rows<Record<string, unknown>>(INVARIANT_SQL)).map((r) => ({
    job: String(r.job), completedRuns: Number(r.completedruns ?? r.completedRuns), openRun: num(r.openrun ?? r.openRun), completed: Number(r.completed), runs: Number(r.runs),
    learning: Number(r.learning), open: Number(r.open), mixed: Number(r.mixed), latest: num(r.latest), openId: num(r.openid ?? r.openId),
  }));
  return violations(rows, learningRuns);
}

function violations(rows: InvariantRow[], learningRuns: number): JobInvariantViolation[] {
  const out: JobInvariantViolation[] = [];
  for (const r of rows) {
    if (r.completedRuns !== r.completed) out.push({ job: r.job, what: `completed_runs=${r.completedRuns} but ${r.completed} runs are completed` });
    if (r.learning !== Math.min(r.runs, learningRuns)) out.push({ job: r.job, what: `${r.learning} learning runs of ${r.runs}, expected ${Math.min(r.runs, learningRuns)}` });
    if (r.open > 1) out.push({ job: r.job, what: `${r.open} open runs` });
    if (r.mixed > 0) out.push({ job: r.job, what: `${r.mixed} runs whose legs disagree on completed or learning` });
    if (r.open === 1 && (r.openId !== r.latest || r.openRun !== r.openId)) out.push({ job: r.job, what: `open run ${r.openId} is not the latest run ${r.latest} / open_run ${r.openRun}` });
  }
  return out;
}
