/**
 * 2026-07-28 through the HTTP gateway: no sessions, one PolicyProxy per POST.
 *
 * - `RequestResponseTransport` is the downstream side of one POST: it hands the body to the proxy and
 *   writes the proxy's answer as one application/json response, switching to an SSE stream when
 *   something for the client comes first (progress, or the notifications of a `subscriptions/listen`
 *   stream, which stays open until the client closes it).
 * - `StatelessUpstreamTransport` POSTs each message to the upstream with the envelope the client
 *   sent (it is in `params._meta`, forwarded as is) and the standard headers `MCP-Protocol-Version`,
 *   `Mcp-Method` and `Mcp-Name`, with no session id. Closing the POST is how 2026 cancels a call.
 * - `chooseUpstreamTransport` is the one place that picks how a request reaches the upstream given
 *   both eras. Equal eras need nothing; a 2026 client in front of a 2025-only upstream goes through
 *   the upstream's one shared translating session (src/gateway/era).
 */
import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import { SUBSCRIPTION_ID_META_KEY, type JSONRPCMessage, type Transport, type TransportSendOptions } from '@modelcontextprotocol/server';
import { limitBody, mediaType, readSseEvents, sseMessage, UpstreamHttpError, type UpstreamHttp } from './fast-http.js';
import { MODERN_REVISION } from '../http/classify.js';

type Id = string | number;
type Msg = Record<string, unknown> & { id?: Id | null; method?: string; params?: unknown };

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isResponse = (m: Msg) => m.method === undefined && m.id !== undefined && m.id !== null && ('result' in m || 'error' in m);

/** The downstream side of one 2026-07-28 POST. */
export class RequestResponseTransport implements Transport {
  onmessage?: Transport['onmessage'];
  onerror?: Transport['onerror'];
  onclose?: () => void;
  private sse = false;
  private ended = false;
  private readonly id: Id | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly body: Msg,
  ) {
    this.id = body.id === undefined || body.id === null ? undefined : body.id;
    // The client went away (or cancelled the call by closing its stream): the proxy ends the call.
    res.once('close', () => this.finish());
  }

  async start(): Promise<void> {
    // Delivered after the proxy started; a notification is acknowledged once it is on its way up.
    queueMicrotask(() => {
      this.onmessage?.(this.body as unknown as JSONRPCMessage);
      if (this.id === undefined) this.end(202);
    });
  }

  async send(message: JSONRPCMessage, _options?: TransportSendOptions): Promise<void> {
    if (this.ended) return;
    const m = message as unknown as Msg;
    if (isResponse(m) && m.id === this.id) {
      // 2026-07-28 results say whether they are complete; the gateway's own (a denial) must too.
      if (isObj(m.result) && m.result.resultType === undefined) m.result = { ...m.result, resultType: 'complete' };
      if (this.sse) this.res.end(`event: message\ndata: ${JSON.stringify(m)}\n\n`);
      else this.res.writeHead(httpStatusOf(m), { 'content-type': 'application/json' }).end(JSON.stringify(m));
      this.finish();
      return;
    }
    // Anything else for the client before the answer goes on this request's stream.
    if (!this.sse) {
      this.sse = true;
      this.res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    }
    this.res.write(`event: message\ndata: ${JSON.stringify(m)}\n\n`);
  }

  async close(): Promise<void> {
    if (!this.ended && !this.res.headersSent) this.end(503);
    else if (!this.ended) this.res.end();
    this.finish();
  }

  private end(status: number): void {
    if (!this.res.headersSent) this.res.writeHead(status).end();
  }

  private finish(): void {
    if (this.ended) return;
    this.ended = true;
    this.onclose?.();
  }
}

/**
 * The HTTP status of a 2026-07-28 answer: the revision gives some JSON-RPC errors their own status (a
 * method the server does not implement is 404; a request it cannot accept is 400), whoever produced
 * the error, the upstream or the gateway.
 */
export function httpStatusOf(m: Msg): number {
  const code = isObj(m.error) ? m.error.code : undefined;
  if (code === -32601) return 404;
  if (code === -32600 || code === -32602 || code === -32700 || code === -32020 || code === -32021 || code === -32022) return 400;
  return 200;
}

/** Header value for `Mcp-Name`: as is when it is printable ASCII, else the spec's Base64 form. */
export function encodeMcpName(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) && v.trim() === v ? v : `=?base64?${Buffer.from(v, 'utf8').toString('base64')}?=`;
}

