import { endpointFilterText, parseDetectionTypes, ruleDetectionType, splitOwnerRepo } from '../domain/filter.js';
import { normalizeProcessName } from '../domain/process-name.js';
import { NEW_OUTBOUND } from '../domain/types.js';
import { UnreadableValue, type ArgReading, type ArgReadings } from '../policy/engine.js';
import { conditionReading } from '../rules/matcher.js';
import { CONDITION_KEYS } from '../rules/types.js';

/**
 * Other names the built-in tools accept for an argument (StepSecurity MCP's spellings), tool by tool.
 * One table, read by the tools' input schemas (strictInput folds an alias into its canonical name)
 * and by the built-in policy mode (canonicalToolArgs), so a policy condition on `args.owner` holds
 * when an agent writes `orgScope`: judged on the arguments as sent, the alias walked past it.
 */

const LIST = { orgScope: 'owner' } as const;
/** StepSecurity's tools say ruleId / detectionId; our results say rule_id / detection_id: both are accepted. */
const RULE = { rule_id: 'ruleId', detection_id: 'detectionId' } as const;

export const TOOL_ALIASES = {
  list_anomalous_network_calls: LIST,
  list_blocked_domain_calls: LIST,
  list_detections: { ...LIST, detectionId: 'detection_id' },
  analyze_anomalous_calls_by_process: { detectionId: 'detection_id', orgScope: 'owner' },
  get_suppression_rule: RULE,
  preview_suppression_rule: RULE,
  create_suppression_rule: RULE,
  update_suppression_rule: RULE,
  delete_suppression_rule: RULE,
} as const satisfies Record<string, Record<string, string>>;

/** The list tools: their `endpoint` and `process` are filters (domain/filter.ts). */
const LIST_TOOLS: ReadonlySet<string> = new Set(['list_anomalous_network_calls', 'list_blocked_domain_calls', 'list_detections']);

/** Tools whose `repo` may be written `owner/name`, which names the owner as well (domain/filter.ts). */
const REPO_NAMES_OWNER: ReadonlySet<string> = new Set([...LIST_TOOLS, 'analyze_anomalous_calls_by_process', 'list_recent_workflow_runs']);

/**
 * Arguments a built-in tool reads through a domain parser, each with that parser, so the policy
 * judges what the tool will read rather than the text as sent: a deny of process `tailscaled` held
 * for "tailscaled" but not for "/usr/sbin/tailscaled", "TailScaled.exe" or " tailscaled", which
 * the tools read as the same process, nor a deny of Domain-Blocked for "domain-blocked" or
 * "New-Outbound-Network-Call,Domain-Blocked". A value the parser refuses is left as sent: the tool
 * refuses the call too. Every tool that takes one of these names at the top level reads it so.
 */
const TYPE_READINGS: Readonly<Record<string, (v: string) => unknown>> = {
  // list_detections and analyze: one type or a comma list of them, in any case; a list of several
  // stays a list, so a condition that tests one string cannot be checked on it and denies (engine)
  detection_id: (v) => {
    const types = parseDetectionTypes(v, 'detection_id');
    return types === undefined ? v : types.length === 1 ? types[0] : types;
  },
  // the rule tools: one type in any case, and New-Outbound-Network-Call when empty
  detectionId: (v) => ruleDetectionType(v, 'detectionId'),
};

/** ...and those only the list tools read through a parser: their filters (the inventory tools search by `endpoint`). */
const FILTER_READINGS: Readonly<Record<string, (v: string) => unknown>> = {
  // basename, ".exe" stripped, NFKC-folded, lower case
  process: normalizeProcessName,
  // host (any port) or host:port, written one way
  endpoint: (v) => endpointFilterText(v, 'endpoint'),
};

const LIST_CALL_READINGS = { ...TYPE_READINGS, ...FILTER_READINGS };

/** The readings of TYPE_READINGS and FILTER_READINGS that `tool` applies to a call's arguments. */
function callReadings(tool: string): Readonly<Record<string, (v: string) => unknown>> {
  return LIST_TOOLS.has(tool) ? LIST_CALL_READINGS : TYPE_READINGS;
}

/** An entry of a per-tool table, never an inherited property (a tool may be called "toString"). */
function ofTool<T>(table: Readonly<Record<string, T>>, tool: string): T | undefined {
  return Object.hasOwn(table, tool) ? table[tool] : undefined;
}

