/**
 * Analysis and rule benchmarks (docs/analysis.md). Bulk-loads synthetic detections straight into
 * SQLite (dictionaries, jobs, runs, detections and rollup in big transactions), then times:
 *  - warm analyze p50/p99/min at 1M and 10M detections (+ RSS),
 *  - rule create that retroactively suppresses ~1M detections (and the suggested tailscaled rule).
 *
 * Distribution (bounded pools, as real VPN fan-out is: a tailnet's servers, DERP relays, a
 * ZeroTier root set; documented in docs/analysis.md):
 *  - 30 days, 8 runs per job-day, 5-9 anomalous calls per run (~55 per job-day); jobs = total / 1500,
 *    3 jobs per repo, 100 jobs per org;
 *  - each job has a profile of ~12 recurring (process, destination) pairs; each call is drawn from it,
 *    except 8% "Unknown" direct-IP calls, 4% tailscaled strays and 1% impostor calls in ~1% of jobs;
 *  - tailscaled: its org's tailnet, PEERS_PER_ORG 100.64/10 peers on port 41641 (80%), 28 DERP relays
 *    (15%), the control plane (5%);
 *  - "Unknown": UNKNOWN_HOSTS public IPs on 443; cloudflared: 500 edge IPs on 7844; twingated: 40
 *    relays x 1000 ports; dockerd: 60 registries; curl: 3000 API hosts; node: 500 package mirrors;
 *  - each domain resolves to one of 2 fixed IPs; a renamed tailscaled impostor fetches from
 *    gist.githubusercontent.com in ~1% of jobs.
 */
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { SqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { DAY_MS } from '../src/storage/sqlite/ingest-session.js';
import { RollupWriter } from '../src/storage/sqlite/rollups.js';
import { analyzeAnomalousCallsByProcess } from '../src/analysis/analyze-by-process.js';
import { RulesService } from '../src/rules/service.js';
import { PgStore } from '../src/storage/postgres/pg-store.js';
import { PostgresServer } from '../test/helpers/postgres.js';
import { copyToPostgres } from './analysis-pg.js';
import { serverCpuMs } from './postgres-cpu.js';
import type { AnalyzeResult } from '../src/analysis/types.js';

const TENANT = 'bench';
const GENUINE = 'a1'.repeat(32);
const IMPOSTOR = 'b2'.repeat(32);
export const PEERS_PER_ORG = 2000;
export const UNKNOWN_HOSTS = 400;

class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
}

interface Proc {
  key: string;
  name: string;
  path: string;
  sha: string;
  chain: string;
}

const PROCS: Proc[] = [
  { key: 'ts', name: 'tailscaled', path: '/usr/sbin/tailscaled', sha: GENUINE, chain: '[{"name":"sudo"},{"name":"bash"},{"name":"Runner.Worker"}]' },
  { key: 'imp', name: 'tailscaled', path: '/tmp/.cache/tailscaled', sha: IMPOSTOR, chain: '[{"name":"node"},{"name":"npm"},{"name":"bash"}]' },
  { key: 'tg', name: 'twingated', path: '/usr/bin/twingated', sha: 'c3'.repeat(32), chain: '[{"name":"systemd"}]' },
  { key: 'docker', name: 'dockerd', path: '/usr/bin/dockerd', sha: 'd4'.repeat(32), chain: '[{"name":"systemd"}]' },
  { key: 'curl', name: 'curl', path: '/usr/bin/curl', sha: 'e5'.repeat(32), chain: '[{"name":"bash"},{"name":"Runner.Worker"}]' },
  { key: 'node', name: 'node', path: '/opt/hostedtoolcache/node/20/bin/node', sha: 'f6'.repeat(32), chain: '[{"name":"npm"},{"name":"bash"}]' },
  { key: 'unknown', name: 'Unknown', path: '', sha: '', chain: '[]' },
  { key: 'cfd', name: 'cloudflared', path: '/usr/local/bin/cloudflared', sha: '07'.repeat(32), chain: '[{"name":"bash"},{"name":"Runner.Worker"}]' },
];

