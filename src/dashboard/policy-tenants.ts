import type { Reply, RouteRequest } from './routes.js';
import type { ApprovalRow } from '../storage/policy-state.js';
import { message } from './replies.js';

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
 * The policy audit is kept per store, not per tenant: its rows do not say which tenant's agent made
 * the call. A dashboard serves one tenant, so on a store that holds others it cannot tell its
 * tenant's audited calls from theirs. Until the rows carry their tenant, the Audit page refuses
 * there (fail closed), and so do the Approvals page and its decisions (approvals record their
 * tenant, heldFor, but the page goes by the same check); the store's administrator decides with
 * `egress-triage approvals` on the store itself.
 */
export async function otherTenants(r: Pick<RouteRequest, 'store' | 'tenant'>): Promise<string[]> {
  return (await r.store.detections.tenants()).filter((t) => t !== r.tenant);
}

export async function refusedOnSharedStore(r: Pick<RouteRequest, 'store' | 'tenant' | 'ctx'>, title: string): Promise<Reply | null> {
  const others = await otherTenants(r);
  if (others.length === 0) return null;
  const shown = others.slice(0, 5).map((t) => `"${t}"`).join(', ') + (others.length > 5 ? `, and ${others.length - 5} more` : '');
  return message(
    r.ctx,
    409,
    title,
    `This store holds other tenants besides "${r.tenant}" (${shown}), and its policy audit does not record which tenant each call came from (nor do approvals filed before tenants were), ` +
      'so this dashboard cannot tell its own from theirs. Decide held calls with "egress-triage approvals list|approve|deny" on the store, or give each tenant a store of its own.',
  );
}
