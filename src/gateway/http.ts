import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { PolicyHolder } from '../policy/holder.js';
import type { PolicyStateBackend } from '../storage/policy-state.js';
import { createPolicyRuntimeSet } from './runtime.js';
import { PolicyProxy } from './proxy.js';
import { indexGrants, type Grant } from '../http/grants.js';
import { allowedHostNames } from '../http/host-origin.js';
import { guardRequest, writeRefusal } from '../http/guard.js';
import { listenDecision, ListenRefusedError } from '../http/listen.js';
import { FastClientTransport, FastServerTransport, upstreamHttp } from './fast-http.js';

export interface HttpGatewayOptions {
  policyPath: string;
  dbPath: string;
  auditFile?: string | false;
  /** Shared policy state (`redis://host:port[/db]`); without it, the store at dbPath. */
  stateUrl?: string;
  upstreamUrl: string;
  host?: string;
  port?: number;
  /** Bearer tokens. Without any, only loopback listening is allowed and everyone is "anonymous". */
  grants?: Grant[];
  /** Host names accepted in Host/Origin besides loopback names and the listen address (--allowed-host). */
  allowedHosts?: string[];
  /** Credentials for the upstream come from here, never from the agent's request. */
  upstreamHeaders?: Record<string, string>;
  /** Path the MCP endpoint is served on (default /mcp). */
  path?: string;
  log?: (line: string) => void;
  watch?: boolean;
}

export interface HttpGateway {
  url: string;
  port: number;
  sessions(): number;
  close(): Promise<void>;
  state: PolicyStateBackend;
}

interface Session {
  transport: NodeStreamableHTTPServerTransport;
  fast: FastServerTransport;
  proxy: PolicyProxy;
  identity: string;
}

const MAX_BODY = 4 * 1024 * 1024;

