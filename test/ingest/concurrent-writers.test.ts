import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { readFileSync, writeFileSync } from 'node:fs';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import Database from 'better-sqlite3';
import { CLI, runCli, tempDir } from '../helpers.js';
import { storeState, storeStateOf, jobInvariantViolations, jobInvariantViolationsOf } from './store-state.js';
import { eachStore, type StoreUnderTest } from '../helpers/each-store.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Concurrent writers, with real processes: two `ingest` processes on one store give exactly the
 * store of a sequential ingest of the same sources in the order they were serialised in; a third
 * process reading meanwhile never sees a job invariant broken; a killed holder is taken over after
 * its lease expires.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest, fresh } = eachStore();
const LEARNING_RUNS = 5;
const READER = resolve('dist/test/ingest/invariant-reader.js');

let lines: string[] = [];
before(() => {
  const input = join(tmp.dir, 'tenant.ndjson');
  const g = runCli(['generate', '--runs', '14', '--seed', '9', '--events', '30000', '--out', input]);
  assert.equal(g.status, 0, g.stderr);
  lines = readFileSync(input, 'utf8').split('\n').filter((l) => l !== '');
});

interface Proc {
  child: ChildProcessWithoutNullStreams;
  stdout: string;
  stderr: string;
  exited: Promise<number | null>;
}

function start(args: string[], env: NodeJS.ProcessEnv = {}, bin = CLI): Proc {
  const e: NodeJS.ProcessEnv = { ...process.env, EGRESS_TRIAGE_DB: '', EGRESS_TRIAGE_TENANT: '', EGRESS_TRIAGE_CONFIG: '', ...env };
  for (const k of Object.keys(e)) if (e[k] === '') delete e[k];
  const child = spawn(process.execPath, [bin, ...args], { env: e, stdio: ['pipe', 'pipe', 'pipe'] });
  const p: Proc = { child, stdout: '', stderr: '', exited: new Promise((r) => child.once('exit', (code) => r(code))) };
  child.stdout.on('data', (d) => (p.stdout += d));
  child.stderr.on('data', (d) => (p.stderr += d));
  return p;
}

function ingestArgs(file: string, db: string): string[] {
  return ['ingest', file, '--db', db, '--format', 'native', '--learning-runs', String(LEARNING_RUNS), '--json'];
}

function write(name: string, ls: string[]): string {
  const f = join(tmp.dir, name);
  writeFileSync(f, ls.join('\n') + '\n');
  return f;
}

function jobKey(line: string): string {
  const r = JSON.parse(line) as { owner: string; repo: string; workflow: string; job: string };
  return `${r.owner}/${r.repo}/${r.workflow}/${r.job}`;
}

/** Two halves: alternate jobs, or a cut at a fraction of the lines (runs of one job then span both). */
function split(kind: 'job' | number, tag: string): [string, string] {
  let a: string[];
  let b: string[];
  if (kind === 'job') {
    const jobs = [...new Set(lines.map(jobKey))];
    const first = new Set(jobs.filter((_, i) => i % 2 === 0));
    a = lines.filter((l) => first.has(jobKey(l)));
    b = lines.filter((l) => !first.has(jobKey(l)));
  } else {
    const cut = Math.floor(lines.length * kind);
    a = lines.slice(0, cut);
    b = lines.slice(cut);
  }
  return [write(`${tag}-a.ndjson`, a), write(`${tag}-b.ndjson`, b)];
}

function sourcesInOrder(db: string): { source: string; startedAt: string; finishedAt: string }[] {
  const c = new Database(db, { readonly: true });
  try {
    return c.prepare('SELECT source, started_at AS startedAt, finished_at AS finishedAt FROM ingest_sources ORDER BY id').all() as {
      source: string; startedAt: string; finishedAt: string;
    }[];
  } finally {
    c.close();
  }
}

function sequential(files: string[], tag: string): string {
  const db = join(tmp.dir, `${tag}-sequential.db`);
  for (const f of files) {
    const r = runCli(ingestArgs(f, db));
    assert.equal(r.status, 0, r.stderr);
  }
  return db;
}

function assertInvariants(db: string): void {
  const c = new Database(db, { readonly: true });
  try {
    assert.deepEqual(jobInvariantViolations(c, LEARNING_RUNS), []);
  } finally {
    c.close();
  }
}

let overlapping = 0;

