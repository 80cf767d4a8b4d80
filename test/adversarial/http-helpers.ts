/**
 * Raw-HTTP drivers for the adversarial suite: real `serve` and `gateway` child processes, a recording
 * upstream (test/gateway/fixtures/echo-server.ts counts every tools/call that reaches it), and
 * node:http requests whose headers (Host included) are exactly what the test says.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer, request, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createNetServer } from 'node:net';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { CLI as GATEWAY_CLI, FIXTURE } from '../gateway/helpers.js';
import { killChild } from '../mcp/helpers.js';
import { REVISION, type Era } from '../gateway/helpers.js';
import { readPolicyAudit } from '../helpers/policy-audit.js';

export { ERAS, REVISION, type Era } from '../gateway/helpers.js';

export const CLI = GATEWAY_CLI;

const childEnv = (): Record<string, string> => {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !k.startsWith('EGRESS_TRIAGE_')) env[k] = v;
  return env;
};

export interface Proc {
  child: ChildProcessWithoutNullStreams;
  /** port the process printed; tests always TALK to 127.0.0.1 on it */
  port: number;
  output: () => string;
}

/** Spawns and resolves once `re` (whose group 1 is the port) appears on stdout/stderr. */
function spawnListening(args: string[], re: RegExp, env: Record<string, string> = {}): Promise<Proc> {
  const child = spawn(process.execPath, args, { env: { ...childEnv(), ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no listening line within 20 s: ${out}`));
    }, 20_000);
    const on = (d: Buffer) => {
      out += d.toString();
      const m = re.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, port: Number(m[1]), output: () => out });
      }
    };
    child.stdout.on('data', on);
    child.stderr.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(t);
      reject(new Error(`exited ${code} before listening: ${out}`));
    });
  });
}

/** The recording upstream: an MCP server over Streamable HTTP (JSON answers) on 127.0.0.1. */
export function startUpstream(): Promise<Proc> {
  return spawnListening([FIXTURE, '--http', '--json'], /LISTENING (\d+)/);
}

export function startServe(db: string, extra: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  const args = [CLI, 'serve', '--db', db, '--tenant', 'demo', '--dashboard-url', 'https://dash.example'];
  if (!extra.includes('--listen')) args.push('--listen', '127.0.0.1:0');
  return spawnListening([...args, ...extra], /listening on http:\/\/\S+?:(\d+)\/mcp/, env);
}

export function startGateway(policy: string, db: string, upstreamPort: number, extra: string[] = [], env: Record<string, string> = {}): Promise<Proc> {
  const args = [CLI, 'gateway', '--policy', policy, '--db', db, '--upstream', `http://127.0.0.1:${upstreamPort}/mcp`];
  if (!extra.includes('--listen')) args.push('--listen', '127.0.0.1:0');
  return spawnListening([...args, ...extra], /listening on http:\/\/\S+?:(\d+)\/mcp/, env);
}

/** Runs the CLI to completion. */
export function runCli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...childEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

export function stop(p: Proc | undefined): Promise<void> {
  return p ? killChild(p.child) : Promise.resolve();
}

export interface RawReply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** JSON-RPC messages in the body (plain JSON or SSE `data:` lines) */
  messages: Record<string, any>[];
}

/**
 * One POST with exactly these headers. A header set to null is not sent (`host: null`: no Host header at
 * all, `accept: null`: none of the default Accept); otherwise the given value replaces the one node or
 * the default would send. The socket always goes to 127.0.0.1:port.
 */
export function rawPost(port: number, body: unknown, headers: Record<string, string | null> = {}, path = '/mcp', signal?: AbortSignal): Promise<RawReply> {
  const { host, ...rest } = headers;
  const h: Record<string, string> = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  for (const [k, v] of Object.entries(rest)) {
    if (v === null) delete h[k];
    else h[k] = v;
  }
  if (typeof host === 'string') h.host = host;
  const payload = typeof body === 'string' ? body : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: 'POST', headers: h, setHost: host !== null, agent: false, ...(signal ? { signal } : {}) },
      (res) => {
        answered = true;
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text, messages: parseMessages(text) }));
        res.on('error', reject);
      },
    );
    // A server that refuses a body (413) answers and closes before it is all written: the answer counts.
    let answered = false;
    req.on('error', (e) => {
      if (!answered || signal?.aborted) reject(e);
    });
    req.end(payload);
  });
}

