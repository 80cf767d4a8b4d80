/**
 * MCP benchmarks (SDK v2 server and clients):
 *  - analyze_anomalous_calls_by_process on a tenant with ~1M open detections: the library call vs the
 *    same call as an MCP tool call (in-process InMemoryTransport, and the real CLI over stdio and
 *    Streamable HTTP, each at protocol revisions 2025-11-25 and 2026-07-28), p50 / p99 end-to-end
 *    latency; the difference is the protocol overhead.
 *  - ping and a small read tool (list_suppression_rules) throughput over stdio and HTTP at both
 *    revisions, one client, sequential calls, with the CPU time (user+sys) the server process and this
 *    client process spent per call: on a shared, noisy machine wall time moves with the neighbours,
 *    CPU time much less.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { setMaxListeners } from 'node:events';
import { Client, InMemoryTransport, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { SqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { openStore } from '../src/storage/open-store.js';
import { resolveStoreLocation } from '../src/storage/location.js';
import type { ProcessVariant } from '../src/storage/store.js';
import { analyzeAnomalousCallsByProcess } from '../src/analysis/analyze-by-process.js';
import { RulesService } from '../src/rules/service.js';
import { createEgressTriageServer } from '../src/mcp/server.js';
import { Rng } from '../src/generate/prng.js';
import { SCENARIO } from '../src/generate/scenarios.js';

const CLI = resolve('dist/bundle/cli/main.js');
const TENANT = 'bench';

/** Loads `total` open New-Outbound-Network-Call detections straight through the ingest session (rollup kept exact). */
export function loadBulkDetections(dbPath: string, total = 1_000_000): { detections: number; ms: number } {
  const t0 = performance.now();
  for (const s of ['', '-wal', '-shm']) rmSync(dbPath + s, { force: true });
  const store = SqliteStore.open(dbPath);
  const session = store.openIngestSession(TENANT);
  const rng = new Rng(7);
  const procs: { p: ProcessVariant; weight: number; dest: () => { endpoint: string; ip: string | null; direct: boolean; port: number } }[] = [
    {
      p: { name: 'tailscaled', normName: 'tailscaled', path: SCENARIO.tailscale.path, sha256: SCENARIO.tailscale.sha256, parentChain: [{ name: 'sudo' }, { name: 'bash' }, { name: 'Runner.Worker' }] },
      weight: 45,
      dest: () => {
        const ip = `100.${64 + rng.int(0, 7)}.${rng.int(0, 15)}.${rng.int(1, 30)}`; // ~3.7k peers
        return { endpoint: `${ip}:41641`, ip, direct: true, port: 41641 };
      },
    },
    {
      p: { name: 'twingated', normName: 'twingated', path: SCENARIO.twingate.path, sha256: SCENARIO.twingate.sha256, parentChain: [{ name: 'systemd' }] },
      weight: 15,
      dest: () => ({ endpoint: `relay-${rng.int(0, 40)}.twingate.com:443`, ip: null, direct: false, port: 443 }),
    },
    {
      p: { name: 'curl', normName: 'curl', path: '/usr/bin/curl', sha256: 'c'.repeat(64), parentChain: [{ name: 'bash' }, { name: 'Runner.Worker' }] },
      weight: 20,
      dest: () => ({ endpoint: `api${rng.int(0, 300)}.example-cdn.com:443`, ip: null, direct: false, port: 443 }),
    },
    {
      p: { name: 'dockerd', normName: 'dockerd', path: '/usr/bin/dockerd', sha256: 'd'.repeat(64), parentChain: [{ name: 'systemd' }] },
      weight: 19,
      dest: () => ({ endpoint: `registry-${rng.int(0, 60)}.quay.io:443`, ip: null, direct: false, port: 443 }),
    },
    {
      p: { name: 'tailscaled', normName: 'tailscaled', path: SCENARIO.impostor.path, sha256: SCENARIO.impostor.sha256, parentChain: [{ name: 'node' }, { name: 'npm' }] },
      weight: 1,
      dest: () => ({ endpoint: 'gist.githubusercontent.com:443', ip: null, direct: false, port: 443 }),
    },
  ];
  const totalWeight = procs.reduce((n, p) => n + p.weight, 0);
  const pick = () => {
    let x = rng.int(0, totalWeight - 1);
    for (const p of procs) if ((x -= p.weight) < 0) return p;
    return procs[0]!;
  };
  const jobs: number[] = [];
  session.transaction(() => {
    for (let o = 0; o < 4; o++)
      for (let r = 0; r < 10; r++)
        for (const j of ['build', 'test', 'e2e', 'deploy', 'lint']) jobs.push(session.getJob(`org-${o}`, `repo-${r}`, '.github/workflows/ci.yml', j).ref);
  });
  const runsPerJob = 50;
  const perRun = Math.ceil((total * 1.1) / (jobs.length * runsPerJob)); // some draws collide on the unique key
  const start = Date.parse('2026-10-01T00:00:00Z');
  let n = 0;
  let runNo = 0;
  for (let r = 0; r < runsPerJob && n < total; r++) {
    session.transaction(() => {
      for (const jobRef of jobs) {
        if (n >= total) break;
        const ts0 = start + r * 3_600_000 + runNo;
        const runRef = session.createRun(jobRef, String(10_000_000 + runNo), 1, String(20_000_000 + runNo), ts0, false, []);
        runNo++;
        for (let k = 0; k < perRun && n < total; k++) {
          const p = pick();
          const d = p.dest();
          const inserted = session.insertDetection({
            type: 'New-Outbound-Network-Call', jobRef, runRef, endpoint: d.endpoint, ip: d.ip, directIp: d.direct, port: d.port,
            protocol: d.direct ? 'udp' : 'tcp', process: p.p, ts: ts0 + k, status: 'new', ruleRef: 0, externalId: '',
          });
          if (inserted) n++;
        }
      }
    });
  }
  store.close();
  return { detections: n, ms: Math.round(performance.now() - t0) };
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! * 100) / 100;
}

