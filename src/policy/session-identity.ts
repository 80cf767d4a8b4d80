import { longestSessionWindow, type PolicyFile } from './schema.js';
import type { HandleResult, PolicyStateBackend } from '../storage/policy-state.js';

/**
 * Who "the session" is for `scope: session` rate limits on 2026-07-28 traffic, which has no
 * `initialize` and no `Mcp-Session-Id` (docs/policy.md, "Who is the session on 2026-07-28").
 *
 * The 2026-07-28 revision defines no conversation or session handle in a request's `_meta` (its
 * RequestMetaObject carries protocolVersion, clientInfo, clientCapabilities and logLevel; cross-call
 * state is server-minted handles in tool arguments). So egress-triage reads one key of its own,
 * `_meta["egress-triage/session"]`: a prefix that is not reserved for MCP (its second label is not
 * `modelcontextprotocol` or `mcp`), as the spec's key rules require.
 *
 * - The session key is the authenticated identity plus that handle. A call without a handle counts
 *   against the identity itself: never a fresh bucket per call.
 * - An identity holds at most `sessions.max_handles` live handles (live: used within
 *   `sessions.handle_ttl`), counted in the policy state so every replica applies one cap. A new handle
 *   beyond the cap is denied with the reason, not folded into the identity's bucket: the agent learns
 *   at once to reuse a handle (or to send none), instead of seeing unrelated conversations share a
 *   limit without being told.
 * - A bad handle (not a string, empty, too long, other characters) is denied with the reason.
 * - The handle TTL is never shorter than a session-scoped window (schema.ts refuses such a file, and
 *   the default follows the longest window), so a handle cannot expire while its bucket still holds
 *   charges: an identity never has more than max_handles buckets with charges, plus its own.
 */

/** The `_meta` key a 2026-07-28 client puts its conversation or session handle under. */
export const SESSION_HANDLE_META_KEY = 'egress-triage/session';
export const SESSION_HANDLE_MAX_LENGTH = 128;
/** Letters, digits and `. _ : -`, starting with a letter or digit: UUIDs, ULIDs, "thread:42" fit. */
const HANDLE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/;

export const DEFAULT_MAX_HANDLES = 16;
/** The default handle TTL when no session-scoped window is longer. */
export const DEFAULT_HANDLE_TTL_SECONDS = 3600;

export interface ModernSessionSettings {
  /** Live handles per authenticated identity (`sessions.max_handles`). */
  maxHandles: number;
  /** A handle stays live this long after its last call (`sessions.handle_ttl`, in ms here). */
  handleTtlMs: number;
}

export type ModernSessionResult = { ok: true; key: string } | { ok: false; reason: string };
/** Synchronous when no state is needed (no handle, or a malformed one); a Promise when a handle is registered. */
export type ModernSessionResolver = (meta: Record<string, unknown> | undefined) => ModernSessionResult | Promise<ModernSessionResult>;

export type HandleParse = { ok: true; handle?: string } | { ok: false; reason: string };

/**
 * The handle a request's `_meta` declares: none (the key is absent, or there is no `_meta`), a valid
 * one, or a reason to deny the call. The reason names the value's type or length, never the value
 * itself, which the client controls.
 */
