import Database from 'better-sqlite3';
import { DETECTIONS } from '../helpers.js';

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

export function storeState(path: string): StoreState {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const col = (sql: string) => (db.prepare(sql).pluck().all() as string[]).sort();
    return {
      detections: col(
        `SELECT ${JOB} || ' ' || r.run_id || '.' || r.run_attempt || '/' || coalesce(r.gh_job_id, '-') || ' ' || t.name || ' ' || e.endpoint || ' ' || p.variant_key || ' ' || d.ext || ' ' || d.status
         FROM ${DETECTIONS} d JOIN jobs j ON j.id = d.job_ref JOIN runs r ON r.id = d.run_ref JOIN detection_types t ON t.id = d.type_id
         JOIN endpoints e ON e.id = d.endpoint_id JOIN processes p ON p.id = d.process_id`,
      ),
      jobs: col(
        `SELECT ${JOB} || ' completed=' || j.completed_runs || ' open=' || coalesce((SELECT run_id || '.' || run_attempt FROM runs WHERE id = j.open_run), '-')
         FROM jobs j`,
      ),
      runs: col(
        `SELECT ${JOB} || ' ' || r.run_id || '.' || r.run_attempt || '/' || coalesce(r.gh_job_id, '-') || ' completed=' || r.completed || ' learning=' || r.learning || ' ' || r.first_ts || '-' || r.last_ts
         FROM runs r JOIN jobs j ON j.id = r.job_ref`,
      ),
      baseline: col(
        `SELECT ${JOB} || ' ' || e.endpoint || ' seen=' || b.runs_seen || ' in=' || b.in_baseline || ' ' || b.source
         FROM baseline b JOIN jobs j ON j.id = b.job_ref JOIN endpoints e ON e.id = b.endpoint_id`,
      ),
    };
  } finally {
    db.close();
  }
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
 * run (the last to start), its first leg the one open_run names.
 */
export function jobInvariantViolations(db: Database.Database, learningRuns: number): JobInvariantViolation[] {
  const rows = db
    .prepare(
      `WITH g AS (
         SELECT job_ref, min(id) AS first, min(completed) AS done, max(completed) <> min(completed) OR max(learning) <> min(learning) AS mixed,
                max(learning) AS learning
         FROM runs GROUP BY job_ref, run_id, run_attempt)
       SELECT ${JOB} AS job, j.completed_runs AS completedRuns, j.open_run AS openRun,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id AND g.done = 1) AS completed,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id) AS runs,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id AND g.learning = 1) AS learning,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id AND g.done = 0) AS open,
         (SELECT count(*) FROM g WHERE g.job_ref = j.id AND g.mixed) AS mixed,
         (SELECT max(first) FROM g WHERE g.job_ref = j.id) AS latest,
         (SELECT first FROM g WHERE g.job_ref = j.id AND g.done = 0) AS openId
       FROM jobs j`,
    )
    .all() as {
      job: string; completedRuns: number; openRun: number | null; completed: number; runs: number; learning: number; open: number; mixed: number;
      latest: number | null; openId: number | null;
    }[];
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
