import type { Action, Op, PolicyFile, Scope, ToolEntry } from './schema.js';
import { caseTwinKeys, compileCondition, resolvePath, type ConditionTest, type KeyFolds } from './conditions.js';
import { isCanonicalToolName, isToolNameGlob, toolNameKey, toolNameMatcher } from '../domain/glob.js';

/** Where a rule came from, for explain output and audit records. */
export interface RuleRef {
  rule: string;
  line?: number;
}

export interface CompiledLimit extends RuleRef {
  max: number;
  windowMs: number;
  scope: Scope;
  costPath?: string[];
}

interface CompiledCondition extends RuleRef {
  path: string[];
  /** the path joined with "." (`conditions.owner`): the key of its reading in ArgReadings */
  readKey: string;
  op: Op;
  test: ConditionTest;
  /**
   * The same condition as it applies to an argument the tool reads through `read` (decide's
   * ArgReadings). Compiled on first use: only the built-in mode asks, and only for the arguments it names.
   */
  readTest: (read: ArgReading) => ConditionTest;
  action: Action;
  reason?: string;
  approvalTimeoutMs?: number;
  approvalElicitation?: boolean;
}

interface CompiledEntry extends RuleRef {
  key: string;
  action?: Action;
  reason?: string;
  approvalTimeoutMs?: number;
  approvalElicitation?: boolean;
  when: CompiledCondition[];
  limits: CompiledLimit[];
  auditArgs?: 'hash' | 'plain';
}

export interface Decision extends RuleRef {
  action: Action;
  reason?: string;
  /** Set for require_approval. */
  approvalTimeoutMs: number;
  /**
   * require_approval only: the agent's own client may be asked (MCP elicitation). The client that
   * asked for the call answers, so this never proves a human looked: off unless the policy opts in.
   */
  elicitation: boolean;
  /** Every rate limit that applies to this tool (specific entry, matching globs and "*"). */
  limits: readonly CompiledLimit[];
  auditArgs: 'hash' | 'plain';
  hidden: boolean;
}

interface Resolved {
  /** False for names an upstream could read more than one way: refused whatever the policy says. */
  canonical: boolean;
  hidden: boolean;
  chain: CompiledEntry[];
  limits: CompiledLimit[];
  auditArgs: 'hash' | 'plain';
}

/** Maps a dotted rule path ("tools.x.when[0]") to its 1-based line in the policy file. */
export type LineLookup = (path: (string | number)[]) => number | undefined;

export function getPath(args: unknown, path: readonly string[]): { present: boolean; value: unknown } {
  let cur: unknown = args;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, seg)) {
      return { present: false, value: undefined };
    }
    cur = (cur as Record<string, unknown>)[seg];
  }
  return { present: cur !== undefined, value: cur };
}

const splitArgsPath = (p: string) => p.split('.').slice(1);

/** Why a call whose arguments hold case twins on a path the policy reads (`why`) is denied. */
function twinsReason(twins: { at: string; keys: string[] }, why: string): string {
  return `${twins.at} has keys that differ only in case (${twins.keys.map((k) => JSON.stringify(k)).join(', ')}), and ${why}: an upstream that reads keys loosely could take any of them, so the call is denied`;
}

/**
 * What a call costs against a rate limit: 1, or its `cost_from` argument, rounded up and at least 1
 * (`limit: 0`, which upstreams often read as "no limit", or `1e-10` must not run uncounted). A
 * string says why the argument cannot be counted, and the call is denied: decide() does so, so
 * `policy explain` and the gateway agree.
 */
export function limitCost(l: CompiledLimit, args: unknown): number | string {
  if (!l.costPath) return 1;
  const v = getPath(args, l.costPath).value;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) return `argument args.${l.costPath.join('.')} must be a non-negative number (it is counted against a rate limit)`;
  return Math.max(1, Math.ceil(v));
}

export class PolicyEngine {
  readonly default: 'allow' | 'deny';
  readonly callTimeoutMs: number;
  /** Methods the policy forwards besides the default allow-list (`forward:`), each audited. */
  readonly forwards: ReadonlySet<string>;
  readonly approvalDefaultTimeoutMs: number;
  /** `approvals.elicitation: false` vetoes every per-tool opt-in. */
  readonly elicitationAllowed: boolean;
  private readonly exact = new Map<string, CompiledEntry>();
  private readonly globs: { match: (s: string) => boolean; entry: CompiledEntry }[] = [];
  private star?: CompiledEntry;
  private readonly hiddenExact = new Set<string>();
  private readonly hiddenGlobs: ((s: string) => boolean)[] = [];
  private readonly cache = new Map<string, Resolved>();