/** Loads `total` detections; returns counts. Fast path: prepared inserts, one transaction per day. */
export function bulkLoad(path: string, total: number, seed = 1): { detections: number; rollupRows: number; jobs: number; endpoints: number; ms: number } {
  const t0 = performance.now();
  for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
  const store = SqliteStore.open(path);
  const db = store.db;
  db.pragma('synchronous = OFF');
  const rng = new Rng(seed);
  const days = 30;
  const perJobDay = 50;
  const nJobs = Math.max(20, Math.round(total / (days * perJobDay)));
  const nOrgs = Math.max(4, Math.round(nJobs / 100));
  const start = Date.parse('2026-10-01T00:00:00Z');
  const tenantId = Number(db.prepare('INSERT INTO tenants (name, created_at) VALUES (?, ?)').run(TENANT, Date.now()).lastInsertRowid);
  const typeId = Number(db.prepare("INSERT INTO detection_types (name) VALUES ('New-Outbound-Network-Call')").run().lastInsertRowid);
  const procId = new Map<string, number>();
  const insP = db.prepare('INSERT INTO processes (variant_key, name, norm_name, path, sha256, parent_chain) VALUES (?, ?, ?, ?, ?, ?)');
  for (const p of PROCS) {
    procId.set(p.key, Number(insP.run(`${p.key}\u0001bench`, p.name, p.name.toLowerCase(), p.path || null, p.sha || null, p.chain).lastInsertRowid));
  }
  const epIds = new Map<string, number>();
  const ipIds = new Map<string, number>();
  const insE = db.prepare('INSERT INTO endpoints (endpoint, host, port, is_ip) VALUES (?, ?, ?, ?)');
  const insI = db.prepare('INSERT INTO ips (ip) VALUES (?)');
  const ep = (host: string, port: number, isIp: boolean): number => {
    const k = `${host}:${port}`;
    let id = epIds.get(k);
    if (id === undefined) {
      id = Number(insE.run(k, host, port, isIp ? 1 : 0).lastInsertRowid);
      epIds.set(k, id);
    }
    return id;
  };
  const ipOf = (ip: string): number => {
    let id = ipIds.get(ip);
    if (id === undefined) {
      id = Number(insI.run(ip).lastInsertRowid);
      ipIds.set(ip, id);
    }
    return id;
  };
  // jobs and their anomaly profiles
  interface Pair {
    p: number;
    e: number;
    ip: number;
    direct: number;
    port: number;
  }
  interface Job {
    id: number;
    org: number;
    profile: Pair[];
  }
  const jobs: Job[] = [];
  const insJ = db.prepare('INSERT INTO jobs (tenant_id, owner, repo, workflow, job, completed_runs) VALUES (?, ?, ?, ?, ?, 100)');
  // org o's tailnet: 100.(64 + o/8 % 64).((o % 8) * 16 + i / 250).(i % 250 + 1)
  const peer = (org: number, i: number) => `100.${64 + (Math.floor(org / 8) % 64)}.${(org % 8) * 16 + Math.floor(i / 250)}.${(i % 250) + 1}`;
  const unknownHost = (i: number) => `${[3, 13, 34, 52, 104, 151, 185][i % 7]}.${(i * 37) % 256}.${(i * 101) % 256}.${1 + (i % 250)}`;
  // each domain resolves to one of two fixed addresses
  const pubFor = (host: string) => {
    let h = 2166136261;
    for (let i = 0; i < host.length; i++) h = Math.imul(h ^ host.charCodeAt(i), 16777619);
    h = (h >>> 0) + rng.int(2);
    return `${[3, 13, 34, 52, 104, 151, 185][h % 7]}.${(h >>> 3) % 256}.${(h >>> 11) % 256}.${1 + ((h >>> 19) % 250)}`;
  };
  const dom = (host: string, port: number) => ({ e: ep(host, port, false), ip: ipOf(pubFor(host)) });
  const pairFor = (kind: string, org: number): Pair => {
    switch (kind) {
      case 'ts': {
        const r = rng.next();
        if (r < 0.15) return { p: procId.get('ts')!, ...dom(`derp${1 + rng.int(28)}.tailscale.com`, 443), direct: 0, port: 443 };
        if (r < 0.2) return { p: procId.get('ts')!, e: ep('controlplane.tailscale.com', 443, false), ip: ipOf('192.200.0.101'), direct: 0, port: 443 };
        const ip = peer(org, rng.int(PEERS_PER_ORG));
        return { p: procId.get('ts')!, e: ep(ip, 41641, true), ip: ipOf(ip), direct: 1, port: 41641 };
      }
      case 'tg':
        return { p: procId.get('tg')!, ...dom(`relay-${rng.int(40)}.twingate.com`, 30000 + rng.int(1000)), direct: 0, port: 443 };
      case 'docker':
        return { p: procId.get('docker')!, ...dom(`registry-${rng.int(60)}.quay.io`, 443), direct: 0, port: 443 };
      case 'curl':
        return { p: procId.get('curl')!, ...dom(`api${rng.int(3000)}.example-cdn.com`, 443), direct: 0, port: 443 };
      case 'node':
        return { p: procId.get('node')!, ...dom(`pkg${rng.int(500)}.npm-mirror.net`, 443), direct: 0, port: 443 };
      case 'cfd': {
        const ip = `198.41.${rng.next() < 0.5 ? 192 : 200}.${1 + rng.int(250)}`;
        return { p: procId.get('cfd')!, e: ep(ip, 7844, true), ip: ipOf(ip), direct: 1, port: 7844 };
      }
      default: {
        const ip = unknownHost(rng.int(UNKNOWN_HOSTS));
        return { p: procId.get('unknown')!, e: ep(ip, 443, true), ip: ipOf(ip), direct: 1, port: 443 };
      }
    }
  };
  const profileKinds = ['ts', 'ts', 'ts', 'ts', 'tg', 'docker', 'docker', 'curl', 'curl', 'node', 'cfd', 'ts'];
  db.transaction(() => {
    for (let j = 0; j < nJobs; j++) {
      const org = j % nOrgs;
      const id = Number(insJ.run(tenantId, `org-${org}`, `repo-${Math.floor(j / 3)}`, '.github/workflows/ci.yml', ['build', 'test', 'deploy'][j % 3]).lastInsertRowid);
      const profile: Pair[] = [];
      const seen = new Set<string>();
      for (const k of profileKinds) {
        const pr = pairFor(k, org);
        const key = `${pr.p}/${pr.e}`;
        if (!seen.has(key)) {
          seen.add(key);
          profile.push(pr);
        }
      }
      jobs.push({ id, org, profile });
    }
  })();
  const impostorJobs = new Set(jobs.filter((_, i) => i % 97 === 5).map((j) => j.id));
  const gistEp = ep('gist.githubusercontent.com', 443, false);
  const gistIp = ipOf('185.199.108.133');
  const insR = db.prepare('INSERT INTO runs (job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, completed) VALUES (?, ?, 1, ?, ?, ?, 1)');
  const insD = db.prepare(
    `INSERT INTO detections (tenant_id, type_id, job_ref, run_ref, endpoint_id, ip_id, direct_ip, port, protocol, process_id, ts, ext)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '')`,
  );
  // every detection is new: no detection_status rows
  const rollups = new RollupWriter(db);
  let n = 0;
  let runNo = 0;
  const runsPerDay = 8;
  for (let d = 0; d < days && n < total; d++) {
    db.transaction(() => {
      const roll = new Map<string, [number, number, number, number, number, number]>();
      for (const job of jobs) {
        for (let r = 0; r < runsPerDay && n < total; r++) {
          const ts0 = start + d * DAY_MS + r * 3 * 3_600_000 + rng.int(3_600_000);
          runNo++;
          const runRef = Number(insR.run(job.id, String(7_000_000_000 + runNo), String(8_000_000_000 + runNo), ts0, ts0 + 600_000).lastInsertRowid);
          const used = new Set<string>();
          const k = 5 + rng.int(5); // ~7 per run, ~55 per job-day
          for (let i = 0, attempts = 0; i < k && attempts < 3 * k && n < total; attempts++) {
            let pr: Pair;
            const x = rng.next();
            if (x < 0.08) pr = pairFor('unknown', job.org);
            else if (x < 0.12) pr = pairFor('ts', job.org);
            else if (x < 0.13 && impostorJobs.has(job.id)) pr = { p: procId.get('imp')!, e: gistEp, ip: gistIp, direct: 0, port: 443 };
            else pr = job.profile[rng.int(job.profile.length)]!;
            const key = `${pr.p}/${pr.e}`;
            if (used.has(key)) continue;
            used.add(key);
            i++;
            const ts = ts0 + i * 1000;
            insD.run(tenantId, typeId, job.id, runRef, pr.e, pr.ip, pr.direct, pr.port, pr.direct ? 'udp' : 'tcp', pr.p, ts);
            n++;
            const rk = `${job.id}/${pr.p}/${pr.e}/${pr.ip}`;
            const cur = roll.get(rk);
            if (cur) {
              cur[3]++;
              if (ts < cur[4]) cur[4] = ts;
              if (ts > cur[5]) cur[5] = ts;
            } else roll.set(rk, [job.id, pr.p, pr.e, 1, ts, ts]);
            // ip id kept in the key string; parse back below
          }
        }
      }
      for (const [rk, [jobRef, p, e, cnt, f, l]] of roll) {
        const ip = Number(rk.slice(rk.lastIndexOf('/') + 1));
        rollups.add(tenantId, typeId, 0, 0, Math.floor(f / DAY_MS), jobRef, p, e, ip, cnt, f, l);
      }
    })();
  }
  db.pragma('synchronous = NORMAL');
  db.exec('ANALYZE');
  const rollupRows = db.prepare('SELECT count(*) FROM detection_rollup').pluck().get() as number;
  store.close();
  return { detections: n, rollupRows, jobs: nJobs, endpoints: epIds.size, ms: Math.round(performance.now() - t0) };
}

