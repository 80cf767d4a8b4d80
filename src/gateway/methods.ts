/**
 * Which agent-to-server JSON-RPC messages the policy proxy lets through, decided by allow-list, per
 * protocol revision: 2025-11-25 ("legacy", a connection that did `initialize`) and 2026-07-28
 * ("modern", each request names its revision in `params._meta`).
 *
 * The policy speaks about tools, so only messages that cannot make the upstream act or hand out data
 * pass without it: the handshake, liveness, listings and client-state notifications. `tools/call` is
 * decided by the policy. Everything else (resources/read, prompts/get, completion/complete, tasks/*,
 * any custom or misspelt method such as "TOOLS/CALL" or "tools/call ") never reaches the upstream: a
 * request gets a JSON-RPC error, a notification is dropped, and both are audited. docs/policy.md lists
 * the reason for each entry.
 */
import { CLIENT_CAPABILITIES_META_KEY, PROTOCOL_VERSION_META_KEY, SUBSCRIPTION_ID_META_KEY } from '@modelcontextprotocol/server';
import { isValidId, type RpcId } from './json-lines.js';

/** Requests forwarded without a policy decision. */
export const PASS_REQUESTS: ReadonlySet<string> = new Set([
  'initialize', // handshake; the gateway reads the client's capabilities from it
  'ping', // liveness
  'tools/list', // hidden tools are removed from every page
  'prompts/list', // names and descriptions only
  'resources/list', // names and URIs only; reading a resource is refused
  'resources/templates/list', // URI templates only
  'logging/setLevel', // changes what the server logs to the client, nothing else
]);

/** 2026-07-28 requests forwarded without a policy decision (the revision has no initialize and no ping). */
export const MODERN_PASS_REQUESTS: ReadonlySet<string> = new Set([
  'server/discover', // the stateless replacement of initialize: versions, capabilities, server info
  'subscriptions/listen', // the one stream change notifications travel on; the gateway adds its own there
  'tools/list', // hidden tools are removed from every page
  'prompts/list',
  'resources/list',
  'resources/templates/list',
]);

/**
 * Methods the 2026-07-28 revision removed: a modern request for one is answered "method not found"
 * as the revision says, even when the policy forwards the method for 2025-11-25 clients.
 */
export const REMOVED_IN_MODERN: ReadonlySet<string> = new Set([
  'initialize',
  'ping',
  'logging/setLevel',
  'resources/subscribe',
  'resources/unsubscribe',
  'notifications/initialized',
  'notifications/roots/list_changed',
]);

/** 2026-07-28 notifications forwarded. */
export const MODERN_PASS_NOTIFICATIONS: ReadonlySet<string> = new Set(['notifications/cancelled', 'notifications/progress']);

/** The `_meta` envelope keys of 2026-07-28 (the SDK's names for them). */
export const PROTOCOL_VERSION_KEY = PROTOCOL_VERSION_META_KEY;
export const CLIENT_CAPABILITIES_KEY = CLIENT_CAPABILITIES_META_KEY;
export const SUBSCRIPTION_ID_KEY = SUBSCRIPTION_ID_META_KEY;
export const MODERN_REVISION = '2026-07-28';

export type Era = 'legacy' | 'modern';

/** The `_meta` object of a message's params, when there is one. */
export function metaOf(m: unknown): Record<string, unknown> | undefined {
  const p = typeof m === 'object' && m !== null ? (m as { params?: unknown }).params : undefined;
  const meta = typeof p === 'object' && p !== null && !Array.isArray(p) ? (p as { _meta?: unknown })._meta : undefined;
  return typeof meta === 'object' && meta !== null && !Array.isArray(meta) ? (meta as Record<string, unknown>) : undefined;
}

/**
 * The revision a message claims: "modern" for the 2026-07-28 envelope, "legacy" without a claim, or
 * the claimed value itself when it names anything else (the caller refuses it).
 */
export function claimedEra(m: unknown): Era | { unsupported: string } {
  const meta = metaOf(m);
  if (!meta || !(PROTOCOL_VERSION_KEY in meta)) return 'legacy';
  const v = meta[PROTOCOL_VERSION_KEY];
  return v === MODERN_REVISION ? 'modern' : { unsupported: typeof v === 'string' ? v.slice(0, 40) : JSON.stringify(v)?.slice(0, 40) ?? 'undefined' };
}

