import type { Transport, TransportSendOptions } from '@modelcontextprotocol/server';
import { asMessage, errorResponse, isId, isResponse, type Id, type Msg, type Obj } from './wire.js';

/**
 * The upstream side of an era adapter: one id space for everything the adapter sends upstream (the client's
 * requests under fresh ids, retries, and the adapter's own handshake and subscription requests), so no two of
 * them can ever share an id there, whatever ids the client chose.
 */
export class UpstreamRequests {
  private seq = 0;
  private readonly own = new Map<Id, { resolve: (m: Msg) => void; timer?: NodeJS.Timeout }>();

  constructor(
    private readonly upstream: Transport,
    onOther: (m: Msg) => void,
  ) {
    upstream.onmessage = (message) => {
      const m = message as unknown as Msg;
      if (isResponse(m) && isId(m.id)) {
        const waiter = this.own.get(m.id);
        if (waiter) {
          this.own.delete(m.id);
          clearTimeout(waiter.timer);
          return waiter.resolve(m);
        }
      }
      onOther(m);
    };
  }

  nextId(): number {
    return ++this.seq;
  }

  send(m: Msg, options?: TransportSendOptions): Promise<void> {
    return this.upstream.send(asMessage(m), options);
  }

  /** The adapter's own request; resolves with the response (an error response on timeout or close). */
  request(method: string, params: Obj, timeoutMs?: number, options?: TransportSendOptions): Promise<Msg> {
    const id = this.nextId();
    return new Promise<Msg>((resolve) => {
      const entry: { resolve: (m: Msg) => void; timer?: NodeJS.Timeout } = { resolve };
      if (timeoutMs !== undefined) {
        entry.timer = setTimeout(() => {
          this.own.delete(id);
          resolve(errorResponse(id, -32001, `${method} got no answer within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.own.set(id, entry);
      this.send({ jsonrpc: '2.0', id, method, params }, options).catch((e: Error) => {
        this.own.delete(id);
        clearTimeout(entry.timer);
        resolve(errorResponse(id, -32603, `${method} could not be sent: ${e.message}`));
      });
    });
  }

  /** Ends the adapter's own requests still waiting, e.g. when the upstream closed. */
  failAll(reason: string): void {
    for (const [id, waiter] of this.own) {
      clearTimeout(waiter.timer);
      waiter.resolve(errorResponse(id, -32000, reason));
    }
    this.own.clear();
  }
}
