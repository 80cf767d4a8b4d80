import { z } from 'zod';
import { dashboardUrl } from '../../domain/dashboard.js';
import { DETECTION_TYPES, DOMAIN_BLOCKED, NEW_OUTBOUND, type Detection, type DetectionStatus } from '../../domain/types.js';
import { parseDetectionFilter, type DetectionFilter } from '../../domain/filter.js';
import { READ_ONLY, ToolInputError, cursorField, customerField, guard, ok, tenantOf, timeField, definition, type ToolContext } from '../context.js';
import { pageField, strictInput } from '../args.js';
import { TOOL_ALIASES } from '../tool-aliases.js';
import { fitText, followPolicy, mention, type TextPart } from '../mentions.js';

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
  owner: z
    .string()
    .min(1)
    .optional()
    .describe('Restrict to one GitHub owner (organization or user), case-insensitive, e.g. "acme-corp". With tenantWide: true it is read as the tenant instead (StepSecurity semantics).'),
  tenantWide: z
    .boolean()
    .optional()
    .describe('StepSecurity MCP compatibility. true: whole-tenant scope, and `owner` (if given) must name this tenant; false: owner scope, `owner` required. Omit it to scope by `owner` when given.'),
  repo: z.string().min(1).optional().describe('Restrict to one repository, "name" or "owner/name", case-insensitive, e.g. "api" or "acme-corp/api".'),
  workflow: z.string().min(1).optional().describe('Restrict to one workflow path, exact, e.g. ".github/workflows/ci.yml".'),
  job: z.string().min(1).optional().describe('Restrict to one job name, exact, e.g. "deploy".'),
  run_id: z.string().min(1).optional().describe('Restrict to one workflow run id.'),
  process: z
    .string()
    .min(1)
    .optional()
    .describe('Restrict to one calling process; normalised like stored names (basename, ".exe" stripped, case-insensitive), e.g. "tailscaled".'),
  endpoint: z
    .string()
    .min(1)
    .optional()
    .describe('Restrict to one endpoint: "host:port", "[ipv6]:port", or a bare host or IP for any port, e.g. "webhook.site:443" or "webhook.site".'),
  since: timeField('Only detections at or after this time'),
  until: timeField('Only detections before this time'),
  limit: z.number().int().min(1).max(200).optional().describe('Page size, 1-200. Defaults to 50.'),
  cursor: cursorField,
  page: pageField,
};

type FilterArgs = {
  customer?: string;
  status?: DetectionStatus | 'all';
  owner?: string;
  tenantWide?: boolean;
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
  page?: number;
};

/** Tenant and owner scope from customer / owner / tenantWide (StepSecurity's list_detections semantics). */
function scopeOf(ctx: ToolContext, a: FilterArgs): { tenant: string; owner: string | undefined } {
  if (a.tenantWide === true) {
    // StepSecurity reads `owner` as the customer when tenantWide is set; here it must name this tenant.
    if (a.owner !== undefined && a.customer !== undefined && a.owner !== a.customer) {
      throw new ToolInputError('`tenantWide: true` reads `owner` as the tenant, and it disagrees with `customer`: pass only one of them');
    }
    return { tenant: tenantOf(ctx, a.owner ?? a.customer), owner: undefined };
  }
  if (a.tenantWide === false && a.owner === undefined) throw new ToolInputError('`tenantWide: false` asks for owner scope: pass `owner` as well, or omit tenantWide');
  return { tenant: tenantOf(ctx, a.customer), owner: a.owner };
}

/** Parses the filter arguments with the one filter parser (domain/filter.ts); errors name the argument. */
export function toolFilter(a: FilterArgs & { detection_id?: string }, owner: string | undefined, fixedType: string | null, now: number): DetectionFilter {
  return parseDetectionFilter(
    {
      types: fixedType ?? a.detection_id,
      status: a.status,
      owner,
      repo: a.repo,
      workflow: a.workflow,
      job: a.job,
      runId: a.run_id,
      process: a.process,
      endpoint: a.endpoint,
      since: a.since,
      until: a.until,
    },
    { names: MCP_FILTER_NAMES, defaultStatus: 'new', now },
  );
}

export const MCP_FILTER_NAMES = { types: 'detection_id', runId: 'run_id' } as const;

