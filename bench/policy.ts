/**
 * Policy layer benchmarks (issue 5 targets):
 *  - decision latency in-process with 50 tools / 200 rules (p50 <= 20 µs, p99 <= 100 µs);
 *  - stdio gateway overhead on a small tools/call, measured side by side with a direct connection (added p50 <= 0.5 ms);
 *  - HTTP gateway throughput under 50 concurrent sessions (>= 2,000 calls/s, zero lost or misrouted).
 * The gateway is the real CLI process (`node dist/src/cli/main.js gateway ...`); the upstream is the test fixture server.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parsePolicy } from '../src/policy/load.js';
import { SlidingWindowLimiter } from '../src/policy/rate-limiter.js';
import { hashArgs } from '../src/policy/canonical.js';

const CLI = process.env.EGRESS_TRIAGE_BENCH_CLI ?? fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
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

async function httpBench(dir: string, policy: string, seconds: number): Promise<Record<string, unknown>> {
  const up = await spawnUntil([FIXTURE, '--http', '--json'], /LISTENING (\d+)/);
  const gw = await spawnUntil(
    [CLI, 'gateway', '--policy', policy, '--db', join(dir, 'http.db'), '--upstream', `http://127.0.0.1:${up.m[1]}/mcp`, '--listen', '127.0.0.1:0'],
    /listening on (http:\/\/\S+)/,
  );
  const clients: Client[] = [];
  try {
    for (let i = 0; i < 50; i++) {
      const c = new Client({ name: `bench-${i}`, version: '1' });
      await c.connect(new StreamableHTTPClientTransport(new URL(gw.m[1]!)));
      clients.push(c);
    }
    let ok = 0;
    let lost = 0;
    let misrouted = 0;
    let stop = false;
    const loop = async (c: Client, s: number) => {
      for (let n = 0; !stop; n++) {
        const want = `s${s}-${n}`;
        try {
          const r = await c.callTool({ name: 'echo', arguments: { text: want } });
          const got = (r.content as { text: string }[])[0]?.text;
          if (got === want) ok++;
          else misrouted++;
        } catch {
          lost++;
        }
      }
    };
    // warm-up
    await Promise.all(clients.map((c, i) => c.callTool({ name: 'echo', arguments: { text: `w${i}` } })));
    const t0 = performance.now();
    const runs = clients.map((c, i) => loop(c, i));
    await new Promise((r) => setTimeout(r, seconds * 1000));
    stop = true;
    await Promise.all(runs);
    const elapsed = (performance.now() - t0) / 1000;
    return { sessions: clients.length, seconds: r3(elapsed), calls: ok, calls_per_s: Math.round(ok / elapsed), lost, misrouted, note: 'load generator, gateway and upstream share the machine' };
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    gw.child.kill('SIGTERM');
    up.child.kill('SIGTERM');
  }
}

export async function runPolicyBench(): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(join(tmpdir(), 'policy-bench-'));
  try {
    const policy = join(dir, 'p.yaml');
    writeFileSync(policy, 'version: 1\ndefault: allow\ntools:\n  echo: { rate_limit: { max: 1000000000, window: 60 } }\n  "*": { rate_limit: { max: 1000000000, window: 60, scope: global } }\n');
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
  runPolicyBench().then((r) => console.log(JSON.stringify(r, null, 2)));
}
