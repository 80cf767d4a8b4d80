import { CONDITION_KEYS, type RuleConditions, type RuleInput } from '../rules/types.js';
import { NEW_OUTBOUND } from '../domain/types.js';
import type { ProcessGroup, SampleDetection } from '../analysis/types.js';
import { runHref } from './links.js';

/**
 * The processes page's view model: plain data in (an analysis ProcessGroup, a form), plain data out.
 * Pure, so each decision the page draws is unit-tested without a browser or a store.
 */

/** A rule's fields travel in forms and links as `detection_id` and `c.<condition key>`. */
export const CONDITION_PREFIX = 'c.';

export class RuleFormError extends Error {}

/**
 * A rule input from a form or a query string. Unknown `c.*` keys are refused here, by name; the
 * values themselves are validated by the rules service, which every face shares. A "*" condition is
 * kept (it is what the analysis suggests for scope keys) and an empty one is dropped.
 */
export function ruleInputFromParams(p: URLSearchParams): RuleInput {
  const conditions: RuleConditions = {};
  for (const [k, raw] of p.entries()) {
    if (!k.startsWith(CONDITION_PREFIX)) continue;
    const key = k.slice(CONDITION_PREFIX.length);
    if (!(CONDITION_KEYS as readonly string[]).includes(key)) throw new RuleFormError(`unknown rule condition "${key}": use ${CONDITION_KEYS.join(', ')}`);
    const v = raw.trim();
    if (v !== '') conditions[key as keyof RuleConditions] = v;
  }
  if (Object.keys(conditions).length === 0) throw new RuleFormError('the rule has no condition: give at least one (e.g. process and process_sha256)');
  return { detection_id: p.get('detection_id') || NEW_OUTBOUND, conditions };
}

/** The form fields / query parameters of a rule input (the inverse of ruleInputFromParams). */
export function ruleParams(input: RuleInput): [string, string][] {
  return [['detection_id', input.detection_id], ...Object.entries(input.conditions).map(([k, v]): [string, string] => [`${CONDITION_PREFIX}${k}`, v!])];
}

/** The preview page of a rule, at 1-based `page` of the detections it matches. */
export function previewHref(input: RuleInput, page = 1): string {
  const q = new URLSearchParams(ruleParams(input));
  if (page > 1) q.set('page', String(page));
  return `/processes/preview?${q.toString()}`;
}

/** The processes page at 1-based `page`. */
export function processesHref(page = 1): string {
  return page > 1 ? `/processes?page=${page}` : '/processes';
}

/** Only the conditions that narrow anything ("*" is a wildcard), for reading. */
export function narrowingConditions(c: RuleConditions): [string, string][] {
  return Object.entries(c).filter(([, v]) => v !== undefined && v !== '*') as [string, string][];
}

/** The rule that names the process and nothing else: what a person might try first. */
export function nameOnlyRule(g: Pick<ProcessGroup, 'process' | 'suggested_rule'>): RuleInput {
  return { detection_id: g.suggested_rule?.detection_id ?? NEW_OUTBOUND, conditions: { process: g.process } };
}

export type VpnVerdictKind = 'genuine' | 'impostor-present' | 'impostor' | 'unverified' | 'not-vpn';

export interface VpnVerdictView {
  kind: VpnVerdictKind;
  /** a badge's words */
  label: string;
  tone: 'ok' | 'danger' | 'warn' | 'neutral';
  /** one sentence */
  summary: string;
}