function parseMessages(text: string): Record<string, any>[] {
  const t = text.trim();
  if (!t) return [];
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      const v = JSON.parse(t);
      return Array.isArray(v) ? v : [v];
    } catch {
      return [];
    }
  }
  const out: Record<string, any>[] = [];
  for (const line of t.split(/\r?\n/)) if (line.startsWith('data:')) out.push(JSON.parse(line.slice(5).trim()));
  return out;
}

export const INIT = {
  jsonrpc: '2.0',
  id: 0,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'adversary', version: '0' } },
};

/** initialize + notifications/initialized with these headers; returns the session id (or the refusal). */
export async function openSession(port: number, headers: Record<string, string | null> = {}): Promise<{ sessionId?: string; reply: RawReply }> {
  const reply = await rawPost(port, INIT, headers);
  const sid = reply.headers['mcp-session-id'];
  if (reply.status !== 200 || typeof sid !== 'string') return { reply };
  const ack = await rawPost(port, { jsonrpc: '2.0', method: 'notifications/initialized' }, { ...headers, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' });
  if (ack.status >= 300) throw new Error(`notifications/initialized got ${ack.status}: ${ack.text}`);
  return { sessionId: sid, reply };
}

export function callTool(port: number, sessionId: string, id: number, name: string, args: Record<string, unknown>, headers: Record<string, string | null> = {}): Promise<RawReply> {
  return rawPost(port, { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args } }, { ...headers, 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' });
}

/** What reached the recording upstream: its per-tool call counts (`stats` itself left out). */
export async function upstreamCounts(upstreamPort: number): Promise<Record<string, number>> {
  const { sessionId } = await openSession(upstreamPort);
  if (!sessionId) throw new Error('could not open a session on the upstream fixture');
  const r = await callTool(upstreamPort, sessionId, 1, 'stats', {});
  const counts = JSON.parse(r.messages[0]!.result.content[0].text) as Record<string, number>;
  delete counts.stats;
  return counts;
}

/** Policy audit records of a state DB (`egress-triage audit --json`). */
export function policyAudit(db: string): Promise<Record<string, any>[]> {
  return readPolicyAudit(db);
}

/** Polls until `fn` returns a value (audit writes are batched); fails after a bounded deadline. */
export async function eventually<T>(fn: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** An HTTP/1.0 POST written by hand, without a Host header; resolves to the whole raw response. */
export function rawHttp10(port: number, body: unknown, headers: Record<string, string>): Promise<string> {
  const payload = Buffer.from(JSON.stringify(body));
  const head = [
    'POST /mcp HTTP/1.0',
    'content-type: application/json',
    'accept: application/json, text/event-stream',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    `content-length: ${payload.length}`,
  ].join('\r\n');
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1', () => sock.end(Buffer.concat([Buffer.from(`${head}\r\n\r\n`), payload])));
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (out += c));
    sock.on('end', () => resolve(out));
    sock.on('error', reject);
  });
}

// ------------------------------------------------------------------ both revisions

/**
 * What a request needs besides its body: on 2025-11-25 the session it was opened on; on 2026-07-28
 * nothing (no initialize, no session), the revision being in every request.
 */
export interface Conn {
  era: Era;
  sessionId?: string;
}

/** The 2026-07-28 `_meta` envelope, plus any extra `_meta` (e.g. the session handle). */
export function envelope(extra: Record<string, unknown> = {}, capabilities: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': REVISION.modern,
    'io.modelcontextprotocol/clientInfo': { name: 'adversary', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': capabilities,
    ...extra,
  };
}

/** The session-handle key of `_meta` (docs/policy.md, "Who is the session on 2026-07-28"). */
export const HANDLE_KEY = 'egress-triage/session';

const isObj = (v: unknown): v is Record<string, any> => typeof v === 'object' && v !== null && !Array.isArray(v);
const NAME_FIELD: Record<string, string> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/**
 * A message as this revision frames it. 2026-07-28: the envelope goes into `params._meta` of every
 * message with a method, whatever its id (an attack on the id must still be a 2026-07-28 message),
 * with `meta` added; 2025-11-25: `meta` only (a legacy client may put anything in `_meta`).
 */
export function frame(era: Era, msg: unknown, meta: Record<string, unknown> = {}): unknown {
  if (Array.isArray(msg)) return msg.map((m) => frame(era, m, meta));
  if (!isObj(msg) || typeof msg.method !== 'string') return msg;
  const params = isObj(msg.params) ? msg.params : {};
  const own = isObj(params._meta) ? params._meta : {};
  const _meta = era === 'modern' ? { ...envelope(meta), ...own } : { ...meta, ...own };
  return Object.keys(_meta).length ? { ...msg, params: { ...params, _meta } } : msg;
}

/**
 * The headers this revision sends with `msg`: the session id on 2025-11-25; on 2026-07-28 the
 * standard headers, taken from the body (an attack overrides them through `headers`).
 */
export function eraHeaders(conn: Conn, msg: unknown): Record<string, string> {
  if (conn.era === 'legacy') return conn.sessionId ? { 'mcp-session-id': conn.sessionId, 'mcp-protocol-version': '2025-06-18' } : {};
  const h: Record<string, string> = { 'mcp-protocol-version': REVISION.modern };
  const first = Array.isArray(msg) ? msg[0] : msg;
  if (isObj(first) && typeof first.method === 'string') {
    h['mcp-method'] = first.method;
    const field = NAME_FIELD[first.method];
    const v = field && isObj(first.params) ? first.params[field] : undefined;
    if (typeof v === 'string') h['mcp-name'] = v;
  }
  return h;
}

/** Sends `msg` framed for the connection's revision; `headers` win over the revision's own. */
export function send(
  port: number, conn: Conn, msg: unknown, headers: Record<string, string | null> = {}, meta: Record<string, unknown> = {}, path = '/mcp', signal?: AbortSignal,
): Promise<RawReply> {
  const body = frame(conn.era, msg, meta);
  return rawPost(port, body, { ...eraHeaders(conn, body), ...headers }, path, signal);
}

export const toolCall = (id: unknown, name: string, args: Record<string, unknown>): Record<string, unknown> => {
  const m: Record<string, unknown> = { jsonrpc: '2.0', method: 'tools/call', params: { name, arguments: args } };
  if (id !== undefined) m.id = id;
  return m;
};

/** One tools/call in the connection's revision. */
export function call(port: number, conn: Conn, id: unknown, name: string, args: Record<string, unknown>, headers: Record<string, string | null> = {}, meta: Record<string, unknown> = {}): Promise<RawReply> {
  return send(port, conn, toolCall(id, name, args), headers, meta);
}

/**
 * What a client of this revision does first, with these headers: 2025-11-25 opens a session
 * (initialize + initialized); 2026-07-28 has nothing to open, so its first request (tools/list) is
 * what the server answers or refuses. `conn` is undefined when the server refused.
 */
export async function open(era: Era, port: number, headers: Record<string, string | null> = {}): Promise<{ conn?: Conn; reply: RawReply }> {
  if (era === 'legacy') {
    const { sessionId, reply } = await openSession(port, headers);
    return { conn: sessionId ? { era, sessionId } : undefined, reply };
  }
  const conn: Conn = { era };
  const reply = await send(port, conn, { jsonrpc: '2.0', id: 0, method: 'tools/list', params: {} }, headers);
  return { conn: reply.status === 200 && reply.messages.at(-1)?.result ? conn : undefined, reply };
}

/** The answer to a request (the last JSON-RPC message of its reply). */
export const answer = (r: RawReply): Record<string, any> | undefined => r.messages.at(-1);

/**
 * A POST written on a raw socket, for bodies the server refuses before reading them all: node's
 * client may report the server's early close (EPIPE) before the answer it already received, so the
 * bytes read are what counts. `chunked` sends no length, so the server must count as it reads.
 * Status 0: the connection was reset before any answer could be read (the server closed with our
 * unread bytes in its buffer, which makes the kernel reset it).
 */
/** `body` as JSON, or a Buffer sent as it is (a body the test process could not serialise itself). */
export function socketPost(port: number, body: unknown, headers: Record<string, string>, chunked = false): Promise<RawReply> {
  const payload = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
  const head = [
    'POST /mcp HTTP/1.1',
    `host: 127.0.0.1:${port}`,
    'content-type: application/json',
    'accept: application/json, text/event-stream',
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    chunked ? 'transfer-encoding: chunked' : `content-length: ${payload.length}`,
  ].join('\r\n');
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    let out = '';
    sock.setEncoding('utf8');
    sock.on('data', (c: string) => (out += c));
    sock.on('error', () => undefined); // the server closing early is the expected outcome
    sock.on('close', () => {
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(out)?.[1] ?? 0);
      const raw = out.slice(out.indexOf('\r\n\r\n') + 4);
      // A chunked answer: its one JSON object lies between the chunk-size lines.
      const text = raw.includes('{') ? raw.slice(raw.indexOf('{'), raw.lastIndexOf('}') + 1) : raw;
      resolve({ status, headers: {}, text, messages: parseMessages(text) });
    });
    sock.write(`${head}\r\n\r\n`);
    const step = 64 * 1024;
    let at = 0;
    const pump = (): void => {
      while (at < payload.length && !sock.destroyed) {
        const part = payload.subarray(at, at + step);
        at += step;
        const framed = chunked ? Buffer.concat([Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]) : part;
        if (!sock.write(framed)) return void sock.once('drain', pump);
      }
      if (!sock.destroyed) sock.end(chunked ? '0\r\n\r\n' : '');
    };
    pump();
  });
}

