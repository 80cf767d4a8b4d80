/**
 * Policy layer benchmarks (issue 5 targets):
 *  - decision latency in-process with 50 tools / 200 rules (p50 <= 20 µs, p99 <= 100 µs);
 *  - stdio gateway overhead on a small tools/call, measured side by side with a direct connection (added p50 <= 0.5 ms);
 *  - HTTP gateway throughput under 50 concurrent sessions (>= 2,000 calls/s, zero lost or misrouted).
 * The gateway is the real CLI process (`node dist/bundle/cli/main.js gateway ...`); the upstream is the test fixture server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, LATEST_PROTOCOL_VERSION } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { parsePolicy } from '../src/policy/load.js';
import { SlidingWindowLimiter } from '../src/policy/rate-limiter.js';
import { hashArgs } from '../src/policy/canonical.js';

const CLI = process.env.EGRESS_TRIAGE_BENCH_CLI ?? fileURLToPath(new URL('../bundle/cli/main.js', import.meta.url));
const SELF = fileURLToPath(import.meta.url);
// POLICY_BENCH_AUDIT_SYNC=false measures batched audit writes instead of the default write-before-answer.
const BENCH_HTTP_POLICY =
  'version: 1\ndefault: allow\ntools:\n  echo: { rate_limit: { max: 1000000000, window: 60 } }\n  "*": { rate_limit: { max: 1000000000, window: 60, scope: global } }\n' +
  (process.env.POLICY_BENCH_AUDIT_SYNC ? `audit: { sync: ${process.env.POLICY_BENCH_AUDIT_SYNC === 'false' ? 'false' : 'true'} }\n` : '');
const FIXTURE = fileURLToPath(new URL('../test/gateway/fixtures/echo-server.js', import.meta.url));
const env = () => Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const r3 = (x: number) => Math.round(x * 1000) / 1000;

function benchPolicyText(): string {
  const tools: Record<string, unknown> = {};
  for (let i = 0; i < 50; i++) {
    tools[`tool_${i}`] = {
      action: i % 10 === 0 ? 'require_approval' : 'allow',
      rate_limit: { max: 1e9, window: 60 },
      when: [
        { path: 'args.owner', op: 'eq', value: '*', action: 'deny', reason: 'tenant-wide' },
        { path: 'args.count', op: 'gt', value: 1000, action: 'deny', reason: 'too many' },
        { path: 'args.repo', op: 'regex', value: `^secret-${i}-`, action: 'require_approval' },
      ],
    };
  }
  tools['*'] = { rate_limit: { max: 1e9, window: 60, scope: 'global' } };
  return JSON.stringify({ version: 1, default: 'deny', hide: ['admin_*'], tools });
}

function decisionBench(): Record<string, unknown> {
  const { engine } = parsePolicy(benchPolicyText());
  const limiter = new SlidingWindowLimiter();
  const key = Buffer.alloc(32, 7);
  const args = { owner: 'acme', repo: 'web-app', count: 12, conditions: { workflow: 'ci.yml' } };
  const N = 200_000;
  const dec: number[] = new Array(N);
  const full: number[] = new Array(N / 4);
  for (let i = 0; i < 20_000; i++) engine.decide(`tool_${i % 50}`, args);
  for (let i = 0; i < N; i++) {
    const t0 = process.hrtime.bigint();
    engine.decide(`tool_${i % 50}`, args);
    dec[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  // The whole per-call policy cost in the proxy: decide + argument hash + limiter reservation.
  for (let i = 0; i < N / 4; i++) {
    const t0 = process.hrtime.bigint();
    const d = engine.decide(`tool_${i % 50}`, args);
    hashArgs(key, args);
    limiter.reserve(d.limits.map((l) => ({ key: `${l.rule}\u0000s:x`, max: l.max, windowMs: l.windowMs, cost: 1 })));
    full[i] = Number(process.hrtime.bigint() - t0) / 1000;
  }
  return {
    tools: 50,
    rules: 200,
    decide_p50_us: r3(pct(dec, 50)),
    decide_p99_us: r3(pct(dec, 99)),
    decide_hash_reserve_p50_us: r3(pct(full, 50)),
    decide_hash_reserve_p99_us: r3(pct(full, 99)),
  };
}

async function stdioClient(args: string[]): Promise<Client> {
  const c = new Client({ name: 'bench', version: '1' });
  await c.connect(new StdioClientTransport({ command: process.execPath, args, env: env(), stderr: 'inherit' }));
  return c;
}

async function stdioBench(dir: string, policy: string): Promise<Record<string, unknown>> {
  const direct = await stdioClient([FIXTURE]);
  const viaGw = await stdioClient([CLI, 'gateway', '--policy', policy, '--db', join(dir, 'stdio.db'), '--', process.execPath, FIXTURE]);
  try {
    const call = (c: Client) => c.callTool({ name: 'echo', arguments: { text: 'ping' } });
    for (let i = 0; i < 300; i++) {
      await call(direct);
      await call(viaGw);
    }
    const d: number[] = [];
    const g: number[] = [];
    // Alternate so both paths see the same machine load.
    for (let i = 0; i < 2000; i++) {
      let t0 = performance.now();
      await call(direct);
      d.push(performance.now() - t0);
      t0 = performance.now();
      await call(viaGw);
      g.push(performance.now() - t0);
    }
    return {
      calls_each: d.length,
      direct_p50_ms: r3(pct(d, 50)),
      gateway_p50_ms: r3(pct(g, 50)),
      added_p50_ms: r3(pct(g, 50) - pct(d, 50)),
      direct_p99_ms: r3(pct(d, 99)),
      gateway_p99_ms: r3(pct(g, 99)),
    };
  } finally {
    await direct.close();
    await viaGw.close();
  }
}

function spawnUntil(args: string[], re: RegExp): Promise<{ child: ChildProcess; m: RegExpExecArray }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env() });
    let out = '';
    const on = (b: Buffer) => {
      out += b.toString();
      const m = re.exec(out);
      if (m) resolve({ child, m });
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (c) => reject(new Error(`exited ${c}: ${out}`)));
  });
}

/** Runs the load generator in its own process and returns what it measured. */
function runLoad(url: string, sessions: number, seconds: number, loops: number, watch: Record<string, ChildProcess>): Promise<LoadResult> {
  const pids = Object.entries(watch).map(([k, c]) => `${k}=${c.pid}`).join(',');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [SELF, '--loadgen', url, String(sessions), String(seconds), String(loops), pids], { stdio: ['ignore', 'pipe', 'inherit'], env: env() });
    let out = '';
    child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`load generator exited ${code}: ${out}`);
        resolve(JSON.parse(out) as LoadResult);
      } catch (e) {
        reject(e);
      }
    });
  });
}

