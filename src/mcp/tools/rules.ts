import { z } from 'zod';
import { DETECTION_TYPES, NEW_OUTBOUND } from '../../domain/types.js';
import { ruleDetectionType } from '../../domain/filter.js';
import { CONDITION_KEYS, type RuleChangeResult, type RuleConditions, type RuleInput, type RulePreview, type SuppressionRule } from '../../rules/types.js';
import { sameConditions } from '../../rules/matcher.js';
import { cleanRuleText } from '../../rules/service.js';
import {
  READ_ONLY,
  WRITE_ADDITIVE,
  WRITE_DESTRUCTIVE,
  ToolInputError,
  customerField,
  fail,
  guard,
  ok,
  tenantOf,
  type ToolContext,
  type ToolExtra,
  definition,
} from '../context.js';
import { confirmWithUser } from '../confirm.js';
import { TOOL_ALIASES } from '../tool-aliases.js';
import { sentKey, strictInput } from '../args.js';
import { rulesService } from '../services.js';
import { presentDetection } from './detections.js';
import { PREVIEW_TOOL as PREVIEW, fitText, followPolicy, mention, type TextPart } from '../mentions.js';

const ruleSchema = z.looseObject({
  rule_id: z.string(),
  id: z.string().describe('Detection type the rule applies to'),
  name: z.string(),
  description: z.string(),
  conditions: z.record(z.string(), z.string()),
  severity_action: z.object({ type: z.string() }),
  created_by: z.string(),
  created_on: z.string(),
});

const conditionsField = z
  .record(z.string(), z.string())
  .describe(
    `Match conditions; an absent key (or "*") is a wildcard. Scope keys: owner, repo, workflow, job. Type keys: endpoint ("host:port"), ip_address (IP or CIDR), process (basename), process_sha256 (a digest, or several as "a|b": any of them), host, file, file_path, secret_type, action. Values accept "*" wildcards, e.g. {"process": "tailscaled"} or {"endpoint": "*.amazonaws.com:443", "owner": "acme-corp"}.`,
  );

const detectionIdField = z
  .string()
  .optional()
  .describe(`Detection type the rule targets (becomes the rule's \`id\`). Defaults to "${NEW_OUTBOUND}". One of: ${DETECTION_TYPES.join(', ')}.`);

// Field texts name no other tool: the schemas are shared by every server, whatever its policy (mentions.ts).
const ruleIdField = z.string().min(1).describe('Rule id (the rule_id of an active rule of the tenant), e.g. "r_3f9c..."');


const confirmField = z
  .boolean()
  .optional()
  .describe(
    "Must be true to perform the write. Set it only after you have shown the user the change's exact impact and the user explicitly approved. Omitted or false: nothing is changed.",
  );

/** The rule, or null when the tenant has no active rule with that id. */
async function findRule(ctx: ToolContext, tenant: string, ruleId: string): Promise<SuppressionRule | null> {
  try {
    return await (await rulesService(ctx.store, ctx.riskyDestinations)).get(tenant, ruleId);
  } catch (e) {
    if ((e as { code?: string }).code === 'not_found') return null;
    throw e;
  }
}


