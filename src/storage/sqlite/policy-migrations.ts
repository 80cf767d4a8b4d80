import type { Migration } from './db.js';

// The policy state's schema, apart from the state itself: the store's schema check (schema.ts) reads
// it on every open, and must not load the approvals, audit and limiter code with it.

/** Policy-layer tables. Versions 100-199 are reserved for the policy state (policy-state.ts). */
export const POLICY_MIGRATIONS: Migration[] = [
  {
    version: 100,
    name: 'policy_state',
    up: `
      CREATE TABLE policy_meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
      CREATE TABLE policy_approvals (
        id TEXT PRIMARY KEY,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('pending','approved','denied','expired','consumed')),
        session TEXT NOT NULL,
        identity TEXT NOT NULL,
        tool TEXT NOT NULL,
        args_hash TEXT NOT NULL,
        args_preview TEXT NOT NULL,
        rule TEXT NOT NULL,
        decided_at INTEGER,
        decided_by TEXT,
        reason TEXT
      );
      CREATE INDEX policy_approvals_binding ON policy_approvals(session, tool, args_hash, status);
      CREATE INDEX policy_approvals_status ON policy_approvals(status, expires_at);
      CREATE TABLE policy_audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        ts TEXT NOT NULL,
        session TEXT NOT NULL,
        identity TEXT NOT NULL,
        tool TEXT NOT NULL,
        args_hash TEXT NOT NULL,
        args TEXT,
        decision TEXT NOT NULL,
        rule TEXT NOT NULL,
        reason TEXT,
        latency_ms REAL NOT NULL,
        upstream TEXT NOT NULL,
        policy_hash TEXT,
        approval_id TEXT
      );
      CREATE INDEX policy_audit_ts ON policy_audit(ts);
      CREATE INDEX policy_audit_tool ON policy_audit(tool, ts);
    `,
  },
  {
    version: 101,
    name: 'policy_audit_upstream_name',
    // The multi-upstream gateway records which registered upstream each call was for.
    up: `ALTER TABLE policy_audit ADD COLUMN upstream_name TEXT;`,
  },
  {
    version: 102,
    name: 'policy_session_handles',
    // 2026-07-28 session handles per authenticated identity: the cap on live handles (session-identity.ts).
    up: `
      CREATE TABLE policy_session_handles (
        identity TEXT NOT NULL,
        handle TEXT NOT NULL,
        last_used INTEGER NOT NULL,
        PRIMARY KEY (identity, handle)
      ) WITHOUT ROWID;
      CREATE INDEX policy_session_handles_last_used ON policy_session_handles(last_used);
    `,
  },
  {
    version: 103,
    name: 'policy_approvals_upstream_name',
    // The multi-upstream gateway records (and binds) which registered upstream a held call is for.
    // Rows filed before stay NULL: a single upstream.
    up: `ALTER TABLE policy_approvals ADD COLUMN upstream_name TEXT;`,
  },
  {
    version: 104,
    name: 'policy_audit_previous_policy_hash',
    // A policy_change record (the policy in force was replaced: from the dashboard, or a file reload)
    // carries the hash it replaced besides the new one (policy_hash).
    up: `ALTER TABLE policy_audit ADD COLUMN previous_policy_hash TEXT;`,
  },
  {
    version: 105,
    name: 'policy_approvals_tenant',
    // The tenant whose server held the call (ApprovalRow.tenant). Rows filed before stay NULL, as do a
    // stand-alone gateway's: no dashboard lists them.
    up: `ALTER TABLE policy_approvals ADD COLUMN tenant TEXT;`,
  },
  {
    version: 106,
    name: 'policy_audit_tenant',
    // The tenant whose server made the decision (AuditRecord.tenant): a dashboard on a store that
    // holds other tenants shows its own tenant's records. Rows written before stay NULL, as do a
    // stand-alone gateway's: no such dashboard shows them.
    up: `
      ALTER TABLE policy_audit ADD COLUMN tenant TEXT;
      CREATE INDEX policy_audit_tenant ON policy_audit(tenant, seq);
    `,
  },
];

/** Every table POLICY_MIGRATIONS leave (refuseDamagedStore; kept true by test/storage/damaged-store.test.ts). */
export const POLICY_TABLES: readonly string[] = ['policy_approvals', 'policy_audit', 'policy_meta', 'policy_session_handles'];
