import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import type { SqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import type { IngestTarget } from '../src/cli/commands/ingest.js';
import { suppressorFor } from '../src/rules/suppressor.js';

export const CLI = resolve('dist/bundle/cli/main.js');

/** A fresh temp folder; `file` writes a file in it and returns its path. */
/**
 * A stable stand-in for a binary's sha256, 64 hex digits as ingest requires (anything else is stored
 * as no hash): `fakeSha('curl')` is what nativeEvent gives curl unless told otherwise.
 */
export function fakeSha(name: string): string {
  return createHash('sha256').update(`sha-${name}`).digest('hex');
}

export function tempDir(prefix = 'egress-triage-test-'): { dir: string; file: (name: string, text: string) => string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return {
    dir,
    file: (name, text) => {
      const p = join(dir, name);
      writeFileSync(p, text);
      return p;
    },
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Runs the built CLI synchronously with a clean environment (no inherited store/tenant). */
export function runCli(args: string[], opts: { input?: string | Buffer; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): SpawnSyncReturns<string> {
  const env: NodeJS.ProcessEnv = { ...process.env, EGRESS_TRIAGE_DB: '', EGRESS_TRIAGE_TENANT: '', EGRESS_TRIAGE_CONFIG: '', ...opts.env };
  for (const k of Object.keys(env)) if (env[k] === '') delete env[k];
  return spawnSync(process.execPath, [CLI, ...args], { input: opts.input, env, cwd: opts.cwd, encoding: 'utf8', maxBuffer: 64 << 20, timeout: opts.timeoutMs });
}

/**
 * Runs the built CLI as a child process without blocking the test's event loop (a server the test
 * started in this process keeps answering), clean environment as runCli; resolves once it exits.
 */
export function cliResult(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ status: number | null; stdout: string; stderr: string; pid: number }> {
  const e: NodeJS.ProcessEnv = { ...process.env, EGRESS_TRIAGE_DB: '', EGRESS_TRIAGE_TENANT: '', EGRESS_TRIAGE_CONFIG: '', ...env };
  for (const k of Object.keys(e)) if (e[k] === '') delete e[k];
  const child = spawn(process.execPath, [CLI, ...args], { env: e, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.once('close', (status) => resolve({ status, stdout, stderr, pid: child.pid! })));
}

export function runCliAsync(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
}

export interface EventSpec {
  tenant?: string;
  owner?: string;
  repo?: string;
  workflow?: string;
  job?: string;
  run: number;
  attempt?: number;
  /** GitHub job id (a matrix job's legs share run and attempt, not this); default 5000 + run */
  jobId?: string;
  domain?: string;
  ip?: string;
  port?: number;
  protocol?: 'tcp' | 'udp';
  process?: string;
  sha256?: string;
  parent?: string;
  status?: 'allowed' | 'blocked';
  t?: number;
}

/** One native NDJSON record; run N of a job starts at day N so runs are time-ordered. */
export function nativeEvent(s: EventSpec): Record<string, unknown> {
  const base = Date.UTC(2026, 9, 1) + s.run * 3_600_000 + (s.t ?? 0) * 1000;
  const ev: Record<string, unknown> = {
    owner: s.owner ?? 'acme',
    repo: s.repo ?? 'api',
    workflow: s.workflow ?? '.github/workflows/ci.yml',
    job: s.job ?? 'build',
    run_id: String(1000 + s.run),
    run_attempt: s.attempt ?? 1,
    job_id: s.jobId ?? String(5000 + s.run),
    timestamp: new Date(base).toISOString(),
    port: s.port ?? 443,
    protocol: s.protocol ?? 'tcp',
    process: {
      name: s.process ?? 'curl',
      path: `/usr/bin/${s.process ?? 'curl'}`,
      sha256: s.sha256 ?? fakeSha(s.process ?? 'curl'),
      parent: { name: s.parent ?? 'bash', path: '/usr/bin/bash' },
    },
    status: s.status ?? 'allowed',
  };
  if (s.tenant) ev.tenant = s.tenant;
  if (s.domain) ev.domain = s.domain;
  if (s.ip) ev.ip = s.ip;
  if (!s.domain && !s.ip) ev.domain = 'github.com';
  return ev;
}

export function ndjson(events: Record<string, unknown>[]): string {
  return events.map((e) => JSON.stringify(e)).join('\n') + '\n';
}


/**
 * The detections with their status and rule (a detection row carries neither: a detection without a
 * detection_status row is new), for tests that read the store directly: `FROM ${DETECTIONS} d`.
 */
export const DETECTIONS = `(SELECT d0.*, coalesce(s0.status, 0) AS status, coalesce(s0.rule_id, 0) AS rule_id
  FROM detections d0 LEFT JOIN detection_status s0 ON s0.id = d0.id)`;

/** The ingest ports of a SQLite store built directly in a test, as the picker hands them to `ingest`. */
export function sqliteIngestTarget(store: SqliteStore): IngestTarget {
  return {
    ingest: store.ingest,
    setLearningRuns: async (n) => store.setMeta('learning_runs', String(n)),
    ingestSuppressor: (tenant, extra) => suppressorFor(store, tenant, extra),
    rulesPort: (risky) => store.rulesPort(risky),
  };
}
