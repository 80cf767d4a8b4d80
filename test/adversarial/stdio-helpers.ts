/**
 * Drives the real stdio gateway (`node dist/bundle/cli/main.js gateway --policy P -- node stdio-recorder.js FILE`)
 * with raw JSON-RPC lines, and reads back what reached the upstream and what was audited.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CLI, cli, tmpDir, waitFor, type Era } from '../gateway/helpers.js';
import { readPolicyAudit } from '../helpers/policy-audit.js';

export { ERAS, REVISION, type Era } from '../gateway/helpers.js';

/** The 2026-07-28 `_meta` envelope a request of that revision carries (no capabilities unless given). */
export function envelope(capabilities: Record<string, unknown> = {}, version = '2026-07-28'): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': version,
    'io.modelcontextprotocol/clientInfo': { name: 'adversary', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': capabilities,
  };
}

/** The request with the 2026-07-28 envelope added to its params (kept if it already has one). */
export function enveloped(m: unknown, capabilities: Record<string, unknown> = {}): unknown {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) return m;
  const msg = m as Msg;
  if (typeof msg.method !== 'string' || !('id' in msg) || msg.id === null || msg.id === undefined) return m;
  const params = (typeof msg.params === 'object' && msg.params !== null ? msg.params : {}) as Record<string, unknown>;
  const meta = (typeof params._meta === 'object' && params._meta !== null ? params._meta : {}) as Record<string, unknown>;
  if ('io.modelcontextprotocol/protocolVersion' in meta) return m;
  return { ...msg, params: { ...params, _meta: { ...envelope(capabilities), ...meta } } };
}

export const RECORDER = fileURLToPath(new URL('./fixtures/stdio-recorder.js', import.meta.url));

export type Msg = Record<string, unknown> & { id?: unknown; method?: string; params?: Record<string, unknown>; result?: Record<string, unknown>; error?: { code: number; message: string; data?: unknown } };

export interface Gateway {
  era: Era;
  child: ChildProcessWithoutNullStreams;
  dir: string;
  db: string;
  /** Every message the gateway wrote to the agent, parsed. */
  out: Msg[];
  stderr: () => string;
  /** Sends one message; on 2026-07-28 a request gets the envelope unless it has one. */
  send(m: unknown): void;
  /** Writes raw bytes or text as they are (no newline added). */
  raw(b: string | Buffer): Promise<void>;
  /** The answer carrying this id (first one not yet taken by an earlier reply() for the same id). */
  reply(id: unknown, timeoutMs?: number): Promise<Msg>;
  /** Opens the session: the 2025-11-25 handshake, or a 2026-07-28 server/discover. */
  init(): Promise<void>;
  /** Every message the upstream received, in order, parsed. */
  upstream(): Msg[];
  /** tools/call messages the upstream received. */
  upstreamCalls(): Msg[];
  /** The JSONL audit file's records. */
  auditFile(): Record<string, unknown>[];
  /** The audit table's records (through `egress-triage audit --json`). */
  auditTable(): Promise<Record<string, unknown>[]>;
  /** A round trip (ping; tools/list on 2026-07-28): everything sent before it has been handled by the gateway. */
  barrier(): Promise<void>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  close(): Promise<void>;
}

let pingSeq = 0;

export async function startGateway(policyYaml: string, o: { args?: string[]; env?: Record<string, string>; era?: Era; capabilities?: Record<string, unknown> } = {}): Promise<Gateway> {
  const era = o.era ?? 'legacy';
  const t = tmpDir('adv-stdio-');
  const policy = t.file('policy.yaml', policyYaml);
  const record = join(t.dir, 'upstream.jsonl');
  const child = spawn(process.execPath, [CLI, 'gateway', '--policy', policy, '--db', t.db, ...(o.args ?? []), '--', process.execPath, RECORDER, record], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...(o.env ?? {}) },
  });
  const out: Msg[] = [];
  let err = '';
  let parts: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => {
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl !== -1; nl = chunk.indexOf(0x0a, start)) {
      parts.push(chunk.subarray(start, nl));
      out.push(JSON.parse(Buffer.concat(parts).toString('utf8')));
      parts = [];
      start = nl + 1;
    }
    if (start < chunk.length) parts.push(chunk.subarray(start));
  });
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  child.stdin.on('error', () => undefined);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
  const taken = new Set<Msg>();
  const readJsonl = (p: string) =>
    existsSync(p)
      ? readFileSync(p, 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Msg)
      : [];
  const g: Gateway = {
    era,
    child,
    dir: t.dir,
    db: t.db,
    out,
    stderr: () => err,
    send: (m) => void child.stdin.write(JSON.stringify(era === 'modern' ? enveloped(m, o.capabilities) : m) + '\n'),
    raw: (b) => new Promise((r) => (child.stdin.write(b) ? r() : child.stdin.once('drain', () => r()))),
    async reply(id, timeoutMs = 15_000) {
      const m = await waitFor(() => out.find((x) => !taken.has(x) && x.method === undefined && Object.is(x.id, id)), timeoutMs).catch(() => {
        throw new Error(`no answer with id ${JSON.stringify(id)}; got ${JSON.stringify(out).slice(0, 2000)}\nstderr: ${err}`);
      });
      taken.add(m);
      return m;
    },
    async init() {
      if (era === 'modern') {
        g.send({ jsonrpc: '2.0', id: 'init', method: 'server/discover', params: {} });
        await g.reply('init');
        return;
      }
      g.send({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'adversary', version: '1' } } });
      await g.reply('init');
      g.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    },
    upstream: () => readJsonl(record),
    upstreamCalls: () => g.upstream().filter((m) => m.method === 'tools/call'),
    auditFile: () => readJsonl(join(t.dir, 'policy-audit.jsonl')),
    auditTable: () => readPolicyAudit(t.db, 100_000),
    async barrier() {
      const id = `barrier-${++pingSeq}`;
      g.send({ jsonrpc: '2.0', id, method: era === 'modern' ? 'tools/list' : 'ping' });
      await g.reply(id);
    },
    exited,
    async close() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end();
        const t0 = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(t0);
      }
      t.cleanup();
    },
  };
  return g;
}

export const call = (id: unknown, name: string, args: Record<string, unknown> = {}) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } });

export function resultText(m: Msg): string {
  const c = (m.result?.content ?? []) as { text?: string }[];
  return c.map((x) => x.text ?? '').join('');
}
