import { randomUUID } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { NodeStreamableHTTPServerTransport, toNodeHandler } from '@modelcontextprotocol/node';
import { createMcpHandler, isInitializeRequest, type AuthInfo, type McpServer } from '@modelcontextprotocol/server';
import { createEgressTriageServer, type EgressTriageServerOptions } from './server.js';
import type { PolicyOptions } from './stdio.js';
import { createPolicyGatewayForServer } from '../gateway/in-process.js';
import { RequestResponseTransport } from '../gateway/modern-http.js';
import { createPolicyRuntimeSet, type PolicyRuntime, type PolicyRuntimeSet } from '../gateway/runtime.js';
import type { Grant } from '../http/grants.js';
import type { PolicyStateBackend } from '../storage/policy-state.js';
import type { Dashboard } from '../dashboard/app.js';
import type { DashboardShared } from '../dashboard/store.js';
import { createMcpListener, requestId, writeRpcError as jsonRpcError, type McpRequest } from '../http/mcp-listener.js';
import { appendRefusal, auditGuardRefusals, onErrorAnswer, refusalSession } from '../gateway/http-refusals.js';
import type { PolicyProxy } from '../gateway/proxy.js';

export { parseListen } from '../http/listen.js';

/** A route handler mounted next to /mcp. Return true when it handled (answered) the request. */
export type ExtraRoutes = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

export interface HttpAppOptions extends EgressTriageServerOptions {
  /** default 127.0.0.1 */
  host?: string;
  /** default 8787; 0 picks a free port */
  port?: number;
  /** MCP endpoint path, default /mcp */
  path?: string;
  /** request bodies above this are answered 413 (default 1 MiB) */
  maxBodyBytes?: number;
  /** at most this many live sessions (default 1000); more initialize requests get 503 */
  maxSessions?: number;
  /** sessions idle longer than this are closed (default 30 min) */
  sessionIdleMs?: number;
  /** dashboard, approvals API, ... mounted later on the same server; tried before the 404 */
  extraRoutes?: ExtraRoutes;
  /**
   * The web dashboard on the same listener and store (src/dashboard/app.tsx): every path but the MCP
   * endpoint and /healthz. Built here because it shares this server's policy state (approvals).
   */
  dashboard?: (shared: DashboardShared) => Dashboard;
  /** route every session through the in-process policy gateway (one shared policy runtime) */
  policy?: PolicyOptions;
  /**
   * Bearer tokens (the gateway's grants file). Required to listen on a non-loopback address. A session
   * belongs to the token that opened it; its identity is the rule-audit actor (`mcp:<identity>`) and
   * the policy identity, and a grant's own `policy` replaces `policy` for it.
   */
  grants?: Grant[];
  /** state DB for a grant's own policy when `policy` is not set */
  policyDbPath?: string;
  /** shared policy state (redis://...) for a grant's own policy when `policy` is not set */
  policyStateUrl?: string;
  /** host names accepted in Host/Origin besides loopback names and the listen address */
  allowedHosts?: string[];
  log?: (line: string) => void;
}

export interface HttpApp {
  readonly server: Server;
  /** starts listening; resolves to the MCP endpoint URL, e.g. http://127.0.0.1:8787/mcp */
  listen(): Promise<string>;
  /** the MCP endpoint URL once listening */
  readonly url: string | null;
  sessionCount(): number;
  /** closes every session, then the listener */
  close(): Promise<void>;
}

interface Session {
  transport: NodeStreamableHTTPServerTransport;
  server: McpServer;
  /** grant identity that opened the session; undefined when serving without grants */
  identity: string | undefined;
  /**
   * the token (its hash) that opened it: a session runs its grant's policy, and identities need not
   * be unique in a grants file (a token being rotated, or a narrower one beside a wider one)
   */
  token: string | undefined;
  lastSeen: number;
  closeGateway?: () => Promise<void>;
  /** the session's policy proxy, which audits what the session's SDK transport refuses */
  proxy?: PolicyProxy;
}

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

