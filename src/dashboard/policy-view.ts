import { isMap, isScalar, isSeq, parseDocument } from 'yaml';
import { parsePolicy, PolicyLoadError, type PolicyIssue } from '../policy/load.js';
import { COLUMN_LABEL, columnOf, limitsOf, limitText, POLICY_COLUMNS, type PolicyColumn } from '../policy/columns.js';

/**
 * The Policy page's reading of a policy file: each tool the file names, in the column of what the
 * policy does with it (allow, rate-limited, approval, deny, hidden), and every validation problem,
 * attached to the tool it is about or else to the file. Plain text in, plain data out: the file is
 * read leniently (a tool entry shows even when another part of the file is invalid), and validated
 * with the very parser the gateway loads it with.
 */

export { COLUMN_LABEL, POLICY_COLUMNS, type PolicyColumn };

export interface PolicyTool {
  /** the name or pattern as written in the file */
  name: string;
  /** what else the entry says: limits, timeout, reason, conditions */
  details: string[];
  issues: PolicyIssue[];
  /** its rate limits as written, for the edit form (none while hidden or denied) */
  limits: { max: string; window: string; scope: string }[];
}

export interface PolicyView {
  path: string;
  /** what a tool the file does not name gets */
  defaultAction: 'allow' | 'deny';
  columns: Record<PolicyColumn, PolicyTool[]>;
  /** problems not about one tool */
  fileIssues: PolicyIssue[];
  valid: boolean;
  /** the file's lines, for showing where a problem is */
  lines: string[];
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `tools.x` / `tools["a.b"]` / `hide[2]` -> the tool the issue is about, when it is about one. */
function issueTool(i: PolicyIssue, hide: readonly string[]): string | undefined {
  const m = /^tools(?:\.([A-Za-z_][\w-]*)|\[("(?:[^"\\]|\\.)*")\])/.exec(i.path);
  if (m) return m[1] ?? (JSON.parse(m[2]!) as string);
  const h = /^hide\[(\d+)\]/.exec(i.path);
  if (h) return hide[Number(h[1])];
  return undefined;
}

export function policyView(text: string, path: string): PolicyView {
  let issues: PolicyIssue[] = [];
  try {
    parsePolicy(text, path);
  } catch (e) {
    issues = e instanceof PolicyLoadError ? e.issues : [{ path: '', message: String(e) }];
  }
  // Lenient read for the columns: whatever parses, even when validation failed.
  const doc = parseDocument(text, { uniqueKeys: false, prettyErrors: false });
  const data: unknown = doc.errors.length === 0 ? doc.toJS({ maxAliasCount: 100 }) : leniently(doc);
  const file = isObj(data) ? data : {};
  const tools = isObj(file.tools) ? file.tools : {};
  const hide = Array.isArray(file.hide) ? file.hide.filter((h): h is string => typeof h === 'string') : [];
  const columns = Object.fromEntries(POLICY_COLUMNS.map((c) => [c, [] as PolicyTool[]])) as Record<PolicyColumn, PolicyTool[]>;
  const byName = new Map<string, PolicyTool>();
  const place = (name: string, column: PolicyColumn, details: string[], limits: PolicyTool['limits'] = []) => {
    const t: PolicyTool = { name, details, issues: [], limits };
    columns[column].push(t);
    if (!byName.has(name)) byName.set(name, t);
  };
  for (const h of hide) place(h, 'hidden', isObj(tools[h]) ? ['also has a tools entry (ignored while hidden)'] : []);
  for (const [name, entry] of Object.entries(tools)) {
    if (hide.includes(name)) continue;
    const t = isObj(entry) ? entry : {};
    const details: string[] = [];
    const limits = limitsOf(t);
    if (limits.length && t.action !== 'deny') details.push(...limits.map(limitText));
    if (t.action === 'require_approval') details.push(`approval timeout ${t.approval_timeout ?? 'default'}${typeof t.approval_timeout === 'number' ? 's' : ''}`);
    if (t.approval_elicitation === true) details.push("the agent's client may approve (elicitation)");
    if (typeof t.reason === 'string') details.push(`reason: ${t.reason}`);
    if (Array.isArray(t.when)) details.push(`${t.when.length} condition${t.when.length === 1 ? '' : 's'} (when)`);
    if (t.audit_args === 'plain') details.push('arguments written to the audit');
    const column = columnOf(entry, false);
    const asWritten = column === 'rate_limited' ? limits.map((l) => (isObj(l) ? { max: String(l.max ?? ''), window: String(l.window ?? ''), scope: typeof l.scope === 'string' ? l.scope : 'session' } : { max: '', window: '', scope: 'session' })) : [];
    place(name, column, details, asWritten);
  }
  const fileIssues: PolicyIssue[] = [];
  for (const i of issues) {
    const name = issueTool(i, hide);
    const t = name === undefined ? undefined : byName.get(name);
    if (t) t.issues.push(i);
    else fileIssues.push(i);
  }
  return {
    path,
    defaultAction: file.default === 'deny' ? 'deny' : 'allow',
    columns,
    fileIssues,
    valid: issues.length === 0,
    lines: text.split('\n'),
  };
}

/** A document with syntax errors: take the top-level `tools` and `hide` nodes that did parse. */
function leniently(doc: ReturnType<typeof parseDocument>): Obj {
  const out: Obj = {};
  if (!isMap(doc.contents)) return out;
  for (const pair of doc.contents.items) {
    const key = isScalar(pair.key) ? String(pair.key.value) : undefined;
    if (key === 'tools' && isMap(pair.value)) out.tools = pair.value.toJSON();
    if (key === 'hide' && isSeq(pair.value)) out.hide = pair.value.toJSON();
    if (key === 'default' && isScalar(pair.value)) out.default = pair.value.value;
  }
  return out;
}