/**
 * Bytes the store spends per detection: used pages (free pages left by an upgrade or a delete do
 * not count) over detections, and the share of the detection tables, their indexes and rollups.
 */
function storeBytes(store: SqliteStore, detections: number): Record<string, number> {
  const db = store.db;
  const pragma = (p: string) => db.pragma(p, { simple: true }) as number;
  const used = (pragma('page_count') - pragma('freelist_count')) * pragma('page_size');
  const out: Record<string, number> = { bytes_per_detection: Math.round((used / detections) * 10) / 10 };
  const names = ['detections', 'detection_status', 'detection_rollup', 'detection_rollup_held', 'rollup_process_endpoint', 'rollup_process_job', 'rollup_process_day'];
  const tables = db.prepare(`SELECT name, tbl_name FROM sqlite_schema WHERE tbl_name IN (${names.map(() => '?').join(', ')})`);
  // a table's indexes count towards it
  for (const [name, table] of tables.raw().all(...names) as [string, string][]) {
    const bytes = (db.prepare('SELECT coalesce(sum(pgsize), 0) FROM dbstat WHERE name = ?').pluck().get(name) as number) ?? 0;
    const key = `${table}_bytes_per_detection`;
    out[key] = Math.round(((out[key] ?? 0) + bytes / detections) * 10) / 10;
  }
  return out;
}

