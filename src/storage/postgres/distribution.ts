/**
 * How each table of the PostgreSQL schema is placed on a Citus cluster, and why. docs/scale-out.md
 * shows the statements citusStatements() prints; a test keeps both equal and checks that every
 * table of the migrated schema is listed, and that every distributed table's keys lead with tenant_id.
 */
export interface TablePlacement {
  table: string;
  kind: 'distributed' | 'reference' | 'local';
  why: string;
}

const TENANT_FACT = 'a tenant\'s facts, keyed by tenant_id: sharded by tenant and co-located with the other tenant tables';

export const TABLE_PLACEMENT: TablePlacement[] = [
  { table: 'tenants', kind: 'reference', why: 'tiny, read by every query to turn a tenant name into its id, written once per tenant' },
  { table: 'detection_types', kind: 'reference', why: 'a fixed vocabulary of about a dozen names shared by all tenants' },
  { table: 'meta', kind: 'reference', why: 'a handful of store-wide settings' },
  { table: 'risky_destinations', kind: 'reference', why: 'the store-wide risky list (rules/risky-memory.ts): a few entries, read by every rules and analysis call, written when a config names a new one' },
  { table: 'risky_audit', kind: 'reference', why: 'who changed the store-wide risky list, and when: a row per entry remembered or forgotten, read by `risky audit`' },
  { table: 'jobs', kind: 'distributed', why: TENANT_FACT },
  // before runs, whose rows reference it: Citus distributes a referenced table first
  { table: 'expected_samples', kind: 'distributed', why: "per-tenant dictionary of runs' expected-endpoint samples, as endpoints" },
  { table: 'runs', kind: 'distributed', why: TENANT_FACT },
  { table: 'endpoints', kind: 'distributed', why: 'per-tenant dictionary written on the ingest hot path: a reference table would make every new value a write on every node' },
  { table: 'ips', kind: 'distributed', why: 'per-tenant dictionary, as endpoints' },
  { table: 'processes', kind: 'distributed', why: 'per-tenant dictionary, as endpoints' },
  { table: 'observations', kind: 'distributed', why: TENANT_FACT },
  { table: 'call_verdicts', kind: 'distributed', why: TENANT_FACT },
  { table: 'baseline', kind: 'distributed', why: TENANT_FACT },
  // `detections` is a view over these two (detection-groups.ts): it is not placed, its tables are
  { table: 'detection_rows', kind: 'distributed', why: TENANT_FACT },
  { table: 'detection_groups', kind: 'distributed', why: TENANT_FACT },
  { table: 'detection_rollup', kind: 'distributed', why: TENANT_FACT },
  { table: 'rollup_process_day', kind: 'distributed', why: TENANT_FACT },
  { table: 'rollup_process_endpoint', kind: 'distributed', why: TENANT_FACT },
  { table: 'rollup_process_job', kind: 'distributed', why: TENANT_FACT },
  { table: 'rules', kind: 'distributed', why: TENANT_FACT },
  { table: 'rule_audit', kind: 'distributed', why: TENANT_FACT },
  { table: 'ingest_sources', kind: 'distributed', why: TENANT_FACT },
  { table: 'suspected_impostors', kind: 'distributed', why: TENANT_FACT },
  { table: 'analysis_stamps', kind: 'distributed', why: "a tenant's change counter, bumped in the same transaction as the tenant's rows it covers" },
  {
    table: 'ingest_leases',
    kind: 'distributed',
    why: "co-located with the tenant's data, so the lease fence and the writes it guards are one single-shard transaction",
  },
  {
    table: 'policy_meta',
    kind: 'local',
    why: 'the gateway-wide argument-hash key: policy state belongs to no tenant, and a coordinator table needs no shard key',
  },
  { table: 'policy_approvals', kind: 'local', why: 'gateway-wide approvals, keyed by approval id (the tenant that held one is a plain column, no shard key); small, and never joined with tenant tables' },
  { table: 'policy_session_handles', kind: 'local', why: 'gateway-wide: which session handles each authenticated identity holds (no tenant); tiny, and locked per identity' },
  { table: 'policy_audit', kind: 'local', why: 'gateway-wide audit, one row per tool call: as a reference table every call would be a write on every node' },
  { table: 'schema_migrations', kind: 'local', why: "the coordinator's record of applied migrations; migrations run on the coordinator" },
];

/** The statements to run on the Citus coordinator after `egress-triage db migrate`, in order. */
export function citusStatements(): string {
  const ref = TABLE_PLACEMENT.filter((t) => t.kind === 'reference').map((t) => `SELECT create_reference_table('${t.table}');`);
  const dist = TABLE_PLACEMENT.filter((t) => t.kind === 'distributed').map((t, i) =>
    i === 0
      ? `SELECT create_distributed_table('${t.table}', 'tenant_id');`
      : `SELECT create_distributed_table('${t.table}', 'tenant_id', colocate_with => 'jobs');`,
  );
  return [...ref, ...dist].join('\n');
}
