import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { PolicyHolder } from '../policy/holder.js';
import type { PolicyStateBackend } from '../storage/policy-state.js';
import { createPolicyRuntimeSet } from './runtime.js';
import { PolicyProxy } from './proxy.js';
import { hashArgs } from '../policy/canonical.js';
import type { Grant } from '../http/grants.js';
import { createMcpListener, readBody as readCappedBody, requestId, writeRpcError, type McpRequest } from '../http/mcp-listener.js';
import { FastClientTransport, FastServerTransport, upstreamHttp } from './fast-http.js';
import { chooseUpstreamTransport, EraMismatchError, probeUpstreamEra, RequestResponseTransport, type Era } from './modern-http.js';
import type { Transport } from '@modelcontextprotocol/server';

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
  /** What the upstream speaks; default: asked once with server/discover at the first 2026-07-28 request. */
  upstreamEra?: Era;
  /**
   * Translates between protocol revisions when the upstream's differs from the client's
   * (src/gateway/era adaptUpstream). Without it such a request is refused with a clear error.
   */
  adaptUpstream?: (upstream: Transport, eras: { upstreamEra: Era; downstreamEra: Era }) => Transport;
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

/**
 * Streamable HTTP in, Streamable HTTP out, on the HTTP layer shared with `serve`
 * (src/http/mcp-listener.ts). 2025-11-25: one upstream MCP session per downstream session, policed by
 * one PolicyProxy. 2026-07-28: each POST is policed by its own PolicyProxy and forwarded statelessly
 * (src/gateway/modern-http.ts); the `session` rate-limit scope of such a call is the identity.
 */
export async function startHttpGateway(o: HttpGatewayOptions): Promise<HttpGateway> {
  const host = o.host ?? '127.0.0.1';
  const grants = o.grants ?? [];
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
  const rpcError = (res: ServerResponse, status: number, code: number, message: string, id: string | number | null = null) => writeRpcError(res, status, code, message, id);
  const readBody = (req: IncomingMessage) => readCappedBody(req, MAX_BODY).catch(() => null);

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

  // The upstream's revision, asked once (or configured); a failed probe is asked again next time.
  let upstreamEra: Promise<Era> | undefined = o.upstreamEra ? Promise.resolve(o.upstreamEra) : undefined;
  const eraOfUpstream = (): Promise<Era> => {
    upstreamEra ??= probeUpstreamEra(upHttp).catch((e: Error) => {
      upstreamEra = undefined;
      throw e;
    });
    return upstreamEra;
  };

  /** 2026-07-28: one proxy for this one POST, forwarded without a session. */
  const handleModern = async (res: ServerResponse, body: Record<string, unknown>, identity: string, holder: PolicyHolder) => {
    let upstream: Transport;
    try {
      upstream = chooseUpstreamTransport({ upstreamEra: await eraOfUpstream(), downstreamEra: 'modern', up: upHttp, adapt: o.adaptUpstream });
    } catch (e) {
      const unreachable = !(e instanceof EraMismatchError);
      return rpcError(res, unreachable ? 502 : 400, unreachable ? -32603 : -32600, unreachable ? `upstream unreachable: ${(e as Error).message}` : (e as Error).message, requestId(body));
    }
    const downstream = new RequestResponseTransport(res, body);
    const proxy = new PolicyProxy({
      downstream,
      upstream,
      holder,
      state,
      // No session in 2026-07-28: the "session" scope counts against the authenticated identity.
      session: () => `modern:${identity}`,
      identity,
      relateDownstream: true,
      upstreamRelated: () => (upstream as { currentRequestId?: string | number }).currentRequestId,
      // Read-only discovery and the change-notification stream pass like tools/list does.
      passMethods: ['server/discover', 'subscriptions/listen'],
      log,
    });
    await proxy.start();
  };

  /** Audits a request whose standard headers disagree with its body: it would have bypassed routing on them. */
  const auditHeaderMismatch = ({ grant, body, message }: { grant: Grant | undefined; body: unknown; message: string }) => {
    const b = (typeof body === 'object' && body !== null ? body : {}) as { method?: unknown; params?: { name?: unknown; arguments?: unknown } };
    const tool = b.method === 'tools/call' && typeof b.params?.name === 'string' ? b.params.name : `method:${String(b.method).slice(0, 200)}`;
    let argsHash = 'unhashable';
    try {
      argsHash = hashArgs(state.hashKey, b.params?.arguments ?? {});
    } catch {
      /* left as unhashable */
    }
    try {
      const written = state.audit.append(
        {
          ts: new Date().toISOString(),
          session: `modern:${grant?.identity ?? 'anonymous'}`,
          identity: grant?.identity ?? 'anonymous',
          tool,
          args_hash: argsHash,
          decision: 'deny',
          rule: 'protocol',
          reason: message,
          latency_ms: 0,
          upstream: 'not_forwarded',
          policy_hash: holderFor(grant).current.hash.slice(0, 16),
        },
        true,
      );
      if (written) void Promise.resolve(written).catch((e: Error) => log(`audit failed: ${e.message}`));
    } catch (e) {
      log(`audit failed: ${(e as Error).message}`);
    }
  };

  const onMcp = async ({ req, res, grant, body, route }: McpRequest) => {
    const identity = grant?.identity ?? 'anonymous';
    if (Array.isArray(body)) return rpcError(res, 400, -32600, 'Invalid Request: JSON-RPC batches are not supported by this gateway');
    if (route?.kind === 'modern') return handleModern(res, body as Record<string, unknown>, identity, holderFor(grant));
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

  let listener;
  try {
    listener = createMcpListener({
      host,
      port: o.port ?? 0,
      grants,
      allowedHosts: o.allowedHosts,
      maxBodyBytes: MAX_BODY,
      mcpPath: (p) => (p === endpoint ? endpoint : undefined),
      displayPath: endpoint,
      onMcp,
      onHeaderMismatch: auditHeaderMismatch,
      routes: async (req, res, grant, pathname) => {
        if (!pathname.startsWith('/policy/approvals')) return false;
        await approvalsApi(grant, req, res, new URL(req.url ?? '/', 'http://gateway'));
        return true;
      },
      log,
    });
  } catch (e) {
    runtimes.close();
    upHttp.agent.destroy();
    throw e;
  }
  const server = listener.server;
  const url = await listener.listen();
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url,
    port,
    sessions: () => sessions.size,
    state,
    async close() {
      await Promise.all([...sessions.values()].map((s) => s.proxy.close().catch(() => undefined)));
      sessions.clear();
      server.closeAllConnections();
      await listener.close();
      upHttp.agent.destroy();
      runtimes.close();
    },
  };
}
