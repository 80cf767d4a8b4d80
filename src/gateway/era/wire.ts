import {
  CLIENT_CAPABILITIES_META_KEY,
  CLIENT_INFO_META_KEY,
  LOG_LEVEL_META_KEY,
  PROTOCOL_VERSION_META_KEY,
  SERVER_INFO_META_KEY,
  SUBSCRIPTION_ID_META_KEY,
  type JSONRPCMessage,
} from '@modelcontextprotocol/server';

/**
 * JSON-RPC shapes of the two MCP revisions the era adapters translate between, as plain objects. The adapters
 * work on message objects (never SDK classes) so the policy gateway keeps forwarding exactly what it checked.
 */

export const MODERN = '2026-07-28';
export const LEGACY = '2025-11-25';
export type Era = 'modern' | 'legacy';

export type Id = string | number;
export type Obj = Record<string, unknown>;
export type Msg = Obj & { jsonrpc?: string; id?: Id | null; method?: string; params?: unknown; result?: unknown; error?: unknown };

/** The per-request envelope keys of 2026-07-28 that a 2025-11-25 server has never heard of. */
export const ENVELOPE_KEYS = [PROTOCOL_VERSION_META_KEY, CLIENT_INFO_META_KEY, CLIENT_CAPABILITIES_META_KEY, LOG_LEVEL_META_KEY] as const;
export { CLIENT_CAPABILITIES_META_KEY, CLIENT_INFO_META_KEY, LOG_LEVEL_META_KEY, PROTOCOL_VERSION_META_KEY, SERVER_INFO_META_KEY, SUBSCRIPTION_ID_META_KEY };

/** 2026-07-28 results of these methods must carry `ttlMs` and `cacheScope`. */
const CACHEABLE = new Set(['tools/list', 'prompts/list', 'resources/list', 'resources/templates/list', 'resources/read', 'server/discover']);
/** The requests that may answer `input_required` on 2026-07-28. */
export const MULTI_ROUND = new Set(['tools/call', 'prompts/get', 'resources/read']);
/** The list-changed notifications 2026-07-28 delivers only on a `subscriptions/listen` stream. */
export const LIST_CHANGED: Record<string, 'toolsListChanged' | 'promptsListChanged' | 'resourcesListChanged'> = {
  'notifications/tools/list_changed': 'toolsListChanged',
  'notifications/prompts/list_changed': 'promptsListChanged',
  'notifications/resources/list_changed': 'resourcesListChanged',
};

export function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export const isId = (v: unknown): v is Id => typeof v === 'string' || typeof v === 'number';
export const isRequest = (m: Msg): boolean => typeof m.method === 'string' && isId(m.id);
export const isNotification = (m: Msg): boolean => typeof m.method === 'string' && m.id === undefined;
export const isResponse = (m: Msg): boolean => m.method === undefined && ('result' in m || 'error' in m);

export const asMessage = (m: Msg): JSONRPCMessage => m as unknown as JSONRPCMessage;

export function errorResponse(id: Id | null, code: number, message: string, data?: unknown): Msg {
  return { jsonrpc: '2.0', id, error: { code, message, ...(data === undefined ? {} : { data }) } };
}

/** `params._meta` of a request or notification, if it is an object. */
export function metaOf(m: Msg): Obj | undefined {
  return isObj(m.params) && isObj(m.params._meta) ? m.params._meta : undefined;
}

/**
 * The message without the 2026-07-28 envelope and multi-round keys: what a 2025-11-25 server gets. Other `_meta`
 * keys (progressToken, trace context) pass unchanged; an emptied `_meta` is dropped.
 */
export function withoutEnvelope(m: Msg): Msg {
  if (!isObj(m.params)) return m;
  const { inputResponses: _r, requestState: _s, ...params } = m.params;
  if (isObj(params._meta)) {
    const meta = { ...params._meta };
    for (const k of ENVELOPE_KEYS) delete meta[k];
    if (Object.keys(meta).length === 0) delete params._meta;
    else params._meta = meta;
  }
  return { ...m, params };
}

/** The message with `envelope` merged into `params._meta`: what a 2026-07-28 server needs on every request. */
export function withEnvelope(m: Msg, envelope: Obj): Msg {
  const params = isObj(m.params) ? m.params : {};
  return { ...m, params: { ...params, _meta: { ...(isObj(params._meta) ? params._meta : {}), ...envelope } } };
}

/** A 2025-11-25 result dressed for a 2026-07-28 client: `resultType`, cache fields where required, serverInfo. */
export function modernResult(method: string, result: Obj, serverInfo: Obj | undefined): Obj {
  const out: Obj = { ...result, resultType: 'complete' };
  if (CACHEABLE.has(method)) {
    // A 2025 server makes no caching promise: ttlMs 0 means "do not reuse", private keeps it per caller.
    if (typeof out.ttlMs !== 'number') out.ttlMs = 0;
    if (out.cacheScope !== 'public' && out.cacheScope !== 'private') out.cacheScope = 'private';
  }
  if (serverInfo) out._meta = { ...(isObj(result._meta) ? result._meta : {}), [SERVER_INFO_META_KEY]: serverInfo };
  return out;
}

/** A 2026-07-28 complete result dressed for a 2025-11-25 client: the fields that revision does not define go. */
export function legacyResult(result: Obj): Obj {
  const { resultType: _t, ttlMs: _l, cacheScope: _c, ...rest } = result;
  return rest;
}