  constructor(
    readonly file: PolicyFile,
    lineOf: LineLookup = () => undefined,
  ) {
    this.default = file.default ?? 'allow';
    this.callTimeoutMs = (file.call_timeout ?? 300) * 1000;
    this.forwards = new Set(file.forward ?? []);
    this.approvalDefaultTimeoutMs = (file.approvals?.default_timeout ?? 600) * 1000;
    this.elicitationAllowed = file.approvals?.elicitation !== false;
    // Tool names are matched by their folded key (src/domain/glob.ts says why and how).
    for (const h of file.hide ?? []) {
      if (isToolNameGlob(h)) this.hiddenGlobs.push(toolNameMatcher(h));
      else this.hiddenExact.add(toolNameKey(h));
    }
    for (const [key, t] of Object.entries(file.tools ?? {})) {
      const entry = this.compileEntry(key, t, lineOf);
      if (key === '*') this.star = entry;
      else if (isToolNameGlob(key)) this.globs.push({ match: toolNameMatcher(key), entry });
      else this.exact.set(toolNameKey(key), entry);
    }
  }

  private compileEntry(key: string, t: ToolEntry, lineOf: LineLookup): CompiledEntry {
    const base = ['tools', key];
    const rule = /^[A-Za-z_][\w-]*$/.test(key) ? `tools.${key}` : `tools[${JSON.stringify(key)}]`;
    const limitsRaw = t.rate_limit === undefined ? [] : Array.isArray(t.rate_limit) ? t.rate_limit : [t.rate_limit];
    const limits = limitsRaw.map((l, i): CompiledLimit => {
      const p = Array.isArray(t.rate_limit) ? [...base, 'rate_limit', i] : [...base, 'rate_limit'];
      return {
        rule: Array.isArray(t.rate_limit) ? `${rule}.rate_limit[${i}]` : `${rule}.rate_limit`,
        line: lineOf(p),
        max: l.max,
        windowMs: l.window * 1000,
        scope: l.scope ?? 'session',
        costPath: l.cost_from ? splitArgsPath(l.cost_from) : undefined,
      };
    });
    const when = (t.when ?? []).map((c, i): CompiledCondition => {
      const test = compileCondition(c.op, c.value, c.ignore_case === true);
      const path = splitArgsPath(c.path);
      return {
        rule: `${rule}.when[${i}]`,
        line: lineOf([...base, 'when', i]),
        path,
        readKey: path.join('.'),
        op: c.op,
        test,
        readTest: readTests(c.op, c.value),
        action: c.action,
        reason: c.reason,
        approvalTimeoutMs: c.approval_timeout !== undefined ? c.approval_timeout * 1000 : undefined,
        approvalElicitation: c.approval_elicitation,
      };
    });
    return {
      key,
      rule,
      line: lineOf(base),
      action: t.action,
      reason: t.reason,
      approvalTimeoutMs: t.approval_timeout !== undefined ? t.approval_timeout * 1000 : undefined,
      approvalElicitation: t.approval_elicitation,
      when,
      limits,
      auditArgs: t.audit_args,
    };
  }

  isHidden(tool: string): boolean {
    return this.resolve(tool).hidden;
  }

  /**
   * The reason every call of `tool` is denied, whatever its arguments, or undefined when some call
   * could pass (allowed, or held for approval). Walks the same chain as decide(): a `when` condition
   * whose action is not deny may match some arguments, so the answer is undefined from there on;
   * deny conditions only ever deny (a match, or a value the condition cannot test), so they are
   * stepped over. Hidden tools answer with the hide reason. Used to tell an agent up front which
   * listed tools it cannot use (describe_capabilities), so it need not learn it call by call.
   */
  deniesEveryCall(tool: string): string | undefined {
    const r = this.resolve(tool);
    if (!r.canonical || r.hidden) return this.decide(tool, {}).reason;
    for (const e of r.chain) {
      if (e.when.some((c) => c.action !== 'deny')) return undefined;
      if (e.action) return e.action === 'deny' ? this.make('deny', e, e.reason, undefined, r, tool).reason : undefined;
    }
    return this.defaultReason(tool);
  }

