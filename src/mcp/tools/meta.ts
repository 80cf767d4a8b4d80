import { z } from 'zod';
import { VERSION } from '../../version.js';
import { DETECTION_TYPES } from '../../domain/types.js';
import { CONDITION_KEYS, SCOPE_KEYS, TYPE_KEYS } from '../../rules/types.js';
import { READ_ONLY, customerField, guard, ok, tenantOf, definition, type ToolContext } from '../context.js';
import { strictInput } from '../args.js';
import { fitText, mention } from '../mentions.js';

export const SERVER_NAME = 'egress-triage';

/**
 * Static catalog of every tool this server registers (kept next to the registrations in server.ts).
 * describe_capabilities answers with the part of it the policy in force lets the agent see.
 */
export const TOOL_CATALOG: { name: string; kind: 'read' | 'write'; summary: string }[] = [
  { name: 'analyze_anomalous_calls_by_process', kind: 'read', summary: 'Group open anomalous calls by calling process, with VPN evidence, impostor checks and an exact suggested rule per process.' },
  { name: 'list_anomalous_network_calls', kind: 'read', summary: 'Paged New-Outbound-Network-Call detections with filters.' },
  { name: 'list_blocked_domain_calls', kind: 'read', summary: 'Paged Domain-Blocked detections with filters.' },
  { name: 'list_detections', kind: 'read', summary: 'Paged detections of any type with filters.' },
  { name: 'list_suppression_rules', kind: 'read', summary: 'Active suppression rules of the tenant.' },
  { name: 'get_suppression_rule', kind: 'read', summary: 'One suppression rule by rule_id.' },
  { name: 'preview_suppression_rule', kind: 'read', summary: 'Exact impact of a proposed rule, with risky-destination warnings.' },
  { name: 'check_ioc_in_baseline', kind: 'read', summary: 'Is an indicator in any baseline or call?' },
  { name: 'find_endpoint_calls_in_tenant', kind: 'read', summary: 'Every run that called an endpoint, tenant-wide.' },
  { name: 'find_repos_using_endpoint', kind: 'read', summary: 'Per-repo usage of an endpoint within one owner.' },
  { name: 'list_tenant_github_orgs', kind: 'read', summary: 'GitHub owners with recorded jobs.' },
  { name: 'list_recent_workflow_runs', kind: 'read', summary: 'Recent job runs of an owner / repo.' },
  { name: 'get_my_tenant', kind: 'read', summary: 'The tenant this server serves, with counts.' },
  { name: 'describe_capabilities', kind: 'read', summary: 'This catalog.' },
  { name: 'ping', kind: 'read', summary: 'Liveness check.' },
  { name: 'create_suppression_rule', kind: 'write', summary: 'Create a rule (confirm: true; retroactively suppresses matches).' },
  { name: 'update_suppression_rule', kind: 'write', summary: 'Change a rule (confirm: true; re-evaluates past matches).' },
  { name: 'delete_suppression_rule', kind: 'write', summary: 'Delete a rule (confirm: true; optionally restores its detections).' },
];