/**
 * Arguments a tool reads as a default when they are left out or empty, with that default: a condition
 * on the type must hold for the call that leaves it out too. analyze analyses New-Outbound-Network-Call
 * (it reads its default from here); create and preview make a rule of the rule tools' default type
 * (update keeps the rule's own type, and list_detections lists every type, so neither has one).
 */
export const TOOL_DEFAULTS = {
  analyze_anomalous_calls_by_process: { detection_id: NEW_OUTBOUND },
  create_suppression_rule: { detectionId: ruleDetectionType(undefined, 'detectionId') },
  preview_suppression_rule: { detectionId: ruleDetectionType(undefined, 'detectionId') },
} as const satisfies Record<string, Record<string, string>>;

/**
 * Arguments every built-in tool that takes them reads ignoring case, with how it reads them, for
 * the built-in policy mode (argReadingsFor). Owner, repo and the endpoint or indicator of the
 * inventory tools are trimmed (GitHub names, domain/filter.ts; domain/indicator.ts lower-cases
 * the rest); the others are read through TYPE_READINGS and FILTER_READINGS. A condition on one of
 * them is compared ignoring case, as if it said `ignore_case: true`, after its value is read the
 * same way (ArgReadings in policy/engine.ts): compared exactly, `owner: "INITECH"` walked past a
 * deny of `initech`, and read only on the call's side, a deny written `/usr/sbin/tailscaled` would
 * match no call.
 */
const trim = (v: string) => v.trim();
const REPO_WITH_OWNER = 'a repository written with "/" names an owner, and a call\'s owner/name is read as its owner (args.owner) and its name (args.repo) here, so write the owner as a condition on args.owner and the repository by its name';
const COMMON_READINGS: ReadonlyArray<readonly [string, ArgReading]> = [
  ['owner', trim],
  // a call's `owner/name` is split in two (canonicalToolArgs), so no call's repo holds "/": a condition
  // value or pattern with one could never match, and cannot be checked
  ['repo', (v) => (v.includes('/') ? new UnreadableValue(REPO_WITH_OWNER) : v.trim())],
  ['indicator', trim],
  ...Object.entries(TYPE_READINGS),
];
const LIST_READINGS: ArgReadings = new Map([...COMMON_READINGS, ...Object.entries(FILTER_READINGS)]);
const OTHER_READINGS: ArgReadings = new Map([...COMMON_READINGS, ['endpoint', trim]]);

/**
 * The rule tools that take a rule's `conditions`. The matcher reads each value trimmed, ignoring case
 * and a process name without `.exe` (conditionReading), and a key left out as `*` (compared so): a deny of
 * `conditions.owner` "*" or "globex" must hold for " * ", "GLOBEX" and a rule that names no owner,
 * which the tools write as the same rule.
 */
const CONDITION_TOOLS: ReadonlySet<string> = new Set(['preview_suppression_rule', 'create_suppression_rule', 'update_suppression_rule']);
// A key left out is compared as `*` (absentAs), but is not written in: `exists` still tells whether it was sent.
const CONDITION_READINGS: ReadonlyArray<readonly [string, ArgReading]> = CONDITION_KEYS.map(
  (k) => [`conditions.${k}`, Object.assign((v: string) => conditionReading(k, v), { absentAs: '*' })] as const,
);

/** A rule's conditions as the matcher reads them; anything but a plain object stays (the tool refuses it). */
function readConditions(raw: unknown): unknown {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return raw;
  let out: Record<string, unknown> | undefined;
  for (const k of CONDITION_KEYS) {
    const v = (raw as Record<string, unknown>)[k];
    if (typeof v !== 'string') continue;
    const read = conditionReading(k, v);
    if (read !== v) (out ??= { ...(raw as Record<string, unknown>) })[k] = read;
  }
  return out ?? raw;
}
const RULE_READINGS: ArgReadings = new Map([...OTHER_READINGS, ...CONDITION_READINGS]);
const byTool = new Map<string, ArgReadings>();

/**
 * How the built-in tool `tool` reads its arguments, for the policy (ProxyOptions.argReadings); an
 * alias is read as its canonical name is (policyArgs gives it that name's value).
 */
