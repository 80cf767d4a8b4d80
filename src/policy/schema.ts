import { z } from 'zod';
import { isCanonicalToolName, toolNameKey } from '../domain/glob.js';
import { jsonType } from './conditions.js';

/**
 * The policy file format (YAML or JSON). See docs/policy.md for the reference.
 * Objects are strict so a typo ("rate_limt") is an error instead of a silently ignored rule.
 */

export const ACTIONS = ['allow', 'deny', 'require_approval'] as const;
export const OPS = ['eq', 'neq', 'in', 'not_in', 'lt', 'lte', 'gt', 'gte', 'regex', 'contains', 'exists'] as const;
/**
 * Whose calls one rate-limit counter counts (docs/policy.md, "Scopes"): `session` (the default; on
 * 2026-07-28 traffic the identity plus its session handle, see session-identity.ts), `client` (the
 * authenticated identity), `global` (everyone on this policy's counters) or `upstream` (everyone
 * calling one registered upstream of a multi-upstream gateway). src/policy/limit-scope.ts turns a
 * scope into a counter key.
 */
export const SCOPES = ['session', 'client', 'global', 'upstream'] as const;

/**
 * MCP methods a policy may forward besides the default allow-list (`forward:`). Each can make the
 * upstream hand out data or act without a tool call, so none passes unless the policy names it;
 * every forwarded request is audited under its method. tools/call is never on this list: the policy
 * always decides it.
 */
export const FORWARDABLE_METHODS = [
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'prompts/get',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/list',
  'tasks/result',
  'tasks/cancel',
] as const;

export type Action = (typeof ACTIONS)[number];
export type Op = (typeof OPS)[number];
export type Scope = (typeof SCOPES)[number];

/** The highest `sessions.max_handles` a policy may set. */
export const MAX_HANDLES_LIMIT = 10_000;

/** `args.a.b.0` style paths into the call's arguments. */
const argsPath = z
  .string()
  .regex(/^args(\.[^.\s]+)+$/, 'must be a path into the arguments like "args.owner" or "args.conditions.owner"');

const seconds = z.number().positive().finite();

const rateLimitSchema = z.strictObject({
  max: z.number().positive().finite(),
  window: seconds,
  scope: z.enum(SCOPES).optional(),
  cost_from: argsPath.optional(),
});

const conditionSchema = z
  .strictObject({
    path: argsPath,
    op: z.enum(OPS),
    value: z.unknown().optional(),
    action: z.enum(ACTIONS),
    reason: z.string().min(1).optional(),
    approval_timeout: seconds.optional(),
    /** Let the agent's own client approve (MCP elicitation). Off unless set; see docs/policy.md. */
    approval_elicitation: z.boolean().optional(),
    /** Compare strings in lower case, both the condition's value and the argument's (conditions.ts). */
    ignore_case: z.boolean().optional(),
  })
  .superRefine((c, ctx) => {
    const v = c.value;
    if (c.ignore_case && !comparesStrings(c.op, v)) {
      ctx.addIssue({ code: 'custom', path: ['ignore_case'], message: `ignore_case compares strings: op "${c.op}" with this value compares none; remove ignore_case` });
    }
    switch (c.op) {
      case 'in':
      case 'not_in':
        if (!Array.isArray(v)) ctx.addIssue({ code: 'custom', path: ['value'], message: `op "${c.op}" needs a list value` });
        // One type per list: an argument of another type is then refused, never compared loosely.
        else if (new Set(v.map(jsonType)).size > 1)
          ctx.addIssue({ code: 'custom', path: ['value'], message: `op "${c.op}" needs a list of one type (all strings, all numbers, ...); write one condition per type` });
        break;
      case 'lt':
      case 'lte':
      case 'gt':
      case 'gte':
        if (typeof v !== 'number' || !Number.isFinite(v))
          ctx.addIssue({ code: 'custom', path: ['value'], message: `op "${c.op}" needs a number value` });
        break;
      case 'regex':
        if (typeof v !== 'string') ctx.addIssue({ code: 'custom', path: ['value'], message: 'op "regex" needs a string value' });
        else {
          try {
            new RegExp(v, 'u');
          } catch (e) {
            ctx.addIssue({ code: 'custom', path: ['value'], message: `invalid regex: ${(e as Error).message}` });
          }
        }
        break;
      case 'contains':
        if (v === undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: 'op "contains" needs a value' });
        break;
      case 'exists':
        if (v !== undefined && typeof v !== 'boolean')
          ctx.addIssue({ code: 'custom', path: ['value'], message: 'op "exists" takes true/false (default true)' });
        break;
      case 'eq':
      case 'neq':
        if (v === undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: `op "${c.op}" needs a value` });
        break;
    }
    if (c.action === 'deny' && !c.reason) {
      ctx.addIssue({ code: 'custom', path: ['reason'], message: 'a deny condition needs a reason (the agent is shown it)' });
    }
  });