function stats(xs: number[]) {
  return { n: xs.length, p50_ms: pct(xs, 50), p99_ms: pct(xs, 99), min_ms: pct(xs, 0) };
}

async function timeIt(n: number, fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

/** CPU time (user+sys, ms) a process has used so far, from /proc (Linux); null elsewhere. */
function processCpuMs(pid: number | undefined | null): number | null {
  if (!pid) return null;
  try {
    // fields after "(comm)": state is field 3, utime 14, stime 15, in clock ticks (100 per second on Linux)
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

interface Throughput {
  calls_per_s: number;
  /** CPU ms per call spent by the server process (null: in-process or no /proc) */
  server_cpu_ms_per_call: number | null;
  /** CPU ms per call spent by this (client) process */
  client_cpu_ms_per_call: number;
}

async function throughput(ms: number, fn: () => Promise<unknown>, serverPid?: number | null): Promise<Throughput> {
  for (let i = 0; i < 50; i++) await fn(); // warm-up
  const end = performance.now() + ms;
  let n = 0;
  const server0 = processCpuMs(serverPid);
  const client0 = process.cpuUsage();
  const t0 = performance.now();
  while (performance.now() < end) {
    await fn();
    n++;
  }
  const wall = performance.now() - t0;
  const client = process.cpuUsage(client0);
  const server1 = processCpuMs(serverPid);
  const perCall = (x: number) => Math.round((x / n) * 1000) / 1000;
  return {
    calls_per_s: Math.round(n / (wall / 1000)),
    server_cpu_ms_per_call: server0 !== null && server1 !== null ? perCall(server1 - server0) : null,
    client_cpu_ms_per_call: perCall((client.user + client.system) / 1000),
  };
}

function mustOk(r: unknown): void {
  if ((r as { isError?: boolean }).isError) throw new Error(`tool call failed: ${JSON.stringify(r).slice(0, 500)}`);
}

async function startServe(db: string): Promise<{ child: ChildProcessWithoutNullStreams; url: URL }> {
  const child = spawn(process.execPath, [CLI, 'serve', '--db', db, '--tenant', TENANT, '--listen', '127.0.0.1:0'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  const url = await new Promise<URL>((res, rej) => {
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m) res(new URL(m[1]!));
    });
    child.once('exit', (code) => rej(new Error(`serve exited ${code}: ${err}`)));
  });
  return { child, url };
}

export async function runMcpBench(opts: { detections?: number; dir?: string; iterations?: number; throughputMs?: number } = {}): Promise<Record<string, unknown>> {
  setMaxListeners(0); // the SDK's HTTP client adds an abort listener per request
  const dir = resolve(opts.dir ?? 'bench/out');
  mkdirSync(dir, { recursive: true });
  const total = opts.detections ?? 1_000_000;
  const iterations = opts.iterations ?? 15;
  const tpMs = opts.throughputMs ?? 3000;
  const db = join(dir, `mcp-${total}.db`);
  let load: { detections: number; ms: number } | null = null;
  if (!existsSync(db)) {
    process.stderr.write(`loading ${total} detections into ${db}\n`);
    load = loadBulkDetections(db, total);
  }
  const input = { tenant: TENANT, limit: 50 };
  const args = { limit: 50 };
  const out: Record<string, unknown> = { detections: total, load_ms: load?.ms ?? 'cached' };

  // The same call four ways, interleaved round-robin so warm-up and machine noise hit all equally:
  // library; MCP in-process (InMemoryTransport: JSON-RPC, zod input + output validation, JSON text copy);
  // the real CLI over stdio; `serve` over Streamable HTTP.
  const store = await openStore(resolveStoreLocation(db), 'read');
  const rules = new RulesService(store);
  const first = await analyzeAnomalousCallsByProcess(store, input, { rules });
  out.total_anomalies_scanned = first.total_anomalies_scanned;
  out.processes = first.processes.length;
  const server = createEgressTriageServer({ store, tenant: TENANT, dashboardUrl: 'http://127.0.0.1:8787' });
  const [st, ct] = InMemoryTransport.createLinkedPair();
  await server.connect(st);
  const mem = new Client({ name: 'bench', version: '1' });
  await mem.connect(ct);
  // A client per transport and revision: 2025-11-25 (initialize; over HTTP a session whose POSTs are
  // answered as SSE) and 2026-07-28 (stateless, the envelope in every request's _meta).
  const at = (revision: '2025-11-25' | '2026-07-28') =>
    new Client({ name: 'bench', version: '1' }, revision === '2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : { supportedProtocolVersions: ['2025-11-25'] });
  const stdioPids: Record<string, number | null> = {};
  const stdioAt = async (revision: '2025-11-25' | '2026-07-28') => {
    const c = at(revision);
    const t = new StdioClientTransport({ command: process.execPath, args: [CLI, 'mcp', '--db', db, '--tenant', TENANT], stderr: 'ignore' });
    await c.connect(t);
    stdioPids[revision] = t.pid;
    return c;
  };
  const stdio = await stdioAt('2025-11-25');
  const stdio26 = await stdioAt('2026-07-28');
  const { child, url } = await startServe(db);
  const http = at('2025-11-25');
  const httpT = new StreamableHTTPClientTransport(url);
  await http.connect(httpT);
  const http26 = at('2026-07-28');
  await http26.connect(new StreamableHTTPClientTransport(url));
  const analyzeCall = { name: 'analyze_anomalous_calls_by_process', arguments: args };
  const ways: [string, () => Promise<unknown>][] = [
    ['analyze_library', () => analyzeAnomalousCallsByProcess(store, input, { rules })],
    ['analyze_mcp_in_memory', () => mem.callTool(analyzeCall)],
    ['analyze_mcp_stdio', () => stdio.callTool(analyzeCall)],
    ['analyze_mcp_stdio_2026', () => stdio26.callTool(analyzeCall)],
    ['analyze_mcp_http', () => http.callTool(analyzeCall)],
    ['analyze_mcp_http_2026', () => http26.callTool(analyzeCall)],
  ];
  const samples = new Map<string, number[]>(ways.map(([k]) => [k, []]));
  for (const [, fn] of ways) mustOk(await fn()); // warm-up
  for (let i = 0; i < iterations; i++) {
    for (const [k, fn] of ways) samples.get(k)!.push(...(await timeIt(1, fn)));
  }
  for (const [k] of ways) out[k] = stats(samples.get(k)!);
  const libP50 = pct(samples.get('analyze_library')!, 50);
  const over = (k: string) => Math.round((pct(samples.get(k)!, 50) - libP50) * 100) / 100;
  out.protocol_overhead_p50_ms = {
    in_memory: over('analyze_mcp_in_memory'),
    stdio: over('analyze_mcp_stdio'),
    stdio_2026: over('analyze_mcp_stdio_2026'),
    http: over('analyze_mcp_http'),
    http_2026: over('analyze_mcp_http_2026'),
  };
  await mem.close();

  // 5. throughput, one client, sequential
  const small = { name: 'list_suppression_rules', arguments: {} };
  const ping = { name: 'ping', arguments: {} };
  mustOk(await stdio.callTool(small));
  out.throughput = {
    stdio_ping: await throughput(tpMs, () => stdio.callTool(ping), stdioPids['2025-11-25']),
    stdio_small_read: await throughput(tpMs, () => stdio.callTool(small), stdioPids['2025-11-25']),
    stdio_2026_ping: await throughput(tpMs, () => stdio26.callTool(ping), stdioPids['2026-07-28']),
    stdio_2026_small_read: await throughput(tpMs, () => stdio26.callTool(small), stdioPids['2026-07-28']),
    http_ping: await throughput(tpMs, () => http.callTool(ping), child.pid),
    http_small_read: await throughput(tpMs, () => http.callTool(small), child.pid),
    http_2026_ping: await throughput(tpMs, () => http26.callTool(ping), child.pid),
    http_2026_small_read: await throughput(tpMs, () => http26.callTool(small), child.pid),
    small_read_tool: 'list_suppression_rules',
  };
  await stdio.close();
  await stdio26.close();
  await http26.close();
  await httpT.terminateSession().catch(() => undefined);
  await http.close();
  await store.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  return out;
}

// `node dist/bench/mcp.js [detections]` runs this suite alone.
if (process.argv[1] && resolve(process.argv[1]) === resolve('dist/bench/mcp.js')) {
  runMcpBench({ detections: process.argv[2] ? Number(process.argv[2]) : undefined }).then(
    (r) => process.stdout.write(JSON.stringify(r, null, 2) + '\n'),
    (e) => {
      process.stderr.write(`${(e as Error).stack}\n`);
      process.exitCode = 1;
    },
  );
}
