import type { PgClient } from './pool.js';
import { COARSE_ROLLUP_ZERO_BY_KEY } from './analysis-rollups.js';
import { copyRows } from './copy-rows.js';

/**
 * Where a detection's status lives on PostgreSQL (migration 5): in its group, not in its row.
 *
 * Every status change is a set move: a rule create, restore or re-evaluation, and the impostor
 * release, each take ALL the detections of a key (type, job, process, endpoint, ip) that are in one
 * state (status, rule) and put them in another, because a rule's predicate and its guards test only
 * those columns (and no move is limited in time). So detections that share a key and a state at
 * some moment share every later state too. A group is such a set: its row in detection_groups holds
 * the key and the current state, and each detection points to its group (detection_rows.gid,
 * written once, at insert). A move is then an UPDATE of group rows, one per key moved, beside the
 * move of the fine rollup's rows (the same key by day): a rule create over 1M detections writes tens
 * of thousands of narrow rows, not a million wide ones with their six index entries each
 * (bench/rules.ts; docs/scale-out.md).
 *
 * - A key can have several groups in one state (a move into a state the key already holds does not
 *   merge them; that would rewrite detections). Ingest puts a new detection in the key's lowest group
 *   of its state, or opens one. Groups of a key that no stored detection points to are harmless: they
 *   change nothing when they move.
 * - `detections` is a view: the stored rows with the status and rule of their group. Readers see the
 *   columns they always saw; a query that does not ask for status or rule reads the rows alone
 *   (the LEFT JOIN on the group's primary key is removed by the planner).
 * - Ingest runs under the tenant's lease, and rule changes are serialised with it (rules_version),
 *   so finding or opening a group never races with another writer of the same tenant.
 * - No foreign key from detection_rows.gid: it would cost ingest an index probe per detection; the
 *   writers here are the only ones to set it, always to a group of the detection's own key.
 */
export const DETECTION_GROUPS_MIGRATION = `
CREATE TABLE detection_groups (
  tenant_id bigint NOT NULL,
  id bigserial NOT NULL,
  type_id integer NOT NULL,
  job_ref bigint NOT NULL,
  process_id bigint NOT NULL,
  endpoint_id bigint NOT NULL,
  ip_id bigint NOT NULL,
  status smallint NOT NULL,
  rule_id bigint NOT NULL,
  PRIMARY KEY (tenant_id, id)
) WITH (fillfactor = 50);
-- The state is in no index, and half of each page is left free: a move's UPDATE of status and rule
-- is then a HOT update (a new row version on the same page, no index entry): 8,400 groups moved in
-- 25 ms, against 168 ms with the state in the index (EXPLAIN ANALYZE, bench/rules.ts data, busy
-- machine). Ingest finds a key's groups by this index, then the one in its state.
CREATE INDEX detection_groups_by_key ON detection_groups (tenant_id, type_id, job_ref, process_id, endpoint_id, ip_id);
-- one group per (key, state) the store holds: the fine rollup lists them, by day
INSERT INTO detection_groups (tenant_id, type_id, job_ref, process_id, endpoint_id, ip_id, status, rule_id)
  SELECT DISTINCT tenant_id, type_id, job_ref, process_id, endpoint_id, ip_id, status, rule_id FROM detection_rollup
  ORDER BY tenant_id, type_id, job_ref, process_id, endpoint_id, ip_id, status, rule_id;
ALTER TABLE detections ADD COLUMN gid bigint;
UPDATE detections d SET gid = g.id FROM detection_groups g
  WHERE g.tenant_id = d.tenant_id AND g.type_id = d.type_id AND g.status = d.status AND g.rule_id = d.rule_id
    AND g.job_ref = d.job_ref AND g.process_id = d.process_id
    AND g.endpoint_id = d.endpoint_id AND g.ip_id = d.ip_id;
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM detections WHERE gid IS NULL) THEN
    RAISE EXCEPTION 'detections without a row in detection_rollup: the rollup is out of step, the store needs a repair before this migration';
  END IF;
END $$;
ALTER TABLE detections ALTER COLUMN gid SET NOT NULL;
DROP INDEX detections_by_rule;
ALTER TABLE detections DROP COLUMN status, DROP COLUMN rule_id;
ALTER TABLE detections RENAME TO detection_rows;
CREATE VIEW detections AS
  SELECT d.tenant_id, d.id, d.type_id, d.job_ref, d.run_ref, d.endpoint_id, d.ip_id, d.direct_ip, d.port, d.protocol,
         d.process_id, d.ts, g.status, g.rule_id, d.ext, d.gid
  FROM detection_rows d LEFT JOIN detection_groups g ON g.tenant_id = d.tenant_id AND g.id = d.gid;
${COARSE_ROLLUP_ZERO_BY_KEY}
`;

