import type { RouteRequest } from './routes.js';
import type { ApprovalRow } from '../storage/policy-state.js';

/**
 * True when the approval was held by this tenant's server. A dashboard shows and decides no other:
 * not another tenant's (their servers may share its Redis policy state, which no store check sees),
 * nor one with no tenant (a stand-alone gateway's, or one filed before tenants were recorded), which
 * the store's administrator decides with `egress-triage approvals`.
 */
export function heldFor(row: Pick<ApprovalRow, 'tenant'>, tenant: string): boolean {
  return row.tenant === tenant;
}

/**
 * The audit records a dashboard shows. Each record names the tenant whose server made the decision
 * (AuditRecord.tenant). On a store that holds no other tenant, the page shows the whole audit, as
 * before tenants were recorded. On one that does, it shows its own tenant's records only: not
 * another's, and not those with no tenant (a stand-alone gateway's, and those written before tenants
 * were recorded), which the store's administrator reads with `egress-triage audit`.
 */
export async function auditScope(r: Pick<RouteRequest, 'store' | 'tenant'>): Promise<{ tenant?: string; otherTenants: string[] }> {
  const others = await otherTenants(r);
  return others.length === 0 ? { otherTenants: [] } : { tenant: r.tenant, otherTenants: others };
}

async function otherTenants(r: Pick<RouteRequest, 'store' | 'tenant'>): Promise<string[]> {
  return (await r.store.detections.tenants()).filter((t) => t !== r.tenant);
}