const NAME_FIELD: Readonly<Record<string, string>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

/**
 * The client's `Mcp-Param-*` headers (SEP-2243: tool parameters a tool declares as headers). They
 * pass to the upstream as sent, so the upstream checks them against the body itself; the gateway
 * neither adds nor repairs one.
 */
export function paramHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (k.startsWith('mcp-param-') && typeof v === 'string') out[k] = v;
  return out;
}

/** The standard headers a 2026-07-28 message carries (SEP-2243). */
export function standardHeaders(m: Msg): Record<string, string> {
  const h: Record<string, string> = { 'mcp-protocol-version': MODERN_REVISION };
  if (typeof m.method === 'string') h['mcp-method'] = m.method;
  const field = typeof m.method === 'string' && Object.hasOwn(NAME_FIELD, m.method) ? NAME_FIELD[m.method]! : undefined;
  const v = field && isObj(m.params) ? m.params[field] : undefined;
  if (typeof v === 'string') h['mcp-name'] = encodeMcpName(v);
  return h;
}

/** Each message one stateless POST to the upstream; answers (JSON or SSE) come back through onmessage. */
export class StatelessUpstreamTransport implements Transport {
  onmessage?: Transport['onmessage'];
  onerror?: Transport['onerror'];
  onclose?: () => void;
  /** The request whose POST the message being delivered arrived on (for the proxy's routing). */
  currentRequestId?: Id;
  private closed = false;
  private readonly inflight = new Set<ClientRequest>();

  /** `extra`: headers of the client's request that the upstream must see too (its `Mcp-Param-*` ones). */
  constructor(
    private readonly up: UpstreamHttp,
    private readonly extra: Record<string, string> = {},
  ) {}

  async start(): Promise<void> {}

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const r of this.inflight) r.destroy(new Error('closed'));
    this.inflight.clear();
    this.onclose?.();
  }

  send(message: JSONRPCMessage): Promise<void> {
    const m = message as unknown as Msg;
    if (this.closed) return Promise.reject(new Error('upstream transport closed'));
    // A cancellation in 2026 is the closed stream: end the POST of the call it names.
    if (m.method === 'notifications/cancelled') return Promise.resolve();
    const body = JSON.stringify(m);
    const rid = m.id === undefined || m.id === null ? undefined : m.id;
    return post(this.up, body, { ...this.extra, ...standardHeaders(m) }, this.inflight, (msg) => this.deliver(msg, rid), (e) => this.onerror?.(e));
  }

  private deliver(msg: unknown, rid: Id | undefined): void {
    if (!isObj(msg) || msg.jsonrpc !== '2.0') return this.onerror?.(new Error('upstream sent a message that is not JSON-RPC 2.0'));
    this.currentRequestId = rid;
    try {
      this.onmessage?.(msg as unknown as JSONRPCMessage);
    } finally {
      this.currentRequestId = undefined;
    }
  }
}

/** What the agent is told when the upstream wants credentials the gateway was not given. */
export function credentialsRefusal(status: number, detail: string): string {
  return `the upstream refused the request with HTTP ${status}: it wants credentials, which the gateway sends only as configured (--upstream-header, --upstream-token-env, or headers: in --config)${detail ? `: ${detail.slice(0, 200)}` : ''}`;
}

/**
 * One POST; resolves once the upstream accepted it (its answer may still be streaming). `onClosed` runs when
 * the response is over, streamed or not.
 */