/** Rejects unknown condition keys (and empty values) with a message listing the valid keys. */
export function checkConditions(raw: Record<string, string>): RuleConditions {
  const out: RuleConditions = {};
  const unknown = Object.keys(raw).filter((k) => !(CONDITION_KEYS as readonly string[]).includes(k));
  if (unknown.length) {
    throw new ToolInputError(
      `unknown condition key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${sentKey(k)}"`).join(', ')}: use only ${CONDITION_KEYS.join(', ')} (absent key = wildcard)`,
    );
  }
  for (const [k, v] of Object.entries(raw)) {
    if (typeof v !== 'string' || v.trim() === '') throw new ToolInputError(`condition "${k}" is empty: give a value, "*" for any, or leave the key out`);
    out[k as keyof RuleConditions] = v.trim();
  }
  return out;
}

async function previewWithLinks(ctx: ToolContext, tenant: string, p: RulePreview) {
  const samples = [];
  for (const id of p.sample_detection_ids.slice(0, 10)) {
    const d = await ctx.store.detections.get(tenant, id);
    if (d) {
      const x = presentDetection(ctx, d);
      samples.push({ id: x.id, owner: x.owner, repo: x.repo, workflow: x.workflow, run_id: x.run_id, endpoint: x.endpoint, process: x.process, dashboard_url: x.dashboard_url });
    }
  }
  return samples;
}

function impactText(p: RulePreview): string {
  const procs = p.by_process.slice(0, 5).map((x) => `${x.process} (${x.count})`).join(', ');
  const repos = p.by_repo.length;
  let s = `${p.would_suppress} open detection(s) would be suppressed across ${repos} repo(s)`;
  if (procs) s += `; processes: ${procs}`;
  if (p.warnings.length) s += `. Warnings: ${p.warnings.join(' | ')}`;
  return s;
}

/** The structured result shared by the three write tools. */
function writeResult(tenant: string, action: 'created' | 'updated' | 'deleted', r: RuleChangeResult, answer: { kind: string }, note: string) {
  return ok({
    tenant,
    action,
    rule: r.rule as unknown as Record<string, unknown>,
    suppressed: r.suppressed,
    restored: r.restored,
    ...(r.kept !== undefined ? { kept: r.kept, handed_to_other_rules: r.handed_to_other_rules ?? [] } : {}),
    confirmed_via: answer.kind === 'confirmed' ? ('elicitation' as const) : ('confirm-flag' as const),
    note,
  });
}

/**
 * A rule's name in a confirmation question: last, after everything the server says, and quoted as a
 * JSON string. The name is the agent's text (or was, when the rule was made over MCP): first or
 * unquoted, it could open with a made-up summary of the change and push the real one out of sight.
 */
function agentText(label: string, text: string | undefined): string {
  return text ? `${label}: ${JSON.stringify(text)}.` : '';
}

function describeRule(detectionId: string, c: RuleConditions): string {
  const parts = Object.entries(c).map(([k, v]) => `${k}=${v}`);
  return `${detectionId} where ${parts.length ? parts.join(', ') : '(everything)'}`;
}

/** The refusal of a create or update without confirm: true, fitted to the policy in force (mentions.ts). */
const notConfirmed = (ctx: ToolContext, tool: string): string =>
  fitText(
    [
      `${tool} requires confirm: true. Nothing was changed.`,
      mention(
        PREVIEW,
        `First call ${PREVIEW} with the same detection_id and conditions, show the user the exact impact (would_suppress, by_process, by_repo, warnings, with dashboard_url links),`,
        "First show the user the rule's exact impact (the analysis's suggested_rule.impact for its suggestion),",
      ),
      `ask for explicit approval, and only then call ${tool} again with confirm: true.`,
    ],
    ctx.toolPolicy?.(),
  );

/** The answer when no active rule has the rule_id given. */
const noSuchRule = (ctx: ToolContext, ruleId: string, tenant: string, after = ''): string =>
  fitText(
    [
      `no suppression rule "${ruleId}" in tenant "${tenant}":`,
      mention('list_suppression_rules', 'call list_suppression_rules to see the valid rule_id values.', 'check the rule_id.'),
      after,
    ],
    ctx.toolPolicy?.(),
  );

const PREVIEW_TEXT: TextPart[] = [
  'Show EXACTLY what creating a suppression rule would do, using the same matcher as create: how many open detections it would suppress, broken down by process and repo, sample detections with dashboard_url links, and warnings when it would also cover risky destinations (gist.githubusercontent.com, webhook.site, tunnels, ...). `refused_reason` non-null means create will refuse it: propose a narrower rule instead.',
  mention('create_suppression_rule', 'Always call this before create_suppression_rule and show the result to the user.', 'Show the result to the user.'),
  'Read-only.',
];

const CREATE_TEXT: TextPart[] = [
  'Create a suppression rule. WRITE: requires confirm: true, which you may set only after',
  mention(
    PREVIEW,
    `calling ${PREVIEW} with the same detection_id and conditions, showing the user the impact and getting explicit approval.`,
    "showing the user the rule's exact impact and getting explicit approval.",
  ),
  'When the client supports elicitation the server also asks the user directly. Creating a rule retroactively suppresses matching open detections; the result reports exactly how many. Rules that target or would also silence risky destinations are refused.',
];

const UPDATE_TEXT: TextPart[] = [
  'Change an existing suppression rule: name, description, detection type and/or conditions (conditions replace the old ones entirely). WRITE: requires confirm: true after',
  mention(PREVIEW, `previewing the new conditions with ${PREVIEW} and getting user approval;`, 'showing the user the exact impact of the new conditions and getting user approval;'),
  'elicitation is used when available. Past detections are re-evaluated: the result reports exactly how many were newly suppressed and how many restored to new.',
];

const changeOutput = {
  tenant: z.string(),
  action: z.enum(['created', 'updated', 'deleted']),
  rule: ruleSchema,
  suppressed: z.number().describe('Detections moved from new to suppressed by this write (exact)'),
  restored: z.number().describe('Detections moved from suppressed back to new by this write (exact)'),
  kept: z.number().optional().describe('update only: detections the rule suppressed before and still matches (stay suppressed)'),
  handed_to_other_rules: z
    .array(z.object({ rule_id: z.string(), count: z.number() }))
    .optional()
    .describe('update only: former suppressions the rule no longer matches that another active rule covers, per rule'),
  confirmed_via: z.enum(['confirm-flag', 'elicitation']).describe('How the write was confirmed'),
  note: z.string(),
};

export function registerRuleTools(ctx: ToolContext): void {
  const s = ctx.server;

  s.registerTool(
    'list_suppression_rules',
    definition('list_suppression_rules', () => ({
      title: 'List suppression rules',
      description:
        'List every active suppression rule of the tenant (rule_id, detection type, name, conditions, creator, dates). Call it before creating a rule to spot duplicates or overlaps. Read-only.',
      inputSchema: strictInput({ customer: customerField }),
      outputSchema: z.object({ tenant: z.string(), count: z.number(), rules: z.array(ruleSchema) }),
      annotations: READ_ONLY,
    })),
    guard('list_suppression_rules', async (a: { customer?: string }) => {
      const tenant = tenantOf(ctx, a.customer);
      const rules = await (await rulesService(ctx.store, ctx.riskyDestinations)).list(tenant);
      return ok({ tenant, count: rules.length, rules: rules as unknown as Record<string, unknown>[] });
    }),
  );

  s.registerTool(
    'get_suppression_rule',
    definition('get_suppression_rule', () => ({
      title: 'Get a suppression rule',
      description: 'Get one suppression rule by its rule_id, with its conditions and audit dates. Read-only.',
      inputSchema: strictInput({ customer: customerField, ruleId: ruleIdField }, TOOL_ALIASES.get_suppression_rule),
      outputSchema: z.object({ tenant: z.string(), rule: ruleSchema }),
      annotations: READ_ONLY,
    })),
    guard('get_suppression_rule', async (a: { customer?: string; ruleId: string }) => {
      const tenant = tenantOf(ctx, a.customer);
      const rule = await findRule(ctx, tenant, a.ruleId);
      if (!rule) return fail(noSuchRule(ctx, a.ruleId, tenant));
      return ok({ tenant, rule: rule as unknown as Record<string, unknown> });
    }),
  );

  const previewTool = s.registerTool(
    'preview_suppression_rule',
    definition('preview_suppression_rule', () => ({
      title: 'Preview a suppression rule (exact)',
      description: fitText(PREVIEW_TEXT, undefined),
      inputSchema: strictInput({ customer: customerField, detectionId: detectionIdField, conditions: conditionsField }, TOOL_ALIASES.preview_suppression_rule),
      outputSchema: z.object({
        tenant: z.string(),
        detection_id: z.string(),
        conditions: z.record(z.string(), z.string()),
        would_suppress: z.number(),
        risky_matches: z.number(),
        risky_samples: z.array(z.object({ endpoint: z.string(), address: z.string().optional(), process: z.string(), count: z.number() })),
        by_process: z.array(z.object({ process: z.string(), count: z.number() })),
        by_repo: z.array(z.object({ owner: z.string(), repo: z.string(), count: z.number() })),
        sample_detections: z.array(z.looseObject({ id: z.string(), dashboard_url: z.string() })),
        warnings: z.array(z.string()),
        refused_reason: z.string().nullable(),
        can_create: z.boolean(),
      }),
      annotations: READ_ONLY,
    })),
    guard('preview_suppression_rule', async (a: { customer?: string; detectionId?: string; conditions: Record<string, string> }) => {
      const tenant = tenantOf(ctx, a.customer);
      const input: RuleInput = { detection_id: ruleDetectionType(a.detectionId, 'detectionId'), conditions: checkConditions(a.conditions) };
      const p = await (await rulesService(ctx.store, ctx.riskyDestinations)).preview(tenant, input);
      return ok({
        tenant,
        detection_id: p.detection_id,
        conditions: p.conditions as Record<string, string>,
        would_suppress: p.would_suppress,
        risky_matches: p.risky_matches,
        risky_samples: p.risky_samples,
        by_process: p.by_process,
        by_repo: p.by_repo,
        sample_detections: await previewWithLinks(ctx, tenant, p),
        warnings: p.warnings,
        refused_reason: p.refused_reason,
        can_create: p.refused_reason === null,
      });
    }),
  );
  followPolicy(previewTool, ctx, PREVIEW_TEXT);

  const createTool = s.registerTool(
    'create_suppression_rule',
    definition('create_suppression_rule', () => ({
      title: 'Create a suppression rule (write)',
      description: fitText(CREATE_TEXT, undefined),
      inputSchema: strictInput({
        customer: customerField,
        detectionId: detectionIdField,
        name: z.string().min(1).max(200).describe('Short human-readable rule name, e.g. "Tailscale daemon (genuine)".'),
        description: z.string().max(2000).optional().describe('Why this rule is safe: the evidence the user approved.'),
        conditions: conditionsField,
        // the suggestion and StepSecurity's rule carry it, so a suggested rule passes through as it is
        severity_action: z.object({ type: z.literal('ignore') }).strict().optional().describe('The only action a rule has: {"type": "ignore"}. Optional.'),
        confirm: confirmField,
      }, TOOL_ALIASES.create_suppression_rule),
      outputSchema: z.object(changeOutput),
      annotations: WRITE_ADDITIVE,
    })),
    guard(
      'create_suppression_rule',
      async (a: { customer?: string; detectionId?: string; name: string; description?: string; conditions: Record<string, string>; confirm?: boolean }, extra: ToolExtra) => {
        const tenant = tenantOf(ctx, a.customer);
        const input: RuleInput = { detection_id: ruleDetectionType(a.detectionId, 'detectionId'), conditions: checkConditions(a.conditions), name: a.name };
        if (a.description !== undefined) input.description = a.description;
        if (a.confirm !== true) return fail(notConfirmed(ctx, 'create_suppression_rule'));
        // checked before a person is asked: a name the write would refuse is never shown
        const name = cleanRuleText('name', a.name);
        cleanRuleText('description', a.description);
        const svc = await rulesService(ctx.store, ctx.riskyDestinations);
        const p = await svc.preview(tenant, input);
        if (p.refused_reason) return fail(`Refused, nothing was changed: ${p.refused_reason}`);
        const answer = await confirmWithUser(
          ctx,
          extra,
          `Create a suppression rule in tenant ${tenant}: ${describeRule(input.detection_id, input.conditions)}. ${impactText(p)}.${agentText(' Its name', name)}`,
          { tool: 'create_suppression_rule', args: a },
        );
        if (answer.kind === 'ask') return answer.result;
        if (answer.kind === 'declined') return fail(`${answer.message} Nothing was changed. Ask the user what to do instead.`);
        const r = await svc.create(tenant, input, ctx.actor);
        return writeResult(tenant, 'created', r, answer, `Rule ${r.rule.rule_id} created; ${r.suppressed} open detection(s) moved to suppressed. New matching detections will be suppressed on ingest.`);
      },
    ),
  );
  followPolicy(createTool, ctx, CREATE_TEXT);

  const updateTool = s.registerTool(
    'update_suppression_rule',
    definition('update_suppression_rule', () => ({
      title: 'Update a suppression rule (write)',
      description: fitText(UPDATE_TEXT, undefined),
      inputSchema: strictInput({
        customer: customerField,
        ruleId: ruleIdField,
        detectionId: detectionIdField,
        name: z.string().min(1).max(200).optional().describe('New name; omit to keep.'),
        description: z.string().max(2000).optional().describe('New description; omit to keep.'),
        conditions: conditionsField.optional(),
        confirm: confirmField,
      }, TOOL_ALIASES.update_suppression_rule),
      outputSchema: z.object(changeOutput),
      annotations: WRITE_DESTRUCTIVE,
    })),
    guard(
      'update_suppression_rule',
      async (
        a: { customer?: string; ruleId: string; detectionId?: string; name?: string; description?: string; conditions?: Record<string, string>; confirm?: boolean },
        extra: ToolExtra,
      ) => {
        const tenant = tenantOf(ctx, a.customer);
        const conditions = a.conditions !== undefined ? checkConditions(a.conditions) : undefined;
        const detId = a.detectionId !== undefined ? ruleDetectionType(a.detectionId, 'detectionId') : undefined;
        if (conditions === undefined && detId === undefined && a.name === undefined && a.description === undefined) {
          return fail('update_suppression_rule: nothing to change. Pass at least one of name, description, detectionId or conditions. Nothing was changed.');
        }
        if (a.confirm !== true) return fail(notConfirmed(ctx, 'update_suppression_rule'));
        const svc = await rulesService(ctx.store, ctx.riskyDestinations);
        const current = await findRule(ctx, tenant, a.ruleId);
        if (!current) return fail(noSuchRule(ctx, a.ruleId, tenant, 'Nothing was changed.'));
        const input: RuleInput = {
          detection_id: detId ?? current.id,
          conditions: conditions ?? current.conditions,
          name: a.name ?? current.name,
          description: a.description ?? current.description,
        };
        // A new name or description moves nothing, so only a change of what the rule matches is judged
        // (RulesService.update does the same): a rule made before its risky or impostor evidence arrived
        // suppresses none of it, and a rename must not be refused for what the guards already keep visible.
        const matchChanges = (conditions !== undefined && !sameConditions(conditions, current.conditions)) || (detId !== undefined && detId !== current.id);
        const p = matchChanges ? await svc.preview(tenant, input, { exceptRule: current.rule_id }) : null;
        if (p?.refused_reason) return fail(`Refused, nothing was changed: ${p.refused_reason}`);
        const impact = p ? `With the new conditions, ${impactText(p)}.` : 'Its conditions stay as they are, and so does what it suppresses.';
        const newName = cleanRuleText('name', a.name);
        cleanRuleText('description', a.description);
        const answer = await confirmWithUser(
          ctx,
          extra,
          `Update suppression rule ${current.rule_id} in tenant ${tenant} to: ${describeRule(input.detection_id, input.conditions)}. ${impact}` +
            `${agentText(' Its name', current.name)}${newName ? agentText(', renamed to', newName) : ''}`,
          { tool: 'update_suppression_rule', args: a },
        );
        if (answer.kind === 'ask') return answer.result;
        if (answer.kind === 'declined') return fail(`${answer.message} Nothing was changed.`);
        const patch: Partial<RuleInput> = {};
        if (detId !== undefined) patch.detection_id = detId;
        if (conditions !== undefined) patch.conditions = conditions;
        if (a.name !== undefined) patch.name = a.name;
        if (a.description !== undefined) patch.description = a.description;
        const r = await svc.update(tenant, a.ruleId, patch, ctx.actor);
        return writeResult(tenant, 'updated', r, answer, `Rule ${r.rule.rule_id} updated; ${r.suppressed} detection(s) newly suppressed, ${r.kept ?? 0} kept, ${r.restored} released to new, ${(r.handed_to_other_rules ?? []).reduce((a, h) => a + h.count, 0)} handed to other rules.`);
      },
    ),
  );
  followPolicy(updateTool, ctx, UPDATE_TEXT);

  s.registerTool(
    'delete_suppression_rule',
    definition('delete_suppression_rule', () => ({
      title: 'Delete a suppression rule (write)',
      description:
        'Delete a suppression rule. WRITE: requires confirm: true after confirming the rule_id with the user; elicitation is used when available. By default (StepSecurity semantics) detections it already suppressed stay suppressed; pass restore: true to move them back to new. The result reports exactly how many were restored.',
      inputSchema: strictInput({
        customer: customerField,
        ruleId: ruleIdField,
        restore: z.boolean().optional().describe('true: move the detections this rule suppressed back to new. Default false (they stay suppressed).'),
        confirm: confirmField,
      }, TOOL_ALIASES.delete_suppression_rule),
      outputSchema: z.object(changeOutput),
      annotations: WRITE_DESTRUCTIVE,
    })),
    guard('delete_suppression_rule', async (a: { customer?: string; ruleId: string; restore?: boolean; confirm?: boolean }, extra: ToolExtra) => {
      const tenant = tenantOf(ctx, a.customer);
      if (a.confirm !== true) {
        return fail(
          fitText(
            [
              'delete_suppression_rule requires confirm: true. Nothing was changed. Show the user the rule',
              mention('get_suppression_rule', '(get_suppression_rule)'),
              'and whether its detections will be restored, ask for explicit approval, then call again with confirm: true.',
            ],
            ctx.toolPolicy?.(),
          ),
        );
      }
      const svc = await rulesService(ctx.store, ctx.riskyDestinations);
      const current = await findRule(ctx, tenant, a.ruleId);
      if (!current) return fail(noSuchRule(ctx, a.ruleId, tenant, 'Nothing was changed.'));
      const restore = a.restore === true;
      const answer = await confirmWithUser(
        ctx,
        extra,
        `Delete suppression rule ${current.rule_id} (${describeRule(current.id, current.conditions)}) in tenant ${tenant}. ${
          restore ? 'Detections it suppressed will be restored to new.' : 'Detections it suppressed stay suppressed.'
        }${agentText(' Its name', current.name)}`,
        { tool: 'delete_suppression_rule', args: a },
      );
      if (answer.kind === 'ask') return answer.result;
      if (answer.kind === 'declined') return fail(`${answer.message} Nothing was changed.`);
      const r = await svc.delete(tenant, a.ruleId, { restore }, ctx.actor);
      const note = restore
        ? `Rule ${r.rule.rule_id} deleted; ${r.restored} detection(s) restored to new.`
        : `Rule ${r.rule.rule_id} deleted; the detections it suppressed stay suppressed (pass restore: true to restore them).`;
      return writeResult(tenant, 'deleted', r, answer, note);
    }),
  );
}