export function parseSessionHandle(meta: Record<string, unknown> | undefined): HandleParse {
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) return { ok: true };
  if (!Object.prototype.hasOwnProperty.call(meta, SESSION_HANDLE_META_KEY)) return { ok: true };
  const v = meta[SESSION_HANDLE_META_KEY];
  if (v === undefined) return { ok: true };
  const rule = `_meta["${SESSION_HANDLE_META_KEY}"] must be a string of 1 to ${SESSION_HANDLE_MAX_LENGTH} letters, digits, ".", "_", ":" or "-", starting with a letter or digit`;
  if (typeof v !== 'string') return { ok: false, reason: `${rule}; it is ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a${typeof v === 'object' ? 'n' : ''} ${typeof v}`}` };
  if (v.length === 0) return { ok: false, reason: `${rule}; it is empty` };
  if (v.length > SESSION_HANDLE_MAX_LENGTH) return { ok: false, reason: `${rule}; it has ${v.length} characters` };
  if (!HANDLE_PATTERN.test(v)) return { ok: false, reason: `${rule}; it has other characters` };
  return { ok: true, handle: v };
}

/**
 * The session key of an identity with a handle, or of the identity alone. JSON of a one- or
 * two-element array: distinct identities, or distinct handles, never give the same key, whatever
 * characters an identity contains.
 */
export function sessionKey(identity: string, handle?: string): string {
  return JSON.stringify(handle === undefined ? [identity] : [identity, handle]);
}

/** A policy file's `sessions` section with its defaults filled in. */
export function modernSessionSettings(f: Pick<PolicyFile, 'tools' | 'sessions'>): ModernSessionSettings {
  const ttlSeconds = f.sessions?.handle_ttl ?? Math.max(DEFAULT_HANDLE_TTL_SECONDS, longestSessionWindow(f)?.seconds ?? 0);
  return { maxHandles: f.sessions?.max_handles ?? DEFAULT_MAX_HANDLES, handleTtlMs: ttlSeconds * 1000 };
}

/** Why a new handle over the cap is denied: what the cap is, and what the agent can do. */
export function overCapReason(identity: string, s: ModernSessionSettings, r: Extract<HandleResult, { ok: false }>): string {
  const retry = Number.isFinite(r.retryAfterMs) ? `, or retry in ${Math.ceil(r.retryAfterMs / 1000)}s when the least recently used one has been idle for ${s.handleTtlMs / 1000}s` : '';
  return (
    `session handle refused: identity ${JSON.stringify(identity)} already holds ${r.live} live session handles ` +
    `(policy sessions.max_handles: ${s.maxHandles}); reuse one of them, or send no ${SESSION_HANDLE_META_KEY} handle to use the identity's own session${retry}`
  );
}

/**
 * The `modernSession` option of the policy proxy (src/gateway/proxy.ts) for one authenticated
 * identity: the `scope: session` key of a 2026-07-28 request, from its `_meta`, or a denial. `settings`
 * may be a function so a policy hot reload applies to the next call. Time comes from `now` when given
 * (tests), otherwise from the state backend (Redis: its own clock, shared by the replicas). A state
 * backend that cannot answer denies the call (fail closed).
 */
export function createModernSessionResolver(o: {
  identity: string;
  /**
   * Whose handles the cap counts, when not the identity alone: a tenant's server names the tenant too,
   * so two tenants' identities of one name, on one shared policy state, do not share a cap.
   */
  handleOwner?: string;
  state: PolicyStateBackend;
  settings: ModernSessionSettings | (() => ModernSessionSettings);
  now?: () => number;
}): ModernSessionResolver {
  const touch = async (handle: string): Promise<ModernSessionResult> => {
    const s = typeof o.settings === 'function' ? o.settings() : o.settings;
    let r: HandleResult;
    try {
      r = await o.state.sessionHandles.touch(o.handleOwner ?? o.identity, handle, { maxLive: s.maxHandles, ttlMs: s.handleTtlMs }, o.now?.());
    } catch (e) {
      return { ok: false, reason: `policy state error: ${(e as Error).message}` };
    }
    if (!r.ok) return { ok: false, reason: overCapReason(o.identity, s, r) };
    return { ok: true, key: sessionKey(o.identity, handle) };
  };
  // Without a handle (or with a malformed one) the answer needs no state, so it is given synchronously: the
  // proxy then decides the call in the same turn as a 2025-11-25 call, and a cancellation that follows it
  // finds the call decided, exactly as on 2025-11-25.
  return (meta) => {
    const parsed = parseSessionHandle(meta);
    if (!parsed.ok) return parsed;
    if (parsed.handle === undefined) return { ok: true, key: sessionKey(o.identity) };
    return touch(parsed.handle);
  };
}
