/**
 * Streams the sample tenant as native NDJSON. Deterministic (seeded sfc32, fixed clock), constant
 * memory (one job run at a time; per-round state is O(workflows)), JSON built by hand for speed.
 */
import { createWriteStream } from 'node:fs';
import { createGzip } from 'node:zlib';
import type { Writable } from 'node:stream';
import { CHAINS, PROCESSES, cgnatIpFromKey, ipsForDomain, publicIpFromKey, type ChainKey, type ProcessKey } from './catalog.js';
import { Rng, derive, hashString } from './prng.js';
import { planTenant, type GenerateOptions, type PlannedJob, type TenantPlan } from './plan.js';
import { SCENARIO, SCENARIO_NAMES, type ScenarioName } from './scenarios.js';

export interface GenerateSummary {
  events: number;
  /** Runs per job (the --runs value). */
  runs: number;
  learningRuns: number;
  /** Total job runs emitted (jobs x runs). */
  jobRuns: number;
  /** Total workflow runs (distinct run_id values). */
  workflowRuns: number;
  jobs: number;
  workflows: number;
  repos: number;
  orgs: number;
  seed: number | string;
  firstTimestamp: string | null;
  lastTimestamp: string | null;
  /** Events per scenario. */
  scenarios: Record<ScenarioName, number>;
}

const SCEN_INDEX: Record<ScenarioName, number> = Object.fromEntries(SCENARIO_NAMES.map((n, i) => [n, i])) as Record<
  ScenarioName,
  number
>;
const MAX_EVENTS_PER_JOB_RUN = 60_000;
const UNKNOWN_PROCESS = `{"name":"${SCENARIO.unknownProcess.name}","sha256":"${SCENARIO.unknownProcess.sha256}"}`;

function slug(owner: string): string {
  return owner.split('-')[0]!;
}

/** One job run being assembled. */
class JobRun {
  ts: number[] = [];
  bodies: string[] = [];
  scen: number[] = [];
  private procCache = new Map<ChainKey, string>();
  rng!: Rng;
  start = 0;
  dur = 0;
  workerPid = 0;
  dockerdPid = 0;
  containerdPid = 0;

  reset(rng: Rng, start: number, dur: number): void {
    this.ts.length = 0;
    this.bodies.length = 0;
    this.scen.length = 0;
    this.procCache.clear();
    this.rng = rng;
    this.start = start;
    this.dur = dur;
    this.workerPid = rng.int(1600, 3200);
    this.dockerdPid = rng.int(700, 950);
    this.containerdPid = rng.int(480, 690);
  }

  /** Time at a random point inside [from, to] fractions of the job. */
  at(from: number, to: number): number {
    return this.start + Math.floor(this.dur * (from + (to - from) * this.rng.next()));
  }

  add(t: number, scen: number, body: string): void {
    if (this.ts.length >= MAX_EVENTS_PER_JOB_RUN) return;
    this.ts.push(t);
    this.bodies.push(body);
    this.scen.push(scen);
  }

  proc(key: ChainKey): string {
    let s = this.procCache.get(key);
    if (s !== undefined) return s;
    const chain = CHAINS[key] as readonly ProcessKey[];
    s = '';
    let pid = 0;
    for (let i = chain.length - 1; i >= 0; i--) {
      const pk = chain[i]!;
      const p = PROCESSES[pk];
      if (pk === 'runnerWorker') pid = this.workerPid;
      else if (pk === 'systemd') pid = 1;
      else if (pk === 'dockerd') pid = this.dockerdPid;
      else if (pk === 'containerd') pid = this.containerdPid;
      else pid = pid + this.rng.int(3, 400);
      s = `{"name":"${p.name}","path":"${p.path}","sha256":"${p.sha256}","pid":${pid}${s ? `,"parent":${s}` : ''}}`;
    }
    s = flat(s);
    this.procCache.set(key, s);
    return s;
  }
}

