import type { Scope } from './schema.js';

/** Who a call is, for keying its rate-limit counters. */
export interface ScopeParties {
  /**
   * The `session` scope's key: the MCP session (2025-11-25), the connection on stdio, or on 2026-07-28
   * traffic the key from createModernSessionResolver (identity plus session handle).
   */
  session: string;
  /** The authenticated identity (`client` scope). */
  identity: string;
  /**
   * The registered upstream the call goes to (multi-upstream gateway). A gateway or built-in server
   * with one upstream leaves it out, and `upstream` then counts that one upstream's calls.
   */
  upstreamName?: string;
}

/**
 * The scope half of a counter key (the rule path is the other half: `${rule}\0${limitScopeKey(..)}`).
 * The prefixes keep the scopes apart (a session can never be named like an identity or an upstream);
 * the Redis counters read them to charge narrow scopes first and the shared ones last.
 */
export function limitScopeKey(scope: Scope, p: ScopeParties): string {
  switch (scope) {
    case 'session':
      return `s:${p.session}`;
    case 'client':
      return `c:${p.identity}`;
    case 'upstream':
      return `u:${p.upstreamName ?? ''}`;
    case 'global':
      return 'g';
  }
}
