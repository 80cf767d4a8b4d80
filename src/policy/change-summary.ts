import { COLUMN_LABEL, columnOf, limitsOf, limitText, type PolicyColumn } from './columns.js';
import type { PolicyFile } from './schema.js';
import type { AuditRecord } from '../storage/policy-state.js';

/**
 * What a policy change did, in the Policy page's words, for its audit record: per tool its column
 * before and after (`find_repos: allow → approval`), or its limits (`x: rate limit 10 per 60s → 5
 * per 60s`), tools added or removed, `default`, and which other settings changed. Two validated
 * policies in, plain data out: the same summary whether the dashboard or an editor on disk made it.
 */

export interface PolicyChangeSummary {
  /** the tools whose column, limits or entry changed, in file order */
  tools: string[];
  summary: string;
}

const MAX_SUMMARY = 1000;
const columnWord = (c: PolicyColumn) => COLUMN_LABEL[c].toLowerCase();

function toolStates(f: PolicyFile): Map<string, { column: PolicyColumn; limits: string; entry: string }> {
  const out = new Map<string, { column: PolicyColumn; limits: string; entry: string }>();
  const hide = f.hide ?? [];
  const tools = f.tools ?? {};
  for (const name of [...hide, ...Object.keys(tools)]) {
    if (out.has(name)) continue;
    const entry = tools[name];
    out.set(name, { column: columnOf(entry, hide.includes(name)), limits: limitsOf(entry).map(limitText).join(' and '), entry: JSON.stringify(entry ?? null) });
  }
  return out;
}

export function summarizePolicyChange(prev: PolicyFile, next: PolicyFile): PolicyChangeSummary {
  const before = toolStates(prev);
  const after = toolStates(next);
  const parts: string[] = [];
  const tools: string[] = [];
  if ((prev.default ?? 'allow') !== (next.default ?? 'allow')) parts.push(`default ${prev.default ?? 'allow'} → ${next.default ?? 'allow'}`);
  for (const name of new Set([...before.keys(), ...after.keys()])) {
    const a = before.get(name);
    const b = after.get(name);
    if (a && b && a.column === b.column && a.entry === b.entry) continue;
    tools.push(name);
    if (!a) parts.push(`${name}: added (${columnWord(b!.column)})`);
    else if (!b) parts.push(`${name}: removed (was ${columnWord(a.column)})`);
    else if (a.column !== b.column) parts.push(`${name}: ${columnWord(a.column)} → ${columnWord(b.column)}${b.column === 'rate_limited' ? ` (${b.limits})` : ''}`);
    else if (a.limits !== b.limits) parts.push(`${name}: rate limit ${a.limits || 'none'} → ${b.limits || 'none'}`);
    else parts.push(`${name}: entry changed`);
  }
  const settings = (['call_timeout', 'approvals', 'sessions', 'forward', 'audit'] as const).filter((k) => JSON.stringify(prev[k] ?? null) !== JSON.stringify(next[k] ?? null));
  if (settings.length) parts.push(`settings changed: ${settings.join(', ')}`);
  const summary = parts.length ? parts.join('; ') : 'no change to what the policy does (comments or layout only)';
  return { tools, summary: summary.length > MAX_SUMMARY ? `${summary.slice(0, MAX_SUMMARY - 1)}…` : summary };
}

/**
 * The audit record of a replaced policy: decision `policy_change`, who replaced it (`dashboard:<identity>`,
 * or `file` for a change found on disk), both hashes, the file as `rule`, the summary as `reason`,
 * and as `tool` the one tool it changed (empty when it changed several or none).
 */
export function policyChangeRecord(o: { ts: string; by: string; file: string; previousHash: string; hash: string; change: PolicyChangeSummary }): AuditRecord {
  return {
    ts: o.ts,
    session: '',
    identity: o.by,
    tool: o.change.tools.length === 1 ? o.change.tools[0]! : '',
    args_hash: '',
    decision: 'policy_change',
    rule: o.file,
    reason: o.change.summary,
    latency_ms: 0,
    upstream: 'not_forwarded',
    policy_hash: o.hash,
    previous_policy_hash: o.previousHash,
  };
}