/**
 * Returns a flat (contiguous) copy of an ASCII string. Template literals build V8 rope strings; a body
 * is copied into the output tens of times, and copying a deep rope costs far more than one flattening.
 */
function flat(text: string): string {
  return Buffer.from(text, 'latin1').toString('latin1');
}

function domainBody(domain: string, ip: string, port: number, proto: 'tcp' | 'udp', proc: string, status = 'allowed'): string {
  return flat(`","domain":"${domain}","ip":"${ip}","port":${port},"protocol":"${proto}","process":${proc},"status":"${status}"}`);
}

function ipBody(ip: string, port: number, proto: 'tcp' | 'udp', proc: string, status = 'allowed'): string {
  return flat(`","ip":"${ip}","port":${port},"protocol":"${proto}","process":${proc},"status":"${status}"}`);
}

function resolve(domain: string, rng: Rng): string {
  const ips = ipsForDomain(domain);
  return ips.length === 1 ? ips[0]! : ips[Math.floor(rng.next() * ips.length)]!;
}

type ScenarioFn = (run: JobRun, job: PlannedJob, plan: TenantPlan, size: number) => void;

function count(rng: Rng, lo: number, hi: number, size: number): number {
  return Math.max(1, Math.round(rng.int(lo, hi) * size));
}

/** Stable per (tenant, key) randomness: same choice in every run. */
function stable(plan: TenantPlan, ...parts: number[]): Rng {
  return new Rng(derive(plan.seedKey, 90, ...parts));
}

