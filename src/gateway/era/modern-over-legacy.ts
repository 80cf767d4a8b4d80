import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createRequestStateCodec, type JSONRPCMessage, type RequestStateCodec, type Transport, type TransportSendOptions } from '@modelcontextprotocol/server';
import { UpstreamRequests } from './upstream-requests.js';
import {
  CLIENT_CAPABILITIES_META_KEY,
  LEGACY,
  LIST_CHANGED,
  MODERN,
  MULTI_ROUND,
  SUBSCRIPTION_ID_META_KEY,
  asMessage,
  errorResponse,
  isId,
  isNotification,
  isObj,
  isRequest,
  isResponse,
  metaOf,
  modernResult,
  withoutEnvelope,
  type Id,
  type Msg,
  type Obj,
} from './wire.js';

export interface ModernOverLegacyOptions {
  /** Who the gateway says it is in its own `initialize` to the upstream. */
  clientInfo: { name: string; version: string };
  /**
   * Capabilities declared in that `initialize`. Default: form elicitation and sampling, the server-to-client
   * requests a 2025 tool may push mid-call and this adapter can turn into `input_required`.
   */
  upstreamCapabilities?: Obj;
  /** How long a call whose upstream pushed a request waits for the client's retry. Default 120 s. */
  holdMs?: number;
  /** HMAC key (at least 32 bytes) sealing the `requestState` of held calls. Default: random per adapter. */
  stateKey?: Uint8Array | string;
  /** Bound on the upstream `initialize` answer. Default 30 s. */
  handshakeTimeoutMs?: number;
  log?: (line: string) => void;
}

/** A downstream request forwarded upstream under an adapter-issued id. */
interface Forwarded {
  upId: Id;
  /** Who waits for the answer; undefined while a held call waits for the client's retry. */
  downId?: Id;
  method: string;
  /** The client's declared capabilities on the request that is currently waiting (2026: per request). */
  caps: Obj;
  /** name + arguments digest: a retry must be for the same call. */
  binding: string;
  hold?: Hold;
}

/** A pushed server-to-client request, as it is offered to the client inside `input_required`. */
interface Pushed {
  upId: Id;
  method: string;
  params: unknown;
}

/** An upstream call kept open across client rounds because its 2025 server asked the client something. */
interface Hold {
  key: string;
  call: Forwarded;
  /** Offered to the client under these inputRequests keys, waiting for the retry's inputResponses. */
  asked: Map<string, Pushed>;
  /** Pushed after the last offer went out; offered on the next retry. */
  queued: Pushed[];
  /** The upstream answered while the client was away; given to the retry. */
  final?: Msg;
  timer?: NodeJS.Timeout;
}

type Filter = Partial<Record<'toolsListChanged' | 'promptsListChanged' | 'resourcesListChanged', boolean>>;

const PUSH_CAPABILITY: Record<string, string> = { 'elicitation/create': 'elicitation', 'sampling/createMessage': 'sampling', 'roots/list': 'roots' };

function bindingOf(method: string, params: unknown): string {
  const p = isObj(params) ? params : {};
  const key = method === 'resources/read' ? p.uri : p.name;
  return createHash('sha256').update(`${method}\0${JSON.stringify(key ?? null)}\0${canonical(p.arguments ?? null)}`).digest('base64url');
}
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (isObj(v)) return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v) ?? 'null';
}

/**
 * A 2026-07-28 (stateless) client in front of a 2025-11-25 (session) server. See index.ts for the contract.
 */
export class ModernOverLegacy implements Transport {
  onmessage?: Transport['onmessage'];
  onclose?: () => void;
  onerror?: (error: Error) => void;

  private readonly up: UpstreamRequests;
  private readonly calls = new Map<Id, Forwarded>();
  private readonly holds = new Map<string, Hold>();
  private readonly subscriptions = new Map<Id, Filter>();
  private readonly codec: RequestStateCodec<{ k: string }>;
  private readonly holdMs: number;
  private init?: Obj;
  private ready?: Promise<void>;
  private closed = false;
  private pushSeq = 0;

  constructor(
    private readonly upstream: Transport,
    private readonly o: ModernOverLegacyOptions,
  ) {
    this.holdMs = o.holdMs ?? 120_000;
    this.codec = createRequestStateCodec<{ k: string }>({ key: o.stateKey ?? randomBytes(32), ttlSeconds: Math.max(1, Math.ceil(this.holdMs / 1000)) });
    this.up = new UpstreamRequests(upstream, (m) => this.fromUpstream(m));
  }