/** The process's VPN verdict in one badge and sentence, from the per-binary evidence. */
export function vpnVerdict(g: Pick<ProcessGroup, 'process' | 'is_vpn_process_candidate' | 'name_impersonation_suspected' | 'vpn_evidence'>): VpnVerdictView {
  const ev = g.vpn_evidence;
  if (!ev.name_match) return { kind: 'not-vpn', label: 'Not a VPN daemon', tone: 'neutral', summary: `${g.process} is not a known VPN or mesh daemon name: review each destination.` };
  const genuine = ev.binaries.filter((b) => b.verdict === 'genuine').length;
  const impostors = ev.binaries.filter((b) => b.verdict === 'impostor').length;
  const daemon = ev.daemon ?? 'a VPN daemon';
  if (impostors > 0 && genuine > 0) {
    return { kind: 'impostor-present', label: 'Impostor present', tone: 'danger', summary: `${genuine} binary variant(s) match ${daemon}'s signature; ${impostors} other binary variant(s) use the name but are suspected impostors.` };
  }
  if (impostors > 0) return { kind: 'impostor', label: 'Suspected impostor', tone: 'danger', summary: `Every binary using the name ${g.process} contradicts ${daemon}'s signature.` };
  if (genuine > 0) return { kind: 'genuine', label: 'Genuine VPN daemon', tone: 'ok', summary: `Its binary matches ${daemon}'s signature and nothing contradicts it.` };
  return { kind: 'unverified', label: 'Unverified', tone: 'warn', summary: `The name is ${daemon}'s, but no traffic confirms the signature yet.` };
}

export interface BinaryRowView {
  sha256: string | null;
  path: string | null;
  count: number;
  verdict: 'genuine' | 'impostor' | 'unverified' | 'n/a';
  label: string;
  tone: 'ok' | 'danger' | 'warn' | 'neutral';
  supporting: string[];
  contradicting: string[];
}

const VERDICT_LABEL = {
  genuine: ['Genuine', 'ok'],
  impostor: ['IMPOSTOR', 'danger'],
  unverified: ['Unverified', 'warn'],
  'n/a': ['—', 'neutral'],
} as const;

/**
 * One row per binary variant (sha256, or path when there is no hash), joined with its VPN evidence.
 * Impostors come first: they are what a reader must not miss.
 */
export function binaryRows(g: Pick<ProcessGroup, 'binaries' | 'vpn_evidence'>): BinaryRowView[] {
  const key = (b: { sha256: string | null; path: string | null }) => `${b.sha256 ?? ''}\u0000${b.path ?? ''}`;
  const evidence = new Map(g.vpn_evidence.binaries.map((b) => [key(b), b]));
  const bySha = new Map(g.vpn_evidence.binaries.filter((b) => b.sha256).map((b) => [b.sha256!, b]));
  const rows = g.binaries.map((b): BinaryRowView => {
    const ev = evidence.get(key(b)) ?? (b.sha256 ? bySha.get(b.sha256) : undefined);
    const verdict = ev ? ev.verdict : b.genuine === false ? 'impostor' : b.genuine === true ? 'genuine' : 'n/a';
    const [label, tone] = VERDICT_LABEL[verdict];
    return { sha256: b.sha256, path: b.path, count: b.count, verdict, label, tone, supporting: ev?.supporting ?? [], contradicting: ev?.contradicting ?? [] };
  });
  const rank = { impostor: 0, unverified: 1, genuine: 2, 'n/a': 3 } as const;
  return rows.sort((a, b) => rank[a.verdict] - rank[b.verdict] || b.count - a.count);
}

/** The numbered pages around `current` for a pager: first, last, and up to two either side. */
export function pagerPages(current: number, last: number | null): number[] {
  const end = last ?? current + 1;
  const out = new Set<number>([1, end]);
  for (let p = Math.max(1, current - 2); p <= Math.min(end, current + 2); p++) out.add(p);
  return [...out].filter((p) => p >= 1 && p <= end).sort((a, b) => a - b);
}

/** A page number from a query string: a positive integer, or an error naming the value. */
export function pageParam(v: string | null): number {
  if (v === null || v === '') return 1;
  if (!/^[1-9]\d{0,6}$/.test(v)) throw new RuleFormError(`page: expected a whole number from 1, got "${v}"`);
  return Number(v);
}

/** The distinct runs of a process's sample detections, as run-page links on this server (links.ts). */
export function sampleRuns(samples: readonly Pick<SampleDetection, 'owner' | 'repo' | 'run_id' | 'dashboard_url'>[]): { href: string; label: string }[] {
  const seen = new Map<string, { href: string; label: string }>();
  for (const s of samples) {
    const jobId = new URL(s.dashboard_url).searchParams.get('jobId');
    const href = runHref({ owner: s.owner, repo: s.repo, runId: s.run_id, jobId });
    if (!seen.has(href)) seen.set(href, { href, label: `${s.owner}/${s.repo} run ${s.run_id}` });
  }
  return [...seen.values()];
}