const SCENARIO_FNS: Record<Exclude<ScenarioName, 'normal'>, ScenarioFn> = {
  'cache-shard-drift'(run, job) {
    const i = SCEN_INDEX['cache-shard-drift'];
    const home = job.endpoints.find((e) => e.domain.startsWith('productionresultssa'))?.domain ?? '';
    let shard = `productionresultssa${run.rng.int(0, 19)}.blob.core.windows.net`;
    if (shard === home) shard = `productionresultssa${run.rng.int(20, 23)}.blob.core.windows.net`;
    const proc = run.proc('runnerWorker');
    const n = run.rng.int(1, 3);
    for (let k = 0; k < n; k++) run.add(run.at(0.9, 1), i, domainBody(shard, resolve(shard, run.rng), 443, 'tcp', proc));
  },

  tailscale(run, job, plan, size) {
    const i = SCEN_INDEX.tailscale;
    const rng = run.rng;
    const proc = run.proc('tailscaled');
    const js = stable(plan, 1, job.index);
    const home = js.int(1, SCENARIO.tailscale.derpCount);
    const cp = 'controlplane.tailscale.com';
    for (let k = rng.int(1, 3); k > 0; k--) run.add(run.at(0.1, 0.2), i, domainBody(cp, resolve(cp, rng), 443, 'tcp', proc));
    run.add(run.at(0.12, 0.3), i, domainBody('log.tailscale.com', resolve('log.tailscale.com', rng), 443, 'tcp', proc));
    const derps = [home];
    for (let k = rng.int(0, 3); k > 0; k--) derps.push(rng.int(1, SCENARIO.tailscale.derpCount));
    for (const d of derps) {
      const host = `derp${d}.tailscale.com`;
      run.add(run.at(0.12, 0.25), i, domainBody(host, resolve(host, rng), 443, 'tcp', proc));
      // STUN goes to the DERP server's address straight from the derp map: no DNS, a direct-IP call.
      run.add(run.at(0.12, 0.25), i, ipBody(publicIpFromKey(hashString(`derp-stun-${d}`)), SCENARIO.tailscale.stunPort, 'udp', proc));
    }
    const orgKey = hashString(job.owner);
    const peers = count(rng, 6, 30, size);
    for (let k = 0; k < peers; k++) {
      const ip = rng.chance(0.3) ? cgnatIpFromKey(derive(orgKey, 11, rng.int(0, 11))) : cgnatIpFromKey(rng.nextU32());
      run.add(run.at(0.15, 1), i, ipBody(ip, SCENARIO.tailscale.peerPort, 'udp', proc));
    }
  },

  twingate(run, job, plan, size) {
    const i = SCEN_INDEX.twingate;
    const rng = run.rng;
    const proc = run.proc('twingated');
    const net = `${slug(job.owner)}.twingate.com`;
    run.add(run.at(0.1, 0.2), i, domainBody(net, resolve(net, rng), 443, 'tcp', proc));
    const ctl = SCENARIO.twingate.domains[0];
    run.add(run.at(0.1, 0.2), i, domainBody(ctl, resolve(ctl, rng), 443, 'tcp', proc));
    const orgKey = hashString(job.owner);
    const [lo, hi] = SCENARIO.twingate.relayPortRange;
    for (let k = count(rng, 2, 6, size); k > 0; k--) {
      const relay = publicIpFromKey(derive(orgKey, 12, rng.int(0, 3)));
      run.add(run.at(0.15, 1), i, ipBody(relay, rng.int(lo, hi), 'tcp', proc));
    }
  },

  zerotier(run, _job, _plan, size) {
    const i = SCEN_INDEX.zerotier;
    const rng = run.rng;
    const proc = run.proc('zerotier');
    const port = SCENARIO.zerotier.port;
    for (const root of SCENARIO.zerotier.roots) run.add(run.at(0.1, 0.3), i, ipBody(root, port, 'udp', proc));
    for (let k = count(rng, 2, 8, size); k > 0; k--) run.add(run.at(0.2, 1), i, ipBody(publicIpFromKey(rng.nextU32()), port, 'udp', proc));
  },

  netbird(run, job, plan, size) {
    const i = SCEN_INDEX.netbird;
    const rng = run.rng;
    const proc = run.proc('netbird');
    for (const d of SCENARIO.netbird.domains) run.add(run.at(0.1, 0.2), i, domainBody(d, resolve(d, rng), 443, 'tcp', proc));
    const relay = SCENARIO.netbird.relays[stable(plan, 2, job.index).int(0, SCENARIO.netbird.relays.length - 1)]!;
    run.add(run.at(0.15, 0.3), i, domainBody(relay, resolve(relay, rng), 443, 'tcp', proc));
    run.add(run.at(0.15, 0.3), i, domainBody(SCENARIO.netbird.stun, resolve(SCENARIO.netbird.stun, rng), 3478, 'udp', proc));
    const orgKey = hashString(job.owner);
    for (let k = count(rng, 2, 10, size); k > 0; k--) {
      const ip = rng.chance(0.5) ? cgnatIpFromKey(derive(orgKey, 13, rng.int(0, 7))) : cgnatIpFromKey(rng.nextU32());
      run.add(run.at(0.2, 1), i, ipBody(ip, SCENARIO.netbird.peerPort, 'udp', proc));
    }
  },

  cloudflared(run, _job, _plan, size) {
    const i = SCEN_INDEX.cloudflared;
    const rng = run.rng;
    const proc = run.proc('cloudflared');
    const port = SCENARIO.cloudflared.port;
    for (const d of SCENARIO.cloudflared.domains.slice(0, 2)) run.add(run.at(0.1, 0.2), i, domainBody(d, resolve(d, rng), port, 'tcp', proc));
    if (rng.chance(0.5)) {
      const u = SCENARIO.cloudflared.domains[2];
      run.add(run.at(0.1, 0.15), i, domainBody(u, resolve(u, rng), 443, 'tcp', proc));
    }
    for (let k = count(rng, 2, 4, size); k > 0; k--) {
      const ip = rng.pick(SCENARIO.cloudflared.ipPrefixes) + rng.int(1, 254);
      run.add(run.at(0.15, 1), i, ipBody(ip, port, 'udp', proc));
    }
  },

  warp(run, _job, _plan, size) {
    const i = SCEN_INDEX.warp;
    const rng = run.rng;
    const proc = run.proc('warpSvc');
    const d = SCENARIO.warp.domains[0];
    run.add(run.at(0.1, 0.2), i, domainBody(d, resolve(d, rng), 443, 'tcp', proc));
    for (let k = count(rng, 2, 5, size); k > 0; k--) {
      run.add(run.at(0.15, 1), i, ipBody(SCENARIO.warp.ipPrefix + rng.int(1, 12), SCENARIO.warp.port, 'udp', proc));
    }
    for (let k = rng.int(1, 3); k > 0; k--) run.add(run.at(0.15, 1), i, ipBody(rng.pick(SCENARIO.warp.dohIps), 443, 'tcp', proc));
  },

  openvpn(run, job, plan) {
    const i = SCEN_INDEX.openvpn;
    const rng = run.rng;
    const proc = run.proc('openvpn');
    const js = stable(plan, 3, job.index);
    const useDomain = js.chance(0.5);
    const host = `vpn.${slug(job.owner)}.com`;
    const direct = publicIpFromKey(derive(hashString(job.owner), 14));
    for (let k = rng.int(2, 4); k > 0; k--) {
      const t = run.at(0.1, 1);
      run.add(t, i, useDomain ? domainBody(host, resolve(host, rng), SCENARIO.openvpn.port, 'udp', proc) : ipBody(direct, SCENARIO.openvpn.port, 'udp', proc));
    }
  },

  'new-registries'(run, job, plan, size) {
    const i = SCEN_INDEX['new-registries'];
    const rng = run.rng;
    const js = stable(plan, 4, job.index);
    const proc = run.proc(js.chance(0.7) ? 'dockerd' : 'containerd');
    const acct = 100_000_000_000 + (derive(hashString(job.owner), 15) % 900_000_000_000);
    const groups: string[][] = [
      ['quay.io', 'cdn01.quay.io'],
      ['public.ecr.aws', 'd5l0dvt14r5h8.cloudfront.net'],
      [`${acct}${SCENARIO.newRegistries.ecrSuffix}`, 'prod-us-east-1-starport-layer-bucket.s3.us-east-1.amazonaws.com'],
      ['mcr.microsoft.com', 'eastus.data.mcr.microsoft.com'],
    ];
    const chosen = js.sample(groups, js.int(1, 2));
    for (const g of chosen) {
      run.add(run.at(0.3, 0.5), i, domainBody(g[0]!, resolve(g[0]!, rng), 443, 'tcp', proc));
      for (let k = count(rng, 1, 4, size); k > 0; k--) run.add(run.at(0.3, 0.6), i, domainBody(g[1]!, resolve(g[1]!, rng), 443, 'tcp', proc));
    }
  },

  'new-domains'(run, job, plan) {
    const i = SCEN_INDEX['new-domains'];
    const rng = run.rng;
    const js = stable(plan, 5, job.index);
    const domains = js.sample(SCENARIO.newDomains.domains, js.int(1, 3));
    for (const d of domains) {
      const proc = run.proc(hashString(d + job.index) % 2 === 0 ? 'curl' : 'npmNode');
      for (let k = rng.int(1, 3); k > 0; k--) run.add(run.at(0.3, 0.95), i, domainBody(d, resolve(d, rng), 443, 'tcp', proc));
    }
  },

  impostor(run, job, plan) {
    const i = SCEN_INDEX.impostor;
    const rng = run.rng;
    const proc = run.proc('impostor');
    const gist = SCENARIO.impostor.domains[0];
    for (let k = rng.int(1, 2); k > 0; k--) run.add(run.at(0.3, 0.4), i, domainBody(gist, resolve(gist, rng), 443, 'tcp', proc));
    const c2 = SCENARIO.impostor.ips[stable(plan, 6, job.index).int(0, SCENARIO.impostor.ips.length - 1)]!;
    for (let k = rng.int(2, 5); k > 0; k--) run.add(run.at(0.4, 1), i, ipBody(c2, SCENARIO.impostor.port, 'tcp', proc));
  },

  'npm-postinstall'(run) {
    const i = SCEN_INDEX['npm-postinstall'];
    const rng = run.rng;
    const proc = run.proc('postinstall');
    const d = SCENARIO.npmPostinstall.domain;
    for (let k = rng.int(1, 2); k > 0; k--) run.add(run.at(0.25, 0.45), i, domainBody(d, resolve(d, rng), 443, 'tcp', proc));
  },

  blocked(run) {
    const i = SCEN_INDEX.blocked;
    const rng = run.rng;
    if (rng.chance(0.6)) {
      const d = 'pastebin.com';
      run.add(run.at(0.3, 0.9), i, domainBody(d, resolve(d, rng), 443, 'tcp', run.proc('curl'), 'blocked'));
    } else {
      const d = 'pool.supportxmr.com';
      const proc = run.proc('minerFromPostinstall');
      for (let k = rng.int(1, 2); k > 0; k--) run.add(run.at(0.3, 0.9), i, domainBody(d, resolve(d, rng), SCENARIO.blocked.minerPort, 'tcp', proc, 'blocked'));
    }
  },

  'unknown-process'(run) {
    const i = SCEN_INDEX['unknown-process'];
    const rng = run.rng;
    for (let k = rng.int(1, 2); k > 0; k--) {
      run.add(run.at(0.1, 1), i, ipBody(publicIpFromKey(rng.nextU32()), rng.pick([443, 443, 80, 8080]), 'tcp', UNKNOWN_PROCESS));
    }
  },
};

