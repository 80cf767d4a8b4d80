import { admitHttpSession, httpSessionSettings } from '../policy/http-sessions.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { NodeStreamableHTTPServerTransport } from '@modelcontextprotocol/node';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { PolicyHolder } from '../policy/holder.js';
import { decisionReasonProblem, type PolicyStateBackend } from '../storage/policy-state.js';
import { createPolicyRuntimeSet, modernSessionFor } from './runtime.js';
import { MAX_INFLIGHT_CALLS_PER_IDENTITY, PolicyProxy, type InflightSlots } from './proxy.js';
import { IdentityCounts } from './identity-counts.js';
import type { Grant } from '../http/grants.js';
import { BodyTooLarge, createMcpListener, readBody as readCappedBody, requestId, writeRpcError, type McpRequest, type PostRefusal } from '../http/mcp-listener.js';
import { appendRefusal, auditGuardRefusals, invalidIdReason, onErrorAnswer, refusalSession } from './http-refusals.js';
import { closeUnlessInitialized } from './http-initialize.js';
import { FastClientTransport, FastServerTransport, upstreamHttp } from './fast-http.js';
import {
  chooseUpstreamTransport,
  EraMismatchError,
  probeStdioEra,
  probeUpstreamEra,
  RequestResponseTransport,
  SharedStdioChild,
  StatelessUpstreamTransport,
  paramHeaders,
  credentialsRefusal,
  type Era,
} from './modern-http.js';
import type { Transport } from '@modelcontextprotocol/server';
import { StdioUpstreamTransport } from './stdio-upstream.js';
import { adaptUpstream, EraSwitch } from './era/index.js';
import type { UpstreamConfig } from './config.js';
import type { UpstreamHttp } from './fast-http.js';

export interface HttpGatewayOptions {
  /** single-upstream mode: the policy (with `upstreamUrl`) */
  policyPath?: string;
  dbPath: string;
  auditFile?: string | false;
  /** Shared policy state (`redis://host:port[/db]`); without it, the store at dbPath. */
  stateUrl?: string;
  /** single-upstream mode: served at `path` (default /mcp) */
  upstreamUrl?: string;
  /**
   * Multi-upstream mode (`--config`): each upstream at /s/{name}/mcp with its own policy. A grant's own
   * policy file does not apply here (the upstream's policy decides), so one is refused.
   */
  upstreams?: UpstreamConfig[];
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
}

export interface HttpGateway {
  /** the MCP endpoint (single-upstream mode); in multi mode the pattern with {name} */
  url: string;
  /** the endpoint of one registered upstream (multi mode), e.g. http://127.0.0.1:8787/s/triage/mcp */
  urlFor(name: string): string;
  port: number;
  sessions(): number;
  close(): Promise<void>;
  state: PolicyStateBackend;
}

/** One registered upstream and what the gateway keeps for it. */
interface Upstream {
  /** undefined in single-upstream mode */
  name?: string;
  policyPath: string;
  url?: string;
  headers: Record<string, string>;
  command?: string[];
  /** the keep-alive agent every session and request to a URL upstream shares */
  http?: UpstreamHttp;
  /** its protocol revision, asked once */
  era?: Promise<Era>;
  /** a stdio upstream's one child for 2026-07-28 requests */
  shared?: SharedStdioChild;
  /** a 2025-11-25-only upstream's one translated session for every 2026-07-28 request, opened on first use */
  translated?: SharedStdioChild;
}

interface Session {
  upstream: Upstream;
  transport: NodeStreamableHTTPServerTransport;
  fast: FastServerTransport;
  proxy: PolicyProxy;
  identity: string;
  /** the token (its hash) that opened it: identities need not be unique, and a grant's policy is per token */
  token: string | undefined;
  /** ms of its last request: a session idle for the policy's handle TTL is closed (policy/http-sessions.ts) */
  lastUsed: number;
}

