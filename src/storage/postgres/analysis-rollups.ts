/**
 * Migration 4: the coarse analysis rollups on PostgreSQL, as SQLite's (rollups.ts): per process
 * variant and (type, status, rule), the counts by day, by endpoint and by job. They are exact GROUP
 * BYs of detection_rollup, which drop the other dimensions and so hold far fewer rows: an
 * unfiltered analysis reads them instead of aggregating the fine rollup (bench/analysis.ts).
 *
 * Statement-level triggers on detection_rollup keep them in step, in the writer's own transaction:
 * every statement that adds to, moves or removes fine rollup rows (ingest today, rules tomorrow)
 * adds its net change per coarse key, one set-based upsert per table and statement, never a row
 * trigger. Counts that drop to zero are deleted, so a key present has a detection.
 */

const COARSE: [table: string, col: string, type: string][] = [
  ['rollup_process_day', 'day', 'integer'],
  ['rollup_process_endpoint', 'endpoint_id', 'bigint'],
  ['rollup_process_job', 'job_ref', 'bigint'],
];

const KEY = 'tenant_id, type_id, status, rule_id, process_id';

/** The net change per coarse key of one statement, from its transition tables (`+` new rows, `-` old rows). */
function delta(col: string, sources: ('new' | 'old')[]): string {
  const parts = sources.map((s) => `SELECT ${KEY}, ${col}, ${s === 'new' ? 'n' : '-n'} AS n FROM ${s}_rows`);
  return `SELECT ${KEY}, ${col}, sum(n) AS n FROM (${parts.join(' UNION ALL ')}) d GROUP BY ${KEY}, ${col} HAVING sum(n) <> 0 ORDER BY ${KEY}, ${col}`;
}

function applyDelta(sources: ('new' | 'old')[]): string {
  return COARSE.map(([table, col]) => {
    const upsert = `INSERT INTO ${table} (${KEY}, ${col}, n) ${delta(col, sources)}
    ON CONFLICT (${KEY}, ${col}) DO UPDATE SET n = ${table}.n + excluded.n;`;
    if (!sources.includes('old')) return upsert;
    // only a statement that took detections away can leave a zero count
    return `${upsert}
  DELETE FROM ${table} r USING (SELECT DISTINCT ${KEY}, ${col} FROM old_rows) k
    WHERE r.n = 0 AND (r.tenant_id, r.type_id, r.status, r.rule_id, r.process_id, r.${col}) = (k.tenant_id, k.type_id, k.status, k.rule_id, k.process_id, k.${col});`;
  }).join('\n  ');
}

function trigger(event: 'INSERT' | 'UPDATE' | 'DELETE', sources: ('new' | 'old')[]): string {
  const fn = `coarse_rollups_after_${event.toLowerCase()}`;
  const referencing = sources.map((s) => `${s.toUpperCase()} TABLE AS ${s}_rows`).join(' ');
  return `CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  ${applyDelta(sources)}
  RETURN NULL;
END $$;
CREATE TRIGGER detection_rollup_coarse_${event.toLowerCase()} AFTER ${event} ON detection_rollup
  REFERENCING ${referencing} FOR EACH STATEMENT EXECUTE FUNCTION ${fn}();`;
}

export const COARSE_ROLLUPS_MIGRATION = `
${COARSE.map(
  ([table, col, type]) => `CREATE TABLE ${table} (
  tenant_id bigint NOT NULL,
  type_id integer NOT NULL,
  status smallint NOT NULL,
  rule_id bigint NOT NULL,
  process_id bigint NOT NULL,
  ${col} ${type} NOT NULL,
  n bigint NOT NULL,
  -- process first: the analysis reads one variant's rows (coarseBreakdown)
  PRIMARY KEY (tenant_id, process_id, type_id, status, rule_id, ${col})
);
INSERT INTO ${table} (${KEY}, ${col}, n)
  SELECT ${KEY}, ${col}, sum(n) FROM detection_rollup GROUP BY ${KEY}, ${col} HAVING sum(n) <> 0;`,
).join('\n')}
${trigger('INSERT', ['new'])}
${trigger('UPDATE', ['new', 'old'])}
${trigger('DELETE', ['old'])}
`;

/** The coarse tables, for the Citus placement list. */
export const COARSE_ROLLUP_TABLES = COARSE.map(([table]) => table);

/**
 * Migration 5's trigger functions, replacing migration 4's. Migration 4 deleted the coarse rows a
 * statement left at zero with a join of the whole table (filtered n = 0) against the statement's
 * distinct keys; the planner, seeing few zero counts in its statistics, ran it as a nested loop
 * that re-read the keys once per zero row (1.9 s for a 200,000-detection rule move). Now the upsert
 * itself returns the keys it left at zero, and exactly those rows are deleted through the primary
 * key. They need no second look at n: the upsert holds their row locks until commit.
 */
function applyDeltaByKeys(sources: ('new' | 'old')[]): string {
  return COARSE.map(([table, col], i) => {
    if (!sources.includes('old')) {
      return `INSERT INTO ${table} (${KEY}, ${col}, n) ${delta(col, sources)}
    ON CONFLICT (${KEY}, ${col}) DO UPDATE SET n = ${table}.n + excluded.n;`;
    }
    // only a statement that took detections away can leave a zero count
    return `WITH up AS (
    INSERT INTO ${table} (${KEY}, ${col}, n) ${delta(col, sources)}
    ON CONFLICT (${KEY}, ${col}) DO UPDATE SET n = ${table}.n + excluded.n
    RETURNING ${KEY}, ${col}, n)
  SELECT array_agg(tenant_id), array_agg(type_id), array_agg(status), array_agg(rule_id), array_agg(process_id), array_agg(${col})
    INTO z_tenant, z_type, z_status, z_rule, z_process, z_col${i} FROM up WHERE n = 0;
  IF z_tenant IS NOT NULL THEN
    DELETE FROM ${table} r USING unnest(z_tenant, z_type, z_status, z_rule, z_process, z_col${i}) AS k(tenant_id, type_id, status, rule_id, process_id, c)
      WHERE r.tenant_id = k.tenant_id AND r.process_id = k.process_id AND r.type_id = k.type_id AND r.status = k.status
        AND r.rule_id = k.rule_id AND r.${col} = k.c;
  END IF;`;
  }).join('\n  ');
}

function triggerFunction(event: 'INSERT' | 'UPDATE' | 'DELETE', sources: ('new' | 'old')[]): string {
  const declare = sources.includes('old')
    ? `DECLARE
  z_tenant bigint[]; z_type int[]; z_status smallint[]; z_rule bigint[]; z_process bigint[];
  ${COARSE.map(([, , type], i) => `z_col${i} ${type}[];`).join(' ')}
`
    : '';
  return `CREATE OR REPLACE FUNCTION coarse_rollups_after_${event.toLowerCase()}() RETURNS trigger LANGUAGE plpgsql AS $$
${declare}BEGIN
  ${applyDeltaByKeys(sources)}
  RETURN NULL;
END $$;`;
}

/** Migration 5's part: the same triggers, with functions that delete zero counts by key. */
export const COARSE_ROLLUP_ZERO_BY_KEY = [triggerFunction('INSERT', ['new']), triggerFunction('UPDATE', ['new', 'old']), triggerFunction('DELETE', ['old'])].join('\n');