/** A group's key and state, as ingest has them for a detection. */
export interface GroupKey {
  typeId: number;
  jobRef: number;
  processId: number;
  endpointId: number;
  ipId: number;
  status: number;
  ruleRef: number;
}

/**
 * The group id of each distinct (key, state) given, in their order: the lowest group of that key and state, or a
 * new one. Keys of a job created by this transaction (`newJobs`) cannot have a group yet, so only
 * the others are looked up (one statement, an index probe per key). The missing ones get ids drawn
 * from the sequence and their rows are COPYed in. Runs in the ingest transaction, under the
 * tenant's lease, so no other writer opens a group of the tenant meanwhile.
 */
export async function groupIds(c: PgClient, tenantId: number, keys: readonly GroupKey[], newJobs: ReadonlySet<number>, intArray: (xs: readonly number[]) => string): Promise<number[]> {
  const out: number[] = new Array(keys.length).fill(0);
  const missing: number[] = [];
  const lookedAt: number[] = [];
  keys.forEach((k, i) => (newJobs.has(k.jobRef) ? missing : lookedAt).push(i));
  const looked = lookedAt.map((i) => keys[i]!);
  if (looked.length) {
    const same = ['type_id', 'status', 'rule_id', 'job_ref', 'process_id', 'endpoint_id', 'ip_id'].map((x) => `g.${x} = w.${x}`).join(' AND ');
    const r = await c.query<{ gid: string | null }>(
      `SELECT (SELECT min(g.id) FROM detection_groups g WHERE g.tenant_id = $1 AND ${same}) AS gid
       FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::smallint[], $8::bigint[])
         WITH ORDINALITY AS w(type_id, job_ref, process_id, endpoint_id, ip_id, status, rule_id, i)
       ORDER BY w.i`,
      [
        tenantId,
        ...[looked.map((k) => k.typeId), looked.map((k) => k.jobRef), looked.map((k) => k.processId), looked.map((k) => k.endpointId), looked.map((k) => k.ipId), looked.map((k) => k.status), looked.map((k) => k.ruleRef)].map(intArray),
      ],
    );
    lookedAt.forEach((at, i) => {
      const gid = r.rows[i]?.gid;
      if (gid == null) missing.push(at);
      else out[at] = Number(gid);
    });
  }
  if (missing.length) {
    // one row back, not one per id
    const drawn = await c.query<{ ids: string }>("SELECT string_agg(nextval('detection_groups_id_seq')::text, ',') AS ids FROM generate_series(1, $1)", [missing.length]);
    const ids = drawn.rows[0]!.ids.split(',').map(Number);
    if (ids.length !== missing.length) throw new Error(`detection groups: ${missing.length} ids asked, ${ids.length} drawn`);
    missing.forEach((at, i) => (out[at] = ids[i]!));
    await copyRows(
      c,
      'detection_groups (tenant_id, id, type_id, job_ref, process_id, endpoint_id, ip_id, status, rule_id)',
      missing.map((at, i) => {
        const k = keys[at]!;
        return [tenantId, ids[i]!, k.typeId, k.jobRef, k.processId, k.endpointId, k.ipId, k.status, k.ruleRef];
      }),
    );
  }
  return out;
}
