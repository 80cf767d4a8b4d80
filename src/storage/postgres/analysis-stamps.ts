import type { PgClient, PgPool } from './pool.js';

/**
 * Migration 7: a change counter per tenant (analysis_stamps), the PostgreSQL commit stamp of the
 * rules port (rules-port.ts commitStamp). What a caller keeps under a stamp (the impostor verdict,
 * a suggested rule's exact impact) is computed from the fine rollup (detection_rollup: every
 * detection's type, status, rule, job, process and endpoint, as counts), the tenant's recorded
 * suspected impostors and the dictionary rows those rows point to, and from the observations the
 * verdict's same-file links read (migration 14) beside detection rows, which move with the rollup, and
 * runs, which only an observation or a detection makes matter. So every
 * statement that changes one of those rows bumps the counter of each tenant it touched, in its own
 * transaction, by a statement-level trigger: whichever code path writes (ingest, rule moves,
 * restores, a hand-written UPDATE), the bump commits with the change or not at all, and a reader
 * that took the stamp before its snapshot opened can never reuse an answer computed before a
 * change it sees.
 *
 * - detection_rollup and suspected_impostors: any INSERT, UPDATE or DELETE (transition tables name
 *   the tenants; detection_rollup's are already captured for the coarse-rollup triggers).
 * - observations (migration 14): the same. A binary seen at a flagged binary's path is linked from
 *   its observations alone (analysis/impostor-links.ts); ingest records the link in
 *   suspected_impostors only after the write that shows it, and an ingest stopped in between leaves
 *   it unrecorded until the tenant's next ingest. Without this, a warm cache kept the verdict from
 *   before that write, and an analysis offered a rule covering the linked impostor (rule writes
 *   compute their own verdict and refused it). Each write batch of an ingest so bumps its tenant
 *   once, as every SQLite commit moves SQLite's stamp.
 * - rules: any change, as SQLite's stamp moves with every commit (a rule's own row feeds no cached
 *   answer today; its detections move through detection_rollup).
 * - dictionaries (jobs, processes, endpoints, ips): UPDATE of a column a rule or the verdict tests
 *   (no writer does; PostgreSQL allows no transition table with a column list, so it bumps every
 *   tenant), and DELETE. Appending a value changes no answer until a rollup row points to it, and
 *   that rollup write bumps; ingest's per-batch jobs UPDATE (run counters) is left out by column.
 * - detection_types (store-wide) and TRUNCATE of any of them: every tenant.
 *
 * Writers of one tenant are already serialised before they reach these tables (the ingest lease
 * row and meta FOR SHARE; rule writes lock meta FOR UPDATE), so the counter row adds no wait.
 * Rows are never deleted: a stamp only grows.
 */

const TENANT_TABLES_ANY: string[] = ['detection_rollup', 'suspected_impostors', 'rules'];
const DICTIONARY_COLUMNS: [table: string, cols: string][] = [
  ['jobs', 'tenant_id, owner, repo, workflow, job'],
  ['processes', 'tenant_id, variant_key, name, norm_name, path, sha256, parent_chain'],
  ['endpoints', 'tenant_id, endpoint, host, port, is_ip'],
  ['ips', 'tenant_id, ip'],
];

/** Bumps the tenants of `tenants` (a query of tenant ids), in tenant order so two statements lock alike. */
function bump(tenants: string): string {
  return `INSERT INTO analysis_stamps AS s (tenant_id, stamp)
    SELECT tenant_id, 1 FROM (${tenants}) t GROUP BY tenant_id ORDER BY tenant_id
    ON CONFLICT (tenant_id) DO UPDATE SET stamp = s.stamp + 1;`;
}

const EVERY_TENANT = bump('SELECT tenant_id FROM tenants');

function fn(name: string, body: string): string {
  return `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  ${body}
  RETURN NULL;
END $$;`;
}

function triggersOn(table: string, changes: string): string {
  const t = table;
  return `CREATE TRIGGER ${t}_stamp_insert AFTER INSERT ON ${t} REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_stamp_new();
CREATE TRIGGER ${t}_stamp_update AFTER UPDATE${changes} ON ${t} REFERENCING NEW TABLE AS new_rows OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_stamp_both();
CREATE TRIGGER ${t}_stamp_delete AFTER DELETE ON ${t} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_stamp_old();
CREATE TRIGGER ${t}_stamp_truncate AFTER TRUNCATE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION analysis_stamp_all();`;
}

export const ANALYSIS_STAMPS_MIGRATION = `
CREATE TABLE analysis_stamps (tenant_id bigint PRIMARY KEY REFERENCES tenants (tenant_id), stamp bigint NOT NULL);
-- a tenant with data from before this migration starts at 1, so its first stamp differs from "no row" (0)
INSERT INTO analysis_stamps (tenant_id, stamp) SELECT tenant_id, 1 FROM tenants;
${fn('analysis_stamp_new', bump('SELECT tenant_id FROM new_rows'))}
${fn('analysis_stamp_old', bump('SELECT tenant_id FROM old_rows'))}
${fn('analysis_stamp_both', bump('SELECT tenant_id FROM new_rows UNION ALL SELECT tenant_id FROM old_rows'))}
${fn('analysis_stamp_all', EVERY_TENANT)}
${TENANT_TABLES_ANY.map((t) => triggersOn(t, '')).join('\n')}
${DICTIONARY_COLUMNS.map(([t, cols]) =>
  `CREATE TRIGGER ${t}_stamp_update AFTER UPDATE OF ${cols} ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION analysis_stamp_all();
CREATE TRIGGER ${t}_stamp_delete AFTER DELETE ON ${t} REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION analysis_stamp_old();
CREATE TRIGGER ${t}_stamp_truncate AFTER TRUNCATE ON ${t} FOR EACH STATEMENT EXECUTE FUNCTION analysis_stamp_all();`).join('\n')}
CREATE TRIGGER detection_types_stamp_change AFTER UPDATE OR DELETE ON detection_types FOR EACH STATEMENT EXECUTE FUNCTION analysis_stamp_all();
CREATE TRIGGER detection_types_stamp_truncate AFTER TRUNCATE ON detection_types FOR EACH STATEMENT EXECUTE FUNCTION analysis_stamp_all();
`;

/** Migration 14: observations bump their tenants' counters, as the tables of migration 7 do. */
export const OBSERVATION_STAMPS_MIGRATION = triggersOn('observations', '');

/** The tenant's change counter as committed (0 before its first change). */
export async function tenantStamp(db: PgPool | PgClient, tenantId: number): Promise<number> {
  const r = await db.query<{ stamp: string }>('SELECT stamp FROM analysis_stamps WHERE tenant_id = $1', [tenantId]);
  return r.rows[0] ? Number(r.rows[0].stamp) : 0;
}
