import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  SCENARIO,
  SCENARIO_NAMES,
  generateLines,
  generateTenant,
  planTenant,
  writeTenant,
  type GenerateOptions,
  type GenerateSummary,
} from '../../src/generate/index.js';

interface Proc {
  name: string;
  path?: string;
  sha256?: string;
  pid?: number;
  parent?: Proc;
}
interface Ev {
  tenant?: string;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  run_id: string;
  run_attempt: number;
  job_id: string;
  timestamp: string;
  domain?: string;
  ip?: string;
  port: number;
  protocol: 'tcp' | 'udp';
  process: Proc;
  status: 'allowed' | 'blocked';
}

function collect(opts: GenerateOptions): { lines: string[]; summary: GenerateSummary } {
  const lines: string[] = [];
  const it = generateLines(opts);
  for (;;) {
    const r = it.next();
    if (r.done) return { lines, summary: r.value };
    lines.push(r.value);
  }
}

const SMALL: GenerateOptions = { runs: 9, seed: 1 };
const small = collect(SMALL);
const events: Ev[] = small.lines.map((l) => JSON.parse(l) as Ev);

const ISO_MS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEX64 = /^[0-9a-f]{64}$/;

function checkProc(p: unknown, where: string, depth = 0): void {
  assert.ok(p && typeof p === 'object', `${where}: process object`);
  const o = p as Record<string, unknown>;
  assert.equal(typeof o.name, 'string', `${where}: name`);
  const allowed = new Set(['name', 'path', 'sha256', 'pid', 'parent']);
  for (const k of Object.keys(o)) assert.ok(allowed.has(k), `${where}: unexpected key ${k}`);
  if (o.name === 'Unknown') {
    assert.equal(o.sha256, 'Unknown');
    return;
  }
  assert.match(String(o.path), /^\//, `${where}: absolute path`);
  assert.match(String(o.sha256), HEX64, `${where}: sha256`);
  assert.ok(Number.isInteger(o.pid) && (o.pid as number) > 0, `${where}: pid`);
  if (o.parent !== undefined) {
    assert.ok(depth < 8, 'chain not absurdly deep');
    checkProc(o.parent, `${where}.parent`, depth + 1);
    assert.ok((o.parent as Proc).pid! < (o.pid as number) || (o.parent as Proc).name === 'systemd', `${where}: parent pid lower`);
  }
}

function chain(p: Proc): string[] {
  const out: string[] = [];
  for (let q = p.parent; q; q = q.parent) out.push(q.name);
  return out;
}

const NORMAL_PROCESSES = new Set([
  'Runner.Worker', 'node', 'git-remote-https', 'npm', 'npx', 'pip', 'python3.12', 'go', 'java', 'dotnet', 'dockerd',
  'containerd', 'curl', 'gh', 'aws',
]);

test('same seed gives identical lines, a different seed differs', () => {
  const again = collect(SMALL);
  assert.equal(again.lines.length, small.lines.length);
  assert.ok(again.lines.every((l, i) => l === small.lines[i]));
  assert.deepEqual(again.summary, small.summary);
  const other = collect({ ...SMALL, seed: 2 });
  assert.notEqual(other.lines.join('\n'), small.lines.join('\n'));
  const strSeed = collect({ ...SMALL, seed: 'acme' });
  assert.notEqual(strSeed.lines[0], small.lines[0]);
});

test('writeTenant writes byte-identical output to a file, a .gz file and via generateTenant', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gen-'));
  try {
    const expected = small.lines.join('\n') + '\n';
    const a = await writeTenant(SMALL, join(dir, 'a.ndjson'));
    const b = await writeTenant(SMALL, join(dir, 'b.ndjson'));
    const bytesA = readFileSync(join(dir, 'a.ndjson'));
    assert.ok(bytesA.equals(readFileSync(join(dir, 'b.ndjson'))));
    assert.equal(bytesA.toString('utf8'), expected);
    assert.deepEqual(a, b);
    assert.deepEqual(a, small.summary);
    await writeTenant(SMALL, join(dir, 'c.ndjson.gz'));
    assert.equal(gunzipSync(readFileSync(join(dir, 'c.ndjson.gz'))).toString('utf8'), expected);
    const viaSink: string[] = [];
    const s = await generateTenant(SMALL, async (line) => {
      viaSink.push(line);
    });
    assert.equal(viaSink.join('\n') + '\n', expected);
    assert.equal(s.events, viaSink.length);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every line matches the native schema', () => {
  const keys = ['owner', 'repo', 'workflow', 'job', 'run_id', 'run_attempt', 'job_id', 'timestamp', 'port', 'protocol', 'process', 'status'];
  const end = Date.parse(SCENARIO.endDate);
  const start = end - SCENARIO.days * 86_400_000;
  for (const [i, e] of events.entries()) {
    const where = `line ${i + 1}`;
    for (const k of keys) assert.ok(k in e, `${where}: ${k}`);
    assert.equal(e.tenant, undefined);
    for (const k of ['owner', 'repo', 'job'] as const) assert.match(e[k], /^[a-z0-9][a-z0-9.-]*$/, `${where}: ${k}`);
    assert.match(e.workflow, /^\.github\/workflows\/[a-z]+\.yml$/);
    assert.match(e.run_id, /^\d{10,}$/);
    assert.ok(Number(e.run_id) > SCENARIO.runIdBase);
    assert.match(e.job_id, /^\d{11,}$/);
    assert.equal(e.run_attempt, 1);
    assert.match(e.timestamp, ISO_MS, where);
    const t = Date.parse(e.timestamp);
    assert.ok(t >= start && t < end, `${where}: timestamp in window`);
    assert.ok(e.domain !== undefined || e.ip !== undefined, `${where}: domain or ip`);
    if (e.domain !== undefined) assert.match(e.domain, /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/, where);
    if (e.ip !== undefined) {
      const m = IPV4.exec(e.ip);
      assert.ok(m && m.slice(1).every((x) => Number(x) <= 255), `${where}: ip ${e.ip}`);
      const [a, b] = [Number(m![1]), Number(m![2])];
      assert.ok(a !== 10 && a !== 127 && !(a === 192 && b === 168) && !(a === 172 && b >= 16 && b <= 31) && !(a === 169 && b === 254), `${where}: no private ip`);
    }
    assert.ok(Number.isInteger(e.port) && e.port > 0 && e.port <= 65535, where);
    assert.ok(e.protocol === 'tcp' || e.protocol === 'udp', where);
    assert.ok(e.status === 'allowed' || e.status === 'blocked', where);
    checkProc(e.process, where);
  }
});

test('runs are contiguous, chronological in run_id, time-ordered inside', () => {
  const seen = new Set<string>();
  let prevKey = '';
  let prevRunId = 0;
  let prevTs = 0;
  const runStart = new Map<string, number>();
  for (const e of events) {
    const key = `${e.run_id}/${e.job_id}`;
    const t = Date.parse(e.timestamp);
    if (key !== prevKey) {
      assert.ok(!seen.has(key), `job run ${key} is contiguous`);
      seen.add(key);
      assert.ok(Number(e.run_id) >= prevRunId, 'run_id never decreases');
      prevRunId = Number(e.run_id);
      runStart.set(e.run_id, Math.min(runStart.get(e.run_id) ?? Infinity, t));
      prevKey = key;
    } else {
      assert.ok(t >= prevTs, 'events of a job run are time-ordered');
    }
    prevTs = t;
  }
  // run_id increases with time: workflow-run start times follow run_id order.
  const starts = [...runStart.entries()].sort((a, b) => Number(a[0]) - Number(b[0])).map(([, t]) => t);
  for (let i = 1; i < starts.length; i++) assert.ok(starts[i]! >= starts[i - 1]!, 'run start times follow run_id order');
  assert.equal(seen.size, small.summary.jobRuns);
});

test('tenant shape: several orgs, repos, workflows and jobs; counts match the summary', () => {
  const s = small.summary;
  assert.equal(s.events, events.length);
  assert.equal(Object.values(s.scenarios).reduce((a, b) => a + b, 0), s.events);
  const orgs = new Set(events.map((e) => e.owner));
  for (const o of SCENARIO.orgs) assert.ok(orgs.has(o), `org ${o}`);
  assert.equal(orgs.size, s.orgs);
  assert.equal(new Set(events.map((e) => `${e.owner}/${e.repo}`)).size, s.repos);
  assert.ok(s.repos >= 8);
  assert.equal(new Set(events.map((e) => `${e.owner}/${e.repo}/${e.workflow}/${e.job}`)).size, s.jobs);
  assert.equal(new Set(events.map((e) => e.workflow)).size, 3);
  assert.deepEqual(new Set(events.map((e) => e.job)), new Set(SCENARIO.jobs));
  const domains = new Set(events.map((e) => e.domain));
  for (const d of ['github.com', 'api.github.com', 'registry.npmjs.org', 'pypi.org', 'files.pythonhosted.org', 'proxy.golang.org', 'repo.maven.apache.org', 'api.nuget.org', 'registry-1.docker.io', 'production.cloudflare.docker.com']) {
    assert.ok(domains.has(d), `normal traffic reaches ${d}`);
  }
  // Per-process hashes are stable: one sha256 per (name, path).
  const sha = new Map<string, string>();
  for (const e of events) {
    for (let p: Proc | undefined = e.process; p; p = p.parent) {
      const k: string = `${p.name}|${p.path}`;
      const prev = sha.get(k);
      if (prev) assert.equal(prev, p.sha256, k);
      else sha.set(k, p.sha256!);
    }
  }
});

test('anomalies appear only after the learning runs, and every scenario appears', () => {
  for (const learningRuns of [5, 3]) {
    const opts = { runs: 10, seed: 7, learningRuns };
    const { lines, summary } = collect(opts);
    for (const name of SCENARIO_NAMES) assert.ok(summary.scenarios[name] > 0, `${name} present (learningRuns ${learningRuns})`);
    const ordinal = new Map<string, number>(); // job -> count of runs seen
    const learned = new Map<string, Set<string>>();
    let lastJobRun = '';
    let anomaliesAfter = 0;
    const runsWithAnomaly = new Set<string>();
    for (const line of lines) {
      const e = JSON.parse(line) as Ev;
      const job = `${e.owner}/${e.repo}/${e.workflow}/${e.job}`;
      if (e.job_id !== lastJobRun) {
        ordinal.set(job, (ordinal.get(job) ?? -1) + 1);
        lastJobRun = e.job_id;
      }
      const idx = ordinal.get(job)!;
      const endpoint = `${e.domain ?? e.ip}:${e.port}|${e.process.name}`;
      if (idx < learningRuns) {
        assert.ok(NORMAL_PROCESSES.has(e.process.name), `learning run ${idx} of ${job} has only normal processes (${e.process.name})`);
        assert.equal(e.status, 'allowed');
        assert.ok(e.domain !== undefined, 'no direct-IP calls while learning');
        let set = learned.get(job);
        if (!set) learned.set(job, (set = new Set()));
        set.add(endpoint);
      } else if (!learned.get(job)!.has(endpoint)) {
        anomaliesAfter++;
        runsWithAnomaly.add(e.job_id);
      }
    }
    assert.ok(anomaliesAfter > 0);
    const postRuns = summary.jobs * (10 - learningRuns);
    assert.ok(runsWithAnomaly.size >= postRuns * 0.15, `a good share of later runs is anomalous (${runsWithAnomaly.size}/${postRuns})`);
  }
  const none = collect({ runs: 5, seed: 1, learningRuns: 5 }).summary;
  for (const name of SCENARIO_NAMES) if (name !== 'normal') assert.equal(none.scenarios[name], 0, `${name} absent while learning`);
});

test('tailscaled fans out to many 100.64/10 peers on UDP 41641, plus DERP and control plane', () => {
  const ts = events.filter((e) => e.process.name === 'tailscaled' && e.process.path === SCENARIO.tailscale.path);
  assert.ok(ts.length > 0);
  for (const e of ts) {
    assert.equal(e.process.sha256, SCENARIO.tailscale.sha256);
    assert.deepEqual(chain(e.process), [...SCENARIO.tailscale.parentChain]);
  }
  const peers = ts.filter((e) => e.domain === undefined && e.port === SCENARIO.tailscale.peerPort);
  assert.ok(peers.every((e) => e.protocol === 'udp' && /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./.test(e.ip!)));
  assert.ok(new Set(peers.map((e) => e.ip)).size >= 30, 'many distinct peers');
  assert.ok(ts.some((e) => e.domain === 'controlplane.tailscale.com' && e.port === 443));
  assert.ok(ts.some((e) => SCENARIO.tailscale.derpDomainPattern.test(e.domain ?? '')));
  assert.ok(ts.some((e) => e.domain === undefined && e.port === SCENARIO.tailscale.stunPort && e.protocol === 'udp'));
});

test('the renamed impostor has a different sha256, a node parent, and reaches gist and a direct IP', () => {
  assert.notEqual(SCENARIO.impostor.sha256, SCENARIO.tailscale.sha256);
  const imp = events.filter((e) => e.process.name === 'tailscaled' && e.process.path === SCENARIO.impostor.path);
  assert.ok(imp.length > 0);
  for (const e of imp) {
    assert.equal(e.process.sha256, SCENARIO.impostor.sha256);
    assert.equal(e.process.parent?.name, 'node');
    assert.deepEqual(chain(e.process), ['node', 'npm', 'bash', 'Runner.Worker']);
  }
  assert.ok(imp.some((e) => e.domain === 'gist.githubusercontent.com' && e.port === 443));
  assert.ok(imp.some((e) => e.domain === undefined && (SCENARIO.impostor.ips as readonly string[]).includes(e.ip!)));
  const repos = new Set(imp.map((e) => `${e.owner}/${e.repo}`));
  assert.ok(repos.size >= 1 && repos.size <= 2);
});

test('other scenarios have their documented signatures', () => {
  const by = (name: string): Ev[] => events.filter((e) => e.process.name === name);
  const post = events.filter((e) => e.domain === SCENARIO.npmPostinstall.domain);
  assert.ok(post.length > 0);
  assert.ok(post.every((e) => e.process.name === 'node' && e.process.parent?.name === 'sh' && e.process.parent.parent?.name === 'npm'));
  assert.equal(new Set(post.map((e) => `${e.owner}/${e.repo}`)).size, 1, 'postinstall in one repo');
  assert.ok(by('twingated').some((e) => e.domain?.endsWith(SCENARIO.twingate.domainSuffix)));
  assert.ok(by('twingated').some((e) => e.domain === undefined && e.port >= 30000 && e.port <= 31000 && e.protocol === 'tcp'));
  assert.ok(by('zerotier-one').length > 0 && by('zerotier-one').every((e) => e.port === 9993 && e.protocol === 'udp' && e.domain === undefined));
  assert.ok(by('netbird').some((e) => e.domain === 'api.netbird.io') && by('netbird').some((e) => e.ip?.startsWith('100.') && e.domain === undefined));
  assert.ok(by('cloudflared').some((e) => e.domain === undefined && e.port === 7844 && /^198\.41\.(192|200)\./.test(e.ip!)));
  assert.ok(by('warp-svc').some((e) => e.port === 2408 && e.protocol === 'udp' && e.ip!.startsWith('162.159.193.')));
  assert.ok(by('openvpn').length > 0 && by('openvpn').every((e) => e.port === 1194));
  const regs = new Set<string>(SCENARIO.newRegistries.domains);
  assert.ok(events.some((e) => (e.process.name === 'dockerd' || e.process.name === 'containerd') && (regs.has(e.domain ?? '') || e.domain?.endsWith(SCENARIO.newRegistries.ecrSuffix))));
  const newDomains = new Set<string>(SCENARIO.newDomains.domains);
  assert.ok(events.some((e) => newDomains.has(e.domain ?? '')));
  const blocked = events.filter((e) => e.status === 'blocked');
  assert.ok(blocked.length > 0 && blocked.every((e) => (SCENARIO.blocked.domains as readonly string[]).includes(e.domain!)));
  const unknown = by('Unknown');
  assert.ok(unknown.length > 0 && unknown.every((e) => e.process.sha256 === 'Unknown' && e.domain === undefined));
});

test('--events scales the tenant and the total roughly matches', () => {
  for (const target of [1_000, 20_000, 200_000]) {
    const plan = planTenant({ runs: 20, seed: 3, events: target });
    let n = 0;
    const it = generateLines({ runs: 20, seed: 3, events: target });
    let r = it.next();
    while (!r.done) {
      n++;
      r = it.next();
    }
    assert.equal(r.value.events, n);
    const ratio = n / target;
    assert.ok(ratio > 0.85 && ratio < 1.25, `target ${target}: got ${n}`);
    assert.ok(Math.abs(plan.estimatedEvents - target) / target < 0.05);
  }
  const big = planTenant({ runs: 20, seed: 3, events: 10_000_000 });
  assert.ok(big.jobs.length > 5_000 && big.orgs.length > 10 && big.repos.length > 1_000);
  assert.equal(new Set(big.repos.map((r) => `${r.owner}/${r.name}`)).size, big.repos.length, 'repo names unique');
});

test('tenant option adds a tenant field to every line', () => {
  const { lines } = collect({ runs: 6, seed: 1, events: 500, tenant: 'Demo "T"' });
  assert.ok(lines.length > 0);
  for (const l of lines) assert.equal((JSON.parse(l) as Ev).tenant, 'Demo "T"');
});

test('a tiny tenant counts the orgs it has repos in, not the ones it planned (demo --events 1000 said "2 repos of 4 orgs")', () => {
  const tiny = collect({ runs: 6, seed: 1, events: 1000 });
  const evs = tiny.lines.map((l) => JSON.parse(l) as Ev);
  assert.equal(tiny.summary.orgs, new Set(evs.map((e) => e.owner)).size);
  assert.equal(tiny.summary.repos, new Set(evs.map((e) => `${e.owner}/${e.repo}`)).size);
  assert.ok(tiny.summary.orgs <= tiny.summary.repos, JSON.stringify(tiny.summary));
});
