import { z } from 'zod';
import { dashboardUrl } from '../../domain/dashboard.js';
import { DETECTION_TYPES, DOMAIN_BLOCKED, NEW_OUTBOUND, type Detection, type DetectionStatus } from '../../domain/types.js';
import type { DetectionFilter } from '../../storage/store.js';
import { READ_ONLY, ToolInputError, cursorField, customerField, guard, ok, parseTime, tenantOf, timeField, type ToolContext } from '../context.js';

/** A detection as returned by every list tool: the stored detection plus StepSecurity's compact aliases. */
export function presentDetection(ctx: ToolContext, d: Detection) {
  return {
    ...d,
    workflow: d.workflow_path,
    process: d.tool.name,
    process_sha256: d.tool.sha256,
    direct_ip: d.direct_ip_address,
    resolved: d.is_resolved,
    suppressed: d.is_suppressed,
    dashboard_url: dashboardUrl(ctx.dashboardUrl, d),
  };
}

export const detectionItemSchema = z
  .looseObject({
    id: z.string(),
    detection_id: z.string(),
    owner: z.string(),
    repo: z.string(),
    workflow: z.string(),
    job: z.string(),
    run_id: z.string(),
    timestamp: z.string(),
    endpoint: z.string(),
    process: z.string(),
    direct_ip: z.string().nullable(),
    status: z.enum(['new', 'suppressed', 'resolved']),
    suppress_rule_id: z.string().nullable(),
    dashboard_url: z.string(),
  })
  .describe('One detection; extra StepSecurity-compatible fields (tool, workflow_path, job_id, ...) are included.');

export const detectionPageSchema = {
  tenant: z.string().describe('Tenant the detections belong to'),
  scope: z.string().describe('"tenant:<name>" or "org:<owner>"'),
  detection_id: z.string().nullable().describe('Detection type filter, null for all types'),
  status: z.string().describe('Status filter that was applied'),
  count: z.number().describe('Detections on this page'),
  total: z.number().describe('Detections matching the filters across all pages'),
  has_more: z.boolean().describe('True when next_cursor fetches more'),
  next_cursor: z.string().nullable().describe('Pass as `cursor` to get the next page'),
  detections: z.array(detectionItemSchema),
};

const filterFields = {
  customer: customerField,
  status: z
    .enum(['new', 'suppressed', 'resolved', 'all'])
    .optional()
    .describe("Detection status filter. Defaults to 'new' (open detections); 'all' returns every status."),
  owner: z.string().min(1).optional().describe('Restrict to one GitHub owner (organization or user), e.g. "acme-corp".'),
  orgScope: z.string().min(1).optional().describe('Alias of `owner` (StepSecurity MCP compatibility).'),
  repo: z.string().min(1).optional().describe('Restrict to one repository name (without owner), e.g. "api".'),
  workflow: z.string().min(1).optional().describe('Restrict to one workflow path, e.g. ".github/workflows/ci.yml".'),
  job: z.string().min(1).optional().describe('Restrict to one job name, e.g. "deploy".'),
  run_id: z.string().min(1).optional().describe('Restrict to one workflow run id.'),
  process: z.string().min(1).optional().describe('Restrict to one calling process (basename, case-insensitive), e.g. "tailscaled".'),
  endpoint: z.string().min(1).optional().describe('Restrict to one exact endpoint "host:port" or "ip:port", e.g. "webhook.site:443".'),
  since: timeField('Only detections at or after this time'),
  until: timeField('Only detections before this time'),
  limit: z.number().int().min(1).max(200).optional().describe('Page size, 1-200. Defaults to 50.'),
  cursor: cursorField,
};

type FilterArgs = {
  customer?: string;
  status?: DetectionStatus | 'all';
  owner?: string;
  orgScope?: string;
  repo?: string;
  workflow?: string;
  job?: string;
  run_id?: string;
  process?: string;
  endpoint?: string;
  since?: string | number;
  until?: string | number;
  limit?: number;
  cursor?: string | null;
};

