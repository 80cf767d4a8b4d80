import { SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage, type Transport } from '@modelcontextprotocol/server';
import { UpstreamRequests } from './upstream-requests.js';
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  LEGACY,
  LIST_CHANGED,
  LOG_LEVEL_META_KEY,
  MODERN,
  MULTI_ROUND,
  PROTOCOL_VERSION_META_KEY,
  SERVER_INFO_META_KEY,
  SUBSCRIPTION_ID_META_KEY,
  asMessage,
  errorResponse,
  isId,
  isNotification,
  isObj,
  isRequest,
  isResponse,
  legacyResult,
  withEnvelope,
  type Id,
  type Msg,
  type Obj,
} from './wire.js';

export interface LegacyOverModernOptions {
  /** Sent in the envelope until the client's own `initialize` says who it is. */
  clientInfo: { name: string; version: string };
  /** The upstream's `server/discover` result when already known (probeUpstreamEra); else asked on initialize. */
  discover?: Obj;
  /** Input rounds one call may take before it fails (a server asking forever). Default 8. */
  maxRounds?: number;
  /** Bound on the upstream's `server/discover` answer. Default 30 s. */
  discoverTimeoutMs?: number;
  log?: (line: string) => void;
}

/** A client request forwarded to the 2026 upstream; it may take several rounds under several upstream ids. */
interface Call {
  downId: Id;
  method: string;
  /** The client's params, without envelope: each round re-sends them with that round's answers. */
  params: Obj;
  upId?: Id;
  rounds: number;
  abort?: AbortController;
  /** Our own requests to the client for this round's inputRequests. */
  asking: Set<Id>;
  cancelled: boolean;
}

/**
 * A 2025-11-25 (session) client in front of a 2026-07-28 (stateless) server. See index.ts for the contract.
 */
export class LegacyOverModern implements Transport {
  onmessage?: Transport['onmessage'];
  onclose?: () => void;
  onerror?: (error: Error) => void;

  private readonly up: UpstreamRequests;
  private readonly calls = new Map<Id, Call>();
  private readonly byDownId = new Map<Id, Call>();
  /** Our requests to the client (the upstream's inputRequests), by the id we gave them. */
  private readonly asked = new Map<Id, (m: Msg) => void>();
  private discover?: Obj;
  private clientInfo: Obj;
  private clientCaps: Obj = {};
  private logLevel?: string;
  private askSeq = 0;
  private listening = false;
  private closed = false;

  constructor(
    private readonly upstream: Transport,
    private readonly o: LegacyOverModernOptions,
  ) {
    this.discover = o.discover;
    this.clientInfo = { ...o.clientInfo };
    this.up = new UpstreamRequests(upstream, (m) => this.fromUpstream(m));
  }

  async start(): Promise<void> {
    this.upstream.onclose = () => this.shutdown();
    this.upstream.onerror = (e) => this.onerror?.(e);
    await this.upstream.start();
    this.upstream.setProtocolVersion?.(MODERN);
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const m = message as unknown as Msg;
    if (isRequest(m)) return this.fromClientRequest(m);
    if (isNotification(m)) return this.fromClientNotification(m);
    if (isResponse(m) && isId(m.id)) {
      const waiter = this.asked.get(m.id);
      if (waiter) {
        this.asked.delete(m.id);
        return waiter(m);
      }
      this.o.log?.(`dropped a response from the 2025-11-25 client to ${JSON.stringify(m.id)}: the adapter asked no such thing`);
    }
  }

  async close(): Promise<void> {
    await this.upstream.close();
    this.shutdown();
  }

  private down(m: Msg): void {
    if (!this.closed) this.onmessage?.(asMessage(m));
  }

  private envelope(): Obj {
    return {
      [PROTOCOL_VERSION_META_KEY]: MODERN,
      [CLIENT_INFO_META_KEY]: this.clientInfo,
      [CLIENT_CAPABILITIES_META_KEY]: this.clientCaps,
      ...(this.logLevel ? { [LOG_LEVEL_META_KEY]: this.logLevel } : {}),
    };
  }

  // ------------------------------------------------------------------ client -> upstream