export function argReadingsFor(tool: string): ArgReadings {
  const base = LIST_TOOLS.has(tool) ? LIST_READINGS : CONDITION_TOOLS.has(tool) ? RULE_READINGS : OTHER_READINGS;
  const aliases = ofTool<Record<string, string>>(TOOL_ALIASES, tool);
  if (!aliases) return base;
  let m = byTool.get(tool);
  if (!m) {
    const own = new Map(base);
    for (const [alias, canonical] of Object.entries(aliases)) {
      const read = base.get(canonical);
      if (read !== undefined) own.set(alias, read);
      else own.delete(alias);
    }
    byTool.set(tool, (m = own));
  }
  return m;
}

/** Arguments the tools trim before reading them (domain/filter.ts, domain/indicator.ts). */
const TRIMMED_ARGS = ['owner', 'repo', 'workflow', 'job', 'run_id', 'endpoint', 'indicator'] as const;

/**
 * `args` as the built-in tool `tool` reads them: each alias folded into its canonical name, blanks
 * trimmed, its callReadings applied, the TOOL_DEFAULTS filled in, an `owner` that `tenantWide: true`
 * makes the tenant moved to `customer`, and a `repo` written `owner/name` read as both. What the
 * policy judges. Arguments the tool would refuse (an alias that disagrees with its canonical name,
 * an owner that conflicts with the repo's) are left as they are: the tool refuses the call anyway.
 */
export function canonicalToolArgs(tool: string, args: Record<string, unknown>): Record<string, unknown> {
  const aliases = ofTool<Record<string, string>>(TOOL_ALIASES, tool);
  let out = args;
  const copy = () => (out === args ? (out = { ...args }) : out);
  for (const [alias, canonical] of Object.entries(aliases ?? {})) {
    if (!Object.hasOwn(args, alias) || args[canonical] !== undefined) continue;
    copy()[canonical] = args[alias];
    delete copy()[alias];
  }
  // " initech" is read as "initech": the policy must see it so too
  for (const name of TRIMMED_ARGS) {
    const v = out[name];
    if (typeof v === 'string' && v.trim() !== v && v.trim() !== '') copy()[name] = v.trim();
  }
  for (const [name, read] of Object.entries(callReadings(tool))) {
    const v = out[name];
    if (typeof v !== 'string') continue;
    try {
      const reading = read(v);
      if (reading !== v) copy()[name] = reading;
    } catch {
      // refused by the tool's own parser: the call fails there, whatever the policy decides
    }
  }
  // update keeps the rule's conditions when it is given none: only conditions sent are read
  if (CONDITION_TOOLS.has(tool) && out.conditions !== undefined) {
    const read = readConditions(out.conditions);
    if (read !== out.conditions) copy().conditions = read;
  }
  const defaults = ofTool<Record<string, string>>(TOOL_DEFAULTS, tool);
  for (const [name, value] of Object.entries(defaults ?? {})) {
    if (out[name] === undefined || out[name] === '') copy()[name] = value;
  }
  // StepSecurity's tenantWide: true reads `owner` as the tenant (the list tools' scopeOf): no owner scope at all
  if (LIST_TOOLS.has(tool) && out.tenantWide === true && out.owner !== undefined) {
    if (out.customer === undefined) copy().customer = out.owner;
    delete copy().owner;
  }
  // "owner/name" is read as both, given an owner or not; an owner that disagrees is left to the tool, which refuses it
  const repo = out.repo;
  const split = REPO_NAMES_OWNER.has(tool) && typeof repo === 'string' ? splitOwnerRepo(repo) : undefined;
  if (split && (out.owner === undefined || (typeof out.owner === 'string' && out.owner.toLowerCase() === split[0].toLowerCase()))) {
    if (out.owner === undefined) copy().owner = split[0];
    copy().repo = split[1];
  }
  return out;
}

/**
 * What the built-in policy mode judges (ProxyOptions.policyArgs): the arguments as the tool reads
 * them (canonicalToolArgs), with each alias the tool accepts carrying its canonical argument's
 * value too, so a condition written on either name sees the call: on `args.detection_id` for the
 * rule tools, whose own name is `detectionId`, a condition would otherwise never match.
 */
export function policyArgs(tool: string, args: Record<string, unknown>): Record<string, unknown> {
  const out = canonicalToolArgs(tool, args);
  const aliases = ofTool<Record<string, string>>(TOOL_ALIASES, tool);
  if (!aliases) return out;
  const mirrored = { ...out };
  for (const [alias, canonical] of Object.entries(aliases)) {
    if (out[canonical] !== undefined) mirrored[alias] = out[canonical];
  }
  return mirrored;
}