/** Fast RFC 3339 UTC with milliseconds ("2026-11-19T12:34:56.789Z"): caches the date-and-hour prefix. */
export class IsoClock {
  private hourStart = -1;
  private prefix = '';
  private prefixBytes = Buffer.alloc(14);

  /** Writes the 24-byte timestamp at `off`; returns the new offset. */
  write(buf: Buffer, off: number, ms: number): number {
    const hs = ms - (ms % 3_600_000);
    if (hs !== this.hourStart) {
      this.hourStart = hs;
      this.prefix = new Date(hs).toISOString().slice(0, 14);
      this.prefixBytes = Buffer.from(this.prefix, 'latin1');
    }
    const p = this.prefixBytes;
    for (let i = 0; i < 14; i++) buf[off + i] = p[i]!;
    off += 14;
    const rem = ms - hs;
    const min = Math.floor(rem / 60_000);
    const sec = Math.floor((rem % 60_000) / 1000);
    const milli = rem % 1000;
    buf[off] = 48 + Math.floor(min / 10);
    buf[off + 1] = 48 + (min % 10);
    buf[off + 2] = 58; // ':'
    buf[off + 3] = 48 + Math.floor(sec / 10);
    buf[off + 4] = 48 + (sec % 10);
    buf[off + 5] = 46; // '.'
    buf[off + 6] = 48 + Math.floor(milli / 100);
    buf[off + 7] = 48 + (Math.floor(milli / 10) % 10);
    buf[off + 8] = 48 + (milli % 10);
    buf[off + 9] = 90; // 'Z'
    return off + 10;
  }

