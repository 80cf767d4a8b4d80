import type { IncomingMessage } from 'node:http';
import type { VNode } from 'preact';
import type { DashboardPermission } from '../http/grants.js';
import type { Session } from './session.js';
import { notFound, page } from './replies.js';
import type { PageContext } from './pages/context.js';
import type { DashboardStore } from './store.js';
import { RunPage } from './pages/run.js';
import { OverviewPage } from './pages/overview.js';
import { loadOverview } from './overview-data.js';
import { PROCESSES_ROUTES } from './processes-routes.js';
import { approvalsRoute, decideApprovalRoute } from './approval-routes.js';
import { auditRoute } from './audit-routes.js';
import { POLICY_ROUTES } from './policy-routes.js';
import { DETECTIONS_ROUTES } from './detections-routes.js';
import { BASELINE_ROUTES } from './baseline-routes.js';
import { RULES_ROUTES } from './rules-routes.js';

/**
 * The dashboard's pages: method, path pattern, the permission it needs, and a handler that reads the
 * store through its ports and hands plain data to a page (pages/*.tsx). One line per page in ROUTES.
 */

export interface RouteRequest {
  req: IncomingMessage;
  url: URL;
  /** path pattern groups, URL-decoded */
  params: string[];
  /** the parsed form of a POST (urlencoded), already CSRF-checked */
  form?: URLSearchParams;
  session: Session;
  ctx: PageContext;
  store: DashboardStore;
  tenant: string;
}

export type Reply =
  | { kind: 'page'; status: number; page: VNode }
  | { kind: 'redirect'; location: string }
  | { kind: 'raw'; status: number; contentType: string; body: string; headers?: Record<string, string> }
  /** a body written chunk by chunk as the consumer reads (an export of any size in flat memory) */
  | { kind: 'stream'; status: number; contentType: string; body: AsyncIterable<string>; headers?: Record<string, string> };

export interface Route {
  method: 'GET' | 'POST';
  path: RegExp;
  /** the permission the route needs, or every one of a list */
  permission: DashboardPermission | readonly DashboardPermission[];
  handle(r: RouteRequest): Promise<Reply>;
}


const runRoute: Route = {
  method: 'GET',
  path: /^\/github\/([^/]+)\/([^/]+)\/actions\/runs\/([^/]+)\/?$/,
  permission: 'read',
  async handle({ params, url, store, tenant, ctx }) {
    const [owner, repo, runId] = params as [string, string, string];
    const jobId = url.searchParams.get('jobId') || undefined;
    const run = await store.runCalls.runCalls(tenant, { owner, repo, runId, jobId });
    if (!run) {
      return notFound(
        ctx,
        'Run not found',
        `No run ${runId} of ${owner}/${repo}${jobId ? ` with GitHub job id ${jobId}` : ''} in tenant "${tenant}". ` +
          'It may not have been ingested yet, or the link names another tenant or store.',
      );
    }
    return page(<RunPage ctx={ctx} d={{ run, jobId }} />);
  },
};

const overviewRoute: Route = {
  method: 'GET',
  path: /^\/$/,
  permission: 'read',
  async handle({ store, tenant, ctx }) {
    return page(<OverviewPage ctx={ctx} d={await loadOverview(store, tenant)} />);
  },
};

export const ROUTES: readonly Route[] = [overviewRoute, runRoute, ...PROCESSES_ROUTES, approvalsRoute, decideApprovalRoute, auditRoute, ...POLICY_ROUTES, ...DETECTIONS_ROUTES, ...BASELINE_ROUTES, ...RULES_ROUTES];
