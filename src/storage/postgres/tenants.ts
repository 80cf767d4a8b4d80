import type { PgClient, PgPool } from './pool.js';

/** The tenant's id, creating the tenant on first use (concurrent creators agree on one row). */
export async function ensureTenant(db: PgPool | PgClient, tenant: string): Promise<number> {
  const r = await db.query<{ tenant_id: number }>(
    `WITH ins AS (INSERT INTO tenants (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING tenant_id)
     SELECT tenant_id FROM ins UNION ALL SELECT tenant_id FROM tenants WHERE name = $1`,
    [tenant, Date.now()],
  );
  // Two first writers at once: the loser's INSERT sees the winner's row only after it commits.
  return r.rows[0]?.tenant_id ?? (await db.query<{ tenant_id: number }>('SELECT tenant_id FROM tenants WHERE name = $1', [tenant])).rows[0]!.tenant_id;
}