/** Wall and CPU (user + system) milliseconds of one awaited call. */
async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpu_ms: number }> {
  const t = performance.now();
  const c = process.cpuUsage();
  const value = await fn();
  const cpu = process.cpuUsage(c);
  return { value, ms: Math.round(performance.now() - t), cpu_ms: Math.round((cpu.user + cpu.system) / 1000) };
}

function pct(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.min(s.length - 1, Math.floor(s.length * q))]! * 10) / 10;
}

async function timeAnalyze(
  store: SqliteStore,
  rules: RulesService,
  iterations: number,
): Promise<{ p50_ms: number; p99_ms: number; min_ms: number; max_ms: number; iterations: number; groups: number; total: number }> {
  const r = await timeCalls(() => analyzeAnomalousCallsByProcess(store, { tenant: TENANT }, { rules }), iterations);
  const { cpu_ms: _c, ...rest } = r;
  return rest;
}

/** Warm p50/p99/min/max wall time of one call, and the CPU time (this process + `extraCpu`, e.g. a server's) per call. */
async function timeCalls(
  call: () => Promise<AnalyzeResult>,
  iterations: number,
  extraCpu: () => number = () => 0,
): Promise<{ p50_ms: number; p99_ms: number; min_ms: number; max_ms: number; cpu_ms: number; iterations: number; groups: number; total: number }> {
  await call(); // warm
  const xs: number[] = [];
  let last = { groups: 0, total: 0 };
  const c0 = process.cpuUsage();
  const e0 = extraCpu();
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    const r = await call();
    xs.push(performance.now() - t);
    last = { groups: r.processes.length, total: r.total_anomalies_scanned };
  }
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / 1000 + (extraCpu() - e0);
  return {
    p50_ms: pct(xs, 0.5), p99_ms: pct(xs, 0.99), min_ms: Math.round(Math.min(...xs)), max_ms: Math.round(Math.max(...xs)),
    cpu_ms: Math.round((cpu / iterations) * 10) / 10, iterations, ...last,
  };
}