function post(
  up: UpstreamHttp, body: string, extra: Record<string, string>, inflight: Set<ClientRequest>,
  deliver: (m: unknown) => void, onError: (e: Error) => void, onClosed?: () => void,
): Promise<void> {
  const headers: Record<string, string | number> = {
    ...up.headers,
    ...extra,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'content-length': Buffer.byteLength(body),
  };
  const { url, agent, request } = up;
  return new Promise<void>((resolve, reject) => {
    const req = request({ agent, protocol: url.protocol, hostname: url.hostname, port: url.port, path: url.pathname + url.search, method: 'POST', headers }, (res: IncomingMessage) => {
      if (onClosed) res.once('close', onClosed);
      const status = res.statusCode ?? 0;
      const type = mediaType(res.headers['content-type'] as string | undefined);
      const done = () => inflight.delete(req);
      if (type === 'text/event-stream' && status >= 200 && status < 300) {
        resolve();
        const one = (ev: string) => {
          try {
            const msg = sseMessage(ev);
            if (msg !== undefined) deliver(msg);
          } catch (e) {
            onError(e as Error);
          }
        };
        readSseEvents(res, one, done);
        res.on('error', (e) => {
          done();
          onError(e);
        });
        return;
      }
      const chunks: Buffer[] = [];
      limitBody(res);
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => {
        done();
        reject(e);
      });
      res.on('end', () => {
        done();
        const text = Buffer.concat(chunks).toString('utf8');
        if (status === 202 && !text.trim()) return resolve();
        // 401 and 403 ask for credentials: their body is an OAuth error, not a JSON-RPC answer to deliver.
        if (status === 401 || status === 403) return reject(new UpstreamHttpError(status, credentialsRefusal(status, text)));
        // A JSON-RPC error with a 4xx status (e.g. -32601, -32020) is still the answer to deliver.
        let data: unknown;
        try {
          data = text ? JSON.parse(text) : undefined;
        } catch {
          data = undefined;
        }
        if (type === 'application/json' && data !== undefined) {
          resolve();
          for (const msg of Array.isArray(data) ? data : [data]) deliver(msg);
          return;
        }
        reject(new UpstreamHttpError(status, `upstream answered HTTP ${status}${text ? `: ${text.slice(0, 200)}` : ''}`));
      });
    });
    inflight.add(req);
    req.on('error', (e) => {
      inflight.delete(req);
      reject(e);
    });
    req.end(body);
  });
}

export type Era = 'modern' | 'legacy';

/** How long the era probe waits for the upstream's answer on its SSE stream. */
const PROBE_TIMEOUT_MS = 10_000;

/** The gateway's own `server/discover`, which asks an upstream whether it speaks 2026-07-28. */
const DISCOVER_PROBE = {
  jsonrpc: '2.0',
  id: 'egress-triage-probe',
  method: 'server/discover',
  params: {
    _meta: {
      'io.modelcontextprotocol/protocolVersion': MODERN_REVISION,
      'io.modelcontextprotocol/clientInfo': { name: 'egress-triage-gateway', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': {},
    },
  },
} as const;

/**
 * An UnsupportedProtocolVersion error (-32022) whose `data.supported` lists 2026-07-28: the server speaks
 * our revision after all, and the client is to retry with it (SEP-2575 version negotiation).
 */
export function offersModernRetry(answer: unknown): boolean {
  if (!isObj(answer) || !isObj(answer.error) || answer.error.code !== -32022) return false;
  const data = answer.error.data;
  return isObj(data) && Array.isArray(data.supported) && data.supported.includes(MODERN_REVISION);
}

/**
 * What the upstream speaks, asked once with `server/discover` (2026-07-28). A JSON-RPC result is
 * modern; an error, a 4xx or a non-JSON answer is a 2025-11-25 server, except a -32022 refusal that
 * lists 2026-07-28 among the supported versions: that is asked once more, as the negotiation says.
 * Unreachable: throws (the caller retries later rather than guessing).
 */
export async function probeUpstreamEra(up: UpstreamHttp, timeoutMs = PROBE_TIMEOUT_MS): Promise<Era> {
  const msg = DISCOVER_PROBE;
  for (let attempt = 1; ; attempt++) {
    let answer: unknown;
    let over!: () => void;
    const answered = new Promise<void>((resolve) => (over = resolve));
    const deliver = (m: unknown) => {
      answer ??= m;
      over();
    };
    try {
      await post(up, JSON.stringify(msg), standardHeaders(msg), new Set(), deliver, () => undefined, over);
    } catch (e) {
      // A refusal of 2026-07-28 is a 2025-11-25 server; a request for credentials says nothing about the revision.
      if (e instanceof UpstreamHttpError && e.status !== 401 && e.status !== 403) return 'legacy';
      throw e;
    }
    // A JSON answer is delivered before post() resolves; an SSE one as its event arrives, so wait for it (or
    // for the stream to end without one).
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`the upstream did not answer server/discover within ${timeoutMs} ms`)), timeoutMs);
    });
    try {
      await Promise.race([answered, late]);
    } finally {
      clearTimeout(timer);
    }
    if (attempt === 1 && offersModernRetry(answer)) continue;
    return isObj(answer) && isObj(answer.result) ? 'modern' : 'legacy';
  }
}