async function listPage(ctx: ToolContext, fixedType: string | null, a: FilterArgs & { detection_id?: string }) {
  const { tenant, owner } = scopeOf(ctx, a);
  const f = toolFilter(a, owner, fixedType, Date.now());
  if (a.page !== undefined && a.cursor) throw new ToolInputError('`page` and `cursor` are two ways to choose a page: pass only one of them');
  const limit = a.limit ?? 50;
  const offset = a.page !== undefined ? (a.page - 1) * limit : 0;
  const page = await ctx.store.detections.list(tenant, f, limit, a.cursor ?? null, offset);
  if (offset > 0 && page.detections.length === 0) {
    throw new ToolInputError(`page ${a.page} is past the end: ${page.total} detection(s) make ${Math.ceil(page.total / limit)} page(s) of ${limit}`);
  }
  const detections = page.detections.map((d) => presentDetection(ctx, d));
  return ok({
    tenant,
    scope: f.owner ? `org:${f.owner}` : `tenant:${tenant}`,
    detection_id: f.types && f.types.length === 1 ? f.types[0]! : null,
    status: f.statuses ? f.statuses[0]! : 'all',
    count: detections.length,
    total: page.total,
    has_more: page.nextCursor !== null,
    next_cursor: page.nextCursor,
    detections,
  });
}


const LINK_NOTE =
  ' Every detection has a `dashboard_url`: when you present detections to the user, include a clickable link for each one, not just the first.';

const BLOCKED_TEXT: TextPart[] = [
  'List Domain-Blocked detections: calls the egress policy actively BLOCKED (the call was prevented; anomalous calls happened but were off-baseline). Newest first, paged with `cursor`,',
  mention('list_anomalous_network_calls', 'same filters as list_anomalous_network_calls.', 'filtered by status, owner, repo, workflow, job, run, process, endpoint and time.'),
  'Read-only.' + LINK_NOTE,
];

export function registerDetectionTools(ctx: ToolContext): void {
  const s = ctx.server;
  s.registerTool(
    'list_anomalous_network_calls',
    definition('list_anomalous_network_calls', () => ({
      title: 'List anomalous outbound network calls',
      description:
        "List New-Outbound-Network-Call detections: a CI job called an endpoint that is not in that job's learned baseline (a common sign of supply-chain exfiltration, or of VPN / mesh daemons). Newest first, paged with `cursor`; filters by status, owner, repo, workflow, job, run, process, endpoint and time. Read-only." +
        LINK_NOTE,
      inputSchema: strictInput(filterFields, TOOL_ALIASES.list_anomalous_network_calls),
      outputSchema: z.object(detectionPageSchema),
      annotations: READ_ONLY,
    })),
    guard('list_anomalous_network_calls', (a: FilterArgs) => listPage(ctx, NEW_OUTBOUND, a)),
  );
  const blockedTool = s.registerTool(
    'list_blocked_domain_calls',
    definition('list_blocked_domain_calls', () => ({
      title: 'List blocked domain calls',
      description: fitText(BLOCKED_TEXT, undefined),
      inputSchema: strictInput(filterFields, TOOL_ALIASES.list_blocked_domain_calls),
      outputSchema: z.object(detectionPageSchema),
      annotations: READ_ONLY,
    })),
    guard('list_blocked_domain_calls', (a: FilterArgs) => listPage(ctx, DOMAIN_BLOCKED, a)),
  );
  followPolicy(blockedTool, ctx, BLOCKED_TEXT);
  s.registerTool(
    'list_detections',
    definition('list_detections', () => ({
      title: 'List detections of any type',
      description:
        `List detections of any type (or one type via \`detection_id\`), newest first, paged with \`cursor\`. Types: ${DETECTION_TYPES.join(', ')}. Filters: status (default new), owner, repo, workflow, job, run_id, process, endpoint, since, until. Read-only.` +
        LINK_NOTE,
      inputSchema: strictInput(
        {
          detection_id: z
            .string()
            .optional()
            .describe(`Detection type to list (case-insensitive), e.g. "New-Outbound-Network-Call". Omit for all types. One of: ${DETECTION_TYPES.join(', ')}.`),
          ...filterFields,
        },
        TOOL_ALIASES.list_detections,
      ),
      outputSchema: z.object(detectionPageSchema),
      annotations: READ_ONLY,
    })),
    guard('list_detections', (a: FilterArgs & { detection_id?: string }) => listPage(ctx, null, a)),
  );
}
