/**
 * A third process that polls a store while ingests write to it, and checks the job invariants in
 * every snapshot it reads (each poll is one read transaction, i.e. one committed state):
 * completed runs never decrease, and jobInvariantViolations() finds nothing.
 * Usage: node invariant-reader.js <db> <learningRuns>; stops when stdin closes and prints a JSON report.
 */
import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { jobInvariantViolations, type JobInvariantViolation } from './store-state.js';

const [path, learning] = process.argv.slice(2);
const learningRuns = Number(learning);
const maxCompleted = new Map<string, number>();
const violations: JobInvariantViolation[] = [];
let polls = 0;
let snapshotsWithJobs = 0;
let db: Database.Database | null = null;

function poll(): void {
  if (!db) {
    if (!existsSync(path)) return;
    try {
      db = new Database(path, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
    } catch {
      db = null;
      return;
    }
  }
  const conn = db;
  try {
    conn.transaction(() => {
      const jobs = conn.prepare("SELECT owner || '/' || repo || '/' || workflow || '/' || job AS job, completed_runs AS c FROM jobs").all() as { job: string; c: number }[];
      if (jobs.length) snapshotsWithJobs++;
      for (const j of jobs) {
        const prev = maxCompleted.get(j.job) ?? 0;
        if (j.c < prev) violations.push({ job: j.job, what: `completed_runs went down from ${prev} to ${j.c}` });
        maxCompleted.set(j.job, Math.max(prev, j.c));
      }
      violations.push(...jobInvariantViolations(conn, learningRuns));
    })();
    polls++;
  } catch {
    // schema not created yet
  }
}

const timer = setInterval(poll, 15);
process.stdin.resume();
process.stdin.on('end', () => {
  clearInterval(timer);
  poll();
  db?.close();
  process.stdout.write(JSON.stringify({ polls, snapshotsWithJobs, violations: violations.slice(0, 50), violationCount: violations.length }) + '\n');
});