/**
 * The seam where the upstream transport for one 2026-07-28 request is chosen. Same era: the stateless
 * transport (URL) or the shared child (stdio). A 2025-11-25-only upstream: `translated`, a request's view
 * of the upstream's one shared translating session (src/gateway/era ModernOverLegacy behind a
 * SharedStdioChild): one `initialize` per upstream, not one per POST, and a held call's retry reaches the
 * adapter that holds it. Without `translated` such a request is refused with a message that says why,
 * never forwarded untranslated.
 */
export function chooseUpstreamTransport(o: {
  upstreamEra: Era;
  downstreamEra: Era;
  /** the upstream's transport for this request when eras are equal (2026: stateless or the shared child) */
  open: () => Transport;
  /** this request's view of the upstream's shared translating session */
  translated?: () => Transport;
}): Transport {
  if (o.downstreamEra === o.upstreamEra) return o.open();
  if (o.translated) return o.translated();
  throw new EraMismatchError(
    `the upstream speaks ${o.upstreamEra === 'modern' ? MODERN_REVISION : '2025-11-25'} only and this gateway does not translate between protocol revisions for it; connect with protocol version ${o.upstreamEra === 'modern' ? MODERN_REVISION : '2025-11-25'}`,
  );
}

export class EraMismatchError extends Error {}

/**
 * A stdio upstream behind the HTTP gateway, for 2026-07-28 traffic: one child shared by every request
 * (a request needs no session, and a child per POST would cost a process start each), with JSON-RPC
 * ids remapped so answers from the one pipe go back to the request that asked. 2025-11-25 sessions
 * get a child each instead (src/gateway/http.ts), since their state lives in the server. A child that
 * exits fails the calls in flight and the next request starts a new one. The HTTP gateway also uses it
 * for a 2025-11-25-only upstream's one translating session (`spawnChild` returns the era adapter).
 *
 * What the child sends besides answers belongs to one request too: progress names its request by a
 * progress token, which is remapped like the id (two clients may pick the same token), and a
 * `subscriptions/listen` stream's notifications name it by its id. A request whose client goes away
 * (its HTTP stream closed: how 2026-07-28 cancels) is cancelled at the child with
 * `notifications/cancelled`, so the upstream stops working for nobody.
 */
export class SharedStdioChild {
  private child?: Transport;
  private starting?: Promise<Transport>;
  private next = 0;
  private readonly routes = new Map<string, { t: RemappedTransport; id: Id }>();
  /** child-side progress token (the request's child-side id) -> the client's own token */
  private readonly progress = new Map<string, Id>();
  private readonly open = new Set<RemappedTransport>();

  constructor(private readonly spawnChild: () => Transport) {}

  /** A transport for one downstream request; closing it forgets its ids. */
  connect(): RemappedTransport {
    const t = new RemappedTransport(this);
    this.open.add(t);
    return t;
  }

  async close(): Promise<void> {
    const c = this.child;
    this.child = undefined;
    this.starting = undefined;
    await c?.close().catch(() => undefined);
  }

  /** @internal */
  async sendFor(t: RemappedTransport, m: Msg): Promise<void> {
    const child = await this.ensure();
    if (typeof m.method === 'string' && m.id !== undefined && m.id !== null) {
      const id = `gw-${++this.next}`;
      this.routes.set(id, { t, id: m.id });
      t.ids.add(id);
      return child.send({ ...withProgressToken(m, id, (token) => this.progress.set(id, token)), id } as unknown as JSONRPCMessage);
    }
    if (m.method === 'notifications/cancelled' && isObj(m.params)) {
      const mine = [...t.ids].find((k) => this.routes.get(k)?.id === (m.params as Record<string, unknown>).requestId);
      if (mine === undefined) return;
      return child.send({ ...m, params: { ...m.params, requestId: mine } } as unknown as JSONRPCMessage);
    }
    return child.send(m as unknown as JSONRPCMessage);
  }