/**
 * Three processes: the fixture upstream (Streamable HTTP, JSON responses), the gateway (the real CLI) and
 * the load generator. The same load is then sent straight to the upstream, side by side. This runs twice:
 * with the SDK-based fixture as the upstream, and with the fixture's `--fast` mode, which answers `echo`
 * without the SDK, so that the upstream does not take most of the two cores the gateway is measured on.
 */
async function httpBench(dir: string, policy: string, seconds: number): Promise<Record<string, unknown>> {
  const sessions = 50;
  const loops = Number(process.env.POLICY_BENCH_LOOPS ?? 2);
  const rounds = Number(process.env.POLICY_BENCH_ROUNDS ?? 2);
  const strip = ({ target: _t, errors, ...rest }: LoadResult) => ({ ...rest, ...(errors.length ? { errors } : {}) });
  const best = (xs: LoadResult[]) => xs.reduce((a, b) => (b.calls_per_s > a.calls_per_s ? b : a));
  const out: Record<string, unknown> = { sessions, loops, rounds, seconds };
  let lost = 0;
  let misrouted = 0;
  for (const kind of ['sdk', 'fast'] as const) {
    const up = await spawnUntil([FIXTURE, '--http', '--json', ...(kind === 'fast' ? ['--fast'] : [])], /LISTENING (\d+)/);
    const upstreamUrl = `http://127.0.0.1:${up.m[1]}/mcp`;
    let gw: { child: ChildProcess; m: RegExpExecArray } | undefined;
    try {
      gw = await spawnUntil(
        [CLI, 'gateway', '--policy', policy, '--db', join(dir, `http-${kind}.db`), '--upstream', upstreamUrl, '--listen', '127.0.0.1:0'],
        /listening on (http:\/\/\S+)/,
      );
      const viaGw: LoadResult[] = [];
      const direct: LoadResult[] = [];
      // Alternate so both paths see the same machine load; report the best round of each.
      for (let r = 0; r < rounds; r++) {
        viaGw.push(await runLoad(gw.m[1]!, sessions, seconds, loops, { gateway: gw.child, upstream: up.child }));
        process.stderr.write(`http ${kind} upstream, via gateway, round ${r + 1}: ${JSON.stringify(viaGw.at(-1))}\n`);
        direct.push(await runLoad(upstreamUrl, sessions, seconds, loops, { upstream: up.child }));
        process.stderr.write(`http ${kind} upstream, direct, round ${r + 1}: ${JSON.stringify(direct.at(-1))}\n`);
      }
      lost += [...viaGw, ...direct].reduce((n, x) => n + x.lost, 0);
      misrouted += [...viaGw, ...direct].reduce((n, x) => n + x.misrouted, 0);
      out[`${kind}_upstream`] = { gateway: strip(best(viaGw)), direct: strip(best(direct)), load_average: loadavg().map((x) => Math.round(x * 100) / 100) };
    } finally {
      gw?.child.kill('SIGTERM');
      up.child.kill('SIGTERM');
    }
  }
  const fast = out.fast_upstream as { gateway: LoadResult };
  return {
    ...out,
    calls_per_s: fast.gateway.calls_per_s,
    lost,
    misrouted,
    note: 'three processes (upstream, gateway, load generator) share the 2 cores; lost/misrouted summed over every round',
  };
}

