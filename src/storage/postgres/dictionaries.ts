import type { PgClient } from './pool.js';
import type { ProcessVariant } from '../store.js';
import { processVariantKey } from '../ingest-port.js';
import { isIpLiteral, splitEndpoint } from '../../domain/endpoint.js';

/**
 * The unique key of a dictionary value, as SQL: the SHA-256 of the text's bytes. It must stay equal
 * to the expression of the unique indexes of migration 6 (long-keys-migration.ts, which says why it
 * is written this way), or lookups stop using them.
 */
export function valueKey(sql: string): string {
  return `sha256(decode(replace(${sql}, E'\\\\', E'\\\\\\\\'), 'escape'))`;
}

/**
 * Rows of `table` whose `col` equals one of the values in the text[] parameter `$n`: found through
 * the unique index on the value's key, then compared by value, so two values that shared a key could
 * never be taken for one another.
 */
export function byValue(table: string, col: string, n: number, tenantScoped = true): string {
  return `SELECT t.id, t.${col} AS v FROM unnest($${n}::text[]) AS u (v)
    JOIN ${table} t ON ${tenantScoped ? 't.tenant_id = $1 AND ' : ''}${valueKey(`t.${col}`)} = ${valueKey('u.v')} AND t.${col} = u.v`;
}

/** The lookup of an endpoint by its text, for the other repositories: `col` = `param`, through the index. */
export function endpointMatches(col: string, param: string): string {
  return `${valueKey(col)} = ${valueKey(param)} AND ${col} = ${param}`;
}

/** Expected-endpoint samples whose ids are remembered (cleared when full, as on SQLite). */
const SAMPLE_CACHE = 4_096;

/**
 * Get-or-create ids of a tenant's value dictionaries, a whole batch at a time: one INSERT ... ON
 * CONFLICT DO NOTHING and one SELECT per dictionary for the values not cached yet. Committed ids
 * never change; a rolled back transaction can hand out ids that vanish, so the owner calls reset().
 */
export class PgDictionaries {
  private endpoints = new Map<string, number>();
  private ips = new Map<string, number>();
  private processes = new Map<string, number>();
  private types = new Map<string, number>();
  private samples = new Map<string, number>();

  constructor(readonly tenantId: number) {}

  reset(): void {
    this.endpoints.clear();
    this.ips.clear();
    this.processes.clear();
    this.types.clear();
    this.samples.clear();
  }

  async endpointIds(c: PgClient, values: Iterable<string>): Promise<Map<string, number>> {
    const missing = [...new Set(values)].filter((v) => !this.endpoints.has(v));
    if (missing.length) {
      const parts = missing.map((e) => ({ e, ...splitEndpoint(e) }));
      await c.query(
        `INSERT INTO endpoints (tenant_id, endpoint, host, port, is_ip)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::int[], $5::boolean[]) ON CONFLICT DO NOTHING`,
        [this.tenantId, parts.map((p) => p.e), parts.map((p) => p.host), parts.map((p) => p.port), parts.map((p) => isIpLiteral(p.host))],
      );
      await this.collect(c, 'endpoint', byValue('endpoints', 'endpoint', 2), [this.tenantId, missing], missing, this.endpoints);
    }
    return this.endpoints;
  }

  /** ids by ip; a missing ip is 0, as in SQLite */
  async ipIds(c: PgClient, values: Iterable<string | null>): Promise<Map<string, number>> {
    const missing = [...new Set(values)].filter((v): v is string => !!v && !this.ips.has(v));
    if (missing.length) {
      await c.query('INSERT INTO ips (tenant_id, ip) SELECT $1, * FROM unnest($2::text[]) ON CONFLICT DO NOTHING', [this.tenantId, missing]);
      await this.collect(c, 'ip', byValue('ips', 'ip', 2), [this.tenantId, missing], missing, this.ips);
    }
    return this.ips;
  }

  ipId(ip: string | null): number {
    return ip ? this.ips.get(ip)! : 0;
  }

  async processIds(c: PgClient, values: Iterable<{ process: ProcessVariant; variantKey?: string }>): Promise<Map<string, number>> {
    const byKey = new Map<string, ProcessVariant>();
    for (const v of values) {
      const key = v.variantKey ?? processVariantKey(v.process);
      if (!this.processes.has(key)) byKey.set(key, v.process);
    }
    if (byKey.size) {
      const keys = [...byKey.keys()];
      const ps = [...byKey.values()];
      await c.query(
        `INSERT INTO processes (tenant_id, variant_key, name, norm_name, path, sha256, parent_chain)
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) ON CONFLICT DO NOTHING`,
        [this.tenantId, keys, ps.map((p) => p.name), ps.map((p) => p.normName), ps.map((p) => p.path), ps.map((p) => p.sha256), ps.map((p) => JSON.stringify(p.parentChain))],
      );
      await this.collect(c, 'process variant', byValue('processes', 'variant_key', 2), [this.tenantId, keys], keys, this.processes);
    }
    return this.processes;
  }

  /**
   * Ids of runs' expected-endpoint samples (their JSON text), stored once per tenant (migration 13).
   * The cache is bounded: a tenant's samples keep changing as its baselines grow.
   */
  async sampleIds(c: PgClient, texts: Iterable<string>): Promise<Map<string, number>> {
    const missing = [...new Set(texts)].filter((t) => !this.samples.has(t));
    if (missing.length) {
      if (this.samples.size + missing.length > SAMPLE_CACHE) this.samples.clear();
      await c.query('INSERT INTO expected_samples (tenant_id, sample) SELECT $1, * FROM unnest($2::text[]) ON CONFLICT DO NOTHING', [this.tenantId, missing]);
      await this.collect(c, 'expected sample', byValue('expected_samples', 'sample', 2), [this.tenantId, missing], missing, this.samples);
    }
    return this.samples;
  }

  async typeIds(c: PgClient, names: Iterable<string>): Promise<Map<string, number>> {
    const missing = [...new Set(names)].filter((n) => !this.types.has(n));
    if (missing.length) {
      await c.query('INSERT INTO detection_types (name) SELECT * FROM unnest($1::text[]) ON CONFLICT DO NOTHING', [missing]);
      await this.collect(c, 'detection type', byValue('detection_types', 'name', 1, false), [missing], missing, this.types);
    }
    return this.types;
  }

  /**
   * Caches the ids the lookup finds. Every value was inserted or already stored, so one that is not
   * found shares its key with a different stored value: the batch fails rather than file the value
   * under the other's id.
   */
  private async collect(c: PgClient, what: string, sql: string, params: unknown[], wanted: string[], into: Map<string, number>): Promise<void> {
    for (const r of (await c.query<{ id: number; v: string }>(sql, params)).rows) into.set(r.v, r.id);
    const lost = wanted.find((v) => !into.has(v));
    if (lost !== undefined) throw new Error(`the ${what} "${lost.slice(0, 80)}" has the same SHA-256 key as a different stored value; nothing of this batch was stored`);
  }
}