/** Whether a condition compares string values, where case can matter. */
function comparesStrings(op: Op, value: unknown): boolean {
  switch (op) {
    case 'regex':
      return true;
    case 'eq':
    case 'neq':
    case 'contains':
      return typeof value === 'string';
    case 'in':
    case 'not_in':
      return Array.isArray(value) && value.length > 0 && value.every((x) => typeof x === 'string');
    default:
      return false;
  }
}

const toolSchema = z
  .strictObject({
    action: z.enum(ACTIONS).optional(),
    reason: z.string().min(1).optional(),
    approval_timeout: seconds.optional(),
    /** Let the agent's own client approve (MCP elicitation). Off unless set; see docs/policy.md. */
    approval_elicitation: z.boolean().optional(),
    rate_limit: z.union([rateLimitSchema, z.array(rateLimitSchema).min(1)]).optional(),
    when: z.array(conditionSchema).optional(),
    /** Opt in to writing argument values into the audit log (they are HMAC-hashed otherwise). */
    audit_args: z.enum(['hash', 'plain']).optional(),
  })
  .superRefine((t, ctx) => {
    if (t.action === 'deny' && !t.reason) {
      ctx.addIssue({ code: 'custom', path: ['reason'], message: 'action "deny" needs a reason (the agent is shown it)' });
    }
  });

/** Why a `hide` entry or `tools` key cannot be used as a tool-name pattern, or undefined when it can. */
function toolPatternProblem(p: string): string | undefined {
  if (/[[\]{}]/.test(p)) return 'tool-name patterns support only "*" and "?" as wildcards; list each name instead of [..] or {..}';
  if (!isCanonicalToolName(p)) return 'tool name contains whitespace, invisible or non-NFKC characters; write the name exactly as the server lists it';
  return undefined;
}

