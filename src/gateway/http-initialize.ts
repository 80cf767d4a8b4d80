/**
 * A 2025-11-25 session of the HTTP gateway lives only if its `initialize` succeeds.
 *
 * The gateway opens a session (its policy proxy, and the upstream child or upstream session) before the
 * SDK's session transport reads the request, since the transport hands the initialize to the proxy as
 * soon as it accepts it. When the transport refuses it instead (params that are not an initialize, a
 * body that is not JSON-RPC 2.0), or the answer is an error (the upstream unreachable, or refusing), the
 * client holds no usable session, and nothing else would ever close this one: the gateway has no idle
 * timeout, and a client does not DELETE a session it never got. Left open, each such POST kept an
 * upstream child running until the gateway stopped (test/adversarial/http-initialize-refused.test.ts).
 */
import type { ServerResponse } from 'node:http';
import type { Transport } from '@modelcontextprotocol/server';

/**
 * Calls `close` once the initialize POST answered on `res` is over, unless `downstream` (the proxy's
 * side of the session) sent a result for the initialize's `id` by then. A client that goes away before
 * its answer gets none, so its session is closed too.
 */
export function closeUnlessInitialized(downstream: Transport, res: ServerResponse, id: string | number | null, close: () => void): void {
  let initialized = false;
  const send = downstream.send;
  downstream.send = (message, options) => {
    const m = message as { id?: unknown; result?: unknown; method?: unknown };
    if (id !== null && m.id === id && m.method === undefined && m.result !== undefined) initialized = true;
    return send.call(downstream, message, options);
  };
  res.once('close', () => {
    downstream.send = send;
    if (!initialized) close();
  });
}