const MAX_BODY = 4 * 1024 * 1024;
/** A decision's body: `{"reason": ...}` with at most MAX_DECISION_REASON characters, however escaped. */
const MAX_DECISION_BODY = 64 * 1024;
const MULTI_PATH = /^\/s\/([a-z0-9-]+)\/mcp$/;

/** Says which upstream failed, so a client of several governed servers knows which one is down. */
function namedErrors<T extends Transport>(t: T, label: string | undefined): T {
  if (!label) return t;
  const send = t.send.bind(t);
  t.send = (m, opts) => send(m, opts).catch((e: Error) => Promise.reject(new Error(`upstream "${label}": ${e.message}`)));
  return t;
}

/**
 * A 2026-07-28-only HTTP upstream refuses `initialize` with a 4xx, which the session transport throws from
 * send() instead of delivering: it is turned into the JSON-RPC error it stands for, so the EraSwitch reads
 * it as the refusal it is and translates. Anything else (unreachable, 5xx, and 401/403, which ask for
 * credentials) stays an error: no guessing.
 */
function initializeRefusalAsAnswer<T extends Transport>(t: T): T {
  const send = t.send.bind(t);
  t.send = async (m, opts) => {
    try {
      await send(m, opts);
    } catch (e) {
      const msg = m as { method?: unknown; id?: string | number };
      const err = e as { status?: unknown; data?: { status?: unknown } };
      const status = typeof err.status === 'number' ? err.status : err.data?.status;
      // 401 and 403 ask for credentials, whatever revision the upstream speaks: not a refusal of ours.
      if (status === 401 || status === 403) {
        throw new Error(credentialsRefusal(status, (e as Error).message));
      }
      if (msg.method !== 'initialize' || msg.id === undefined || typeof status !== 'number' || status < 400 || status >= 500) throw e;
      t.onmessage?.({ jsonrpc: '2.0', id: msg.id, error: { code: -32600, message: `initialize refused with HTTP ${status}: ${(e as Error).message}` } } as never);
    }
  };
  return t;
}