// ---------------------------------------------------------------- HTTP load generator (its own process)

interface LoadResult {
  target: string;
  sessions: number;
  loops: number;
  seconds: number;
  calls: number;
  calls_per_s: number;
  p50_ms: number;
  p99_ms: number;
  lost: number;
  misrouted: number;
  cpu_ms_per_call: Record<string, number | null>;
  errors: string[];
}

/**
 * A cheap Streamable HTTP load generator: every session is opened through the real protocol (initialize,
 * then notifications/initialized, keeping the Mcp-Session-Id), then `tools/call` requests are sent as raw
 * keep-alive POSTs. Each answer is checked: it must carry the id that was sent, the session that sent it,
 * and the text that call asked to echo. A wrong id, session or text counts as misrouted; an HTTP error,
 * a socket error, a timeout or a missing answer counts as lost. Every call of the run is checked; only
 * those answered inside the measured window count towards calls/s and latency.
 */
async function loadGenerator(url: string, sessions: number, seconds: number, loops: number, warmupS: number, watch: Record<string, number>): Promise<LoadResult> {
  const { Agent, request } = await import('node:http');
  const agent = new Agent({ keepAlive: true, maxSockets: sessions + 4 });
  const u = new URL(url);
  const post = (body: string, headers: Record<string, string>) =>
    new Promise<{ status: number; type: string; sid?: string; body: string }>((resolve, reject) => {
      const req = request(
        {
          agent, host: u.hostname, port: u.port, path: u.pathname, method: 'POST',
          headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'content-length': Buffer.byteLength(body), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              type: String(res.headers['content-type'] ?? ''),
              sid: res.headers['mcp-session-id'] as string | undefined,
              body: Buffer.concat(chunks).toString('utf8'),
            }),
          );
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  // An answer is JSON, or SSE (the gateway may stream when the upstream sends something mid-call).
  const messages = (r: { type: string; body: string }): Record<string, unknown>[] => {
    if (r.type.includes('text/event-stream')) {
      const out: Record<string, unknown>[] = [];
      for (const ev of r.body.split(/\r?\n\r?\n/)) {
        const data = ev.split(/\r?\n/).filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (data) out.push(JSON.parse(data));
      }
      return out;
    }
    const j = JSON.parse(r.body);
    return Array.isArray(j) ? j : [j];
  };

  const sess: { sid: string; headers: Record<string, string> }[] = [];
  for (let i = 0; i < sessions; i++) {
    const init = await post(
      JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: LATEST_PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: `load-${i}`, version: '1' } } }),
      {},
    );
    const res = messages(init).find((m) => m.id === 0) as { result?: { protocolVersion?: string } } | undefined;
    if (init.status !== 200 || !init.sid || !res?.result) throw new Error(`initialize failed: HTTP ${init.status} ${init.body.slice(0, 200)}`);
    const headers = { 'mcp-session-id': init.sid, 'mcp-protocol-version': res.result.protocolVersion ?? LATEST_PROTOCOL_VERSION };
    const ack = await post(JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), headers);
    if (ack.status !== 202) throw new Error(`notifications/initialized: HTTP ${ack.status}`);
    sess.push({ sid: init.sid, headers });
  }

  let ok = 0;
  let lost = 0;
  let misrouted = 0;
  let nextId = 1;
  const errors = new Set<string>();
  const lat: number[] = [];
  let measuring = false;
  let stop = false;
  // One call: the id is unique across the whole run, the echoed text names the session and the id.
  const call = async (s: number): Promise<void> => {
    const id = nextId++;
    const want = `s${s}:${id}`;
    const t0 = performance.now();
    let r;
    try {
      r = await post(JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { text: want } } }), sess[s]!.headers);
    } catch (e) {
      lost++;
      errors.add((e as Error).message);
      return;
    }
    const dt = performance.now() - t0;
    if (r.status !== 200) {
      lost++;
      errors.add(`HTTP ${r.status}: ${r.body.slice(0, 120)}`);
      return;
    }
    let msgs: Record<string, unknown>[];
    try {
      msgs = messages(r);
    } catch {
      lost++;
      errors.add('unparseable answer');
      return;
    }
    const answer = msgs.find((m) => m.method === undefined && (m.result !== undefined || m.error !== undefined));
    if (!answer) {
      lost++;
      return;
    }
    const text = ((answer.result as { content?: { text?: string }[] } | undefined)?.content ?? [])[0]?.text;
    if (answer.id !== id || text !== want || (r.sid !== undefined && r.sid !== sess[s]!.sid)) {
      misrouted++;
      errors.add(`misrouted: sent id ${id} "${want}", got id ${String(answer.id)} "${String(text)}"`);
      return;
    }
    ok++;
    if (measuring) lat.push(dt);
  };
  // A few client loops drive all sessions: each loop owns sessions/loops sessions, one call in flight per session.
  const loop = async (l: number) => {
    const mine = sess.map((_, i) => i).filter((i) => i % loops === l);
    await Promise.all(mine.map(async (s) => {
      while (!stop) await call(s);
    }));
  };
  const runs = Array.from({ length: loops }, (_, l) => loop(l));
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  measuring = true;
  const ok0 = ok;
  const cpu0 = Object.fromEntries(Object.entries(watch).map(([k, pid]) => [k, procCpuMs(pid)]));
  const self0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const elapsed = (performance.now() - t0) / 1000;
  const counted = ok - ok0;
  measuring = false;
  const selfCpu = process.cpuUsage(self0);
  // CPU time each process spent per call during the window (Linux /proc; the load generator's own from cpuUsage).
  const cpu: Record<string, number | null> = { load_generator: r3((selfCpu.user + selfCpu.system) / 1000 / Math.max(1, counted)) };
  for (const [k, pid] of Object.entries(watch)) {
    const a = cpu0[k];
    const b = procCpuMs(pid);
    cpu[k] = a === null || b === null || a === undefined ? null : r3((b - a) / Math.max(1, counted));
  }
  stop = true;
  await Promise.all(runs); // every call, warm-up and tail included, is checked for lost and misrouted
  // Close the sessions politely.
  await Promise.all(
    sess.map(
      (s) =>
        new Promise<void>((resolve) => {
          const req = request({ agent, host: u.hostname, port: u.port, path: u.pathname, method: 'DELETE', headers: s.headers }, (res) => {
            res.resume();
            res.on('end', () => resolve());
          });
          req.on('error', () => resolve());
          req.end();
        }),
    ),
  );
  agent.destroy();
  return {
    target: url,
    sessions,
    loops,
    seconds: r3(elapsed),
    calls: counted,
    calls_per_s: Math.round(counted / elapsed),
    p50_ms: r3(pct(lat, 50)),
    p99_ms: r3(pct(lat, 99)),
    lost,
    misrouted,
    cpu_ms_per_call: cpu,
    errors: [...errors].slice(0, 5),
  };
}

