import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, cliResult, ndjson, nativeEvent, tempDir } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The dashboard's e2e fixtures: a demo tenant made by the real `demo` command in a temp folder, and
 * the real built server (`serve` or `dashboard`) as a child process on a free port.
 */

/** The HTML-injection name test (4) looks for: it must show as text, never as an element. */
export const INJECTION = '<img src=x onerror=alert(1)>';

export interface DemoTenant {
  dir: string;
  db: string;
  /** `demo --json` output: the generated tenant, the ingest summary and the analysis */
  demo: {
    analysis: { processes: { process: string; sample_detections: { dashboard_url: string; owner: string; repo: string; run_id: string; job_id: string | null; endpoint: string }[] }[] };
  };
  /** the run the injection event went into */
  injection: { owner: string; repo: string; runId: string; jobId: string };
  file: (name: string, text: string) => string;
  cleanup: () => void;
}

/**
 * A small demo tenant (the demo generator, seed 1) plus one run whose process and endpoint are named
 * INJECTION, ingested by the real CLI after enough clean runs that it raises a detection.
 *
 * Within one suite run (EGRESS_TRIAGE_TEST_CACHE, as for the PostgreSQL template) the first file to
 * make a tenant of a size keeps it, and later files copy it: a dozen dashboard files asked for two
 * sizes, about 1.6 s of CPU each time (the demo, then the injection's ingest). Each file still gets
 * its own copy to change. Files race for the cache as for the initdb template: each that finds none
 * makes its own and offers it by an atomic rename; one wins, the others keep theirs.
 */
export async function demoTenant(o: { runs?: number; events?: number } = {}): Promise<DemoTenant> {
  const t = tempDir('egress-triage-dash-');
  const db = join(t.dir, 'demo.db');
  const runs = o.runs ?? 8;
  const events = o.events ?? 5000;
  const cache = process.env.EGRESS_TRIAGE_TEST_CACHE;
  const kept = cache ? join(cache, `dashboard-demo-${runs}-${events}`) : undefined;
  let demo: string;
  if (kept && existsSync(join(kept, 'demo.json'))) {
    for (const f of readdirSync(kept)) copyFileSync(join(kept, f), join(t.dir, f));
    demo = readFileSync(join(t.dir, 'demo.json'), 'utf8');
  } else {
    demo = await makeDemoTenant(t, db, runs, events);
    if (kept) offer(t.dir, kept);
  }
  return {
    dir: t.dir,
    db,
    demo: JSON.parse(demo) as DemoTenant['demo'],
    injection: { owner: INJECTION_RUN.owner, repo: INJECTION_RUN.repo, runId: '1007', jobId: String(5000 + 7) },
    file: t.file,
    cleanup: t.cleanup,
  };
}

const INJECTION_RUN = { owner: 'xss-org', repo: 'xss-repo', job: 'build' };

/** Makes the tenant in `db` with the real CLI; returns the `demo --json` output (also written to demo.json). */
async function makeDemoTenant(t: ReturnType<typeof tempDir>, db: string, runs: number, events: number): Promise<string> {
  const made = await cliResult(['demo', '--db', db, '--runs', String(runs), '--events', String(events), '--json']);
  if (made.status !== 0) throw new Error(`demo failed (${made.status}): ${made.stderr}`);
  // Five learning runs of a job, then a run calling the injection-named endpoint from an
  // injection-named process: a New-Outbound-Network-Call detection on it.
  const spec = INJECTION_RUN;
  const evs = [
    ...[1, 2, 3, 4, 5, 6].map((run) => nativeEvent({ ...spec, run, domain: 'registry.npmjs.org', process: 'node' })),
    nativeEvent({ ...spec, run: 7, domain: 'registry.npmjs.org', process: 'node' }),
    nativeEvent({ ...spec, run: 7, domain: 'x.example', port: 443, process: INJECTION, parent: INJECTION }),
  ];
  const ing = await cliResult(['ingest', t.file('xss.ndjson', ndjson(evs)), '--db', db, '--format', 'native']);
  if (ing.status !== 0) throw new Error(`ingest failed (${ing.status}): ${ing.stderr}`);
  t.file('demo.json', made.stdout);
  return made.stdout;
}

/** Offers the tenant's files (the store as the CLI left it, closed, and demo.json) as the cached one. */
function offer(dir: string, kept: string): void {
  const offered = `${kept}.${process.pid}`;
  try {
    mkdirSync(offered);
    for (const f of readdirSync(dir)) if (f === 'demo.json' || f.startsWith('demo.db')) copyFileSync(join(dir, f), join(offered, f));
    renameSync(offered, kept);
  } catch {
    // another test process offered its tenant first: theirs is the same
  } finally {
    rmSync(offered, { recursive: true, force: true });
  }
}

export interface RunningServer {
  /** http://127.0.0.1:PORT (no path) */
  base: string;
  child: ChildProcess;
  stderr: () => string;
  stop: () => Promise<void>;
}

/** Starts `egress-triage <command> --listen 127.0.0.1:0 ...args` and waits for its listening line. */
export async function startServer(command: 'serve' | 'dashboard', args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunningServer> {
  const e: NodeJS.ProcessEnv = { ...process.env, EGRESS_TRIAGE_DB: '', EGRESS_TRIAGE_TENANT: '', EGRESS_TRIAGE_CONFIG: '', ...env };
  for (const k of Object.keys(e)) if (e[k] === '') delete e[k];
  const child = spawn(process.execPath, [CLI, command, '--listen', '127.0.0.1:0', ...args], { env: e, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d) => (err += d));
  let exited = false;
  child.once('exit', () => (exited = true));
  const base = await waitFor(
    () => {
      if (exited) throw new Error(`${command} exited before listening: ${err}`);
      return /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(err)?.[1];
    },
    30_000,
    25,
    `${command} to listen`,
  );
  return {
    base,
    child,
    stderr: () => err,
    stop: () =>
      new Promise<void>((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** Tokens of the grants startWithGrants writes: a writer (read, write) and a reader (read only). */
export const WRITER_TOKEN = 'writer-token-0123456789abcdef';
export const READER_TOKEN = 'reader-token-0123456789abcdef';

/** `dashboard --grants` on the demo tenant, with the writer and the reader of WRITER_TOKEN and READER_TOKEN. */
export async function startWithGrants(demo: DemoTenant): Promise<RunningServer> {
  const grants = demo.file(
    'grants.yaml',
    `grants:\n  - { identity: writer, token: ${WRITER_TOKEN}, dashboard: [read, write] }\n  - { identity: reader, token: ${READER_TOKEN}, dashboard: [read] }\n`,
  );
  return startServer('dashboard', ['--db', demo.db, '--grants', grants]);
}
