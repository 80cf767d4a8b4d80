import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeTenant } from '../src/generate/index.js';
import { PostgresServer } from '../test/helpers/postgres.js';
import { serverCpuMs } from './postgres-cpu.js';

/**
 * End-to-end ingest, SQLite against PostgreSQL in the same run: the same generated NDJSON file
 * through the real CLI (`egress-triage ingest FILE --db ...`, parse worker, detection engine, ingest
 * port) on a fresh SQLite file and on a fresh database of a local PostgreSQL server. Each backend is
 * run ROUNDS times, alternating; the best round of each is reported.
 *
 * Wall clock and CPU time are both reported. CPU: the ingest process's user+sys (the CLI child, read
 * as this process's waited-for children time from /proc/self/stat), and for PostgreSQL also the
 * server's (its postmaster and every child, from /proc). The CPU ratio compares SQLite's CPU with
 * PostgreSQL's client + server CPU, which the machine's load does not move; the wall ratio only means
 * something on an idle machine. The server is the tests' local one (fsync off), as the SQLite store
 * runs with synchronous=NORMAL: neither waits for the disk on every commit.
 *
 * PG_INGEST_BENCH_EVENTS changes the file's size (default 300,000 events).
 */

const CLI = resolve('dist/bundle/cli/main.js');
const ROUNDS = 2;

interface Round {
  wallMs: number;
  cpuMs: number;
  serverCpuMs: number;
  detections: number;
  records: number;
}

/** CPU time (ms) of the children this process has waited for (utime + stime of exited children). */
function childrenCpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // after the name: state(0) ... cutime(13) cstime(14), in clock ticks (USER_HZ 100)
  return (Number(f[13]) + Number(f[14])) * 10;
}

function ingest(file: string, db: string, server: PostgresServer | null): Round {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of ['EGRESS_TRIAGE_DB', 'EGRESS_TRIAGE_TENANT', 'EGRESS_TRIAGE_CONFIG']) delete env[k];
  const server0 = server ? serverCpuMs(server) : 0;
  const cpu0 = childrenCpuMs();
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [CLI, 'ingest', file, '--db', db, '--format', 'native', '--json'], { encoding: 'utf8', env, maxBuffer: 1 << 26 });
  const wallMs = performance.now() - t0;
  const cpuMs = childrenCpuMs() - cpu0;
  if (r.status !== 0) throw new Error(`ingest into ${server ? 'PostgreSQL' : 'SQLite'} failed (${r.status}): ${r.stderr}`);
  const totals = (JSON.parse(r.stdout) as { totals: { detections: number; records: number } }).totals;
  return { wallMs: Math.round(wallMs), cpuMs, serverCpuMs: server ? serverCpuMs(server) - server0 : 0, detections: totals.detections, records: totals.records };
}

const best = (rs: Round[], total: (r: Round) => number) => rs.reduce((a, b) => (total(b) < total(a) ? b : a));

export async function runPgIngestBench(opts: { events?: number; dir?: string } = {}): Promise<Record<string, unknown>> {
  const events = opts.events ?? (process.env.PG_INGEST_BENCH_EVENTS ? Number(process.env.PG_INGEST_BENCH_EVENTS) : 300_000);
  const outDir = resolve(opts.dir ?? 'bench/out');
  mkdirSync(outDir, { recursive: true });
  const file = join(outDir, `tenant-${events}.ndjson`);
  if (!existsSync(file)) await writeTenant({ runs: 20, seed: 42, events }, file);
  const dir = mkdtempSync(join(tmpdir(), 'egress-triage-bench-'));
  // PostgreSQL's default buffer size, not the tests' small one
  const server = await PostgresServer.start({ sharedBuffers: '128MB', extra: ['-c max_wal_size=2GB'] });
  try {
    const sqlite: Round[] = [];
    const postgres: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      sqlite.push(ingest(file, join(dir, `ingest-${i}.db`), null));
      postgres.push(ingest(file, await server.createDatabase('ingest'), server));
      process.stderr.write(`round ${i + 1}: sqlite ${JSON.stringify(sqlite[i])} postgres ${JSON.stringify(postgres[i])}\n`);
    }
    const counts = new Set([...sqlite, ...postgres].map((r) => r.detections));
    if (counts.size !== 1) throw new Error(`SQLite and PostgreSQL stored different numbers of detections: ${[...counts].join(', ')}`);
    const s = best(sqlite, (r) => r.cpuMs);
    const p = best(postgres, (r) => r.cpuMs + r.serverCpuMs);
    const sWall = best(sqlite, (r) => r.wallMs).wallMs;
    const pWall = best(postgres, (r) => r.wallMs).wallMs;
    const rate = (records: number, ms: number) => Math.round((records / ms) * 1000);
    return {
      events: s.records,
      detections: s.detections,
      rounds: ROUNDS,
      sqlite: { wall_ms: sWall, cpu_ms: s.cpuMs, records_per_s: rate(s.records, sWall), records_per_cpu_s: rate(s.records, s.cpuMs) },
      postgres: {
        wall_ms: pWall, client_cpu_ms: p.cpuMs, server_cpu_ms: p.serverCpuMs,
        records_per_s: rate(p.records, pWall), records_per_cpu_s: rate(p.records, p.cpuMs + p.serverCpuMs),
      },
      postgres_to_sqlite_wall_rate: Math.round((sWall / pWall) * 100) / 100,
      postgres_to_sqlite_cpu_rate: Math.round((s.cpuMs / (p.cpuMs + p.serverCpuMs)) * 100) / 100,
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
