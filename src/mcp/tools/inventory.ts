import { z } from 'zod';
import { dashboardUrl } from '../../domain/dashboard.js';
import { parseDetectionFilter } from '../../domain/filter.js';
import { READ_ONLY, ToolInputError, cursorField, customerField, guard, ok, tenantOf, definition, type ToolContext } from '../context.js';
import { pageField, strictInput, walkToPage } from '../args.js';
import { fitText, followPolicy, mention, type TextPart } from '../mentions.js';

const REPOS_TEXT: TextPart[] = [
  'Per-repository inventory of an endpoint within one owner (organization): which repos called it, in how many runs and jobs, from which workflows and processes, and in how many jobs it is part of the learned baseline.',
  mention(
    'find_endpoint_calls_in_tenant',
    'Endpoint syntax as in find_endpoint_calls_in_tenant.',
    'The endpoint may be a domain (covers subdomains, any port), host:port, IP, CIDR, `*` glob or substring; an IP or CIDR also finds the calls that named a domain but connected to a matching address.',
  ),
  mention('list_tenant_github_orgs', 'For a tenant-wide sweep call list_tenant_github_orgs first, then this per owner.'),
  'Read-only.',
];

const indicatorKind = z.enum(['ip', 'cidr', 'domain', 'endpoint', 'glob', 'substring']).describe('How the indicator was interpreted');

const callItem = z.object({
  endpoint: z.string(),
  owner: z.string(),
  repo: z.string(),
  workflow: z.string(),
  job: z.string(),
  run_id: z.string(),
  run_attempt: z.number(),
  job_id: z.string().nullable(),
  process: z.string(),
  process_sha256: z.string().nullable(),
  process_path: z.string().nullable(),
  process_parent_chain: z
    .array(z.object({ name: z.string(), path: z.string().optional(), sha256: z.string().optional() }))
    .describe('Who started the process, nearest parent first. The same binary started by different parents is a separate row.'),
  blocked: z.boolean(),
  timestamp: z.string(),
  dashboard_url: z.string(),
});

/** owner / repo through the one filter parser: trimmed, "owner/name" split, conflicts refused. */
function scopeFilter(a: { owner?: string; repo?: string }): { owner?: string; repo?: string } {
  const f = parseDetectionFilter({ owner: a.owner, repo: a.repo }, { now: 0 });
  return { ...(f.owner !== undefined ? { owner: f.owner } : {}), ...(f.repo !== undefined ? { repo: f.repo } : {}) };
}

function onePageSource(a: { page?: number; cursor?: string | null }): number {
  if (a.cursor) throw new ToolInputError('`page` and `cursor` are two ways to choose a page: pass only one of them');
  return a.page!;
}

