import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PostgresServer } from '../test/helpers/postgres.js';
import { openConnection } from '../test/storage/contract/backends.js';
import { processVariantKey, type IngestPort, type IngestWriteBatch } from '../src/storage/ingest-port.js';
import type { ProcessVariant } from '../src/storage/store.js';
import { serverCpuMs } from './postgres-cpu.js';

/**
 * The ingest write contract, SQLite against PostgreSQL in the same run: the same write batches (jobs,
 * runs, observations, detections, rollups) through each backend's IngestPort, one transaction per
 * batch, as `ingest` writes them. Reported: detections per second on the wall clock, CPU time (the
 * writer's; for PostgreSQL also the server's, read from /proc), and the PostgreSQL / SQLite ratios of
 * both: the CPU ratio holds on a busy machine, the wall ratio only on an idle one. The PostgreSQL server is a local test server (fsync off), as the
 * SQLite store runs with synchronous=NORMAL: neither waits for the disk on every commit.
 *
 * SQLite writes through the contract suite's IngestPort over its session until SqliteIngestPort is
 * merged; both then write the same rows with the same statements they use for `ingest`.
 */

const JOBS = 20;
const RUNS_PER_JOB = 10;
const CALLS_PER_RUN = 500;
const RUNS_PER_BATCH = 10;

function processes(): ProcessVariant[] {
  return Array.from({ length: 40 }, (_, i) => ({
    name: `tool${i}`, normName: `tool${i}`, path: `/usr/bin/tool${i}`, sha256: `sha${i}`, parentChain: [{ name: 'bash', path: '/usr/bin/bash' }],
  }));
}

/** The batches for one tenant: each creates RUNS_PER_BATCH runs with their calls and detections. */
export function batches(token: string, ttlMs: number, expect: IngestWriteBatch['expect']): IngestWriteBatch[] {
  const procs = processes();
  const out: IngestWriteBatch[] = [];
  const t0 = Date.UTC(2026, 9, 1);
  let run = 0;
  for (let j = 0; j < JOBS; j++) {
    for (let r = 0; r < RUNS_PER_JOB; r += RUNS_PER_BATCH) {
      const b: IngestWriteBatch = {
        lease: { token, ttlMs }, expect, newJobs: r === 0 ? [{ tempRef: -1, key: { owner: 'acme', repo: `repo${j}`, workflow: 'ci.yml', job: 'build' } }] : [],
        newRuns: [], runSpans: [], completedRuns: [], jobStates: [], baseline: [], observations: [], detections: [], imported: [],
      };
      out.push(b);
      for (let k = 0; k < RUNS_PER_BATCH; k++, run++) {
        const tempRef = -100 - k;
        const ts = t0 + run * 60_000;
        b.newRuns.push({ tempRef, jobRef: -1, runId: String(run), runAttempt: 1, ghJobId: null, firstTs: ts, lastTs: ts, learning: false, completed: true, expected: [] });
        for (let c = 0; c < CALLS_PER_RUN; c++) {
          const p = procs[c % procs.length]!;
          const endpoint = `host${(run * 7 + c) % 3000}.example:443`;
          b.observations.push({ runRef: tempRef, endpoint, ip: null, process: p, variantKey: processVariantKey(p), blocked: false, protocol: 'tcp', ts: ts + c });
          b.detections.push({ type: 'New-Outbound-Network-Call', jobRef: -1, runRef: tempRef, endpoint, ip: null, directIp: false, port: 443, protocol: 'tcp', process: p, ts: ts + c, status: 'new', ruleRef: 0, externalId: '' });
        }
      }
    }
  }
  // batches after a job's first name it by the ref the first one got: resolved at write time below
  return out;
}

export async function writeAll(port: IngestPort): Promise<{ detections: number; wallMs: number; cpuMs: number }> {
  const lease = await port.leases.acquireIngestLease('bench', { source: 'bench', pid: process.pid, host: 'bench' });
  const scope = await port.beginSource({ atomic: false });
  const t = await scope.tenant('bench');
  const expect = (await t.read({ jobs: [], runs: [], observations: [] })).versions;
  const all = batches(lease.token, lease.ttlMs, expect);
  const cpu0 = process.cpuUsage();
  const start = performance.now();
  let detections = 0;
  let jobRef = 0;
  for (const b of all) {
    if (b.newJobs.length === 0) for (const x of [...b.newRuns, ...b.detections]) x.jobRef = jobRef;
    const r = await t.write(b);
    if (b.newJobs.length) jobRef = r.jobRefs[0]!;
    detections += r.detectionsStored.filter(Boolean).length;
  }
  const wallMs = performance.now() - start;
  const cpu = process.cpuUsage(cpu0);
  await scope.commit();
  await lease.release();
  return { detections, wallMs: Math.round(wallMs), cpuMs: Math.round((cpu.user + cpu.system) / 1000) };
}

export async function runStoreWriteBench(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'egress-triage-bench-'));
  // PostgreSQL's default buffer size, not the tests' small one
  const server = await PostgresServer.start({ sharedBuffers: '128MB', extra: ['-c max_wal_size=2GB'] });
  try {
    const sqlite = await openConnection(join(dir, 'bench.db'));
    const s = await writeAll(sqlite.ingest());
    await sqlite.close();
    const pg = await openConnection(await server.createDatabase('bench'));
    const serverCpu0 = serverCpuMs(server);
    const p = await writeAll(pg.ingest());
    const serverCpu = serverCpuMs(server) - serverCpu0;
    await pg.close();
    const rate = (x: { detections: number; wallMs: number }) => Math.round((x.detections / x.wallMs) * 1000);
    return {
      detections: s.detections,
      batch_detections: RUNS_PER_BATCH * CALLS_PER_RUN,
      sqlite: { ...s, detections_per_s: rate(s) },
      postgres: { ...p, server_cpu_ms: serverCpu, detections_per_s: rate(p) },
      postgres_to_sqlite_wall_rate: Math.round((rate(p) / rate(s)) * 100) / 100,
      // CPU per detection, SQLite's (all in-process) over PostgreSQL's (client + server): the machine's load does not move it
      postgres_to_sqlite_cpu_rate: Math.round((s.cpuMs / (p.cpuMs + serverCpu)) * 100) / 100,
    };
  } finally {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