  format(ms: number): string {
    const hs = ms - (ms % 3_600_000);
    if (hs !== this.hourStart) {
      this.hourStart = hs;
      this.prefix = new Date(hs).toISOString().slice(0, 14); // "2026-11-19T12:"
    }
    const rem = ms - hs;
    const min = Math.floor(rem / 60_000);
    const sec = Math.floor((rem % 60_000) / 1000);
    const milli = rem % 1000;
    return `${this.prefix}${min < 10 ? '0' : ''}${min}:${sec < 10 ? '0' : ''}${sec}.${milli < 10 ? '00' : milli < 100 ? '0' : ''}${milli}Z`;
  }
}

/**
 * One job run, ready to print: line q is `head + formatTimestamp(ms[q]) + bodies[q]` (no trailing newline).
 * The object and its arrays are reused between yields: consume before resuming.
 */
export interface RunBatch {
  head: string;
  count: number;
  /** Event times, epoch ms, ascending. */
  ms: number[];
  bodies: string[];
}

/** The core: a sync generator yielding one job run at a time, in output order. Fills `stats`. */
export function* jobRunBatches(plan: TenantPlan, stats: GenerateSummary): Generator<RunBatch, void, undefined> {
  const slot = (plan.endMs - plan.startMs) / plan.runs;
  const seq = new Rng(derive(plan.seedKey, 20));
  const tenantPart = plan.tenant === undefined ? '' : `"tenant":${JSON.stringify(plan.tenant)},`;
  const size = Math.max(0.1, Math.min(3, plan.eventsPerJobRun / SCENARIO.defaults.eventsPerJobRun));
  const keepEndpoints = Math.max(3, Math.floor(plan.eventsPerJobRun * 0.5));
  // Tiny tenants (few jobs carry every scenario, or small per-run budgets) cap anomaly volume per run.
  const anomalyCap =
    plan.eventsPerJobRun < 30 || plan.jobs.length < 20 ? Math.max(4, Math.floor(plan.eventsPerJobRun * 0.6)) : Infinity;
  const run = new JobRun();
  const batch: RunBatch = { head: '', count: 0, ms: [], bodies: [] };
  const order: number[] = [];
  let runId = SCENARIO.runIdBase;
  let jobId = SCENARIO.jobIdBase;
  const normalIdx = SCEN_INDEX.normal;
  const scenCounts = new Array<number>(SCENARIO_NAMES.length).fill(0);
  let first = Infinity;
  let last = -Infinity;

  for (let r = 0; r < plan.runs; r++) {
    const roundStart = plan.startMs + r * slot;
    const starts = plan.workflows.map((_, w) => ({
      w,
      t: Math.floor(roundStart + new Rng(derive(plan.seedKey, 21, w, r)).next() * slot * 0.8),
    }));
    starts.sort((a, b) => a.t - b.t || a.w - b.w);
    for (const { w, t: wfStart } of starts) {
      const wf = plan.workflows[w]!;
      runId += seq.int(1, 13);
      stats.workflowRuns++;
      let t = wfStart;
      const jobCap = Math.max(3_000, (slot * 0.15) / wf.jobs.length);
      for (const job of wf.jobs) {
        jobId += seq.int(1, 4);
        const rng = new Rng(derive(plan.seedKey, 22, job.index, r));
        const dur = Math.min(rng.int(60_000, 420_000), jobCap);
        run.reset(rng, t, dur);
        t += dur + Math.min(rng.int(2_000, 20_000), jobCap / 10);

        // Tiny per-run budgets cap anomaly volume (a scenario's first run always fires).
        const nScen = job.scenarios.length;
        for (let q = 0; q < nScen; q++) {
          const a = job.scenarios[(q + r) % nScen]!;
          if (r < a.startRun) continue;
          const first = r === a.startRun;
          if (!first && run.ts.length >= anomalyCap) continue;
          if (first || rng.chance(a.perRun)) SCENARIO_FNS[a.name](run, job, plan, size);
        }
        const anomalies = run.ts.length;
        const target = Math.round(plan.eventsPerJobRun * (0.75 + 0.5 * rng.next()));
        const eps = job.endpoints.length > keepEndpoints ? job.endpoints.slice(0, keepEndpoints) : job.endpoints;
        const k = eps.length;
        const nNormal = Math.max(k, target - anomalies);
        const bodies: string[] = new Array<string>(k);
        let totalW = 0;
        for (let e = 0; e < k; e++) {
          const p = eps[e]!;
          bodies[e] = domainBody(p.domain, resolve(p.domain, rng), p.port, 'tcp', run.proc(p.chain));
          totalW += p.weight;
        }
        for (let n = 0; n < nNormal; n++) {
          let e = n;
          if (n >= k) {
            let x = rng.next() * totalW;
            for (e = 0; e < k - 1; e++) {
              x -= eps[e]!.weight;
              if (x < 0) break;
            }
          }
          const p = eps[e]!;
          run.add(run.at(p.from, p.to), normalIdx, bodies[e]!);
        }

        const head = flat(
          `{${tenantPart}"owner":"${job.owner}","repo":"${job.repo}","workflow":"${job.workflow}","job":"${job.job}",` +
          `"run_id":"${runId}","run_attempt":1,"job_id":"${jobId}","timestamp":"`,
        );
        const n = run.ts.length;
        order.length = n;
        for (let q = 0; q < n; q++) order[q] = q;
        const ts = run.ts;
        order.sort((a, b) => ts[a]! - ts[b]! || a - b);
        batch.head = head;
        batch.count = n;
        batch.ms.length = n;
        batch.bodies.length = n;
        for (let q = 0; q < n; q++) {
          const idx = order[q]!;
          batch.ms[q] = ts[idx]!;
          batch.bodies[q] = run.bodies[idx]!;
          scenCounts[run.scen[idx]!]!++;
        }
        if (n > 0) {
          if (ts[order[0]!]! < first) first = ts[order[0]!]!;
          if (ts[order[n - 1]!]! > last) last = ts[order[n - 1]!]!;
        }
        stats.events += n;
        stats.jobRuns++;
        SCENARIO_NAMES.forEach((name, i) => (stats.scenarios[name] = scenCounts[i]!));
        stats.firstTimestamp = first === Infinity ? null : new Date(first).toISOString();
        stats.lastTimestamp = last === -Infinity ? null : new Date(last).toISOString();
        yield batch;
      }
    }
  }
}

