import type { UpstreamOutcome } from '../storage/policy-state.js';

/**
 * JSON-RPC errors that mean the server did not execute the request: the message could not be parsed
 * (-32700), was not a valid request (-32600), named no method it has (-32601), or had invalid params
 * (-32602, which is also what MCP servers answer for an unknown tool or arguments that fail its schema).
 * Every other code, -32603 and the -32000..-32099 server range included, may come after the tool ran.
 */
export const NOT_EXECUTED_CODES: ReadonlySet<number> = new Set([-32700, -32600, -32601, -32602]);

/**
 * Whether a call's reserved quota is given back. Only when the upstream provably did not run it: the
 * call was never handed to the upstream (denied, waiting for approval, cancelled before forwarding),
 * the transport refused to send it, or the upstream answered with a "not executed" error. A result,
 * a tool error (`isError: true`), any other JSON-RPC error, a cancellation, a timeout, or a crash after
 * sending all keep the quota used, since the upstream may have done the work.
 */
export function quotaComesBack(c: { forwarded: boolean; upstream: UpstreamOutcome; rpcErrorCode?: number }): boolean {
  if (!c.forwarded) return true;
  if (c.upstream === 'unreachable') return true;
  if (c.upstream === 'rpc_error') return c.rpcErrorCode !== undefined && NOT_EXECUTED_CODES.has(c.rpcErrorCode);
  return false;
}
