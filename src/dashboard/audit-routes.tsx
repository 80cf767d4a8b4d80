import { AUDIT_PAGE_SIZE, parseAuditFilter } from './audit-filter.js';
import { AuditPage } from './pages/audit.js';
import type { Route } from './routes.js';
import { page } from './replies.js';
import { auditScope } from './policy-tenants.js';

/** The audit page: the policy state's audit query (the one `egress-triage audit` uses), one page at a time. */
export const auditRoute: Route = {
  method: 'GET',
  path: /^\/audit\/?$/,
  permission: 'read',
  async handle({ store, ctx, url, tenant }) {
    const policy = store.policy;
    // on a store shared with other tenants, this tenant's records only (policy-tenants.ts)
    const scope = policy ? await auditScope({ store, tenant }) : { otherTenants: [] };
    const shown = scope.tenant !== undefined ? { tenant: scope.tenant, others: scope.otherTenants.length } : undefined;
    const parsed = parseAuditFilter(url.searchParams, Date.now());
    if (!parsed.ok) {
      return page(<AuditPage ctx={ctx} d={{ enabled: policy !== undefined, filter: parsed.filter, errors: parsed.errors, records: [], hasNext: false, decidedBy: {}, scope: shown }} />, 400);
    }
    const rows = policy ? await policy.audit.query({ ...parsed.query, ...(scope.tenant !== undefined ? { tenant: scope.tenant } : {}) }) : [];
    // the port answers oldest first; the page reads newest first
    const records = rows.reverse().slice(0, AUDIT_PAGE_SIZE);
    const ids = [...new Set(records.flatMap((r) => (r.approval_id ? [r.approval_id] : [])))];
    const decided = policy ? await Promise.all(ids.map((id) => policy.approvals.get(id))) : [];
    const decidedBy: Record<string, string> = {};
    for (const a of decided) if (a?.decided_by) decidedBy[a.id] = a.decided_by;
    return page(<AuditPage ctx={ctx} d={{ enabled: policy !== undefined, filter: parsed.filter, errors: {}, records, hasNext: rows.length > AUDIT_PAGE_SIZE, decidedBy, scope: shown }} />);
  },
};