async function listPage(ctx: ToolContext, types: string[] | null, a: FilterArgs) {
  const tenant = tenantOf(ctx, a.customer);
  if (a.owner && a.orgScope && a.owner !== a.orgScope) throw new ToolInputError('`owner` and `orgScope` disagree: pass only one of them');
  const owner = a.owner ?? a.orgScope;
  const status = a.status ?? 'new';
  const f: DetectionFilter = {};
  if (types) f.types = types;
  if (status !== 'all') f.statuses = [status];
  if (owner !== undefined) f.owner = owner;
  if (a.repo !== undefined) f.repo = a.repo;
  if (a.workflow !== undefined) f.workflow = a.workflow;
  if (a.job !== undefined) f.job = a.job;
  if (a.run_id !== undefined) f.runId = a.run_id;
  if (a.process !== undefined) f.process = a.process;
  if (a.endpoint !== undefined) f.endpoint = a.endpoint;
  const since = parseTime('since', a.since);
  const until = parseTime('until', a.until);
  if (since !== undefined) f.since = since;
  if (until !== undefined) f.until = until;
  if (since !== undefined && until !== undefined && since >= until) throw new ToolInputError('`since` must be earlier than `until`');
  const page = await ctx.store.detections.list(tenant, f, a.limit ?? 50, a.cursor ?? null);
  const detections = page.detections.map((d) => presentDetection(ctx, d));
  return ok({
    tenant,
    scope: owner ? `org:${owner}` : `tenant:${tenant}`,
    detection_id: types && types.length === 1 ? types[0]! : null,
    status,
    count: detections.length,
    total: page.total,
    has_more: page.nextCursor !== null,
    next_cursor: page.nextCursor,
    detections,
  });
}

const LINK_NOTE =
  ' Every detection has a `dashboard_url`: when you present detections to the user, include a clickable link for each one, not just the first.';

export function registerDetectionTools(ctx: ToolContext): void {
  const s = ctx.server;
  s.registerTool(
    'list_anomalous_network_calls',
    {
      title: 'List anomalous outbound network calls',
      description:
        "List New-Outbound-Network-Call detections: a CI job called an endpoint that is not in that job's learned baseline (a common sign of supply-chain exfiltration, or of VPN / mesh daemons). Newest first, paged with `cursor`; filters by status, owner, repo, workflow, job, run, process, endpoint and time. Read-only." +
        LINK_NOTE,
      inputSchema: filterFields,
      outputSchema: detectionPageSchema,
      annotations: READ_ONLY,
    },
    guard('list_anomalous_network_calls', (a: FilterArgs) => listPage(ctx, [NEW_OUTBOUND], a)),
  );
  s.registerTool(
    'list_blocked_domain_calls',
    {
      title: 'List blocked domain calls',
      description:
        'List Domain-Blocked detections: calls the egress policy actively BLOCKED (the call was prevented; anomalous calls happened but were off-baseline). Newest first, paged with `cursor`, same filters as list_anomalous_network_calls. Read-only.' +
        LINK_NOTE,
      inputSchema: filterFields,
      outputSchema: detectionPageSchema,
      annotations: READ_ONLY,
    },
    guard('list_blocked_domain_calls', (a: FilterArgs) => listPage(ctx, [DOMAIN_BLOCKED], a)),
  );
  s.registerTool(
    'list_detections',
    {
      title: 'List detections of any type',
      description:
        `List detections of any type (or one type via \`detection_id\`), newest first, paged with \`cursor\`. Types: ${DETECTION_TYPES.join(', ')}. Filters: status (default new), owner, repo, workflow, job, run_id, process, endpoint, since, until. Read-only.` +
        LINK_NOTE,
      inputSchema: {
        detection_id: z
          .string()
          .optional()
          .describe(`Detection type to list, e.g. "New-Outbound-Network-Call". Omit for all types. One of: ${DETECTION_TYPES.join(', ')}.`),
        ...filterFields,
      },
      outputSchema: detectionPageSchema,
      annotations: READ_ONLY,
    },
    guard('list_detections', (a: FilterArgs & { detection_id?: string }) => {
      let types: string[] | null = null;
      if (a.detection_id !== undefined && a.detection_id !== '') {
        const t = DETECTION_TYPES.find((x) => x.toLowerCase() === a.detection_id!.toLowerCase());
        if (!t) throw new ToolInputError(`unknown detection_id "${a.detection_id}": use one of ${DETECTION_TYPES.join(', ')}, or omit it for all types`);
        types = [t];
      }
      return listPage(ctx, types, a);
    }),
  );
}