export const policyFileSchema = z.strictObject({
  version: z.literal(1),
  default: z.enum(['allow', 'deny']).optional(),
  hide: z.array(z.string().min(1)).optional(),
  /** Seconds to wait for the upstream's answer to a forwarded tools/call before giving quota back and failing it. */
  call_timeout: seconds.optional(),
  approvals: z
    .strictObject({
      /**
       * `false` turns elicitation approval off everywhere, whatever the tools say. It is never on by
       * default: each tool or condition opts in with `approval_elicitation: true`.
       */
      elicitation: z.boolean().optional(),
      default_timeout: seconds.optional(),
    })
    .optional(),
  tools: z.record(z.string().min(1), toolSchema).optional(),
  /**
   * How `scope: session` counts 2026-07-28 calls, which have no MCP session: by the client's session
   * handle (src/policy/session-identity.ts), at most `max_handles` live ones per identity.
   */
  sessions: z
    .strictObject({
      max_handles: z.number().int().min(1).max(MAX_HANDLES_LIMIT).optional(),
      /** Seconds a handle stays live after its last call; never shorter than a session-scoped window. */
      handle_ttl: seconds.optional(),
      /**
       * Open 2025-11-25 HTTP sessions one identity may hold on a gateway process; a session idle for
       * `handle_ttl` is closed (src/policy/http-sessions.ts).
       */
      max_http_sessions: z.number().int().min(1).max(MAX_HANDLES_LIMIT).optional(),
    })
    .optional(),
  /** Extra MCP methods forwarded to the upstream (each audited); see FORWARDABLE_METHODS. */
  forward: z
    .array(z.string().refine((m): m is (typeof FORWARDABLE_METHODS)[number] => (FORWARDABLE_METHODS as readonly string[]).includes(m), {
      message: `not a method the gateway can forward; one of: ${FORWARDABLE_METHODS.join(', ')} (tools/call is always decided by the policy)`,
    }))
    .optional(),
  audit: z
    .strictObject({
      /**
       * Write each call's audit record (JSONL and table) before its answer is sent (default true).
       * false: records are batched every 50 ms; a signal still flushes them, a SIGKILL may lose them.
       */
      sync: z.boolean().optional(),
    })
    .optional(),
}).superRefine((f, ctx) => {
  (f.hide ?? []).forEach((h, i) => {
    const problem = toolPatternProblem(h);
    if (problem) ctx.addIssue({ code: 'custom', path: ['hide', i], message: problem });
  });
  // A handle that expires while its bucket still holds charges could be replaced by a fresh one with an
  // empty bucket: rotating handles would then escape the limit. So a handle outlives every window.
  const longest = longestSessionWindow(f);
  if (f.sessions?.handle_ttl !== undefined && longest && f.sessions.handle_ttl < longest.seconds) {
    ctx.addIssue({
      code: 'custom',
      path: ['sessions', 'handle_ttl'],
      message: `handle_ttl (${f.sessions.handle_ttl}s) is shorter than the ${longest.seconds}s window of ${longest.rule} (scope session): an agent could rotate session handles to escape that limit; make it at least ${longest.seconds}`,
    });
  }
  // Matching ignores case and compatibility forms, so two keys with the same folded form would be one
  // entry with two contradicting bodies.
  const seen = new Map<string, string>();
  for (const key of Object.keys(f.tools ?? {})) {
    const problem = toolPatternProblem(key);
    if (problem) ctx.addIssue({ code: 'custom', path: ['tools', key], message: problem });
    const folded = toolNameKey(key);
    const first = seen.get(folded);
    if (first !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['tools', key], message: `"${key}" and "${first}" name the same tool (names match ignoring case and width); merge them` });
    } else seen.set(folded, key);
  }
});

export type PolicyFile = z.infer<typeof policyFileSchema>;
export type ToolEntry = z.infer<typeof toolSchema>;
export type RateLimitEntry = z.infer<typeof rateLimitSchema>;
export type ConditionEntry = z.infer<typeof conditionSchema>;

/**
 * The longest window among the file's `scope: session` limits (the default scope), with the rule it
 * belongs to: live session handles must last at least that long (session-identity.ts).
 */
export function longestSessionWindow(f: Pick<PolicyFile, 'tools'>): { seconds: number; rule: string } | undefined {
  let best: { seconds: number; rule: string } | undefined;
  for (const [key, t] of Object.entries(f.tools ?? {})) {
    const list = t.rate_limit === undefined ? [] : Array.isArray(t.rate_limit) ? t.rate_limit : [t.rate_limit];
    list.forEach((l, i) => {
      if ((l.scope ?? 'session') !== 'session' || (best && best.seconds >= l.window)) return;
      const name = /^[A-Za-z_][\w-]*$/.test(key) ? `tools.${key}` : `tools[${JSON.stringify(key)}]`;
      best = { seconds: l.window, rule: Array.isArray(t.rate_limit) ? `${name}.rate_limit[${i}]` : `${name}.rate_limit` };
    });
  }
  return best;
}