/** Streamable HTTP in, Streamable HTTP out: one upstream MCP session per downstream session. */
export async function startHttpGateway(o: HttpGatewayOptions): Promise<HttpGateway> {
  const host = o.host ?? '127.0.0.1';
  const grants = o.grants ?? [];
  const decision = listenDecision(host, grants.length);
  if (!decision.ok) throw new ListenRefusedError(decision.message);
  const guard = { allowedHosts: allowedHostNames(host, o.allowedHosts), grants: indexGrants(grants) };
  const log = o.log ?? ((l: string) => process.stderr.write(`egress-triage gateway: ${l}\n`));
  // Load every policy up front (any invalid one refuses to start): one runtime per file, one state DB.
  const runtimes = createPolicyRuntimeSet({
    policyPaths: [o.policyPath, ...grants.flatMap((g) => (g.policy ? [g.policy] : []))],
    dbPath: o.dbPath,
    auditFile: o.auditFile,
    stateUrl: o.stateUrl,
    watch: o.watch,
    log,
  });
  try {
    await runtimes.state.ready();
  } catch (e) {
    runtimes.close();
    throw e;
  }
  const holderFor = (grant: Grant | undefined): PolicyHolder => runtimes.runtimeFor(grant?.policy ?? o.policyPath).holder;
  const state = runtimes.runtimeFor(o.policyPath).state;
  const sessions = new Map<string, Session>();
  const endpoint = o.path ?? '/mcp';
  // Every upstream session shares one keep-alive agent: no new connection per call.
  const upHttp = upstreamHttp(o.upstreamUrl, { ...(o.upstreamHeaders ?? {}) });

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const rpcError = (res: ServerResponse, status: number, code: number, message: string) =>
    json(res, status, { jsonrpc: '2.0', id: null, error: { code, message } });

  const readBody = (req: IncomingMessage) =>
    new Promise<string | null>((resolveBody, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY) {
          resolveBody(null);
          req.destroy();
        } else chunks.push(c);
      });
      req.on('end', () => resolveBody(Buffer.concat(chunks).toString('utf8')));
      req.on('error', reject);
    });

  const newSession = async (identity: string, holder: PolicyHolder): Promise<Session> => {
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => void sessions.set(id, s),
    });
    const upstream = new FastClientTransport(
      new StreamableHTTPClientTransport(new URL(o.upstreamUrl), {
        requestInit: { headers: { ...(o.upstreamHeaders ?? {}) } },
      }),
      upHttp,
    );
    const fast = new FastServerTransport(transport);
    const proxy = new PolicyProxy({
      downstream: fast,
      upstream,
      holder,
      state,
      session: () => transport.sessionId ?? 'uninitialized',
      identity,
      relateDownstream: true,
      upstreamRelated: () => upstream.currentRequestId,
      log,
      closeUpstream: async () => {
        await upstream.terminateSession().catch(() => undefined);
        await upstream.close();
      },
      onClose: () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      },
    });
    const s: Session = { transport, fast, proxy, identity };
    await proxy.start();
    return s;
  };

  const approvalsApi = async (grant: Grant | undefined, req: IncomingMessage, res: ServerResponse, url: URL) => {
    // Agents must not approve their own calls: the API needs a token marked admin.
    if (!grant?.admin) return json(res, 403, { error: 'the approvals API needs an admin bearer token' });
    const parts = url.pathname.split('/').filter(Boolean); // policy, approvals, [id, action]
    if (req.method === 'GET' && parts.length === 2) {
      try {
        return json(res, 200, { approvals: await state.approvals.list({ status: (url.searchParams.get('status') as 'pending') ?? 'pending' }) });
      } catch (e) {
        return json(res, 503, { error: `policy state error: ${(e as Error).message}` });
      }
    }
    if (req.method === 'POST' && parts.length === 4 && (parts[3] === 'approve' || parts[3] === 'deny')) {
      const body = await readBody(req);
      let reason: string | undefined;
      try {
        const b = body ? JSON.parse(body) : {};
        reason = typeof b.reason === 'string' ? b.reason : undefined;
      } catch {
        return json(res, 400, { error: 'body must be JSON' });
      }
      try {
        const row = await state.approvals.decide(parts[2]!, parts[3] === 'approve' ? 'approved' : 'denied', `http:${grant.identity}`, reason);
        return json(res, 200, { approval: row });
      } catch (e) {
        // Unknown or already decided is the caller's conflict; anything else is the state being unavailable.
        const m = (e as Error).message;
        return json(res, /^no approval with id|, not pending$/.test(m) ? 409 : 503, { error: m });
      }
    }
    return json(res, 404, { error: 'not found' });
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    // The common case (the MCP endpoint, no query) skips URL parsing.
    const url = req.url === endpoint ? undefined : new URL(req.url ?? '/', 'http://gateway');
    // Host/Origin (DNS rebinding) and bearer token: the same checks as `serve`, before any route.
    const verdict = guardRequest(req, guard);
    if (!verdict.ok) return writeRefusal(res, verdict);
    const grant = verdict.grant;
    if (url?.pathname.startsWith('/policy/approvals')) return approvalsApi(grant, req, res, url);
    if (url && url.pathname !== endpoint) return json(res, 404, { error: 'not found' });
    const identity = grant?.identity ?? 'anonymous';
    // The agent's credentials stop here; the upstream only ever sees the gateway's own headers.
    delete req.headers.authorization;
    let body: unknown;
    if (req.method === 'POST') {
      const text = await readBody(req);
      if (text === null) return rpcError(res, 413, -32600, 'Request body too large');
      try {
        body = JSON.parse(text);
      } catch {
        return rpcError(res, 400, -32700, 'Parse error');
      }
      if (Array.isArray(body)) return rpcError(res, 400, -32600, 'Invalid Request: JSON-RPC batches are not supported by this gateway');
    }
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const s = sessions.get(sid);
      if (!s) return rpcError(res, 404, -32001, 'Session not found');
      // A session belongs to the token that opened it.
      if (s.identity !== identity) return rpcError(res, 403, -32600, 'Session belongs to another identity');
      // One JSON-RPC request: answered as plain JSON without the SDK's Web-standard adapter.
      if (req.method === 'POST' && s.fast.tryHandle(req, res, body)) return;
      return s.transport.handleRequest(req, res, body);
    }
    const isInit = req.method === 'POST' && typeof body === 'object' && body !== null && (body as { method?: unknown }).method === 'initialize';
    if (!isInit) return rpcError(res, 400, -32000, 'Bad Request: No valid session ID provided');
    const s = await newSession(identity, holderFor(grant));
    return s.transport.handleRequest(req, res, body);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: Error) => {
      log(`request failed: ${e.message}`);
      if (!res.headersSent) rpcError(res, 500, -32603, 'Internal error');
      else res.end();
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((res, rej) => {
    server.once('error', rej);
    server.listen(o.port ?? 0, host, () => res());
  });
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${hostForUrl}:${port}${endpoint}`,
    port,
    sessions: () => sessions.size,
    state,
    async close() {
      await Promise.all([...sessions.values()].map((s) => s.proxy.close().catch(() => undefined)));
      sessions.clear();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
      upHttp.agent.destroy();
      runtimes.close();
    },
  };
}
