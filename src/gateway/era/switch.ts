import { randomUUID } from 'node:crypto';
import type { JSONRPCMessage, Transport, TransportSendOptions } from '@modelcontextprotocol/server';
import { LegacyOverModern, type LegacyOverModernOptions } from './legacy-over-modern.js';
import { ModernOverLegacy, type ModernOverLegacyOptions } from './modern-over-legacy.js';
import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  MODERN,
  PROTOCOL_VERSION_META_KEY,
  asMessage,
  errorResponse,
  isId,
  isObj,
  isRequest,
  isResponse,
  metaOf,
  type Era,
  type Id,
  type Msg,
} from './wire.js';

export interface EraSwitchOptions {
  /** Who the gateway says it is upstream when it has to ask in its own name (default egress-triage-gateway). */
  clientInfo?: { name: string; version: string };
  /** Passed to ModernOverLegacy (see index.ts). */
  modernOverLegacy?: Omit<ModernOverLegacyOptions, 'clientInfo' | 'log'>;
  /** Passed to LegacyOverModern (see index.ts). */
  legacyOverModern?: Omit<LegacyOverModernOptions, 'clientInfo' | 'log' | 'discover'>;
  /** Bound on the upstream's answer to the deciding question. Default 30 s. */
  decideTimeoutMs?: number;
  /**
   * The revision the upstream is known to speak: no question is asked, the downstream's revision alone picks
   * pass-through or translation. A wrong value fails closed (the adapter's handshake is refused) or reaches
   * an upstream that refuses what it cannot read.
   */
  upstreamEra?: Era;
  log?: (line: string) => void;
}

const GATEWAY_INFO = { name: 'egress-triage-gateway', version: '0.1.0' };

type Phase =
  | { kind: 'idle' }
  | { kind: 'deciding' }
  | { kind: 'decided'; via: Transport }
  | { kind: 'failed'; reason: string };

interface Buffered {
  m: Msg;
  options?: TransportSendOptions;
}

/** The code of the error a request gets when the gateway could not find out how to talk to its upstream. */
export const UNDECIDED_CODE = -32603;

/**
 * The upstream Transport of a one-connection gateway (stdio) whose downstream's revision is only known from
 * its first message. It decides on the live upstream connection, with no extra process:
 *
 * - a 2026-07-28 downstream: the upstream is asked `server/discover` with the 2026 envelope (the downstream's
 *   own first message when that is one, else a question of the switch's own). Any result: the upstream
 *   speaks 2026-07-28 and messages pass as they are. An error: it is a 2025-11-25 server, and messages go
 *   through ModernOverLegacy, which opens the session with `initialize` on this same connection.
 * - a 2025-11-25 downstream: its `initialize` is forwarded as is. A result: messages pass as they are. An
 *   error: it is a 2026-07-28-only server, and the initialize is replayed through LegacyOverModern, which
 *   answers it from `server/discover`.
 *
 * Messages that arrive while deciding wait, in order. When no decision can be made (the upstream closed,
 * never answered, or refused the adapter's handshake too), every waiting and later request is answered with
 * a JSON-RPC error naming the reason and nothing reaches the upstream untranslated: a wrong guess would
 * forward requests the upstream cannot read, and the policy decided on the downstream's revision.
 *
 * `start()` starts the wrapped upstream once (the child spawns at startup, as without the switch); the
 * adapters get a view of the started upstream whose `start()` does nothing.
 */
export class EraSwitch implements Transport {
  onmessage?: Transport['onmessage'];
  onclose?: () => void;
  onerror?: (error: Error) => void;