/**
 * The largest size that also runs on PostgreSQL: `--analysis-pg-max=N` or BENCH_ANALYSIS_PG_MAX
 * (default 1M, a few minutes; 10000000 for the 10M comparison; 0 skips PostgreSQL).
 */
function pgMaxSize(): number {
  const arg = process.argv.find((a) => a.startsWith('--analysis-pg-max='));
  const raw = arg ? arg.slice('--analysis-pg-max='.length) : process.env.BENCH_ANALYSIS_PG_MAX;
  return raw === undefined ? 1_000_000 : Number(raw);
}

/**
 * The same store on PostgreSQL, side by side: analyze (unfiltered, the flagship call, and a
 * windowed one that scans) timed on both backends in this run, each with its own rules service
 * (the suggestions' exact impact and the impostor verdict), so they do the same work.
 */
async function postgresSideBySide(server: PostgresServer, sqlitePath: string, store: SqliteStore, iterations: number): Promise<Record<string, unknown>> {
  const url = await server.createDatabase('analysis');
  process.stderr.write('  copying to PostgreSQL ...\n');
  const copy = await copyToPostgres(sqlitePath, url);
  const pgStore = PgStore.connect(url);
  try {
    // each backend with its own rules service (the suggestions' exact impact, the impostor verdict)
    const sqliteRules = new RulesService(store);
    const pgRules = new RulesService(pgStore);
    const out: Record<string, unknown> = { copy };
    const windowed = { tenant: TENANT, since: '2026-10-08T05:30:00Z', until: '2026-10-22T17:45:00Z' };
    for (const [label, input] of [['unfiltered', { tenant: TENANT }], ['window_14d', windowed]] as const) {
      const sqlite = await timeCalls(() => analyzeAnomalousCallsByProcess(store, input, { rules: sqliteRules }), iterations);
      const postgres = await timeCalls(() => analyzeAnomalousCallsByProcess(pgStore, input, { rules: pgRules }), iterations, () => serverCpuMs(server));
      if (postgres.total !== sqlite.total || postgres.groups !== sqlite.groups) throw new Error(`${label}: PostgreSQL counted ${postgres.total} in ${postgres.groups} groups, SQLite ${sqlite.total} in ${sqlite.groups}`);
      out[label] = {
        sqlite,
        postgres,
        postgres_to_sqlite_p50: Math.round((postgres.p50_ms / sqlite.p50_ms) * 100) / 100,
        postgres_to_sqlite_cpu: Math.round((postgres.cpu_ms / sqlite.cpu_ms) * 100) / 100,
      };
      process.stderr.write(`  postgres ${label} ${JSON.stringify(out[label])}\n`);
    }
    return out;
  } finally {
    await pgStore.close();
  }
}

