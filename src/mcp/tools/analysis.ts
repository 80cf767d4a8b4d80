import { z } from 'zod';
import { DETECTION_TYPES, type DetectionStatus } from '../../domain/types.js';
import type { AnalyzeInput } from '../../analysis/types.js';
import { parseDetectionFilter } from '../../domain/filter.js';
import { READ_ONLY, ToolInputError, cursorField, customerField, guard, ok, tenantOf, timeField, definition, type ToolContext } from '../context.js';
import { pageField, strictInput } from '../args.js';
import { TOOL_ALIASES, TOOL_DEFAULTS } from '../tool-aliases.js';
import { analyze } from '../services.js';
import { fitText, followPolicy, mention, type TextPart } from '../mentions.js';
import { relativeClock } from '../../analysis/cursor.js';

const processSchema = z.looseObject({
  process: z.string(),
  count: z.number(),
  distinct_endpoints: z.number(),
  distinct_direct_ips: z.number(),
  is_vpn_process_candidate: z.boolean(),
  name_impersonation_suspected: z.boolean(),
  endpoints_sample: z.array(z.string()),
  direct_ips_sample: z.array(z.string()),
  risky_destinations_suppressed_by_process_rule: z.number(),
  risky_destination_samples: z.array(z.string()),
  suggested_rule: z
    .looseObject({
      detection_id: z.string(),
      conditions: z.record(z.string(), z.string()),
      severity_action: z.object({ type: z.string() }),
      rationale: z.string(),
      blocked_reason: z.string().nullable(),
    })
    .nullable(),
  sample_detections: z.array(z.looseObject({ id: z.string(), dashboard_url: z.string() })),
});

const ANALYZE_TEXT: TextPart[] = [
  'Group ALL open anomalous network-call detections of the tenant (not just one page) by calling process, largest first, paged with `cursor`. Per process: count, distinct endpoints and direct IPs, samples, VPN / mesh-daemon evidence (hash, parent chain, destinations; `is_vpn_process_candidate`), `name_impersonation_suspected` when a binary uses a VPN daemon name but its hash, path or parent chain do not fit, risky destinations a process-wide rule would silence, and a `suggested_rule` with its exact impact (`blocked_reason` non-null: do NOT propose it). Only propose process-wide rules for genuine VPN daemons; other processes need per-destination review.',
  mention('preview_suppression_rule', 'Next step: preview_suppression_rule with suggested_rule.conditions.'),
  'Sample detections carry `dashboard_url` links: show them. Read-only.',
];

export function registerAnalysisTools(ctx: ToolContext): void {
  const tool = ctx.server.registerTool(
    'analyze_anomalous_calls_by_process',
    definition('analyze_anomalous_calls_by_process', () => ({
      title: 'Analyse anomalous calls by calling process',
      description: fitText(ANALYZE_TEXT, undefined),
      inputSchema: strictInput(
        {
          customer: customerField,
          minCount: z.number().int().min(1).optional().describe('Hide processes with fewer than this many detections, except one that calls a risky destination or is a suspected impostor. Defaults to 2.'),
          detection_id: z
            .string()
            .optional()
            .describe(`Detection type to analyse (case-insensitive). Defaults to "${TOOL_DEFAULTS.analyze_anomalous_calls_by_process.detection_id}". One of: ${DETECTION_TYPES.join(', ')}.`),
          status: z.enum(['new', 'suppressed', 'resolved', 'all']).optional().describe("Detection status to analyse. Defaults to 'new'."),
          owner: z.string().min(1).optional().describe('Restrict to one GitHub owner (organization), case-insensitive.'),
          repo: z.string().min(1).optional().describe('Restrict to one repository, "name" or "owner/name", case-insensitive.'),
          workflow: z.string().min(1).optional().describe('Restrict to one workflow path, exact.'),
          job: z.string().min(1).optional().describe('Restrict to one job name, exact.'),
          since: timeField('Only detections at or after this time'),
          until: timeField('Only detections before this time'),
          limit: z.number().int().min(1).max(200).optional().describe('Process groups per page, 1-200. Defaults to 50.'),
          cursor: cursorField,
          page: pageField,
          samples: z.number().int().min(0).max(20).optional().describe('Sample detections per process, 0-20. Defaults to 5.'),
        },
        TOOL_ALIASES.analyze_anomalous_calls_by_process,
      ),
      outputSchema: z.object({
        tenant: z.string(),
        detection_id: z.string(),
        total_anomalies_scanned: z.number().describe('Every matching detection was scanned (no 200 cap)'),
        processes_returned: z.number(),
        min_count_filter: z.number(),
        note: z.string(),
        processes: z.array(processSchema),
        window: z.object({ since: z.string().nullable(), until: z.string().nullable() }),
        next_cursor: z.string().nullable().describe('Pass as `cursor` for the next page of processes'),
      }),
      annotations: READ_ONLY,
    })),
    guard(
      'analyze_anomalous_calls_by_process',
      async (a: {
        customer?: string;
        minCount?: number;
        detection_id?: string;
        status?: DetectionStatus | 'all';
        owner?: string;
        repo?: string;
        workflow?: string;
        job?: string;
        since?: string | number;
        until?: string | number;
        limit?: number;
        cursor?: string | null;
        page?: number;
        samples?: number;
      }) => {
        const tenant = tenantOf(ctx, a.customer);
        // a next page reads relative times ("24h") against the first page's clock: the same window
        const now = relativeClock(a.since, a.until, a.cursor);
        const filter = parseDetectionFilter(
          { types: a.detection_id, status: a.status, owner: a.owner, repo: a.repo, workflow: a.workflow, job: a.job, since: a.since, until: a.until },
          { names: { types: 'detection_id' }, defaultStatus: 'new', defaultTypes: [TOOL_DEFAULTS.analyze_anomalous_calls_by_process.detection_id], now: now ?? Date.now() },
        );
        if (a.page !== undefined && a.cursor) throw new ToolInputError('`page` and `cursor` are two ways to choose a page: pass only one of them');
        const input: AnalyzeInput = { tenant, filter, dashboardUrl: ctx.dashboardUrl };
        if (now !== undefined) input.now = now;
        if (ctx.riskyDestinations.length) input.extraRiskyDestinations = ctx.riskyDestinations;
        if (a.minCount !== undefined) input.minCount = a.minCount;
        if (a.limit !== undefined) input.limit = a.limit;
        if (a.cursor) input.cursor = a.cursor;
        if (a.page !== undefined) input.page = a.page;
        if (a.samples !== undefined) input.samples = a.samples;
        const r = await analyze(ctx.store, input, ctx.riskyDestinations);
        return ok(r as unknown as Record<string, unknown>);
      },
    ),
  );
  followPolicy(tool, ctx, ANALYZE_TEXT);
}
