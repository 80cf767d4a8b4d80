/**
 * The Policy page's columns: what the policy does with a tool the file names, as a person reads it.
 * Plain data in (one `tools` entry and whether `hide` lists it), a column out. The policy editor
 * (edit.ts) moves tools between these columns and the change summary (change-summary.ts) names them.
 */

export const POLICY_COLUMNS = ['allow', 'rate_limited', 'approval', 'deny', 'hidden'] as const;
export type PolicyColumn = (typeof POLICY_COLUMNS)[number];

export const COLUMN_LABEL: Record<PolicyColumn, string> = {
  allow: 'Allow',
  rate_limited: 'Rate-limited',
  approval: 'Approval',
  deny: 'Deny',
  hidden: 'Hidden',
};

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `hidden`: the name is in `hide` (its tools entry, if any, is ignored while it is). */
export function columnOf(entry: unknown, hidden: boolean): PolicyColumn {
  if (hidden) return 'hidden';
  const t = isObj(entry) ? entry : {};
  if (t.action === 'deny') return 'deny';
  if (t.action === 'require_approval') return 'approval';
  if (t.rate_limit !== undefined) return 'rate_limited';
  return 'allow';
}

/** An entry's rate limits as a list (a single limit is written as one object). */
export function limitsOf(entry: unknown): unknown[] {
  const l = isObj(entry) ? entry.rate_limit : undefined;
  return l === undefined ? [] : Array.isArray(l) ? l : [l];
}

/** `10 per 60s, scope client`. */
export function limitText(l: unknown): string {
  if (!isObj(l)) return 'rate limit';
  const scope = typeof l.scope === 'string' ? `, scope ${l.scope}` : '';
  return `${String(l.max)} per ${String(l.window)}s${scope}${typeof l.cost_from === 'string' ? `, cost from ${l.cost_from}` : ''}`;
}
