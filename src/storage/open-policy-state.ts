import { isPostgresUrl } from './location.js';
import type { PolicyStateBackend } from './policy-state.js';
import { SqlitePolicyState } from './sqlite/policy-state.js';
import { PgPolicyState } from './postgres/policy-state.js';
import { RedisPolicyState } from '../state/redis/state.js';
import { parseRedisStateUrl } from '../state/redis/url.js';

// The policy state of the gateway and the policy commands: apart from open-store.ts, whose commands
// (ingest, analysis, rules) never need it.

export interface OpenPolicyStateOptions {
  /**
   * The store: a SQLite path or a postgres:// URL. It holds approvals (and counters, in this
   * process's memory) without --state, and always the audit.
   */
  dbPath: string;
  /** JSONL audit file; default: next to a SQLite file, none for PostgreSQL (the table only); `false`: none. */
  auditFile?: string | false;
  /** `redis://host:port[/db]`: counters and approvals shared by every replica. */
  stateUrl?: string;
  clock?: () => number;
  log?: (line: string) => void;
  /** The tenant of the server (`mcp`, `serve`): stamped on every audit record it writes. */
  tenant?: string;
}

/** Throws a readable message when `--state` is not a URL this build can use. */
export function checkStateUrl(url: string): void {
  parseRedisStateUrl(url);
}

export function openPolicyState(o: OpenPolicyStateOptions): PolicyStateBackend {
  if (o.stateUrl !== undefined) checkStateUrl(o.stateUrl);
  const store: PolicyStateBackend = isPostgresUrl(o.dbPath)
    ? new PgPolicyState({ url: o.dbPath, auditFile: o.auditFile, clock: o.clock, tenant: o.tenant })
    : new SqlitePolicyState({ dbPath: o.dbPath, auditFile: o.auditFile, clock: o.clock, tenant: o.tenant });
  if (o.stateUrl === undefined) return store;
  // Only the audit of the store is used; on PostgreSQL it needs the store's tables before the first record.
  const storeReady = store instanceof PgPolicyState ? () => store.ready() : undefined;
  return new RedisPolicyState({ url: o.stateUrl, audit: store.audit, auditReady: storeReady, closeAudit: () => store.close(), clock: o.clock, log: o.log });
}