export function registerInventoryTools(ctx: ToolContext): void {
  const s = ctx.server;
  const inv = ctx.inventory;

  s.registerTool(
    'check_ioc_in_baseline',
    definition('check_ioc_in_baseline', () => ({
      title: 'Check an indicator of compromise against baselines and calls',
      description:
        "Check whether an indicator (domain, IP, CIDR, host:port, `*` glob or plain substring) appears in any job's learned baseline or in any recorded call of this tenant, optionally within one owner. A domain matches itself and its subdomains on any port; an IP or CIDR matches direct-IP endpoints, and also the calls and detections that named a domain but connected to a matching address (listed under that domain's endpoint; baselines are kept by endpoint, so those appear only under the domain). Returns baseline entries (in_baseline=true means the job treats it as normal!), per-repo call summaries and detection counts by status. Read-only.",
      inputSchema: strictInput({
        customer: customerField,
        owner: z.string().min(1).optional().describe('Restrict to one GitHub owner (organization); omit for the whole tenant.'),
        indicator: z
          .string()
          .min(1)
          .max(261)
          .describe('Indicator to look for: "webhook.site", "45.61.136.14", "100.64.0.0/10", "gist.githubusercontent.com:443", "*.oast.fun" or a substring such as "ngrok".'),
        limit: z.number().int().min(1).max(500).optional().describe('Max baseline entries and max call summaries returned, 1-500. Defaults to 100.'),
      }),
      outputSchema: z.object({
        tenant: z.string(),
        owner: z.string().nullable(),
        indicator: z.string(),
        kind: indicatorKind,
        found: z.boolean().describe('True when the indicator is in a baseline or was ever called'),
        in_any_baseline: z.boolean().describe('True when at least one job has it in its baseline (treated as normal)'),
        endpoints_truncated: z.boolean().describe('True when the indicator matched too many endpoints and results are partial; narrow it'),
        baseline_total: z.number(),
        baseline_matches: z.array(
          z.object({
            owner: z.string(), repo: z.string(), workflow: z.string(), job: z.string(), endpoint: z.string(),
            runs_seen: z.number(), in_baseline: z.boolean(), source: z.string(), first_seen: z.string(), last_seen: z.string(),
          }),
        ),
        calls_total: z.number(),
        calls: z.array(
          z.object({
            endpoint: z.string(), owner: z.string(), repo: z.string(), runs: z.number(), blocked_runs: z.number(),
            processes: z.array(z.string()), first_seen: z.string(), last_seen: z.string(),
          }),
        ),
        detections: z.object({ new: z.number(), suppressed: z.number(), resolved: z.number() }),
      }),
      annotations: READ_ONLY,
    })),
    guard('check_ioc_in_baseline', async (a: { customer?: string; owner?: string; indicator: string; limit?: number }) => {
      const tenant = tenantOf(ctx, a.customer);
      const { owner } = scopeFilter(a);
      const r = await inv.checkIocInBaseline(tenant, { indicator: a.indicator, owner, limit: a.limit ?? 100 });
      return ok({
        tenant,
        owner: owner ?? null,
        indicator: a.indicator,
        kind: r.kind,
        found: r.baseline_total > 0 || r.calls_total > 0,
        in_any_baseline: r.baseline.some((b) => b.in_baseline),
        endpoints_truncated: r.truncated,
        baseline_total: r.baseline_total,
        baseline_matches: r.baseline,
        calls_total: r.calls_total,
        calls: r.calls,
        detections: r.detections,
      });
    }),
  );

  s.registerTool(
    'find_endpoint_calls_in_tenant',
    definition('find_endpoint_calls_in_tenant', () => ({
      title: 'Find every run that called an endpoint',
      description:
        'Find every workflow-run observation of an endpoint across all owners of this tenant: one row per (run, endpoint, process variant, blocked or not), newest first, paged with `cursor`. A process variant is its name, path, sha256 and parent chain, all in the row: the same binary started by two different parents in one run is two rows, told apart by `process_parent_chain`. The endpoint may be a domain (covers subdomains, any port), host:port, IP, CIDR, `*` glob or substring; an IP or CIDR also finds the calls that named a domain but connected to a matching address. Use it to answer "did anyone in our tenant contact X?". Each row has a `dashboard_url`; show one link per row. Read-only.',
      inputSchema: strictInput({
        customer: customerField,
        endpoint: z.string().min(1).max(261).describe('Endpoint to search for, e.g. "webhook.site", "registry.npmjs.org:443", "8.8.8.8", "198.41.192.0/24".'),
        owner: z.string().min(1).optional().describe('Restrict to one GitHub owner; omit for the whole tenant.'),
        limit: z.number().int().min(1).max(500).optional().describe('Page size, 1-500. Defaults to 100.'),
        cursor: cursorField,
        page: pageField,
      }),
      outputSchema: z.object({
        tenant: z.string(),
        endpoint: z.string(),
        kind: indicatorKind,
        endpoints_truncated: z.boolean(),
        total_observations: z.number().describe('Observations across all pages'),
        distinct_runs: z.number(),
        count: z.number(),
        next_cursor: z.string().nullable(),
        observations: z.array(callItem),
      }),
      annotations: READ_ONLY,
    })),
    guard('find_endpoint_calls_in_tenant', async (a: { customer?: string; endpoint: string; owner?: string; limit?: number; cursor?: string | null; page?: number }) => {
      const tenant = tenantOf(ctx, a.customer);
      const { owner } = scopeFilter(a);
      const fetch = (cursor: string | null) => inv.findEndpointCalls(tenant, { endpoint: a.endpoint, owner, limit: a.limit ?? 100, cursor });
      const r = await (a.page !== undefined ? walkToPage(onePageSource(a), fetch) : fetch(a.cursor ?? null));
      const observations = r.calls.map((c) => ({ ...c, dashboard_url: dashboardUrl(ctx.dashboardUrl, c) }));
      return ok({
        tenant,
        endpoint: a.endpoint,
        kind: r.kind,
        endpoints_truncated: r.truncated,
        total_observations: r.total,
        distinct_runs: r.distinct_runs,
        count: observations.length,
        next_cursor: r.next_cursor,
        observations,
      });
    }),
  );

  const reposTool = s.registerTool(
    'find_repos_using_endpoint',
    definition('find_repos_using_endpoint', () => ({
      title: 'Find repositories of an owner that use an endpoint',
      description: fitText(REPOS_TEXT, undefined),
      inputSchema: strictInput({
        customer: customerField,
        owner: z.string().min(1).describe('GitHub owner (organization), e.g. "acme-corp".'),
        endpoint: z.string().min(1).max(261).describe('Endpoint to search for, e.g. "bun.sh:443", "registry.npmjs.org", "8.8.8.8".'),
      }),
      outputSchema: z.object({
        tenant: z.string(),
        owner: z.string(),
        endpoint: z.string(),
        kind: indicatorKind,
        endpoints_truncated: z.boolean(),
        repo_count: z.number(),
        repos: z.array(
          z.object({
            owner: z.string(), repo: z.string(), matched_endpoints: z.array(z.string()), runs: z.number(), jobs: z.number(),
            workflows: z.array(z.string()), processes: z.array(z.string()), in_baseline_jobs: z.number(),
            first_seen: z.string(), last_seen: z.string(), baseline_url: z.string(),
          }),
        ),
      }),
      annotations: READ_ONLY,
    })),
    guard('find_repos_using_endpoint', async (a: { customer?: string; owner: string; endpoint: string }) => {
      const tenant = tenantOf(ctx, a.customer);
      const r = await inv.findReposUsingEndpoint(tenant, { owner: scopeFilter(a).owner!, endpoint: a.endpoint });
      const repos = r.repos.map((x) => ({
        ...x,
        baseline_url: `${ctx.dashboardUrl}/github/${encodeURIComponent(x.owner)}/actions/baseline?tab=repositories&repository=${encodeURIComponent(x.repo)}`,
      }));
      return ok({ tenant, owner: a.owner, endpoint: a.endpoint, kind: r.kind, endpoints_truncated: r.truncated, repo_count: repos.length, repos });
    }),
  );
  followPolicy(reposTool, ctx, REPOS_TEXT);

  s.registerTool(
    'list_tenant_github_orgs',
    definition('list_tenant_github_orgs', () => ({
      title: 'List GitHub owners of the tenant',
      description:
        'List every GitHub owner (organization or user) with recorded CI jobs in this tenant, with repo, job and run counts and the last run time. Call it first for tenant-wide questions, then fan out per-owner tools. Each owner has a `dashboard_url`. Read-only.',
      inputSchema: strictInput({ customer: customerField }),
      outputSchema: z.object({
        tenant: z.string(),
        org_count: z.number(),
        orgs: z.array(
          z.object({ org: z.string(), repos: z.number(), jobs: z.number(), runs: z.number(), last_run: z.string().nullable(), dashboard_url: z.string() }),
        ),
      }),
      annotations: READ_ONLY,
    })),
    guard('list_tenant_github_orgs', async (a: { customer?: string }) => {
      const tenant = tenantOf(ctx, a.customer);
      const orgs = (await inv.listOrgs(tenant)).map((o) => ({
        org: o.owner,
        repos: o.repos,
        jobs: o.jobs,
        runs: o.runs,
        last_run: o.last_run,
        dashboard_url: `${ctx.dashboardUrl}/github/${encodeURIComponent(o.owner)}/actions/security-summary`,
      }));
      return ok({ tenant, org_count: orgs.length, orgs });
    }),
  );

  s.registerTool(
    'list_recent_workflow_runs',
    definition('list_recent_workflow_runs', () => ({
      title: 'List recent workflow runs',
      description:
        'List the most recent monitored job runs of an owner, optionally one repository, newest first and paged with `cursor`: workflow, job, run id, attempt, start/end, whether it was a baseline-learning run, and detection counts. Use it to find a run id when the user names a run loosely. Each run has a `dashboard_url`; show one link per run. Read-only.',
      inputSchema: strictInput({
        customer: customerField,
        owner: z.string().min(1).describe('GitHub owner (organization), e.g. "acme-corp".'),
        repo: z.string().min(1).optional().describe('Restrict to one repository of the owner, "name" or "owner/name" (the same owner), case-insensitive; omit for every repo of the owner.'),
        limit: z.number().int().min(1).max(200).optional().describe('Page size, 1-200. Defaults to 50.'),
        cursor: cursorField,
        page: pageField,
      }),
      outputSchema: z.object({
        tenant: z.string(),
        owner: z.string(),
        repo: z.string().nullable(),
        total_runs: z.number(),
        count: z.number(),
        next_cursor: z.string().nullable(),
        runs: z.array(
          z.object({
            owner: z.string(), repo: z.string(), workflow: z.string(), job: z.string(), run_id: z.string(), run_attempt: z.number(),
            job_id: z.string().nullable(), started_at: z.string(), ended_at: z.string(), completed: z.boolean(), learning: z.boolean(),
            detections: z.number(), new_detections: z.number(), dashboard_url: z.string(),
          }),
        ),
      }),
      annotations: READ_ONLY,
    })),
    guard('list_recent_workflow_runs', async (a: { customer?: string; owner: string; repo?: string; limit?: number; cursor?: string | null; page?: number }) => {
      const tenant = tenantOf(ctx, a.customer);
      const { owner, repo } = scopeFilter(a);
      const fetch = (cursor: string | null) => inv.listRecentRuns(tenant, { owner: owner!, repo, limit: a.limit ?? 50, cursor });
      const r = await (a.page !== undefined ? walkToPage(onePageSource(a), fetch) : fetch(a.cursor ?? null));
      const runs = r.runs.map((x) => ({ ...x, dashboard_url: dashboardUrl(ctx.dashboardUrl, x) }));
      return ok({ tenant, owner: owner!, repo: repo ?? null, total_runs: r.total, count: runs.length, next_cursor: r.next_cursor, runs });
    }),
  );
}