  private async fromClientRequest(m: Msg): Promise<void> {
    const id = m.id as Id;
    const params = isObj(m.params) ? m.params : {};
    switch (m.method) {
      case 'initialize':
        return this.initialize(id, params);
      case 'logging/setLevel':
        // 2026-07-28 has no logging session: the level travels in every request's envelope from now on.
        if (typeof params.level === 'string') this.logLevel = params.level;
        return this.down({ jsonrpc: '2.0', id, result: {} });
    }
    const call: Call = { downId: id, method: m.method as string, params, rounds: 0, asking: new Set(), cancelled: false };
    this.byDownId.set(id, call);
    await this.round(call, {});
  }

  private async initialize(id: Id, params: Obj): Promise<void> {
    if (isObj(params.clientInfo)) this.clientInfo = params.clientInfo;
    if (isObj(params.capabilities)) this.clientCaps = params.capabilities;
    if (!this.discover) {
      const answer = await this.up.request('server/discover', { _meta: this.envelope() }, this.o.discoverTimeoutMs ?? 30_000);
      if (!isObj(answer.result)) {
        return this.down(errorResponse(id, -32603, `the 2026-07-28 upstream did not answer server/discover: ${JSON.stringify(answer.error)}`));
      }
      this.discover = answer.result;
    }
    const d = this.discover;
    const asked = typeof params.protocolVersion === 'string' ? params.protocolVersion : LEGACY;
    const meta = isObj(d._meta) ? d._meta : {};
    const serverInfo = isObj(meta[SERVER_INFO_META_KEY]) ? meta[SERVER_INFO_META_KEY] : { name: 'upstream', version: 'unknown' };
    this.down({
      jsonrpc: '2.0',
      id,
      result: {
        protocolVersion: SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LEGACY,
        capabilities: isObj(d.capabilities) ? d.capabilities : {},
        serverInfo,
        ...(typeof d.instructions === 'string' ? { instructions: d.instructions } : {}),
      },
    });
  }

  private async fromClientNotification(m: Msg): Promise<void> {
    if (m.method === 'notifications/initialized') return this.listen();
    if (m.method === 'notifications/cancelled' && isObj(m.params) && isId(m.params.requestId)) {
      const call = this.byDownId.get(m.params.requestId);
      if (call) await this.cancel(call, typeof m.params.reason === 'string' ? m.params.reason : undefined);
      return;
    }
    // The others (roots/list_changed, progress of a server request) have no 2026-07-28 counterpart: the
    // upstream never asks the client anything except through input_required, which this adapter answers.
    this.o.log?.(`dropped ${m.method} from the 2025-11-25 client: protocol revision 2026-07-28 has no such notification`);
  }

  /** One round of a call: the client's params plus this round's answers, under a fresh upstream id. */
  private async round(call: Call, retry: Obj): Promise<void> {
    const upId = this.up.nextId();
    call.upId = upId;
    this.calls.set(upId, call);
    // Over HTTP a 2026-07-28 call is cancelled by closing its own request stream.
    call.abort = this.upstream.hasPerRequestStream ? new AbortController() : undefined;
    const m = withEnvelope({ jsonrpc: '2.0', id: upId, method: call.method, params: { ...call.params, ...retry } }, this.envelope());
    await this.up.send(m, call.abort ? { requestSignal: call.abort.signal } : undefined).catch((e: Error) => {
      this.calls.delete(upId);
      this.end(call, errorResponse(call.downId, -32603, `the upstream could not be reached: ${e.message}`));
    });
  }