/** A POST the HTTP layer must refuse, with the answer it must get and the audit record it must leave. */
export interface RefusalCase {
  label: string;
  post(): Promise<RawReply>;
  status: number;
  code: number;
  /** the record: its identity (default alice), tool, reason and session */
  identity?: string;
  tool: string;
  reason: RegExp;
  session: string;
  /** the id the answer must carry (the request's own), when set */
  id?: number;
}

/** Each refusal, one at a time: its answer, then exactly one new deny/protocol record (written before the answer ended). */
export async function assertRefusalsAudited(db: string, cases: readonly RefusalCase[]): Promise<void> {
  for (const c of cases) {
    const before = (await policyAudit(db)).length;
    const r = await c.post();
    assert.equal(r.status, c.status, `${c.label}: ${r.text}`);
    assert.equal(r.messages.at(-1)?.error?.code, c.code, `${c.label}: ${r.text}`);
    if (c.id !== undefined) assert.equal(r.messages.at(-1)?.id, c.id, `${c.label}: answered under the request's id: ${r.text}`);
    const recs = (await policyAudit(db)).slice(before);
    assert.equal(recs.length, 1, `${c.label}: ${JSON.stringify(recs)}`);
    const [rec] = recs;
    assert.deepEqual(
      [rec!.identity, rec!.tool, rec!.decision, rec!.rule, rec!.upstream, rec!.session],
      [c.identity ?? 'alice', c.tool, 'deny', 'protocol', 'not_forwarded', c.session],
      c.label,
    );
    assert.match(rec!.reason, c.reason, c.label);
  }
}