  /** What the upstream said in `initialize` (after start()). */
  get upstreamInitialize(): Obj | undefined {
    return this.init;
  }

  async start(): Promise<void> {
    this.upstream.onclose = () => this.shutdown();
    this.upstream.onerror = (e) => this.onerror?.(e);
    this.ready = this.handshake();
    await this.ready;
  }

  private async handshake(): Promise<void> {
    await this.upstream.start();
    const answer = await this.up.request(
      'initialize',
      { protocolVersion: LEGACY, capabilities: this.o.upstreamCapabilities ?? { elicitation: { form: {} }, sampling: {} }, clientInfo: this.o.clientInfo },
      this.o.handshakeTimeoutMs ?? 30_000,
    );
    if (!isObj(answer.result)) throw new Error(`the 2025-11-25 upstream refused initialize: ${JSON.stringify(answer.error)}`);
    this.init = answer.result;
    if (typeof answer.result.protocolVersion === 'string') this.upstream.setProtocolVersion?.(answer.result.protocolVersion);
    await this.upstream.send(asMessage({ jsonrpc: '2.0', method: 'notifications/initialized' }));
  }

  private get serverInfo(): Obj | undefined {
    return isObj(this.init?.serverInfo) ? this.init.serverInfo : undefined;
  }

  /**
   * `options.requestSignal` on a request is how a 2026-07-28 HTTP client's cancellation (closing its request
   * stream) may reach the adapter; a 2025 upstream hears it as notifications/cancelled.
   */
  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    await this.ready;
    const m = message as unknown as Msg;
    if (isRequest(m)) return this.fromClientRequest(m, options?.requestSignal);
    if (isNotification(m)) return this.fromClientNotification(m);
    if (isResponse(m)) this.o.log?.(`dropped a response from the 2026-07-28 client: the adapter never asks it anything directly`);
  }

  async close(): Promise<void> {
    await this.upstream.close();
    this.shutdown();
  }

  private down(m: Msg): void {
    if (!this.closed) this.onmessage?.(asMessage(m));
  }

  // ------------------------------------------------------------------ client -> upstream

  private async fromClientRequest(m: Msg, signal?: AbortSignal): Promise<void> {
    const id = m.id as Id;
    const method = m.method as string;
    if (method === 'server/discover') return this.down({ jsonrpc: '2.0', id, result: this.discoverResult() });
    if (method === 'initialize') {
      return this.down(errorResponse(id, -32600, 'Invalid Request: this endpoint serves protocol revision 2026-07-28; initialize is not accepted'));
    }
    if (method === 'subscriptions/listen') return this.listen(m);
    const params = isObj(m.params) ? m.params : {};
    const caps = isObj(metaOf(m)?.[CLIENT_CAPABILITIES_META_KEY]) ? (metaOf(m)![CLIENT_CAPABILITIES_META_KEY] as Obj) : {};
    if (typeof params.requestState === 'string') return this.retry(m, params.requestState, caps);
    const call: Forwarded = { upId: this.up.nextId(), downId: id, method, caps, binding: bindingOf(method, params) };
    this.calls.set(call.upId, call);
    signal?.addEventListener('abort', () => void this.cancel(call, 'the client closed the request').catch((e: Error) => this.onerror?.(e)), { once: true });
    await this.up.send({ ...withoutEnvelope(m), id: call.upId });
  }

  private discoverResult(): Obj {
    const init = this.init ?? {};
    return modernResult(
      'server/discover',
      { supportedVersions: [MODERN], capabilities: isObj(init.capabilities) ? init.capabilities : {}, ...(typeof init.instructions === 'string' ? { instructions: init.instructions } : {}) },
      this.serverInfo,
    );
  }

  /** `subscriptions/listen` is served here: the upstream session already delivers list_changed unasked. */
  private listen(m: Msg): void {
    const id = m.id as Id;
    const asked = isObj(m.params) && isObj(m.params.notifications) ? m.params.notifications : undefined;
    if (!asked) return this.down(errorResponse(id, -32602, "Invalid params: 'notifications' is required and must be a valid SubscriptionFilter"));
    const caps = isObj(this.init?.capabilities) ? this.init.capabilities : {};
    const offers = (cap: string) => isObj(caps[cap]) && (caps[cap] as Obj).listChanged === true;
    const honored: Filter = {};
    if (asked.toolsListChanged === true && offers('tools')) honored.toolsListChanged = true;
    if (asked.promptsListChanged === true && offers('prompts')) honored.promptsListChanged = true;
    if (asked.resourcesListChanged === true && offers('resources')) honored.resourcesListChanged = true;
    this.down({ jsonrpc: '2.0', method: 'notifications/subscriptions/acknowledged', params: { notifications: honored, _meta: { [SUBSCRIPTION_ID_META_KEY]: id } } });
    if (Object.keys(honored).length === 0) return this.endSubscription(id);
    this.subscriptions.set(id, honored);
  }

  private endSubscription(id: Id): void {
    this.subscriptions.delete(id);
    const meta: Obj = { [SUBSCRIPTION_ID_META_KEY]: id };
    if (this.serverInfo) meta['io.modelcontextprotocol/serverInfo'] = this.serverInfo;
    this.down({ jsonrpc: '2.0', id, result: { resultType: 'complete', _meta: meta } });
  }

  private async fromClientNotification(m: Msg): Promise<void> {
    if (m.method === 'notifications/cancelled' && isObj(m.params) && isId(m.params.requestId)) {
      const rid = m.params.requestId;
      if (this.subscriptions.delete(rid)) return;
      const call = [...this.calls.values()].find((c) => c.downId === rid);
      // Not found: already answered, or answered with input_required and held: nothing to cancel.
      if (call) await this.cancel(call, typeof m.params.reason === 'string' ? m.params.reason : undefined);
      return;
    }
    // 2025 servers have no use for the envelope on notifications either.
    await this.up.send(withoutEnvelope(m));
  }

  private async cancel(call: Forwarded, reason: string | undefined): Promise<void> {
    if (this.calls.get(call.upId) !== call || call.downId === undefined) return;
    this.drop(call);
    await this.up.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: call.upId, ...(reason ? { reason } : {}) } });
  }

  /** A call ends for the adapter: its late answer and any of its held state are dropped. */
  private drop(call: Forwarded): void {
    this.calls.delete(call.upId);
    if (call.hold) {
      clearTimeout(call.hold.timer);
      this.holds.delete(call.hold.key);
    }
  }

  // ------------------------------------------------------------------ held calls (server-to-client pushes)

  private async retry(m: Msg, state: string, caps: Obj): Promise<void> {
    const id = m.id as Id;
    let key: string;
    try {
      key = (await this.codec.verify(state, undefined as never)).k;
    } catch {
      return this.down(errorResponse(id, -32602, 'Invalid or expired requestState'));
    }
    const hold = this.holds.get(key);
    if (!hold) return this.down(errorResponse(id, -32602, 'Invalid or expired requestState: the held call has ended'));
    if (hold.call.downId !== undefined) return this.down(errorResponse(id, -32602, 'Invalid requestState: this round was already answered'));
    if (hold.call.method !== m.method || hold.call.binding !== bindingOf(m.method as string, m.params)) {
      return this.down(errorResponse(id, -32602, 'Invalid requestState: it was issued for a different request'));
    }
    clearTimeout(hold.timer);
    hold.call.downId = id;
    hold.call.caps = caps;
    const answers = isObj(m.params) && isObj(m.params.inputResponses) ? m.params.inputResponses : {};
    const asked = [...hold.asked];
    hold.asked.clear();
    for (const [k, push] of asked) {
      const answer = answers[k];
      await this.up.send(
        isObj(answer) ? { jsonrpc: '2.0', id: push.upId, result: answer } : errorResponse(push.upId, -32603, `the client gave no answer to ${push.method}`),
      );
    }
    if (hold.final) return this.finish(hold.call, hold.final);
    if (hold.queued.length > 0) return this.offer(hold);
    // Answered and nothing pending: the upstream call continues and its answer goes to this retry.
  }

  /** A request the 2025 upstream pushed: offered to the client as input_required of the call it belongs to. */
  private async pushed(m: Msg): Promise<void> {
    const upId = m.id as Id;
    const method = m.method as string;
    if (method === 'ping') return this.up.send({ jsonrpc: '2.0', id: upId, result: {} });
    const capability = PUSH_CAPABILITY[method];
    if (!capability) return this.up.send(errorResponse(upId, -32601, `Method not found: ${method}`));
    // A 2025 push names no request; it can only be the one call that is open. Two open calls: refuse, never guess.
    const open = [...this.calls.values()].filter((c) => MULTI_ROUND.has(c.method));
    if (open.length !== 1) {
      return this.up.send(errorResponse(upId, -32603, `the gateway cannot tell which of ${open.length} open calls this ${method} belongs to`));
    }
    const call = open[0]!;
    const caps = call.caps;
    const mode = isObj(m.params) && m.params.mode === 'url' ? 'url' : undefined;
    const cap = caps[capability];
    if (!isObj(cap) || (mode && !isObj(cap[mode]))) {
      return this.up.send(errorResponse(upId, -32601, `the 2026-07-28 client did not declare the ${capability}${mode ? `.${mode}` : ''} capability`));
    }
    const hold = call.hold ?? this.newHold(call);
    hold.queued.push({ upId, method, params: m.params });
    if (call.downId !== undefined && hold.asked.size === 0) this.offer(hold);
  }

  private newHold(call: Forwarded): Hold {
    const hold: Hold = { key: randomUUID(), call, asked: new Map(), queued: [] };
    call.hold = hold;
    this.holds.set(hold.key, hold);
    return hold;
  }

  /** Answers the waiting client request with input_required for every queued push; the upstream call stays open. */
  private async offer(hold: Hold): Promise<void> {
    const downId = hold.call.downId!;
    hold.call.downId = undefined;
    const inputRequests: Obj = {};
    for (const push of hold.queued.splice(0)) {
      const k = `upstream_${++this.pushSeq}`;
      hold.asked.set(k, push);
      inputRequests[k] = { method: push.method, params: push.params ?? {} };
    }
    hold.timer = setTimeout(() => void this.expire(hold), this.holdMs);
    hold.timer.unref?.();
    const requestState = await this.codec.mint({ k: hold.key });
    const out = modernResult(hold.call.method, { inputRequests, requestState }, this.serverInfo);
    out.resultType = 'input_required';
    this.down({ jsonrpc: '2.0', id: downId, result: out });
  }

  /** The client never came back: the upstream's questions get an error and its call is cancelled. */
  private async expire(hold: Hold): Promise<void> {
    if (!this.holds.has(hold.key) || hold.call.downId !== undefined) return;
    this.o.log?.(`a held ${hold.call.method} was cancelled: the client did not retry within ${this.holdMs} ms`);
    this.drop(hold.call);
    for (const push of hold.asked.values()) await this.up.send(errorResponse(push.upId, -32001, 'the client did not answer in time'));
    for (const push of hold.queued) await this.up.send(errorResponse(push.upId, -32001, 'the client did not answer in time'));
    if (!hold.final) {
      await this.up.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: hold.call.upId, reason: 'the client did not answer in time' } });
    }
  }

  // ------------------------------------------------------------------ upstream -> client

  private fromUpstream(m: Msg): void {
    if (isRequest(m)) return void this.pushed(m).catch((e: Error) => this.onerror?.(e));
    if (isNotification(m)) return this.upstreamNotification(m);
    if (!isResponse(m) || !isId(m.id)) return;
    const call = this.calls.get(m.id);
    if (!call) return; // cancelled or expired: its late answer goes nowhere
    if (call.downId === undefined) {
      // Held, and the client has not retried yet: the retry gets it.
      call.hold!.final = m;
      return;
    }
    this.finish(call, m);
  }

  private finish(call: Forwarded, m: Msg): void {
    const downId = call.downId!;
    this.drop(call);
    if (isObj(m.result)) this.down({ jsonrpc: '2.0', id: downId, result: modernResult(call.method, m.result, this.serverInfo) });
    else this.down({ jsonrpc: '2.0', id: downId, error: m.error });
  }

  private upstreamNotification(m: Msg): void {
    const kind = LIST_CHANGED[m.method as string];
    if (kind) {
      // 2026-07-28 delivers change notifications only on a subscriptions/listen stream that asked for them.
      for (const [sid, filter] of this.subscriptions) {
        if (!filter[kind]) continue;
        const params = isObj(m.params) ? m.params : {};
        this.down({ ...m, params: { ...params, _meta: { ...(isObj(params._meta) ? params._meta : {}), [SUBSCRIPTION_ID_META_KEY]: sid } } });
      }
      return;
    }
    if (m.method === 'notifications/cancelled' && isObj(m.params)) {
      // The upstream withdrew a question it pushed: it is no longer offered.
      for (const hold of this.holds.values()) {
        hold.queued = hold.queued.filter((p) => p.upId !== (m.params as Obj).requestId);
        for (const [k, p] of hold.asked) if (p.upId === (m.params as Obj).requestId) hold.asked.delete(k);
      }
      return;
    }
    this.down(m);
  }

  private shutdown(): void {
    if (this.closed) return;
    for (const hold of this.holds.values()) clearTimeout(hold.timer);
    this.holds.clear();
    this.up.failAll('the upstream closed');
    this.closed = true;
    this.onclose?.();
  }
}
