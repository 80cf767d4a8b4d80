import { isConfirmed, carriedFields } from './confirm.js';
import { ConfirmPage } from './pages/confirm.js';
import { MessagePage } from './pages/message.js';
import { ApprovalsPage, DecisionSummary } from './pages/approvals.js';
import type { Route } from './routes.js';
import { notFound, page } from './replies.js';
import { heldFor } from './policy-tenants.js';

/**
 * The approvals page and its decision. A decision is `approvals.decide()` on the very policy state the
 * running server holds its calls with (the CLI's and the HTTP API's path): the waiting call wakes at
 * once, and the approval records who decided, as `dashboard:<identity>`.
 */

/** Decisions shown under the pending calls. */
const RECENT = 20;

export const approvalsRoute: Route = {
  method: 'GET',
  path: /^\/approvals\/?$/,
  permission: 'read',
  async handle({ store, ctx, url, tenant }) {
    const approvals = store.policy?.approvals;
    const now = Date.now();
    // only this tenant's held calls: the policy state may be shared with other tenants' servers (one Redis)
    const [pending, all] = approvals
      ? await Promise.all([approvals.list({ status: 'pending', tenant }), approvals.list({ status: 'all', tenant })])
      : [[], []];
    const decidedId = url.searchParams.get('decided');
    const found = decidedId && approvals ? await approvals.get(decidedId) : undefined;
    const decided = found && heldFor(found, tenant) ? found : undefined;
    return page(
      <ApprovalsPage
        ctx={ctx}
        d={{
          enabled: approvals !== undefined,
          pending: [...pending].sort((a, b) => a.expires_at - b.expires_at),
          recent: all.filter((r) => r.status !== 'pending').slice(0, RECENT),
          now,
          canDecide: ctx.permissions.includes('approve'),
          notice: decided && decided.status !== 'pending' ? `${decided.tool} (${decided.id}): ${decided.status === 'consumed' ? 'approved, and the call ran' : decided.status}${decided.decided_by ? ` by ${decided.decided_by}` : ''}.` : undefined,
        }}
      />,
    );
  },
};

export const decideApprovalRoute: Route = {
  method: 'POST',
  path: /^\/approvals\/([^/]+)\/(approve|deny)$/,
  permission: 'approve',
  async handle({ params, form, store, ctx, session, tenant }) {
    const [id, verb] = params as [string, 'approve' | 'deny'];
    const approvals = store.policy?.approvals;
    if (!approvals) return notFound(ctx, 'No approvals here', 'No policy holds calls in this server, so there is nothing to decide.');
    const found = await approvals.get(id);
    // another tenant's held call (or a gateway's) is not this dashboard's to show or decide
    const row = found && heldFor(found, tenant) ? found : undefined;
    if (!row) return notFound(ctx, 'Approval not found', `There is no approval ${id} for tenant "${tenant}".`);
    const conflict = (status: string) =>
      page(
        <MessagePage ctx={ctx} title="Already decided">
          <p>
            Approval {id} ({row.tool}) is {status}, not pending: nothing was changed.
          </p>
        </MessagePage>,
        409,
      );
    if (row.status !== 'pending') return conflict(row.status);
    const f = form ?? new URLSearchParams();
    if (!isConfirmed(f)) {
      return page(
        <ConfirmPage
          ctx={ctx}
          d={{
            title: verb === 'approve' ? `Approve ${row.tool}?` : `Deny ${row.tool}?`,
            action: `/approvals/${encodeURIComponent(id)}/${verb}`,
            fields: carriedFields(f),
            confirmLabel: verb === 'approve' ? 'Approve and run the call' : 'Deny the call',
            cancelHref: '/approvals',
            danger: verb === 'approve',
          }}
        >
          <DecisionSummary row={row} verb={verb} now={Date.now()} />
        </ConfirmPage>,
      );
    }
    try {
      await approvals.decide(id, verb === 'approve' ? 'approved' : 'denied', `dashboard:${session.identity}`);
    } catch (e) {
      const m = (e as Error).message;
      // Decided elsewhere (CLI, API, elicitation) or expired between the two posts.
      const status = /, not pending$/.test(m) ? /is (\w+), not pending$/.exec(m)![1]! : undefined;
      if (status) return conflict(status);
      throw e;
    }
    return { kind: 'redirect', location: `/approvals?decided=${encodeURIComponent(id)}` };
  },
};
