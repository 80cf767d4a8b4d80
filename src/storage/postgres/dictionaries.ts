import type { PgClient } from './pool.js';
import type { ProcessVariant } from '../store.js';
import { processVariantKey } from '../ingest-port.js';
import { isIpLiteral, splitEndpoint } from '../../domain/endpoint.js';

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

  constructor(readonly tenantId: number) {}

  reset(): void {
    this.endpoints.clear();
    this.ips.clear();
    this.processes.clear();
    this.types.clear();
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
      const rows = await c.query<{ id: number; endpoint: string }>('SELECT id, endpoint FROM endpoints WHERE tenant_id = $1 AND endpoint = ANY($2::text[])', [this.tenantId, missing]);
      for (const r of rows.rows) this.endpoints.set(r.endpoint, r.id);
    }
    return this.endpoints;
  }

  /** ids by ip; a missing ip is 0, as in SQLite */
  async ipIds(c: PgClient, values: Iterable<string | null>): Promise<Map<string, number>> {
    const missing = [...new Set(values)].filter((v): v is string => !!v && !this.ips.has(v));
    if (missing.length) {
      await c.query('INSERT INTO ips (tenant_id, ip) SELECT $1, * FROM unnest($2::text[]) ON CONFLICT DO NOTHING', [this.tenantId, missing]);
      const rows = await c.query<{ id: number; ip: string }>('SELECT id, ip FROM ips WHERE tenant_id = $1 AND ip = ANY($2::text[])', [this.tenantId, missing]);
      for (const r of rows.rows) this.ips.set(r.ip, r.id);
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
      const rows = await c.query<{ id: number; variant_key: string }>('SELECT id, variant_key FROM processes WHERE tenant_id = $1 AND variant_key = ANY($2::text[])', [this.tenantId, keys]);
      for (const r of rows.rows) this.processes.set(r.variant_key, r.id);
    }
    return this.processes;
  }

  async typeIds(c: PgClient, names: Iterable<string>): Promise<Map<string, number>> {
    const types = this.types;
    const missing = [...new Set(names)].filter((n) => !types.has(n));
    if (missing.length) {
      await c.query('INSERT INTO detection_types (name) SELECT * FROM unnest($1::text[]) ON CONFLICT DO NOTHING', [missing]);
      const rows = await c.query<{ id: number; name: string }>('SELECT id, name FROM detection_types WHERE name = ANY($1::text[])', [missing]);
      for (const r of rows.rows) types.set(r.name, r.id);
    }
    return types;
  }
}