/**
 * The Streamable HTTP MCP server. One endpoint (/mcp) serves both protocol revisions ("hybrid"):
 * - 2025-11-25 clients get stateful sessions (initialize, then Mcp-Session-Id), one McpServer per
 *   session over a shared store;
 * - 2026-07-28 clients are served statelessly: every request carries its protocol version, client
 *   info and capabilities in `_meta`, and the SDK's per-request handler builds an McpServer for it;
 *   there is no session id.
 * The HTTP layer shared with the gateway (src/http/mcp-listener.ts) runs first: the guard (Host and
 * Origin must name this server, and with grants a known bearer token is required), the body cap (413),
 * and the era decision with the MCP-Protocol-Version, Mcp-Method and Mcp-Name headers checked against
 * the body (a mismatch is 400). GET and DELETE are session operations. `extraRoutes` lets later
 * features (dashboard, approvals API) share the listener behind the same guard.
 */
export function createHttpApp(opts: HttpAppOptions): HttpApp {
  const host = opts.host ?? '127.0.0.1';
  const port = opts.port ?? 8787;
  const mcpPath = opts.path ?? '/mcp';
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const maxSessions = opts.maxSessions ?? 1000;
  const idleMs = opts.sessionIdleMs ?? 30 * 60_000;
  const log = opts.log ?? ((l: string) => process.stderr.write(`egress-triage serve: ${l}\n`));
  const sessions = new Map<string, Session>();
  const pending = new Set<Session>();
  const grants = opts.grants ?? [];
  let closing = false;
  // ONE runtime (policy, limiter counters, approvals, audit) for the whole process, created before the
  // first request: sessions that connect at the same moment must all charge the same counters. An
  // invalid policy throws here, so the server refuses to start.
  const policyPaths = [...(opts.policy ? [opts.policy.policyPath] : []), ...grants.flatMap((g) => (g.policy ? [g.policy] : []))];
  const policyDbPath = opts.policy?.dbPath ?? opts.policyDbPath;
  if (policyPaths.length > 0 && !policyDbPath) throw new Error('a grant names a policy, but no policy state DB was given');
  const runtimes: PolicyRuntimeSet | undefined =
    policyPaths.length > 0
      ? createPolicyRuntimeSet({ policyPaths, dbPath: policyDbPath!, auditFile: opts.policy?.auditFile, stateUrl: opts.policy?.stateUrl ?? opts.policyStateUrl, log, tenant: opts.tenant })
      : undefined;
  const runtimeFor = (grant: Grant | undefined): PolicyRuntime | undefined => {
    const path = grant?.policy ?? opts.policy?.policyPath;
    return path ? runtimes!.runtimeFor(path) : undefined;
  };
  /** Who a policy counts and audits: the grant's identity, else --identity, else "local" (as in-process.ts). */
  const policyIdentity = (grant: Grant | undefined): string => grant?.identity ?? opts.policy?.identity ?? 'local';
  /** The policy in force under a runtime, read per call: a hot reload changes what the tools report. */
  const toolPolicyOf = (runtime: PolicyRuntime | undefined) => (runtime ? () => runtime.holder.current.engine : undefined);
  // The authenticated identity, not a flag, is who wrote a rule.
  const serverOptionsFor = (identity: string | undefined): EgressTriageServerOptions => (identity !== undefined ? { ...opts, actor: `mcp:${identity}` } : opts);

  // 2026-07-28: stateless, one McpServer per request. `legacy: 'reject'` because 2025-11-25 traffic
  // never reaches it (routed to the sessions below). The grant's identity arrives as authInfo, which
  // only this file sets (the Authorization header itself is removed before any route).
  const modern = createMcpHandler((rc) => createEgressTriageServer(serverOptionsFor(rc.authInfo?.clientId)), {
    legacy: 'reject',
    maxRequestBodySize: maxBody,
    onerror: (e) => log(`2026-07-28 request failed: ${e.message}`),
  });
  const serveModern = toNodeHandler(modern, { maxRequestBodySize: maxBody, onerror: (e) => log(`2026-07-28 request failed: ${e.message}`) });

  async function openSession(grant: Grant | undefined): Promise<Session> {
    const server = createEgressTriageServer({ ...serverOptionsFor(grant?.identity), toolPolicy: toolPolicyOf(runtimeFor(grant)) });
    let entry!: Session;
    const transport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        pending.delete(entry);
        sessions.set(id, entry);
      },
      onsessionclosed: (id) => {
        sessions.delete(id);
      },
      maxRequestBodySize: maxBody,
    });
    entry = { transport, server, identity: grant?.identity, token: grant?.tokenSha256, lastSeen: Date.now() };
    pending.add(entry);
    server.server.onclose = () => {
      pending.delete(entry);
      if (transport.sessionId) sessions.delete(transport.sessionId);
    };
    const runtime = runtimeFor(grant);
    if (runtime) {
      const gw = await createPolicyGatewayForServer({
        policyPath: runtime.holder.path,
        dbPath: policyDbPath!,
        server,
        clientTransport: transport,
        identity: policyIdentity(grant),
        tenant: opts.tenant,
        runtime,
        relateDownstream: true,
      });
      entry.closeGateway = () => gw.close();
      entry.proxy = gw.proxy;
    } else {
      await server.connect(transport);
    }
    return entry;
  }

  async function closeSession(s: Session): Promise<void> {
    try {
      if (s.closeGateway) await s.closeGateway();
      await s.transport.close();
      await s.server.close();
    } catch {
      /* already closed */
    }
  }

  /**
   * Audits a POST refused before a policy proxy decided it (docs/policy.md: every refused request has a
   * record), as the gateway does and with its helpers: one that names a live session of its identity
   * through that session's proxy, any other under `no-session` or `modern:<identity>`. Without a policy
   * for this grant there is no policy audit to write to.
   */
  function auditRefused(req: IncomingMessage, grant: Grant | undefined, body: unknown, message: string): Promise<void> | void {
    const runtime = runtimeFor(grant);
    if (!runtime) return;
    const sid = req.headers['mcp-session-id'];
    const s = typeof sid === 'string' ? sessions.get(sid) : undefined;
    if (s?.proxy && s.token === grant?.tokenSha256) return s.proxy.auditTransportRefusal({ message: body, reason: message });
    const identity = policyIdentity(grant);
    return appendRefusal(runtime.state, { identity, session: refusalSession(req, body, identity), body, reason: message, policyHash: runtime.holder.current.hash, log });
  }

  async function handleMcp({ req, res, grant, method, body, route }: McpRequest): Promise<void> {
    // Refused here, before any proxy: audited when it is a POST (a GET or DELETE carries no request).
    const refuse = async (status: number, message: string, code = -32000) => {
      if (method === 'POST') await auditRefused(req, grant, body, message);
      // answered under the request's id, as every other refusal is (null when it has none)
      return jsonRpcError(res, status, code, message, method === 'POST' ? requestId(body) : null);
    };
    if (route?.kind === 'modern') return handleModern(req, res, body, grant);
    const sid = req.headers['mcp-session-id'];
    const sessionId = Array.isArray(sid) ? sid[0] : sid;
    if (sessionId) {
      const s = sessions.get(sessionId);
      if (!s) return refuse(404, 'Session not found: it expired or was closed; initialize a new session', -32001);
      // A session belongs to the token that opened it (not only to its identity: another token of
      // the same identity may have another policy; found by review).
      if (s.token !== grant?.tokenSha256) return refuse(403, 'Forbidden: the session belongs to another token');
      s.lastSeen = Date.now();
      // What the SDK's session transport refuses itself (an unsupported MCP-Protocol-Version, a body that
      // is not JSON-RPC) never reaches the policy proxy: audited from its answer.
      if (method === 'POST') onErrorAnswer(res, (message) => auditRefused(req, grant, body, message));
      await s.transport.handleRequest(req, res, body);
      return;
    }
    if (method === 'POST' && isInitializeRequest(body)) {
      if (closing) return refuse(503, 'Server is shutting down');
      if (sessions.size + pending.size >= maxSessions) return refuse(503, `Too many sessions (limit ${maxSessions}); close one with DELETE`);
      const s = await openSession(grant);
      onErrorAnswer(res, (message) => auditRefused(req, grant, body, message));
      await s.transport.handleRequest(req, res, body);
      if (!s.transport.sessionId) {
        // initialize failed (e.g. bad protocol version): do not keep a half-open session
        pending.delete(s);
        await closeSession(s);
      }
      return;
    }
    return refuse(400, 'Bad Request: missing Mcp-Session-Id header (send initialize first)');
  }

  async function handleModern(req: IncomingMessage, res: ServerResponse, body: unknown, grant: Grant | undefined): Promise<void> {
    if (closing) {
      await auditRefused(req, grant, body, 'Server is shutting down');
      return jsonRpcError(res, 503, -32000, 'Server is shutting down', requestId(body));
    }
    // Under a policy, each 2026-07-28 request gets its own policy proxy in front of a server built for it
    // (the gateway's per-request mode): the same runtime, counters, approvals and audit as the sessions.
    const runtime = runtimeFor(grant);
    if (runtime) {
      await createPolicyGatewayForServer({
        policyPath: runtime.holder.path,
        dbPath: policyDbPath!,
        serverFactory: () => createEgressTriageServer({ ...serverOptionsFor(grant?.identity), toolPolicy: toolPolicyOf(runtime) }),
        clientTransport: new RequestResponseTransport(res, body as Record<string, unknown>),
        identity: policyIdentity(grant),
        tenant: opts.tenant,
        runtime,
        relateDownstream: true,
      });
      return;
    }
    if (grant) (req as IncomingMessage & { auth?: AuthInfo }).auth = { token: '', clientId: grant.identity, scopes: [] };
    await serveModern(req, res, body);
  }

  // 401s and 403s carry no identity: tallied per address into the audit (one policy state serves every policy)
  const auditRuntime = runtimes?.runtimeFor(policyPaths[0]!);
  const guardRefusals = auditRuntime ? auditGuardRefusals(auditRuntime.state, { policyHash: () => auditRuntime.holder.current.hash, log }) : undefined;

  // Host/Origin and bearer token, body limit, era and standard headers: the one HTTP layer shared with
  // the gateway (src/http/mcp-listener.ts). The health route and later ones sit behind the same guard.
  const listener = createMcpListener({
    host,
    port,
    grants,
    allowedHosts: opts.allowedHosts,
    maxBodyBytes: maxBody,
    mcpPath: (p) => (p === mcpPath ? mcpPath : undefined),
    displayPath: mcpPath,
    onMcp: handleMcp,
    // The listener's own refusals (body over the limit or not JSON, media types, standard headers).
    onRefused: ({ req, grant, body, message }) => auditRefused(req, grant, body, message),
    onGuardRefused: guardRefusals?.note,
    browser: opts.dashboard?.({
      policyState: runtimes?.state,
      excludedPaths: [mcpPath, '/healthz'],
      policyFile: opts.policy?.policyPath,
      // the Policy page saves through the holder that enforces the file here: in force and audited at once
      policyHolder: opts.policy ? runtimes!.runtimeFor(opts.policy.policyPath).holder : undefined,
      // a token guessed through the sign-in form is audited like one guessed on the MCP route
      onSignInRefused: guardRefusals?.note,
    }),
    routes: async (req, res, _grant, path) => {
      if (opts.extraRoutes && (await opts.extraRoutes(req, res))) return true;
      if (path !== '/healthz') return false;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ ok: true, sessions: sessions.size }));
      return true;
    },
    log,
  });

  const sweeper = setInterval(() => {
    const cutoff = Date.now() - idleMs;
    for (const [id, s] of sessions) {
      if (s.lastSeen < cutoff) {
        sessions.delete(id);
        void closeSession(s);
      }
    }
  }, Math.min(60_000, Math.max(1000, idleMs / 2)));
  sweeper.unref();

  return {
    server: listener.server,
    get url() {
      return listener.url;
    },
    sessionCount: () => sessions.size,
    async listen() {
      // A shared policy state must be reachable before the first session: fail closed at start.
      await runtimes?.state.ready();
      return listener.listen();
    },
    async close() {
      closing = true;
      clearInterval(sweeper);
      const all = [...sessions.values(), ...pending];
      sessions.clear();
      pending.clear();
      await Promise.all(all.map(closeSession));
      await modern.close().catch(() => undefined);
      await listener.close();
      guardRefusals?.stop();
      runtimes?.close();
    },
  };
}

/** Creates the app and starts listening; logs the bound URL to stderr. */
export async function startHttpServer(opts: HttpAppOptions): Promise<HttpApp> {
  const app = createHttpApp(opts);
  const url = await app.listen();
  (opts.log ?? ((l: string) => process.stderr.write(`egress-triage serve: ${l}\n`)))(`listening on ${url} (tenant "${opts.tenant}")`);
  return app;
}
