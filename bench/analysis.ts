/**
 * Analysis and rule benchmarks (docs/analysis.md). Bulk-loads synthetic detections straight into
 * SQLite (dictionaries, jobs, runs, detections and rollup in big transactions), then times:
 *  - warm analyze p50 at 1M and 10M detections (+ RSS),
 *  - rule create that retroactively suppresses ~1M detections.
 *
 * Cardinalities: ~50 detections per job-day; each job has a profile of ~12 recurring anomalous
 * (process, destination) pairs plus a random tail; tailscaled talks to peers of its org's tailnet
 * (300 peers per org, ~8 per job plus strays), "Unknown" hits random public IPs; a renamed
 * tailscaled impostor fetches from gist.githubusercontent.com in a few repos.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { SqliteStore } from '../src/storage/sqlite/sqlite-store.js';
import { DAY_MS, ROLLUP_UPSERT } from '../src/storage/sqlite/ingest-session.js';
import { analyzeAnomalousCallsByProcess } from '../src/analysis/analyze-by-process.js';
import { RulesService } from '../src/rules/service.js';

const TENANT = 'bench';
const GENUINE = 'a1'.repeat(32);
const IMPOSTOR = 'b2'.repeat(32);

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
  const peer = (org: number, i: number) => `100.${64 + (org % 60)}.${Math.floor(i / 250)}.${(i % 250) + 1}`;
  const pub = () => `${[3, 13, 34, 52, 104, 151, 185][rng.int(7)]}.${rng.int(256)}.${rng.int(256)}.${1 + rng.int(250)}`;
  const pairFor = (kind: string, org: number): Pair => {
    switch (kind) {
      case 'ts': {
        const r = rng.next();
        if (r < 0.15) return { p: procId.get('ts')!, e: ep(`derp${1 + rng.int(28)}.tailscale.com`, 443, false), ip: ipOf(pub()), direct: 0, port: 443 };
        if (r < 0.2) return { p: procId.get('ts')!, e: ep('controlplane.tailscale.com', 443, false), ip: ipOf('192.200.0.101'), direct: 0, port: 443 };
        const ip = peer(org, rng.int(300));
        return { p: procId.get('ts')!, e: ep(ip, 41641, true), ip: ipOf(ip), direct: 1, port: 41641 };
      }
      case 'tg':
        return { p: procId.get('tg')!, e: ep(`relay-${rng.int(40)}.twingate.com`, 30000 + rng.int(1000), false), ip: ipOf(pub()), direct: 0, port: 443 };
      case 'docker':
        return { p: procId.get('docker')!, e: ep(`registry-${rng.int(60)}.quay.io`, 443, false), ip: ipOf(pub()), direct: 0, port: 443 };
      case 'curl':
        return { p: procId.get('curl')!, e: ep(`api${rng.int(3000)}.example-cdn.com`, 443, false), ip: ipOf(pub()), direct: 0, port: 443 };
      case 'node':
        return { p: procId.get('node')!, e: ep(`pkg${rng.int(500)}.npm-mirror.net`, 443, false), ip: ipOf(pub()), direct: 0, port: 443 };
      case 'cfd': {
        const ip = `198.41.${rng.next() < 0.5 ? 192 : 200}.${1 + rng.int(250)}`;
        return { p: procId.get('cfd')!, e: ep(ip, 7844, true), ip: ipOf(ip), direct: 1, port: 7844 };
      }
      default: {
        const ip = pub();
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
    `INSERT INTO detections (tenant_id, type_id, job_ref, run_ref, endpoint_id, ip_id, direct_ip, port, protocol, process_id, ts, status, rule_id, ext)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, '')`,
  );
  const insRoll = db.prepare(ROLLUP_UPSERT);
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
        insRoll.run(tenantId, typeId, 0, 0, d, jobRef, p, e, ip, cnt, f, l);
      }
    })();
  }
  db.pragma('synchronous = NORMAL');
  db.exec('ANALYZE');
  const rollupRows = db.prepare('SELECT count(*) FROM detection_rollup').pluck().get() as number;
  store.close();
  return { detections: n, rollupRows, jobs: nJobs, endpoints: epIds.size, ms: Math.round(performance.now() - t0) };
}

function p50(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return Math.round(s[Math.floor(s.length / 2)]! * 10) / 10;
}

async function timeAnalyze(store: SqliteStore, rules: RulesService, iterations: number): Promise<{ p50_ms: number; min_ms: number; max_ms: number; groups: number; total: number }> {
  await analyzeAnomalousCallsByProcess(store, { tenant: TENANT }, { rules }); // warm
  const xs: number[] = [];
  let last = { groups: 0, total: 0 };
  for (let i = 0; i < iterations; i++) {
    const t = performance.now();
    const r = await analyzeAnomalousCallsByProcess(store, { tenant: TENANT }, { rules });
    xs.push(performance.now() - t);
    last = { groups: r.processes.length, total: r.total_anomalies_scanned };
  }
  return { p50_ms: p50(xs), min_ms: Math.round(Math.min(...xs)), max_ms: Math.round(Math.max(...xs)), ...last };
}

export async function runAnalysisBench(opts: { sizes?: number[]; dir?: string; iterations?: number } = {}): Promise<Record<string, unknown>> {
  const sizes = opts.sizes ?? (process.env.BENCH_ANALYSIS_SIZES ? process.env.BENCH_ANALYSIS_SIZES.split(',').map(Number) : [1_000_000, 10_000_000]);
  const dir = opts.dir ?? join(tmpdir(), 'egress-triage-bench-analysis');
  mkdirSync(dir, { recursive: true });
  const out: Record<string, unknown> = {};
  for (const size of sizes) {
    const label = size >= 1_000_000 ? `${size / 1_000_000}M` : `${size / 1000}k`;
    const path = join(dir, `analysis-${label}.db`);
    process.stderr.write(`loading ${label} detections ...\n`);
    const load = bulkLoad(path, size);
    process.stderr.write(`  ${JSON.stringify(load)}\n`);
    const store = SqliteStore.open(path);
    const rules = new RulesService(store);
    const iterations = opts.iterations ?? (size > 2_000_000 ? 5 : 11);
    const analyze = await timeAnalyze(store, rules, iterations);
    process.stderr.write(`  analyze ${JSON.stringify(analyze)}\n`);
    const rss = Math.round(process.memoryUsage().rss / 2 ** 20);
    const entry: Record<string, unknown> = {
      load,
      db_mb: Math.round(statSync(path).size / 2 ** 20),
      analyze_warm: analyze,
      rss_mb_after_analyze: rss,
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
    entry.rss_mb_end = Math.round(process.memoryUsage().rss / 2 ** 20);
    process.stderr.write(`  ${JSON.stringify(entry)}\n`);
    out[`detections_${label}`] = entry;
    store.close();
    if (!process.env.BENCH_KEEP) for (const s of ['', '-wal', '-shm']) rmSync(path + s, { force: true });
  }
  out.targets = { analyze_1M_p50_ms: 300, analyze_10M_p50_ms: 2000, create_1M_suppress_ms: 5000 };
  return out;
}