for (const [i, kind] of (['job', 0.5, 0.3] as const).entries()) {
  test(`concurrent ingest of two halves (${kind === 'job' ? 'split by job' : `cut at ${kind} of the lines`}, round ${i + 1}) equals a sequential ingest`, async () => {
    const tag = `round${i}`;
    const [a, b] = split(kind, tag);
    const [first, second] = i % 2 === 0 ? [a, b] : [b, a];
    const db = join(tmp.dir, `${tag}-concurrent.db`);
    const reader = start([db, String(LEARNING_RUNS)], {}, READER);
    // Both start at once: which one writes first is up to the store.
    const procs = new Map([first, second].map((f) => [f, start(ingestArgs(f, db))]));
    try {
      await Promise.all([...procs.values()].map((p) => p.exited));
      for (const p of procs.values()) assert.equal(p.child.exitCode, 0, p.stderr);
    } finally {
      // the reader stops when its stdin ends: left running after a failed ingest, it kept this file,
      // and the whole suite, from ever ending
      reader.child.stdin.end();
    }
    assert.equal(await reader.exited, 0, reader.stderr);
    const report = JSON.parse(reader.stdout) as { polls: number; snapshotsWithJobs: number; violations: unknown[]; violationCount: number };
    assert.ok(report.snapshotsWithJobs > 0, 'the reader saw the ingests at work');
    assert.deepEqual(report.violations, [], `${report.violationCount} invariant violations seen by the reader`);

    const order = sourcesInOrder(db);
    assert.deepEqual(order.map((s) => s.source).sort(), [first, second].sort());
    const [s1, s2] = order;
    const [p1, p2] = [procs.get(s1.source)!, procs.get(s2.source)!];
    assert.doesNotMatch(p1.stderr, /waiting for/, 'the first writer found the tenant free');
    // The second one started while the first was writing: it must have said whom it waits for.
    if (s2.startedAt < s1.finishedAt) {
      overlapping++;
      assert.match(p2.stderr, new RegExp(`waiting for the ingest of ${s1.source.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(pid ${p1.child.pid} on `));
    }

    assertInvariants(db);
    const expected = storeState(sequential(order.map((s) => s.source), tag));
    const actual = storeState(db);
    assert.ok(expected.detections.length > 0);
    assert.equal(actual.detections.length, expected.detections.length);
    assert.deepEqual(actual, expected);
  });
}

test('at least one round really ran the two ingests at once', () => {
  assert.ok(overlapping >= 1, `no round overlapped (${overlapping})`);
});

/** count(*) of a store of either backend; 0 before its schema exists */
async function countAt(at: StoreUnderTest, sql: string): Promise<number> {
  try {
    return Number(await at.value(sql));
  } catch {
    return 0; // schema not created yet
  }
}

/** ingests the files into the store one after the other, as a sequential ingest would */
function ingestInOrder(at: StoreUnderTest, files: string[]): void {
  for (const f of files) {
    const r = runCli(ingestArgs(f, at.db));
    assert.equal(r.status, 0, r.stderr);
  }
}

storeTest('a writer killed with SIGKILL is taken over after its lease expires, and the result still equals a sequential ingest', async (at) => {
  const [a, b] = split('job', `killed-${at.backend}`);
  const db = at.db;
  const env = { EGRESS_TRIAGE_INGEST_LEASE_MS: '3000' };
  // The victim reads most of its source from a pipe left open, so it is certainly mid-source, holding
  // its lease, when it is killed (a file could be finished between the first commit and the kill).
  const lines = readFileSync(a, 'utf8').split('\n').filter(Boolean);
  const prefix = write(`killed-${at.backend}-a-prefix.ndjson`, lines.slice(0, Math.floor(lines.length * 0.8)));
  // What the victim will have committed when it dies: exactly the prefix it was sent. The sequential
  // store the result is compared with at the end starts with that prefix too, so it counts it here.
  const sequential = await fresh(at.backend, 'killed');
  ingestInOrder(sequential, [prefix]);
  const prefixObservations = await countAt(sequential, 'SELECT count(*) FROM observations');
  const victim = start(ingestArgs('-', db), env);
  victim.child.stdin.write(readFileSync(prefix));
  try {
    // Within COMMIT_MS of its last batch even though its input stays open: a quiet pipe commits.
    await waitFor(
      async () => {
        if (victim.child.exitCode !== null) throw new Error(`ingest exited before committing what it was sent: ${victim.stderr}`);
        return (await countAt(at, 'SELECT count(*) FROM observations')) >= prefixObservations;
      },
      60_000,
      10,
      `${prefixObservations} observations committed`,
    );
  } finally {
    victim.child.kill('SIGKILL');
  }
  await victim.exited;
  assert.equal(await countAt(at, 'SELECT count(*) FROM ingest_leases'), 1, 'the killed writer left its lease behind');

  const next = start(ingestArgs(b, db), env);
  assert.equal(await next.exited, 0, next.stderr);
  assert.match(next.stderr, new RegExp(`took over from the ingest of .*<stdin> \\(pid ${victim.child.pid} on .*whose lease expired at`));
  assert.equal(await countAt(at, 'SELECT count(*) FROM ingest_leases'), 0, 'released at the end');

  // Re-running the interrupted source completes it (idempotent): the store is then the sequential one.
  const resumed = start(ingestArgs(a, db), env);
  assert.equal(await resumed.exited, 0, resumed.stderr);
  assert.doesNotMatch(resumed.stderr, /waiting for|took over/);
  assert.deepEqual(await jobInvariantViolationsOf(at, LEARNING_RUNS), []);
  // The history is: the prefix of a (committed, then its writer died), b, then a again in full. A
  // resumed source is a source of its own in that order: b may already have flagged a binary that
  // the rest of a then does not teach the baseline.
  ingestInOrder(sequential, [b, a]);
  assert.deepEqual(await storeStateOf(at), await storeStateOf(sequential));
});

test('EGRESS_TRIAGE_INGEST_LEASE_MS must be a whole number of milliseconds', () => {
  const r = runCli(ingestArgs(join(tmp.dir, 'round0-a.ndjson'), join(tmp.dir, 'bad-env.db')), { env: { EGRESS_TRIAGE_INGEST_LEASE_MS: '2s' } });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /EGRESS_TRIAGE_INGEST_LEASE_MS: expected a whole number of milliseconds >= 100, got "2s"/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
});