  /** @internal */
  release(t: RemappedTransport): void {
    const inFlight = [...t.ids];
    for (const id of inFlight) this.forget(id);
    t.ids.clear();
    this.open.delete(t);
    // Still unanswered: the client is gone, so the child stops working on them.
    const child = this.child;
    if (!child) return;
    for (const requestId of inFlight) {
      child.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'the client closed its request stream' } } as unknown as JSONRPCMessage).catch(() => undefined);
    }
  }

  private forget(id: string): void {
    this.routes.delete(id);
    this.progress.delete(id);
  }

  private ensure(): Promise<Transport> {
    if (this.child) return Promise.resolve(this.child);
    this.starting ??= (async () => {
      const c = this.spawnChild();
      c.onmessage = (msg) => this.fromChild(msg as unknown as Msg);
      c.onclose = () => {
        if (this.child !== c && this.starting === undefined) return;
        this.child = undefined;
        this.starting = undefined;
        // Every request in flight loses its answer: their proxies fail them as "upstream closed".
        for (const t of [...this.open]) t.onclose?.();
      };
      await c.start();
      this.child = c;
      return c;
    })().catch((e: Error) => {
      this.starting = undefined;
      throw e;
    });
    return this.starting;
  }

  private fromChild(m: Msg): void {
    if (typeof m.method === 'string' && (m.id === undefined || m.id === null)) return this.notificationFromChild(m);
    if (!isResponse(m)) return; // 2026-07-28 has no server-to-client requests
    const r = this.routes.get(String(m.id));
    if (!r) return;
    this.forget(String(m.id));
    r.t.ids.delete(String(m.id));
    r.t.onmessage?.({ ...m, id: r.id } as unknown as JSONRPCMessage);
  }

  /** To the one request it names (progress token, or listen stream id), in that request's own terms; else dropped. */
  private notificationFromChild(m: Msg): void {
    const params = isObj(m.params) ? m.params : undefined;
    if (m.method === 'notifications/progress' && params && (typeof params.progressToken === 'string' || typeof params.progressToken === 'number')) {
      const key = String(params.progressToken);
      const token = this.progress.get(key);
      const r = this.routes.get(key);
      if (token === undefined || !r) return;
      r.t.onmessage?.({ ...m, params: { ...params, progressToken: token } } as unknown as JSONRPCMessage);
      return;
    }
    const meta = params && isObj(params._meta) ? params._meta : undefined;
    const sid = meta?.[SUBSCRIPTION_ID_META_KEY];
    if (typeof sid !== 'string') return;
    const r = this.routes.get(sid);
    if (!r) return;
    r.t.onmessage?.({ ...m, params: { ...params, _meta: { ...meta, [SUBSCRIPTION_ID_META_KEY]: r.id } } } as unknown as JSONRPCMessage);
  }
}

/**
 * The request with its progress token (`params._meta.progressToken`) replaced by `token`; `keep`
 * gets the client's own. Unchanged when the request asks for no progress.
 */
function withProgressToken(m: Msg, token: string, keep: (own: Id) => void): Msg {
  if (!isObj(m.params) || !isObj(m.params._meta)) return m;
  const own = m.params._meta.progressToken;
  if (typeof own !== 'string' && typeof own !== 'number') return m;
  keep(own);
  return { ...m, params: { ...m.params, _meta: { ...m.params._meta, progressToken: token } } };
}

export class RemappedTransport implements Transport {
  onmessage?: Transport['onmessage'];
  onerror?: Transport['onerror'];
  onclose?: () => void;
  /** @internal the child-side ids of this transport's requests in flight */
  readonly ids = new Set<string>();

  constructor(private readonly shared: SharedStdioChild) {}

  async start(): Promise<void> {}

  send(message: JSONRPCMessage): Promise<void> {
    return this.shared.sendFor(this, message as unknown as Msg);
  }

  async close(): Promise<void> {
    this.shared.release(this);
    this.onclose?.();
  }
}

/**
 * What a stdio upstream speaks: `server/discover` answered is 2026-07-28; an error or silence is 2025-11-25
 * (a -32022 refusal listing 2026-07-28 is asked once more, as in probeUpstreamEra).
 */
export function probeStdioEra(shared: SharedStdioChild, timeoutMs = 5000): Promise<Era> {
  const t = shared.connect();
  return new Promise<Era>((resolve, reject) => {
    const timer = setTimeout(() => done('legacy'), timeoutMs);
    const done = (era: Era) => {
      clearTimeout(timer);
      void t.close();
      resolve(era);
    };
    const ask = () =>
      t.send(DISCOVER_PROBE as unknown as JSONRPCMessage).catch((e: Error) => {
        clearTimeout(timer);
        void t.close();
        reject(e);
      });
    let retried = false;
    t.onmessage = (m) => {
      if (!retried && offersModernRetry(m)) {
        retried = true;
        return void ask();
      }
      done(isObj((m as unknown as Msg).result) ? 'modern' : 'legacy');
    };
    void ask();
  });
}