export function registerMetaTools(ctx: ToolContext): void {
  const s = ctx.server;

  s.registerTool(
    'ping',
    definition('ping', () => ({
      title: 'Ping',
      description: 'Liveness check: returns ok, the server name and version, the tenant and the server time. No side effects.',
      inputSchema: strictInput({}),
      outputSchema: z.object({ ok: z.boolean(), server: z.string(), version: z.string(), tenant: z.string(), time: z.string() }),
      annotations: READ_ONLY,
    })),
    guard('ping', async () => ok({ ok: true, server: SERVER_NAME, version: VERSION, tenant: ctx.tenant, time: new Date().toISOString() })),
  );

  s.registerTool(
    'get_my_tenant',
    definition('get_my_tenant', () => ({
      title: 'Get my tenant',
      description:
        'Return the tenant this server is bound to, whether it has any data yet, and its counts: jobs, runs, observations, baseline endpoints, jobs still learning, detections by type and status, active rules. Read-only.',
      inputSchema: strictInput({ customer: customerField }),
      outputSchema: z.object({
        tenant: z.string(),
        exists: z.boolean().describe('False when nothing has been ingested for this tenant yet'),
        dashboard_url: z.string(),
        stats: z.object({
          jobs: z.number(),
          runs: z.number(),
          observations: z.number(),
          baseline_endpoints: z.number(),
          learning_jobs: z.number(),
          rules: z.number(),
          detections: z.array(z.object({ type: z.string(), status: z.string(), count: z.number() })),
        }),
        note: z.string().nullable(),
      }),
      annotations: READ_ONLY,
    })),
    guard('get_my_tenant', async (a: { customer?: string }) => {
      const tenant = tenantOf(ctx, a.customer);
      const exists = (await ctx.store.detections.tenants()).includes(tenant);
      const st = await ctx.store.detections.stats(tenant);
      return ok({
        tenant,
        exists,
        dashboard_url: `${ctx.dashboardUrl}/`,
        stats: {
          jobs: st.jobs,
          runs: st.runs,
          observations: st.observations,
          baseline_endpoints: st.baselineEndpoints,
          learning_jobs: st.learningJobs,
          rules: st.rules,
          detections: st.detections,
        },
        note: exists ? null : `No data for tenant "${tenant}" yet: ingest telemetry with \`egress-triage ingest --tenant ${tenant} FILE\`.`,
      });
    }),
  );

  s.registerTool(
    'describe_capabilities',
    definition('describe_capabilities', () => ({
      title: 'Describe capabilities',
      description:
        'Describe what this server can do: every tool you can see (read or write; under a policy, tools it hides are left out and tools it denies outright carry denied_by_policy), detection types, suppression-rule condition keys, and the safety rules (confirm gating, never-suppress destinations). Read-only; call it when unsure which tool fits.',
      inputSchema: strictInput({}),
      outputSchema: z.object({
        server: z.string(),
        version: z.string(),
        tenant: z.string(),
        tools: z.array(
          z.object({
            name: z.string(),
            kind: z.enum(['read', 'write']),
            summary: z.string(),
            denied_by_policy: z
              .string()
              .optional()
              .describe('Present when the policy in force denies every call of this tool, whatever its arguments: the reason it gives. Do not call it.'),
          }),
        ),
        prompts: z.array(z.string()),
        detection_types: z.array(z.string()),
        condition_keys: z.object({ scope: z.array(z.string()), type: z.array(z.string()), all: z.array(z.string()) }),
        safety: z.array(z.string()),
      }),
      annotations: READ_ONLY,
    })),
    guard('describe_capabilities', async () => {
      // The policy gateway leaves hidden tools out of tools/list and refuses them; the catalog must
      // not advertise more than the agent can call. Read per call: a hot reload may change it.
      const policy = ctx.toolPolicy?.();
      const tools = policy
        ? TOOL_CATALOG.filter((t) => !policy.isHidden(t.name)).map((t) => {
            const denied = policy.deniesEveryCall(t.name);
            return denied === undefined ? t : { ...t, denied_by_policy: denied };
          })
        : TOOL_CATALOG;
      return ok({
        server: SERVER_NAME,
        version: VERSION,
        tenant: ctx.tenant,
        tools,
        prompts: ['triage-anomalies', 'investigate-endpoint'],
        detection_types: [...DETECTION_TYPES],
        condition_keys: { scope: [...SCOPE_KEYS], type: [...TYPE_KEYS], all: [...CONDITION_KEYS] },
        safety: [
          fitText(
            [
              'Write tools change nothing unless called with confirm: true, after',
              mention('preview_suppression_rule', 'preview_suppression_rule and explicit user approval.', "showing the user the change's exact impact and getting explicit approval."),
            ],
            policy,
          ),
          'When the client supports elicitation, the server also asks the user to confirm every write.',
          'Rules that target, or would also silence, never-suppress destinations (gist.githubusercontent.com, webhook.site, ...) are refused.',
          'A VPN verdict is evidence (hash, parent chain, destinations), not proof: a binary name alone proves nothing.',
          'Preview counts are exact: the same matcher as create.',
          ...(policy
            ? ['A policy decides every tool call: a call may also be denied, rate-limited or held for approval because of its arguments ([POLICY DENIED] results).']
            : []),
        ],
      });
    }),
  );
}