const childEnv = () => Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));

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
  const multi = o.upstreams !== undefined;
  if (multi && grants.some((g) => g.policy)) throw new Error('a grant names its own policy, which does not apply with --config: each upstream has its policy there');
  if (!multi && (!o.policyPath || !o.upstreamUrl)) throw new Error('give a policy and an upstream URL, or a config of upstreams');
  const upstreams: Upstream[] = multi
    ? o.upstreams!.map((u) => ({ name: u.name, policyPath: u.policy, url: u.url, headers: { ...(u.headers ?? {}) }, command: u.command }))
    : [{ policyPath: o.policyPath!, url: o.upstreamUrl!, headers: { ...(o.upstreamHeaders ?? {}) } }];
  const byName = new Map(upstreams.map((u) => [u.name ?? '', u]));
  // Load every policy up front (any invalid one refuses to start): one runtime per file, one state DB.
  const runtimes = createPolicyRuntimeSet({
    policyPaths: [...new Set([...upstreams.map((u) => u.policyPath), ...grants.flatMap((g) => (g.policy ? [g.policy] : []))])],
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
  const holderFor = (grant: Grant | undefined, up: Upstream): PolicyHolder => runtimes.runtimeFor((multi ? undefined : grant?.policy) ?? up.policyPath).holder;
  const state = runtimes.runtimeFor(upstreams[0]!.policyPath).state;
  const sessions = new Map<string, Session>();
  /** initializes in progress per identity (http-sessions.ts admitHttpSession) */
  const opening = new IdentityCounts();
  const endpoint = o.path ?? '/mcp';
  // Every session and request to one URL upstream shares one keep-alive agent: no new connection per call.
  for (const u of upstreams) {
    if (u.url) u.http = upstreamHttp(u.url, u.headers);
    else u.shared = new SharedStdioChild(() => new StdioUpstreamTransport({ command: u.command![0]!, args: u.command!.slice(1), env: childEnv() }));
  }
  /**
   * A 2025-11-25-only upstream's one translating session: ModernOverLegacy over one 2025 session (a URL) or one
   * more child (a command), shared by every 2026-07-28 request with ids remapped per request. One initialize
   * per upstream instead of one per POST, and a call held for a pushed question is still in the same adapter
   * when its retry (another POST) arrives. A session that cannot be opened fails that request (the next one
   * tries again); nothing is forwarded untranslated.
   */
  const translatedFor = (up: Upstream): SharedStdioChild =>
    (up.translated ??= new SharedStdioChild(() =>
      adaptUpstream(
        up.url
          ? new StreamableHTTPClientTransport(new URL(up.url), { requestInit: { headers: { ...up.headers } } })
          : new StdioUpstreamTransport({ command: up.command![0]!, args: up.command!.slice(1), env: childEnv() }),
        { upstreamEra: 'legacy', downstreamEra: 'modern', log: up.name ? (l) => log(`${up.name}: ${l}`) : log },
      ),
    ));
  /** What an audit record and the rate-limit "session" scope call this session: per upstream in multi mode. */
  const sessionKey = (up: Upstream, key: string) => (up.name ? `${up.name}/${key}` : key);
  /** Tells the proxy which upstream its calls go to (written to the audit as `upstreamName`). */
  const upstreamName = (up: Upstream): { upstreamName?: string } => (up.name ? { upstreamName: up.name } : {});

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };
  const rpcError = (res: ServerResponse, status: number, code: number, message: string, id: string | number | null = null) => writeRpcError(res, status, code, message, id);

  const newSession = async (identity: string, token: string | undefined, holder: PolicyHolder, up: Upstream, onRegistered?: () => void): Promise<Session> => {
    const transport: NodeStreamableHTTPServerTransport = new NodeStreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        sessions.set(id, s);
        onRegistered?.();
      },
      // DELETE ends the session: a request that still names it gets 404, not the closed transport.
      onsessionclosed: (id) => {
        sessions.delete(id);
        void proxy.close().catch(() => undefined);
      },
    });
    // A URL upstream: one upstream session per downstream session. A stdio upstream: one child per
    // session, so sessions never share a server's state (and a crashed child ends only its session).
    const http = up.http
      ? new FastClientTransport(new StreamableHTTPClientTransport(new URL(up.url!), { requestInit: { headers: { ...up.headers } } }), up.http)
      : undefined;
    const session: Transport = http ? initializeRefusalAsAnswer(http) : new StdioUpstreamTransport({ command: up.command![0]!, args: up.command!.slice(1), env: childEnv() });
    // A 2026-07-28-only upstream refuses this session's initialize: the switch then answers it from
    // server/discover and translates the session (LegacyOverModern). A 2025-11-25 upstream's answer passes as is.
    const upstream = new EraSwitch(namedErrors(session, up.name), { log: up.name ? (l) => log(`${up.name}: ${l}`) : log });
    const fast = new FastServerTransport(transport);
    const proxy = new PolicyProxy({
      downstream: fast,
      upstream,
      // only where the switch passes requests through under their own ids (an upstream of the same
      // revision); a translating adapter issues ids of its own, and closing another request is worse
      abandonUpstream: http ? (id) => upstream.passesIdsThrough && http.abandon(id) : undefined,
      inflight: slotsOf(identity),
      holder,
      state,
      session: () => sessionKey(up, transport.sessionId ?? 'uninitialized'),
      identity,
      relateDownstream: true,
      upstreamRelated: () => http?.currentRequestId,
      log: up.name ? (l) => log(`${up.name}: ${l}`) : log,
      closeUpstream: async () => {
        if (http) await http.terminateSession().catch(() => undefined);
        await upstream.close();
      },
      ...upstreamName(up),
      onClose: () => {
        if (transport.sessionId) sessions.delete(transport.sessionId);
      },
    });
    const s: Session = { upstream: up, transport, fast, proxy, identity, token, lastUsed: Date.now() };
    try {
      await proxy.start();
    } catch (e) {
      // A stdio upstream that cannot start: this upstream's clients get the error, the others go on.
      await proxy.close().catch(() => undefined);
      throw new Error(`upstream "${up.name ?? up.command?.[0]}" could not start: ${(e as Error).message}`);
    }
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
      // A decision whose request did not arrive whole is no decision (fail closed): too large, or
      // cut off, it is refused, never taken as an empty body.
      let body: string;
      try {
        body = await readCappedBody(req, MAX_DECISION_BODY);
      } catch (e) {
        return e instanceof BodyTooLarge
          ? json(res, 413, { error: `the body is larger than ${MAX_DECISION_BODY} bytes: nothing was decided` })
          : json(res, 400, { error: 'the body did not arrive whole: nothing was decided' });
      }
      let reason: string | undefined;
      try {
        const b: unknown = body.trim() === '' ? {} : JSON.parse(body);
        if (typeof b !== 'object' || b === null || Array.isArray(b)) return json(res, 400, { error: 'body must be a JSON object' });
        const problem = decisionReasonProblem((b as { reason?: unknown }).reason);
        if (problem) return json(res, 400, { error: `${problem}: nothing was decided` });
        reason = (b as { reason?: string }).reason;
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

  // An upstream's revision, asked once (or configured); a failed probe is asked again next time.
  const eraOfUpstream = (up: Upstream): Promise<Era> => {
    if (o.upstreamEra) return Promise.resolve(o.upstreamEra);
    up.era ??= (up.http ? probeUpstreamEra(up.http) : probeStdioEra(up.shared!)).catch((e: Error) => {
      up.era = undefined;
      throw e;
    });
    return up.era;
  };

  /**
   * Open 2026-07-28 `subscriptions/listen` streams per identity. Each holds a connection to the
   * upstream from the pool every client shares, and has no time-out: one client's 300 listens left
   * no connection for any other (found by review). Capped as its sessions are (sessions.max_http_sessions).
   */
  const listening = new IdentityCounts();
  /** Each identity's calls in flight upstream, shared by its sessions and 2026-07-28 requests (proxy.ts InflightSlots). */
  const inflight = new IdentityCounts();
  const slotsOf = (identity: string): InflightSlots => ({
    max: MAX_INFLIGHT_CALLS_PER_IDENTITY,
    take: () => inflight.addUnder(identity, MAX_INFLIGHT_CALLS_PER_IDENTITY),
    give: () => inflight.remove(identity),
  });

  /** 2026-07-28: one proxy for this one POST, forwarded without a session. */
  const handleModern = async (req: IncomingMessage, res: ServerResponse, body: Record<string, unknown>, identity: string, holder: PolicyHolder, up: Upstream) => {
    const label = up.name ? `upstream "${up.name}"` : 'upstream';
    if (body.method === 'subscriptions/listen') {
      const max = httpSessionSettings(holder.current.engine.file).maxOpen;
      if (!listening.addUnder(identity, max)) {
        const message = `Too many open subscriptions/listen streams: ${JSON.stringify(identity)} has ${listening.of(identity)}, the most the policy allows (sessions.max_http_sessions: ${max}); close one first`;
        await appendRefusal(state, { identity, session: sessionKey(up, `modern:${identity}`), body, reason: message, policyHash: holder.current.hash, upstreamName: up.name, log });
        return rpcError(res, 429, -32000, message, requestId(body));
      }
      res.once('close', () => listening.remove(identity));
    }
    let upstream: Transport;
    try {
      upstream = chooseUpstreamTransport({
        upstreamEra: await eraOfUpstream(up),
        downstreamEra: 'modern',
        open: up.http ? () => new StatelessUpstreamTransport(up.http!, paramHeaders(req.headers)) : () => up.shared!.connect(),
        translated: () => translatedFor(up).connect(),
      });
    } catch (e) {
      // Refused before any proxy could decide it: audited like the other refusals, the upstream's state named.
      const unreachable = !(e instanceof EraMismatchError);
      const message = unreachable ? `${label} unreachable: ${(e as Error).message}` : `${label}: ${(e as Error).message}`;
      await appendRefusal(state, { identity, session: sessionKey(up, `modern:${identity}`), body, reason: message, policyHash: holder.current.hash, upstreamName: up.name, log, unreachable });
      return rpcError(res, unreachable ? 502 : 400, unreachable ? -32603 : -32600, message, requestId(body));
    }
    namedErrors(upstream, up.name);
    const downstream = new RequestResponseTransport(res, body);
    const proxy = new PolicyProxy({
      downstream,
      upstream,
      inflight: slotsOf(identity),
      holder,
      state,
      // No MCP session in 2026-07-28: the "session" scope counts against the identity plus the request's
      // session handle, capped per identity (docs/policy.md); `session` is only the fallback name.
      session: () => sessionKey(up, `modern:${identity}`),
      modernSession: modernSessionFor({ holder, state }, identity),
      identity,
      relateDownstream: true,
      upstreamRelated: () => (upstream as { currentRequestId?: string | number }).currentRequestId,
      // Read-only discovery and the change-notification stream pass like tools/list does.
      passMethods: ['server/discover', 'subscriptions/listen'],
      log,
      ...upstreamName(up),
    });
    await proxy.start();
  };

  /**
   * Audits a POST refused before a policy proxy decided it (docs/policy.md: every refused request has a
   * record). One that names a live session of its identity is audited by that session's proxy, under its
   * session key; any other under `no-session`, or `modern:<identity>` when it claims 2026-07-28.
   */
  const auditRefused = ({ req, grant, endpoint: key, body, message }: PostRefusal): Promise<void> | void => {
    const up = byName.get(key)!;
    const identity = grant?.identity ?? 'anonymous';
    const sid = req.headers['mcp-session-id'];
    const s = typeof sid === 'string' ? sessions.get(sid) : undefined;
    if (s && s.upstream === up && s.identity === identity) return s.proxy.auditTransportRefusal({ message: body, reason: message });
    return appendRefusal(state, {
      identity, session: sessionKey(up, refusalSession(req, body, identity)), body, reason: message,
      policyHash: holderFor(grant, up).current.hash, upstreamName: up.name, log,
    });
  };

  /** The SDK's session transport answers this POST: what it refuses itself is audited too. */
  const handBySdk = (s: Session, req: IncomingMessage, res: ServerResponse, body: unknown) => {
    if (req.method === 'POST') onErrorAnswer(res, (message) => s.proxy.auditTransportRefusal({ message: body, reason: message }));
    return s.transport.handleRequest(req, res, body);
  };

  const onMcp = async ({ req, res, grant, endpoint: key, body, route }: McpRequest) => {
    const identity = grant?.identity ?? 'anonymous';
    const up = byName.get(key)!;
    // Refused here, before any proxy: audited when it is a POST (a GET or DELETE carries no request).
    const refuse = async (status: number, code: number, message: string) => {
      if (req.method === 'POST') await auditRefused({ req, grant, endpoint: key, body, message });
      return rpcError(res, status, code, message);
    };
    if (Array.isArray(body)) return refuse(400, -32600, 'Invalid Request: JSON-RPC batches are not supported by this gateway');
    if (route?.kind === 'modern') return handleModern(req, res, body as Record<string, unknown>, identity, holderFor(grant, up), up);
    // Answered on its own POST: the proxy's refusal would carry id null, which the session cannot route back.
    const badId = invalidIdReason(body);
    if (badId) return refuse(400, -32600, badId);
    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const s = sessions.get(sid);
      // A session lives on the path of the upstream it was opened for.
      if (!s || s.upstream !== up) return refuse(404, -32001, 'Session not found');
      // A session belongs to the token that opened it, not only to its identity (found by review).
      if (s.token !== grant?.tokenSha256) return refuse(403, -32600, 'Session belongs to another token');
      s.lastUsed = Date.now();
      if (req.method === 'POST') {
        // A second request with an id in flight is answered on its own POST, never routed by that id.
        if (s.fast.refuseDuplicate(res, body, (m, message) => s.proxy.auditRefusal(m, message))) return;
        // One JSON-RPC request: answered as plain JSON without the SDK's Web-standard adapter.
        if (s.fast.tryHandle(req, res, body)) return;
        s.fast.track(res, body);
      }
      return handBySdk(s, req, res, body);
    }
    const isInit = req.method === 'POST' && typeof body === 'object' && body !== null && (body as { method?: unknown }).method === 'initialize';
    if (!isInit) return refuse(400, -32000, 'Bad Request: No valid session ID provided');
    const holder = holderFor(grant, up);
    const admission = admitHttpSession(
      [...sessions.entries()].map(([id, x]) => ({ id, identity: x.identity, lastUsed: x.lastUsed })),
      identity,
      httpSessionSettings(holder.current.engine.file),
      Date.now(),
      opening.of(identity),
    );
    for (const id of admission.close) {
      const idle = sessions.get(id);
      sessions.delete(id);
      log(`closed MCP session ${id} of ${JSON.stringify(idle?.identity)}: idle for the policy's session TTL`);
      void idle?.proxy.close().catch(() => undefined);
    }
    if (!admission.admit) return refuse(429, -32000, admission.reason);
    // Counted until the session is registered (or fails). The SDK registers it within the initialize's
    // own handling today, so a burst cannot slip between check and registration; counted anyway, so an
    // await added on that path later could not let one through.
    opening.add(identity);
    let counted = true;
    const uncount = () => {
      if (!counted) return;
      counted = false;
      opening.remove(identity);
    };
    try {
      let s: Session;
      try {
        s = await newSession(identity, grant?.tokenSha256, holder, up, uncount);
      } catch (e) {
        // The upstream (a command) could not start: no proxy to audit it, so it is audited here.
        await appendRefusal(state, { identity, session: sessionKey(up, 'no-session'), body, reason: (e as Error).message, policyHash: holder.current.hash, upstreamName: up.name, log, unreachable: true });
        return rpcError(res, 502, -32603, (e as Error).message, requestId(body));
      }
      // Refused or failed, the session would keep its upstream child (or upstream session) open for nobody.
      closeUnlessInitialized(s.fast, res, requestId(body), () => void s.proxy.close().catch(() => undefined));
      return await handBySdk(s, req, res, body);
    } finally {
      uncount();
    }
  };

  // 401s and 403s carry no identity: tallied per address into the audit, so a flood cannot fill it
  const guardRefusals = auditGuardRefusals(state, { policyHash: () => holderFor(undefined, upstreams[0]!).current.hash, log });
  let listener;
  try {
    listener = createMcpListener({
      host,
      port: o.port ?? 0,
      grants,
      allowedHosts: o.allowedHosts,
      maxBodyBytes: MAX_BODY,
      mcpPath: multi ? (p) => { const m = MULTI_PATH.exec(p); return m && byName.has(m[1]!) ? m[1]! : undefined; } : (p) => (p === endpoint ? '' : undefined),
      displayPath: multi ? '/s/{name}/mcp' : endpoint,
      onMcp,
      onRefused: auditRefused,
      onGuardRefused: guardRefusals.note,
      routes: async (req, res, grant, pathname) => {
        if (!pathname.startsWith('/policy/approvals')) return false;
        await approvalsApi(grant, req, res, new URL(req.url ?? '/', 'http://gateway'));
        return true;
      },
      log,
    });
  } catch (e) {
    guardRefusals.stop();
    runtimes.close();
    for (const u of upstreams) u.http?.agent.destroy();
    throw e;
  }
  const server = listener.server;
  const url = await listener.listen();
  const addr = server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  return {
    url,
    urlFor: (name: string) => url.replace('{name}', name),
    port,
    sessions: () => sessions.size,
    state,
    async close() {
      await Promise.all([...sessions.values()].map((s) => s.proxy.close().catch(() => undefined)));
      sessions.clear();
      server.closeAllConnections();
      await listener.close();
      guardRefusals.stop();
      for (const u of upstreams) {
        u.http?.agent.destroy();
        await u.shared?.close();
        await u.translated?.close();
      }
      runtimes.close();
    },
  };
}