/** Notifications forwarded without a policy decision. */
export const PASS_NOTIFICATIONS: ReadonlySet<string> = new Set([
  'notifications/initialized', // end of the handshake
  'notifications/cancelled', // the proxy ends the call it names first (the quota stays used if it was sent)
  'notifications/progress', // progress of a server-to-client request the client is answering
  'notifications/roots/list_changed', // the client's roots changed; the server may ask for them again
]);

export type Inbound =
  | { kind: 'call'; id: RpcId }
  | { kind: 'request'; id: RpcId; method: string }
  | { kind: 'notification'; method: string }
  | { kind: 'response'; id: RpcId }
  /** `reply` is the id to answer with (null when the id itself is unusable); absent: say nothing. */
  | { kind: 'refuse'; reply?: RpcId | null; code: number; message: string; method?: string };

/** The refusal of a request whose id MCP does not allow (null, a fraction, an object...), wherever it is refused. */
export const INVALID_ID_MESSAGE = 'Invalid Request: "id" must be a string or an integer';

const short = (s: string) => (s.length > 100 ? `${s.slice(0, 100)}…` : s);

/**
 * Classifies one message from the agent. Pure: `extra` adds methods the caller knows to be safe for
 * its upstream (the built-in mode passes its own server's prompts, a policy's `forward` list adds
 * more); `era` is the revision the message travels under.
 */
export function classifyInbound(m: unknown, extra: ReadonlySet<string> = new Set(), era: Era = 'legacy'): Inbound {
  if (typeof m !== 'object' || m === null || Array.isArray(m)) {
    return { kind: 'refuse', reply: null, code: -32600, message: 'Invalid Request: a message must be one JSON object (batches are not supported)' };
  }
  const msg = m as Record<string, unknown>;
  const hasId = 'id' in msg && msg.id !== undefined;
  const id = msg.id;
  if ('method' in msg) {
    const method = msg.method;
    if (typeof method !== 'string') {
      return { kind: 'refuse', reply: hasId ? (isValidId(id) ? id : null) : undefined, code: -32600, message: 'Invalid Request: "method" must be a string' };
    }
    if (hasId) {
      // JSON-RPC treats a request with "id": null as a request, not a notification; MCP forbids it. Floats
      // and integers past 2^53 would come back as a different id. Refuse them all, before any policy.
      if (!isValidId(id)) {
        return { kind: 'refuse', reply: null, code: -32600, message: INVALID_ID_MESSAGE, method };
      }
      if (method === 'tools/call') return { kind: 'call', id };
      if (era === 'modern') {
        if (REMOVED_IN_MODERN.has(method)) {
          return { kind: 'refuse', reply: id, code: -32601, message: `Method not found: "${short(method)}" does not exist in protocol revision ${MODERN_REVISION}`, method };
        }
        if (MODERN_PASS_REQUESTS.has(method) || extra.has(method)) return { kind: 'request', id, method };
      } else if (PASS_REQUESTS.has(method) || extra.has(method)) return { kind: 'request', id, method };
      return { kind: 'refuse', reply: id, code: -32601, message: `Method not found: the policy gateway does not forward "${short(method)}"`, method };
    }
    if (era === 'modern' ? MODERN_PASS_NOTIFICATIONS.has(method) : PASS_NOTIFICATIONS.has(method)) return { kind: 'notification', method };
    return {
      kind: 'refuse',
      code: -32600,
      message: method === 'tools/call' ? 'tools/call sent as a notification (no id) is never forwarded' : `notification "${short(method)}" is not forwarded by the policy gateway`,
      method,
    };
  }
  if ('result' in msg || 'error' in msg) {
    if (hasId && isValidId(id)) return { kind: 'response', id };
    // Never answer an answer: two peers replying to each other's errors would loop.
    return { kind: 'refuse', code: -32600, message: 'a response without a usable id is dropped' };
  }
  return { kind: 'refuse', reply: null, code: -32600, message: 'Invalid Request: neither a request, a notification nor a response' };
}