  private phase: Phase = { kind: 'idle' };
  private readonly waiting: Buffered[] = [];
  /** The id whose upstream answer decides, and what to do with it. */
  private question?: { id: Id; era: Era; own: boolean; first: Buffered };
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly upstream: Transport,
    private readonly o: EraSwitchOptions = {},
  ) {}

  /** The revision the upstream was found to speak, once decided. */
  upstreamEra?: Era;

  /** True once decided on sending to the upstream as it is: requests keep their own ids there. */
  get passesIdsThrough(): boolean {
    return this.phase.kind === 'decided' && this.phase.via === this.upstream;
  }

  async start(): Promise<void> {
    this.upstream.onmessage = (m) => this.fromUpstream(m as unknown as Msg);
    this.upstream.onclose = () => this.upstreamClosed();
    this.upstream.onerror = (e) => this.onerror?.(e);
    await this.upstream.start();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    const m = message as unknown as Msg;
    switch (this.phase.kind) {
      case 'decided':
        return this.phase.via.send(message, options);
      case 'failed':
        return this.refuse(m, this.phase.reason);
      case 'deciding':
        this.waiting.push({ m, options });
        return;
      case 'idle':
        if (!isRequest(m)) {
          // Only a request names a revision; anything before it has nothing to be translated against.
          return this.upstream.send(message, options);
        }
        return this.decide({ m, options });
    }
  }

  async close(): Promise<void> {
    if (this.phase.kind === 'decided' && this.phase.via !== this.upstream) await this.phase.via.close();
    else await this.upstream.close();
  }

  get hasPerRequestStream(): boolean | undefined {
    return this.upstream.hasPerRequestStream;
  }

  // ------------------------------------------------------------------ deciding

  private async decide(first: Buffered): Promise<void> {
    this.phase = { kind: 'deciding' };
    const m = first.m;
    const era: Era = metaOf(m)?.[PROTOCOL_VERSION_META_KEY] === MODERN ? 'modern' : 'legacy';
    this.timer = setTimeout(() => this.fail(`the upstream did not answer ${this.question?.own ? 'server/discover' : m.method} within ${this.timeoutMs} ms`), this.timeoutMs);
    this.timer.unref?.();
    if (this.o.upstreamEra) {
      this.waiting.push(first);
      if (this.o.upstreamEra === era) return this.settle(this.upstream, era);
      this.o.log?.(`the upstream is set to speak ${this.o.upstreamEra === 'modern' ? MODERN : '2025-11-25'}: translating`);
      return this.adapt(this.o.upstreamEra, 'the upstream was set to speak 2025-11-25 but');
    }
    if (era === 'legacy' && m.method !== 'initialize') {
      // A 2025-11-25 request before initialize: nothing to translate it against; the upstream answers it as before.
      this.waiting.push(first);
      return this.settle(this.upstream, 'legacy');
    }
    if (era === 'legacy' || m.method === 'server/discover') {
      // The downstream's own opening question decides: forwarded as it is, its answer read here first.
      this.question = { id: m.id as Id, era, own: false, first };
      return this.ask(m, first.options);
    }
    this.waiting.push(first);
    const meta = metaOf(m) ?? {};
    const id = `egress-triage-era-${randomUUID()}`;
    this.question = { id, era, own: true, first };
    await this.ask({
      jsonrpc: '2.0',
      id,
      method: 'server/discover',
      params: {
        _meta: {
          [PROTOCOL_VERSION_META_KEY]: MODERN,
          [CLIENT_INFO_META_KEY]: isObj(meta[CLIENT_INFO_META_KEY]) ? meta[CLIENT_INFO_META_KEY] : (this.o.clientInfo ?? GATEWAY_INFO),
          [CLIENT_CAPABILITIES_META_KEY]: isObj(meta[CLIENT_CAPABILITIES_META_KEY]) ? meta[CLIENT_CAPABILITIES_META_KEY] : {},
        },
      },
    });
  }

  private get timeoutMs(): number {
    return this.o.decideTimeoutMs ?? 30_000;
  }

  private async ask(m: Msg, options?: TransportSendOptions): Promise<void> {
    try {
      await this.upstream.send(asMessage(m), options);
    } catch (e) {
      this.fail(`the upstream could not be asked: ${(e as Error).message}`);
    }
  }

  /** The answer to the deciding question. */
  private async answered(answer: Msg): Promise<void> {
    const q = this.question!;
    this.question = undefined;
    clearTimeout(this.timer);
    if (isObj(answer.result)) {
      // The upstream speaks the downstream's revision: the downstream's own question gets its answer as is.
      if (!q.own) this.deliver(answer);
      return this.settle(this.upstream, q.era);
    }
    const upstreamEra: Era = q.era === 'modern' ? 'legacy' : 'modern';
    this.o.log?.(`the upstream refused ${q.own ? 'server/discover' : String(q.first.m.method)} (${JSON.stringify(answer.error)}): it speaks ${upstreamEra === 'modern' ? MODERN : '2025-11-25'}, translating`);
    if (!q.own) this.waiting.unshift(q.first);
    return this.adapt(upstreamEra, `the upstream refused server/discover (${reason(answer)}) and`);
  }

  /** Translation from now on; the waiting messages go through the adapter once its handshake is done. */
  private async adapt(upstreamEra: Era, refusedPrefix: string): Promise<void> {
    const view = startedView(this.upstream);
    const clientInfo = this.o.clientInfo ?? GATEWAY_INFO;
    const adapter: Transport =
      upstreamEra === 'legacy'
        ? new ModernOverLegacy(view, { ...this.o.modernOverLegacy, clientInfo, log: this.o.log })
        : new LegacyOverModern(view, { ...this.o.legacyOverModern, clientInfo, log: this.o.log });
    adapter.onmessage = (m) => this.deliver(m as unknown as Msg);
    adapter.onclose = () => this.upstreamClosed();
    adapter.onerror = (e) => this.onerror?.(e);
    try {
      await adapter.start();
    } catch (e) {
      // A 2025-11-25 handshake refused as well: the upstream speaks neither revision we could tell.
      return this.fail(`${refusedPrefix} ${(e as Error).message}`);
    }
    // The downstream's own opening question (first in line) is replayed through the adapter, which answers it in its terms.
    return this.settle(adapter, upstreamEra);
  }

  private async settle(via: Transport, upstreamEra: Era): Promise<void> {
    clearTimeout(this.timer);
    if (this.closed) return;
    this.upstreamEra = upstreamEra;
    this.phase = { kind: 'decided', via };
    if (via === this.upstream) this.upstream.onmessage = (m) => this.deliver(m as unknown as Msg);
    // Every waiting message is handed over now, in order and before any later one (no await in between:
    // a message arriving meanwhile goes straight to `via` and must not overtake them).
    const sent = this.waiting.splice(0).map((b) =>
      via.send(asMessage(b.m), b.options).catch((e: Error) => {
        if (isRequest(b.m)) this.deliver(errorResponse(b.m.id as Id, -32603, `upstream unreachable: ${e.message}`));
      }),
    );
    await Promise.all(sent);
  }

  /** Fail closed: every waiting request (and every later one) gets an error naming why; none is forwarded. */
  private fail(why: string): void {
    if (this.phase.kind !== 'deciding') return;
    clearTimeout(this.timer);
    const reasonText = `the gateway could not tell which protocol revision the upstream speaks (${why}); the request was not forwarded`;
    this.phase = { kind: 'failed', reason: reasonText };
    this.o.log?.(reasonText);
    const q = this.question;
    this.question = undefined;
    // The downstream's own opening question, when it was the one asked and is still unanswered, fails first.
    const pending = [...(q && !q.own ? [q.first] : []), ...this.waiting.splice(0)];
    for (const b of pending) this.refuse(b.m, reasonText);
  }

  private refuse(m: Msg, reasonText: string): void {
    if (isRequest(m)) this.deliver(errorResponse(m.id as Id, UNDECIDED_CODE, reasonText));
  }

  // ------------------------------------------------------------------ upstream -> downstream

  private fromUpstream(m: Msg): void {
    const q = this.question;
    if (q && isResponse(m) && isId(m.id) && m.id === q.id) {
      void this.answered(m).catch((e: Error) => this.fail(e.message));
      return;
    }
    this.deliver(m);
  }

  private deliver(m: Msg): void {
    if (!this.closed) this.onmessage?.(asMessage(m));
  }

  private upstreamClosed(): void {
    // Before a decision, what waits is failed first (with the reason), while the downstream can still hear it.
    this.fail('the upstream closed the connection');
    // Once adapted, the adapter hears the close (it took over onclose) and reports it through finalClose.
    this.finalClose();
  }

  private finalClose(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.timer);
    this.onclose?.();
  }
}

function reason(m: Msg): string {
  const e = isObj(m.error) ? m.error : {};
  return typeof e.message === 'string' ? e.message : JSON.stringify(m.error);
}

/**
 * The already started upstream as an adapter sees it: its own `start()` would spawn the child again (or
 * fail), so start is a no-op; the handlers the adapter installs are the upstream's own.
 */
function startedView(upstream: Transport): Transport {
  const view: Transport = {
    start: async () => {},
    send: (m, options) => upstream.send(m, options),
    close: () => upstream.close(),
    setProtocolVersion: (v) => upstream.setProtocolVersion?.(v),
    get hasPerRequestStream() {
      return upstream.hasPerRequestStream;
    },
    get onmessage() {
      return upstream.onmessage;
    },
    set onmessage(f) {
      upstream.onmessage = f;
    },
    get onclose() {
      return upstream.onclose;
    },
    set onclose(f) {
      upstream.onclose = f;
    },
    get onerror() {
      return upstream.onerror;
    },
    set onerror(f) {
      upstream.onerror = f;
    },
  };
  return view;
}