  private async cancel(call: Call, reason: string | undefined): Promise<void> {
    call.cancelled = true;
    this.byDownId.delete(call.downId);
    for (const askId of call.asking) {
      this.asked.delete(askId);
      this.down({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: askId, reason: 'the call was cancelled' } });
    }
    if (call.upId === undefined || !this.calls.delete(call.upId)) return;
    if (call.abort) call.abort.abort();
    else {
      const params: Obj = { requestId: call.upId, ...(reason ? { reason } : {}) };
      await this.up.send(withEnvelope({ jsonrpc: '2.0', method: 'notifications/cancelled', params }, { [PROTOCOL_VERSION_META_KEY]: MODERN }));
    }
  }

  /**
   * A 2025 client hears list changes unasked; a 2026 server tells them only on a subscriptions/listen stream,
   * so the adapter opens one for every list the upstream says can change.
   */
  private async listen(): Promise<void> {
    if (this.listening || !this.discover) return;
    const caps = isObj(this.discover.capabilities) ? this.discover.capabilities : {};
    const changes = (cap: string) => isObj(caps[cap]) && (caps[cap] as Obj).listChanged === true;
    const notifications: Obj = {};
    if (changes('tools')) notifications.toolsListChanged = true;
    if (changes('prompts')) notifications.promptsListChanged = true;
    if (changes('resources')) notifications.resourcesListChanged = true;
    if (Object.keys(notifications).length === 0) return;
    this.listening = true;
    // Runs for the adapter's lifetime; its answer only comes when the upstream ends the subscription.
    void this.up.request('subscriptions/listen', { notifications, _meta: this.envelope() }).then((end) => {
      this.listening = false;
      if (end.error) this.o.log?.(`the upstream refused subscriptions/listen: ${JSON.stringify(end.error)}`);
    });
  }

  // ------------------------------------------------------------------ upstream -> client

  private fromUpstream(m: Msg): void {
    if (isRequest(m)) {
      // 2026-07-28 servers ask through input_required only.
      void this.up.send(errorResponse(m.id as Id, -32601, `Method not found: ${m.method} (protocol revision 2026-07-28 sends no server-to-client requests)`));
      return;
    }
    if (isNotification(m)) return this.upstreamNotification(m);
    if (!isResponse(m) || !isId(m.id)) return;
    const call = this.calls.get(m.id);
    if (!call) return;
    this.calls.delete(m.id);
    const result = isObj(m.result) ? m.result : undefined;
    if (!result) return this.end(call, { jsonrpc: '2.0', id: call.downId, error: m.error });
    if (result.resultType === 'input_required' && MULTI_ROUND.has(call.method)) {
      void this.ask(call, result).catch((e: Error) => this.end(call, errorResponse(call.downId, -32603, e.message)));
      return;
    }
    this.end(call, { jsonrpc: '2.0', id: call.downId, result: legacyResult(result) });
  }

  private end(call: Call, m: Msg): void {
    this.byDownId.delete(call.downId);
    if (!call.cancelled) this.down(m);
  }

  /** Turns the upstream's inputRequests into real requests to the 2025 client, then retries with the answers. */
  private async ask(call: Call, result: Obj): Promise<void> {
    if (++call.rounds > (this.o.maxRounds ?? 8)) {
      return this.end(call, errorResponse(call.downId, -32603, `the upstream asked for input more than ${this.o.maxRounds ?? 8} times`));
    }
    const requests = isObj(result.inputRequests) ? result.inputRequests : {};
    const answers: Obj = {};
    await Promise.all(
      Object.entries(requests).map(async ([key, request]) => {
        if (!isObj(request) || typeof request.method !== 'string') throw new Error(`the upstream's input request ${key} is malformed`);
        const method = request.method;
        const askId = `era-${++this.askSeq}`;
        call.asking.add(askId);
        const reply = await new Promise<Msg>((resolve) => {
          this.asked.set(askId, resolve);
          this.down({ jsonrpc: '2.0', id: askId, method, params: isObj(request.params) ? request.params : {} });
        });
        call.asking.delete(askId);
        if (!isObj(reply.result)) {
          const e = isObj(reply.error) ? reply.error : {};
          throw new Error(`the client did not answer ${method}: ${typeof e.message === 'string' ? e.message : 'error'}`);
        }
        answers[key] = reply.result;
      }),
    );
    if (call.cancelled) return;
    const retry: Obj = { inputResponses: answers };
    if (typeof result.requestState === 'string') retry.requestState = result.requestState;
    await this.round(call, retry);
  }

  private upstreamNotification(m: Msg): void {
    if (m.method === 'notifications/subscriptions/acknowledged') return;
    const params = isObj(m.params) ? { ...m.params } : undefined;
    if (params && isObj(params._meta) && SUBSCRIPTION_ID_META_KEY in params._meta) {
      const { [SUBSCRIPTION_ID_META_KEY]: _sid, ...meta } = params._meta;
      if (Object.keys(meta).length === 0) delete params._meta;
      else params._meta = meta;
    }
    if (LIST_CHANGED[m.method as string] === undefined && m.method === 'notifications/cancelled') return;
    this.down(params ? { ...m, params } : m);
  }

  private shutdown(): void {
    if (this.closed) return;
    this.up.failAll('the upstream closed');
    this.closed = true;
    this.onclose?.();
  }
}