/** A loopback port nothing listens on: bound, then closed. */
export async function deadPort(): Promise<number> {
  const s = createNetServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

// ------------------------------------------------------------------ a scripted upstream

export interface ScriptedUpstream {
  port: number;
  /** every JSON-RPC message POSTed to it, in order */
  received: Record<string, any>[];
  /** ids of requests whose POST the gateway closed before this upstream had ended its answer */
  closedEarly: Set<unknown>;
  close(): Promise<void>;
}

/**
 * A 2025-11-25 Streamable HTTP upstream written by hand, in the test process, for what an SDK server
 * cannot be made to do (hold a tools/list, flood a stream): `initialize` opens session "scripted",
 * notifications and responses get 202, a GET 405 (no server stream), DELETE 200. Every other request
 * goes to `onRequest`, which returns true when it took the request (to answer on `res` as it likes, or
 * never); any other request gets `{}` as JSON.
 */
export async function startScriptedUpstream(onRequest: (m: Record<string, any>, res: ServerResponse) => boolean): Promise<ScriptedUpstream> {
  const received: Record<string, any>[] = [];
  const closedEarly = new Set<unknown>();
  const server = createHttpServer((req, res) => {
    if (req.method === 'GET') return void res.writeHead(405).end();
    if (req.method === 'DELETE') return void res.writeHead(200).end();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const m = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, any>;
      received.push(m);
      const json = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'scripted' }).end(JSON.stringify(body));
      if (m.method === 'initialize') {
        return json({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params?.protocolVersion ?? '2025-06-18', capabilities: { tools: {}, prompts: {} }, serverInfo: { name: 'scripted', version: '1' } } });
      }
      if (m.id === undefined || m.method === undefined) return void res.writeHead(202).end();
      res.once('close', () => {
        if (!res.writableFinished) closedEarly.add(m.id);
      });
      if (!onRequest(m, res)) json({ jsonrpc: '2.0', id: m.id, result: {} });
    });
  });
  return { ...(await listenOnLoopback(server)), received, closedEarly };
}

/** Listens on a free loopback port; close() ends open connections too, so no held request keeps it up. */
export async function listenOnLoopback(server: Server): Promise<{ port: number; close(): Promise<void> }> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    port: (server.address() as { port: number }).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