export async function runAnalysisBench(opts: { sizes?: number[]; dir?: string; iterations?: number } = {}): Promise<Record<string, unknown>> {
  const sizes = opts.sizes ?? (process.env.BENCH_ANALYSIS_SIZES ? process.env.BENCH_ANALYSIS_SIZES.split(',').map(Number) : [1_000_000, 10_000_000]);
  const dir = opts.dir ?? process.env.BENCH_ANALYSIS_DIR ?? join(tmpdir(), 'egress-triage-bench-analysis');
  mkdirSync(dir, { recursive: true });
  const out: Record<string, unknown> = {};
  const pgMax = pgMaxSize();
  let server: PostgresServer | null = null;
  try {
    for (const size of sizes) {
      const label = size >= 1_000_000 ? `${size / 1_000_000}M` : `${size / 1000}k`;
      const path = join(dir, `analysis-${label}.db`);
      let load: ReturnType<typeof bulkLoad>;
      if (process.env.BENCH_REUSE && existsSync(path)) {
        // BENCH_REUSE=1: time an already loaded store (kept by BENCH_KEEP=1) instead of reloading it
        const s = SqliteStore.open(path);
        const q = (sql: string) => s.db.prepare(sql).pluck().get() as number;
        load = {
          detections: q('SELECT count(*) FROM detections'),
          rollupRows: q('SELECT count(*) FROM detection_rollup'),
          jobs: q('SELECT count(*) FROM jobs'),
          endpoints: q('SELECT count(*) FROM endpoints'),
          ms: -1,
        };
        s.close();
      } else {
        process.stderr.write(`loading ${label} detections ...\n`);
        load = bulkLoad(path, size);
      }
      process.stderr.write(`  ${JSON.stringify(load)}\n`);
      const store = SqliteStore.open(path);
      const rules = new RulesService(store);
      const iterations = opts.iterations ?? (size > 2_000_000 ? 15 : 31);
      const analyze = await timeAnalyze(store, rules, iterations);
      process.stderr.write(`  analyze ${JSON.stringify(analyze)}\n`);
      const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
      let postgres: Record<string, unknown> | undefined;
      if (size <= pgMax) {
        // PostgreSQL's default buffer size, not the tests' small one
        server ??= await PostgresServer.start({ sharedBuffers: '128MB', extra: ['-c max_wal_size=2GB'] });
        postgres = await postgresSideBySide(server, path, store, iterations);
      }
      const entry: Record<string, unknown> = {
        load,
        db_mb: Math.round(statSync(path).size / 2 ** 20),
        ...storeBytes(store, load.detections),
        analyze_warm: analyze,
        rss_mb_after_analyze: rss,
        ...(postgres ? { postgres } : {}),
      };
      // Rule create with retroactive suppression: the genuine tailscaled binary (the suggested rule).
      const input = { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled', process_sha256: GENUINE } };
      const tp = performance.now();
      const preview = await rules.preview(TENANT, input);
      const previewMs = Math.round(performance.now() - tp);
      const tc = performance.now();
      const created = await rules.create(TENANT, input, 'bench');
      const createMs = Math.round(performance.now() - tc);
      entry.rule_preview = { ms: previewMs, would_suppress: preview.would_suppress };
      entry.rule_create = { ms: createMs, suppressed: created.suppressed };
      const after = await timeAnalyze(store, rules, Math.min(iterations, 5));
      entry.analyze_after_rule = after;
      const tr = performance.now();
      const del = await rules.delete(TENANT, created.rule.rule_id, { restore: true }, 'bench');
      entry.rule_delete_restore = { ms: Math.round(performance.now() - tr), restored: del.restored };
      // Thin matches: every "Unknown"-process call (8% of the store, spread over every page: ~1.04M at
      // 10M, ~80k at 1M), and the genuine tailscaled narrowed to the owners org-1* (a scoped rule: job
      // path).
      if (size >= 1_000_000) {
        for (const [label, conditions] of [
          ['rule_create_1M_process', { process: 'Unknown' }],
          ['rule_create_scoped', { ...input.conditions, owner: 'org-1*' }],
        ] as const) {
          const cand = { detection_id: input.detection_id, conditions: conditions as Record<string, string> };
          const pv = await timed(() => rules.preview(TENANT, cand));
          const c1 = await timed(() => rules.create(TENANT, cand, 'bench'));
          const r1 = await timed(() => rules.delete(TENANT, c1.value.rule.rule_id, { restore: true }, 'bench'));
          entry[label] = {
            conditions,
            preview_ms: pv.ms,
            preview_cpu_ms: pv.cpu_ms,
            would_suppress: pv.value.would_suppress,
            create_ms: c1.ms,
            create_cpu_ms: c1.cpu_ms,
            suppressed: c1.value.suppressed,
            restore_ms: r1.ms,
            restore_cpu_ms: r1.cpu_ms,
            restored: r1.value.restored,
          };
          process.stderr.write(`  ${label} ${JSON.stringify(entry[label])}\n`);
        }
      }
      entry.rss_mb_end = Math.round(process.memoryUsage().rss / 2 ** 20);
      process.stderr.write(`  ${JSON.stringify(entry)}\n`);
      out[`detections_${label}`] = entry;
      store.close();
      if (!process.env.BENCH_KEEP) for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
    }
  } finally {
    await server?.stop();
  }
  out.targets = { analyze_1M_p50_ms: 300, analyze_10M_p50_ms: 2000, create_1M_suppress_ms: 5000 };
  return out;
}

