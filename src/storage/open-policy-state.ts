/**
 * Picks the policy-state backend: the store (SQLite) by default, Redis with `--state redis://...`.
 * Like src/storage/open-store.ts for the store, this is the one place outside the backends that
 * imports them.
 */
import type { PolicyStateBackend } from './policy-state.js';
import { SqlitePolicyState } from './sqlite/policy-state.js';
import { RedisPolicyState, parseRedisStateUrl } from '../state/redis/state.js';

export interface OpenPolicyStateOptions {
  /** The store: approvals and counters without --state, and always the audit. */
  dbPath: string;
  auditFile?: string | false;
  /** `redis://host:port[/db]`: counters and approvals shared by every replica. */
  stateUrl?: string;
  clock?: () => number;
  log?: (line: string) => void;
}

/** Throws a readable message when `--state` is not a URL this build can use. */
export function checkStateUrl(url: string): void {
  parseRedisStateUrl(url);
}

export function openPolicyState(o: OpenPolicyStateOptions): PolicyStateBackend {
  if (o.stateUrl !== undefined) checkStateUrl(o.stateUrl);
  const store = new SqlitePolicyState({ dbPath: o.dbPath, auditFile: o.auditFile, clock: o.clock });
  if (o.stateUrl === undefined) return store;
  return new RedisPolicyState({ url: o.stateUrl, audit: store.audit, closeAudit: () => store.close(), clock: o.clock, log: o.log });
}