export function emptySummary(plan: TenantPlan): GenerateSummary {
  return {
    events: 0,
    runs: plan.runs,
    learningRuns: plan.learningRuns,
    jobRuns: 0,
    workflowRuns: 0,
    jobs: plan.jobs.length,
    workflows: plan.workflows.length,
    repos: plan.repos.length,
    // the orgs that have a repo: a tiny tenant plans four but fills only the first ones
    orgs: new Set(plan.repos.map((r) => r.owner)).size,
    seed: plan.seed,
    firstTimestamp: null,
    lastTimestamp: null,
    scenarios: Object.fromEntries(SCENARIO_NAMES.map((n) => [n, 0])) as Record<ScenarioName, number>,
  };
}

/** Every line of the tenant (no trailing newline), in output order. Returns the summary when done. */
export function* generateLines(opts: GenerateOptions = {}): Generator<string, GenerateSummary, undefined> {
  const plan = planTenant(opts);
  const stats = emptySummary(plan);
  const clock = new IsoClock();
  for (const b of jobRunBatches(plan, stats)) {
    for (let q = 0; q < b.count; q++) yield b.head + clock.format(b.ms[q]!) + b.bodies[q]!;
  }
  return stats;
}

/** Calls `sink` once per line (no trailing newline); awaits it when it returns a promise. */
export async function generateTenant(
  opts: GenerateOptions,
  sink: (line: string) => void | Promise<void>,
): Promise<GenerateSummary> {
  const plan = planTenant(opts);
  const stats = emptySummary(plan);
  const clock = new IsoClock();
  for (const b of jobRunBatches(plan, stats)) {
    for (let q = 0; q < b.count; q++) {
      const res = sink(b.head + clock.format(b.ms[q]!) + b.bodies[q]!);
      if (res && typeof (res as Promise<void>).then === 'function') await res;
    }
  }
  return stats;
}