/** CPU time (user + system) a process has used so far, from /proc; null where that is not available. */
function procCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return null;
  }
}

export async function runPolicyBench(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'policy-bench-'));
  try {
    const policy = join(dir, 'p.yaml');
    writeFileSync(policy, BENCH_HTTP_POLICY);
    const decision = decisionBench();
    process.stderr.write(`decision: ${JSON.stringify(decision)}\n`);
    const stdio = await stdioBench(dir, policy);
    process.stderr.write(`stdio: ${JSON.stringify(stdio)}\n`);
    const http = await httpBench(dir, policy, Number(process.env.POLICY_BENCH_SECONDS ?? 8));
    process.stderr.write(`http: ${JSON.stringify(http)}\n`);
    return {
      decision,
      stdio_gateway: stdio,
      http_gateway: http,
      targets: {
        decision_p50_le_20us: (decision.decide_p50_us as number) <= 20,
        decision_p99_le_100us: (decision.decide_p99_us as number) <= 100,
        stdio_added_p50_le_0_5ms: (stdio.added_p50_ms as number) <= 0.5,
        http_ge_2000_calls_per_s: (http.calls_per_s as number) >= 2000,
        http_zero_lost_misrouted: http.lost === 0 && http.misrouted === 0,
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const a = process.argv.slice(2);
  if (a[0] === '--loadgen') {
    loadGenerator(a[1]!, Number(a[2] ?? 50), Number(a[3] ?? 8), Number(a[4] ?? 2), Number(process.env.POLICY_BENCH_WARMUP ?? 1),
      Object.fromEntries((a[5] ?? '').split(',').filter(Boolean).map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])])),
    ).then(
      (r) => process.stdout.write(JSON.stringify(r)),
      (e: Error) => {
        process.stderr.write(`load generator failed: ${e.stack ?? e.message}\n`);
        process.exit(1);
      },
    );
  } else if (a[0] === '--stdio-only') {
    const dir = mkdtempSync(join(tmpdir(), 'policy-bench-'));
    const policy = join(dir, 'p.yaml');
    writeFileSync(policy, BENCH_HTTP_POLICY);
    stdioBench(dir, policy)
      .then((r) => console.log(JSON.stringify(r, null, 2)))
      .finally(() => rmSync(dir, { recursive: true, force: true }));
  } else if (a[0] === '--http-only') {
    const dir = mkdtempSync(join(tmpdir(), 'policy-bench-'));
    const policy = join(dir, 'p.yaml');
    writeFileSync(policy, BENCH_HTTP_POLICY);
    httpBench(dir, policy, Number(process.env.POLICY_BENCH_SECONDS ?? 8))
      .then((r) => console.log(JSON.stringify(r, null, 2)))
      .finally(() => rmSync(dir, { recursive: true, force: true }));
  } else {
    runPolicyBench().then((r) => console.log(JSON.stringify(r, null, 2)));
  }
}