  private defaultReason(tool: string): string | undefined {
    return this.default === 'deny' ? `tool "${tool}" is not allowed by policy (default: deny)` : undefined;
  }

  /** Names in `hide` plus a fingerprint of hide globs: used to notice hidden-set changes on reload. */
  hiddenFingerprint(): string {
    return JSON.stringify([...(this.file.hide ?? [])].sort());
  }

  private resolve(tool: string): Resolved {
    const hit = this.cache.get(tool);
    if (hit) return hit;
    const canonical = isCanonicalToolName(tool);
    const key = toolNameKey(tool);
    const chain: CompiledEntry[] = [];
    const ex = this.exact.get(key);
    if (ex) chain.push(ex);
    for (const g of this.globs) if (g.match(tool)) chain.push(g.entry);
    if (this.star) chain.push(this.star);
    const hidden = !canonical || this.hiddenExact.has(key) || this.hiddenGlobs.some((m) => m(tool));
    const limits = chain.flatMap((e) => e.limits);
    const auditArgs = chain.find((e) => e.auditArgs)?.auditArgs ?? 'hash';
    const r: Resolved = { canonical, hidden, chain, limits, auditArgs };
    // Tool names come from clients: bound the cache so junk names cannot grow it forever.
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(tool, r);
    return r;
  }

  /**
   * Pure decision for one call. Rate limits are reported, not applied: the limiter does that.
   * `readings`: top-level arguments the tool reads ignoring case, and how it reads them (built-in
   * mode, from mcp/tool-aliases.ts); see ArgReadings.
   */
  decide(tool: string, args: unknown, readings?: ArgReadings): Decision {
    const r = this.resolve(tool);
    if (!r.canonical) {
      return {
        action: 'deny',
        rule: 'tool_name',
        line: undefined,
        reason: `tool name ${JSON.stringify(tool)} contains whitespace, invisible or non-NFKC characters; call the tool by its exact listed name`,
        approvalTimeoutMs: 0,
        elicitation: false,
        limits: [],
        auditArgs: r.auditArgs,
        hidden: true,
      };
    }
    if (r.hidden) {
      return {
        action: 'deny',
        rule: 'hide',
        line: undefined,
        reason: `tool "${tool}" is not available (hidden by policy)`,
        approvalTimeoutMs: 0,
        elicitation: false,
        limits: [],
        auditArgs: r.auditArgs,
        hidden: true,
      };
    }
    let folds: KeyFolds | undefined;
    // A rate limit's cost is read from the arguments as exactly as a condition's value, and for the
    // same reason: beside `limit: 1`, a `Limit: 1000` could be what the upstream reads and works for.
    for (const l of r.limits) {
      if (!l.costPath) continue;
      const twins = caseTwinKeys(args, l.costPath, (folds ??= new WeakMap()));
      if (twins !== null) {
        const why = `${l.rule} counts args.${l.costPath.join('.')} against its rate limit`;
        return this.make('deny', l, twinsReason(twins, why), undefined, r, tool);
      }
      const cost = limitCost(l, args);
      if (typeof cost === 'string') return this.make('deny', l, cost, undefined, r, tool);
    }
    for (const e of r.chain) {
      for (const c of e.when) {
        const twins = caseTwinKeys(args, c.path, (folds ??= new WeakMap()));
        if (twins !== null) return this.make('deny', c, twinsReason(twins, `${c.rule} tests args.${c.path.join('.')}`), undefined, r, tool);
        const read = readings?.get(c.readKey);
        let arg = resolvePath(args, c.path);
        // A key the tool reads as a value when it is left out of its object (a rule's condition: `*`)
        // is compared as that value; `exists` still asks whether it was written.
        if (arg.kind === 'missing' && read?.absentAs !== undefined && c.op !== 'exists' && c.path.length > 1 && isObjectAt(args, c.path.slice(0, -1))) {
          arg = { kind: 'value', value: read.absentAs };
        }
        const verdict = (read !== undefined ? c.readTest(read) : c.test)(arg);
        if (typeof verdict === 'object' && 'unreadable' in verdict) {
          return this.make('deny', c, `${c.rule} cannot be checked: ${verdict.unreadable}; the call is denied`, undefined, r, tool);
        }
        if (typeof verdict === 'object') {
          // Fail closed: a value of a type the condition does not test could still be read by the
          // upstream as one it does (see conditions.ts).
          const where = `args.${c.path.join('.')}`;
          return this.make(
            'deny',
            c,
            `argument ${where} is ${verdict.got}, but ${c.rule} tests ${verdict.expected}; the call is denied because the condition cannot be checked`,
            undefined,
            r,
            tool,
          );
        }
        if (verdict) {
          return this.make(c.action, c, c.reason ?? e.reason, c.approvalTimeoutMs ?? e.approvalTimeoutMs, r, tool, c.approvalElicitation ?? e.approvalElicitation);
        }
      }
      if (e.action) return this.make(e.action, e, e.reason, e.approvalTimeoutMs, r, tool, e.approvalElicitation);
    }
    return this.make(
      this.default,
      { rule: 'default' },
      this.defaultReason(tool),
      undefined,
      r,
      tool,
    );
  }