export interface WriteHooks {
  /** Called after every flushed chunk with events written so far and the planned estimate. */
  onProgress?: (events: number, estimated: number) => void;
  /** Gzip level for `.gz` targets (default 3). */
  gzipLevel?: number;
}

const CHUNK_BYTES = 1 << 20;

/** Node's Buffer has these fast single-encoding writers on its prototype (untyped in @types/node). */
type FastBuffer = Buffer & { latin1Write(text: string, offset: number): number };

function waitDrain(stream: Writable): Promise<void> {
  return new Promise((resolve, reject) => {
    const onDrain = (): void => {
      stream.off('error', onError);
      resolve();
    };
    const onError = (err: Error): void => {
      stream.off('drain', onDrain);
      reject(err);
    };
    stream.once('drain', onDrain);
    stream.once('error', onError);
  });
}

function finished(stream: Writable, event: 'finish' | 'close'): Promise<void> {
  return new Promise((resolve, reject) => {
    stream.once(event, () => resolve());
    stream.once('error', reject);
  });
}

/**
 * Writes the tenant as NDJSON to a file path (`.gz` suffix: gzip) or an open writable stream
 * (which is not ended). Buffered, respects backpressure.
 */
export async function writeTenant(
  opts: GenerateOptions,
  out: string | Writable,
  hooks: WriteHooks = {},
): Promise<GenerateSummary> {
  const plan = planTenant(opts);
  const stats = emptySummary(plan);
  let sink: Writable;
  let done: Promise<void> = Promise.resolve();
  // Rejects when our file, or the gzip stream in front of it, fails. Behind gzip the file's error
  // (a folder that does not exist) reaches no one else: the writer waited for a drain that never
  // came, the event loop emptied, and `generate` exited 0 having written nothing.
  let failed: Promise<never> | null = null;
  if (typeof out === 'string') {
    const file = createWriteStream(out, { highWaterMark: 4 << 20 });
    const streams: Writable[] = [file];
    if (out.endsWith('.gz')) {
      const gz = createGzip({ level: hooks.gzipLevel ?? 3 });
      gz.pipe(file);
      streams.push(gz);
      sink = gz;
    } else {
      sink = file;
    }
    failed = new Promise((_, reject) => {
      for (const st of streams) st.once('error', reject);
    });
    failed.catch(() => undefined);
    done = finished(file, 'close');
    done.catch(() => undefined);
  } else {
    sink = out;
  }
  let errored: Error | null = null;
  const onError = (err: Error): void => {
    errored = err;
  };
  sink.on('error', onError);

  // Lines are packed straight into 1 MiB chunks. For our own file/gzip targets, chunks are recycled
  // once the stream reports them consumed (fewer large allocations, less GC).
  const clock = new IsoClock();
  const ascii = plan.tenant === undefined || /^[\x20-\x7e]*$/.test(plan.tenant);
  const recycle = typeof out === 'string';
  const pool: Buffer[] = [];
  let buf = Buffer.allocUnsafe(CHUNK_BYTES) as FastBuffer;
  let off = 0;
  const flush = async (): Promise<void> => {
    if (errored) throw errored;
    if (off === 0) return;
    const chunk = buf;
    const ok = recycle
      ? sink.write(chunk.subarray(0, off), () => {
          if (chunk.length === CHUNK_BYTES && pool.length < 8) pool.push(chunk);
        })
      : sink.write(chunk.subarray(0, off));
    buf = (pool.pop() ?? Buffer.allocUnsafe(CHUNK_BYTES)) as FastBuffer;
    off = 0;
    if (!ok) await (failed ? Promise.race([waitDrain(sink), failed]) : waitDrain(sink));
    if (errored) throw errored;
    hooks.onProgress?.(stats.events, plan.estimatedEvents);
  };
  try {
    for (const b of jobRunBatches(plan, stats)) {
      const head = b.head;
      const headBytes = ascii ? head.length : Buffer.byteLength(head);
      for (let q = 0; q < b.count; q++) {
        const body = b.bodies[q]!;
        const need = headBytes + 26 + body.length;
        if (off + need > buf.length) {
          await flush();
          if (need > buf.length) buf = Buffer.allocUnsafe(need) as FastBuffer;
        }
        off += ascii ? buf.latin1Write(head, off) : buf.write(head, off, 'utf8');
        off = clock.write(buf, off, b.ms[q]!);
        off += buf.latin1Write(body, off); // bodies are pure ASCII
        buf[off++] = 10;
      }
    }
    await flush();
  } finally {
    sink.off('error', onError);
  }
  if (typeof out === 'string') {
    sink.end();
    await (failed ? Promise.race([done, failed]) : done);
  }
  return stats;
}
