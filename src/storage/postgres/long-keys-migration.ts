/**
 * Unique keys on values of any length. A btree index row holds at most about 2.7 kB (after
 * compression), so a unique key on the text itself made one record with a longer endpoint, process,
 * IP, detection type or external id fail its whole ingest batch, where SQLite stores it. Each such
 * key becomes a unique index on the SHA-256 of the text, tenant_id still leading:
 *
 * - SHA-256, not md5: md5 collisions can be made on purpose, and telemetry is attacker-influenced
 *   text. A collision could not merge two values silently anyway (the dictionary lookups compare
 *   the value itself, dictionaries.ts), but it would make the batch holding the second value fail.
 * - The hash is of the text's own bytes. convert_to() and textsend() are only STABLE, which an index
 *   expression may not be, so the bytes come from decode(..., 'escape') with every backslash
 *   doubled first: immutable builtins, no function of our own for Citus to propagate.
 * - INSERT ... ON CONFLICT DO NOTHING without a target takes these indexes as arbiters, as it took
 *   the constraints.
 * - The non-unique lookups by host and by process name cannot stay btrees either; they become hash
 *   indexes, which hold only a hash code and serve `host = $1` and `norm_name = ANY($1)` as written.
 *
 * The key expression must stay equal to valueKey() in dictionaries.ts, or lookups stop using these
 * indexes (test/storage/postgres/long-values.test.ts checks the plans).
 */
const key = (col: string) => `sha256(decode(replace(${col}, E'\\\\', E'\\\\\\\\'), 'escape'))`;

export const LONG_KEYS_MIGRATION = `
CREATE UNIQUE INDEX endpoints_by_value ON endpoints (tenant_id, (${key('endpoint')}));
ALTER TABLE endpoints DROP CONSTRAINT endpoints_tenant_id_endpoint_key;
DROP INDEX endpoints_by_host;
CREATE INDEX endpoints_by_host ON endpoints USING hash (host);

CREATE UNIQUE INDEX ips_by_value ON ips (tenant_id, (${key('ip')}));
ALTER TABLE ips DROP CONSTRAINT ips_tenant_id_ip_key;

CREATE UNIQUE INDEX processes_by_value ON processes (tenant_id, (${key('variant_key')}));
ALTER TABLE processes DROP CONSTRAINT processes_tenant_id_variant_key_key;
DROP INDEX processes_by_norm;
CREATE INDEX processes_by_norm ON processes USING hash (norm_name);

CREATE UNIQUE INDEX detection_types_by_value ON detection_types ((${key('name')}));
ALTER TABLE detection_types DROP CONSTRAINT detection_types_name_key;

-- most detections are the engine's own, without an external id: an empty key, never a hash's 32 bytes
-- (the stored rows are detection_rows since migration 5; the constraint kept its first name)
CREATE UNIQUE INDEX detections_by_key ON detection_rows (tenant_id, run_ref, type_id, endpoint_id, process_id, (CASE WHEN ext = '' THEN ''::bytea ELSE ${key('ext')} END));
ALTER TABLE detection_rows DROP CONSTRAINT detections_tenant_id_run_ref_type_id_endpoint_id_process_id_key;
`;
