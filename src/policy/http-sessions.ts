import type { PolicyFile } from './schema.js';
import { modernSessionSettings } from './session-identity.js';

/**
 * How many 2025-11-25 HTTP sessions an identity may hold open on one gateway process, and when an
 * idle one is closed. Each session is a proxy, an upstream session or a child process (a command
 * upstream), and rate limits of `scope: session` count per session: unbounded, an agent with a valid
 * token could open sessions until the host ran out of processes or memory. The cap refuses the next
 * initialize instead of closing a session in use; idle ones go first, after `sessions.handle_ttl`
 * (at least an hour and never shorter than a session-scoped window, as for 2026-07-28 handles).
 */

/** The default cap: far above what one agent runs in parallel (tests open 21 sessions at once). */
export const DEFAULT_MAX_HTTP_SESSIONS = 64;

export interface HttpSessionSettings {
  maxOpen: number;
  idleMs: number;
}

export function httpSessionSettings(f: Pick<PolicyFile, 'tools' | 'sessions'>): HttpSessionSettings {
  return { maxOpen: f.sessions?.max_http_sessions ?? DEFAULT_MAX_HTTP_SESSIONS, idleMs: modernSessionSettings(f).handleTtlMs };
}

export interface OpenSession {
  id: string;
  identity: string;
  /** ms of its last request */
  lastUsed: number;
}

/**
 * What to do before `identity` opens one more session: the sessions (of any identity) idle for
 * `idleMs` or longer, to close; then whether the identity, without them, is still at its cap.
 */
export function admitHttpSession(
  open: readonly OpenSession[],
  identity: string,
  s: HttpSessionSettings,
  now: number,
  /** the identity's sessions being opened right now, not yet among `open`: a burst of initializes counts whole */
  opening = 0,
): { close: string[]; admit: true } | { close: string[]; admit: false; reason: string } {
  const close: string[] = [];
  let held = opening;
  for (const o of open) {
    if (now - o.lastUsed >= s.idleMs) close.push(o.id);
    else if (o.identity === identity) held++;
  }
  if (held < s.maxOpen) return { close, admit: true };
  return {
    close,
    admit: false,
    reason:
      `session refused: identity ${JSON.stringify(identity)} already holds ${held} open MCP sessions on this gateway ` +
      `(policy sessions.max_http_sessions: ${s.maxOpen}); end one (HTTP DELETE with its Mcp-Session-Id) or reuse it; ` +
      `a session idle for ${s.idleMs / 1000}s is closed`,
  };
}