  private make(
    action: Action,
    ref: RuleRef,
    reason: string | undefined,
    timeoutMs: number | undefined,
    r: Resolved,
    tool: string,
    elicitation?: boolean,
  ): Decision {
    return {
      action,
      elicitation: action === 'require_approval' && elicitation === true && this.elicitationAllowed,
      rule: ref.rule,
      line: ref.line,
      reason: reason ?? (action === 'deny' ? `tool "${tool}" is denied by policy` : undefined),
      approvalTimeoutMs: timeoutMs ?? this.approvalDefaultTimeoutMs,
      limits: r.limits,
      auditArgs: r.auditArgs,
      hidden: false,
    };
  }
}

/**
 * How the tool reads one argument, for a condition on it: the argument arrives already read
 * (the built-in mode's policyArgs), and the condition's value is read the same way before both are
 * compared ignoring case, as if the condition said `ignore_case: true`. So `owner: "INITECH"` cannot
 * pass a condition written for `initech`, and a condition written `/usr/sbin/tailscaled` means the
 * process the tool reads there (`tailscaled`), rather than a text no call can carry any more. `null`:
 * compared ignoring case only.
 */
export type ArgReading = (((value: string) => unknown) & { /** what the tool reads when the key is left out of its object */ absentAs?: string }) | null;
/** Keyed by the argument's path below `args`, joined with "." (`owner`, `conditions.owner`). */
export type ArgReadings = ReadonlyMap<string, ArgReading>;

/**
 * What a reading returns for a condition value no call can carry once read, though calls meaning it
 * can (a repo written `owner/name`, whose owner the built-in mode moves to `args.owner`): such a
 * condition cannot be checked, so every call it is asked about is denied, with `why`.
 */
export class UnreadableValue {
  constructor(readonly why: string) {}
}

function isObjectAt(args: unknown, path: readonly string[]): boolean {
  const r = resolvePath(args, path);
  return r.kind === 'value' && typeof r.value === 'object' && r.value !== null && !Array.isArray(r.value);
}

/** Ops that compare an argument with the whole value (or each item of a list): the ones whose value is read. */
const WHOLE_VALUE_OPS: ReadonlySet<Op> = new Set(['eq', 'neq', 'in', 'not_in']);

/** A condition's test for each reading of its argument, compiled when first asked for. */
function readTests(op: Op, value: unknown): (read: ArgReading) => ConditionTest {
  const made = new Map<ArgReading, ConditionTest>();
  return (read) => {
    let t = made.get(read);
    if (t === undefined) {
      // A pattern (contains, regex) is compared as written, but is read too: no call can carry one
      // the reading finds unreadable either.
      const v = read !== null ? readValue(value, read) : value;
      const unreadable = v instanceof UnreadableValue ? v : Array.isArray(v) ? v.find((x) => x instanceof UnreadableValue) : undefined;
      if (unreadable) {
        // decided as written where the value plays no part (the argument is absent)
        const absent = compileCondition(op, value, true);
        t = (r) => (r.kind === 'value' ? { unreadable: (unreadable as UnreadableValue).why } : absent(r));
      } else t = compileCondition(op, WHOLE_VALUE_OPS.has(op) ? v : value, true);
      made.set(read, t);
    }
    return t;
  };
}

/** A string value (or each string of a list) as `read` reads it, where that is a string; anything else stays. */
function readValue(value: unknown, read: (v: string) => unknown): unknown {
  if (Array.isArray(value)) return value.map((x) => readValue(x, read));
  if (typeof value !== 'string') return value;
  try {
    const r = read(value);
    return typeof r === 'string' || r instanceof UnreadableValue ? r : value;
  } catch {
    // a value the tool's parser refuses: no call reads as it, so it stays as written
    return value;
  }
}
