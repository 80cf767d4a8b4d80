import type { Reply, RouteRequest } from './routes.js';
import { message } from './replies.js';

/**
 * Approvals and the policy audit are kept per store, not per tenant: their rows do not say which
 * tenant's agent made the call. A dashboard serves one tenant, so on a store that holds others it
 * cannot tell its tenant's held calls from theirs, and an approver of one tenant would read, and
 * approve, another's writes (found by review). Until the rows carry their tenant, the Approvals and
 * Audit pages and the decisions refuse there (fail closed); the store's administrator decides with
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
    `This store holds other tenants besides "${r.tenant}" (${shown}), and its approvals and policy audit do not record which tenant each call came from, ` +
      'so this dashboard cannot tell its own from theirs. Decide held calls with "egress-triage approvals list|approve|deny" on the store, or give each tenant a store of its own.',
  );
}
