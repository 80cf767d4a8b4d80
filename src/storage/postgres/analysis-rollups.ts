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
