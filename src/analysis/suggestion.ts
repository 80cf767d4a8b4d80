import { coverageRefusal, type ImpostorSet } from '../rules/guards.js';
import { RuleError, validateConditions } from '../rules/matcher.js';
import type { RuleConditions } from '../rules/types.js';
import { cmp, uniq } from './counts.js';
import type { RiskyDestinations } from './risky-destinations.js';
import type { BinaryVerdict, SuggestedRule } from './types.js';
import { describeVerdict, type JudgedBinary } from './verdict.js';
import { portOnly, vpnSignatureFor } from './vpn-signatures.js';
import { NEVER_DAEMON_TYPES } from '../domain/types.js';

/**
 * The suggested suppression rule of a process group and its guards: pure, from the group's binary
 * verdicts. Only a VPN / mesh daemon with genuine binaries gets one; it is narrowed to the genuine
 * binaries' hashes (and, for a daemon whose port is its whole signature, to its busiest server), and
 * refused when it would cover a risky destination or a suspected impostor.
 */

/** Hashes one process_sha256 condition can list: 7 digests and their separators fit its 512 characters. */
export const MAX_RULE_HASHES = 7;

/** What the rule would do over the whole tenant (the rules preview: the same matcher as create). */
export interface RuleImpact {
  would_suppress: number;
  risky_matches: number;
  /** why the rules layer would refuse the rule, or null */
  refused_reason: string | null;
}

export interface SuggestionInput {
  /** normalised process name of the group */
  name: string;
  /** the group's binaries, judged (verdict.ts), most detections first */
  judged: JudgedBinary[];
  /** the detection type the rule is for */
  detectionType: string;
  /** the other detection types analysed with it (a rule holds one type) */
  otherTypes?: readonly string[];
  /** the query's scope, as stored: a suggestion is scoped like the query */
  scope: { owner?: string; repo?: string; workflow?: string; job?: string };
  risky: Pick<RiskyDestinations, 'matchEndpoint'>;
  impostors: ImpostorSet;
  /** the rule's effect over the tenant (rules preview); null: no rules layer, so no suggestion */
  impact: (conditions: RuleConditions) => Promise<RuleImpact>;
}

export interface Suggestion {
  suggested: SuggestedRule | null;
  /** why there is no suggestion, or why it is blocked; null for a safe suggestion */
  reason: string | null;
}

const short = (s: string | null) => (s ? s.slice(0, 12) : 'unknown');

/** The servers the binaries reached, with their detections summed, most first (ties by name). */
function serversOf(judged: readonly JudgedBinary[]): [string, number][] {
  return mergedDesc(judged.map((j) => j.servers));
}

/** Endpoint counts of several binaries summed, most first (ties by endpoint). */
function mergedDesc(lists: readonly (readonly [string, number][])[]): [string, number][] {
  const n = new Map<string, number>();
  for (const list of lists) for (const [e, c] of list) n.set(e, (n.get(e) ?? 0) + c);
  return [...n].sort((a, b) => b[1] - a[1] || cmp(a[0], b[0]));
}

/**
 * Why the query's scope cannot scope a rule, or null. The filters are exact; a rule condition is a
 * pattern (`*`, `?`) that drops surrounding blanks and refuses inner ones: a rule scoped to job
 * `b?ild` would also take job `build`, and one to `build linux` cannot be written (it used to fail
 * the whole analysis as an internal error).
 */
function unscopable(scope: SuggestionInput['scope']): string | null {
  for (const key of ['owner', 'repo', 'workflow', 'job'] as const) {
    const v = scope[key];
    if (v === undefined) continue;
    if (/[*?]/.test(v)) return `${key} "${v}" holds * or ?, which a rule condition reads as a wildcard, so a rule scoped to it would reach beyond this view`;
    if (v.trim() !== v) return `${key} "${v}" begins or ends with a blank, which a rule condition drops`;
    try {
      validateConditions({ [key]: v });
    } catch (e) {
      if (e instanceof RuleError) return e.message;
      throw e;
    }
  }
  return null;
}

/** Pure but for the impact, which the rules layer computes (awaited: it may read a store). */
export async function buildSuggestion(input: SuggestionInput): Promise<Suggestion> {
  const { name } = input;
  const sig = vpnSignatureFor(name);
  const verdicts = input.judged.map((j) => j.verdict);
  const genuine = verdicts.filter((v) => v.verdict === 'genuine');
  const impostors = verdicts.filter((v) => v.verdict === 'impostor');
  const unverified = verdicts.filter((v) => v.verdict === 'unverified');
  if (!sig) {
    return { suggested: null, reason: `${name} is not a VPN/mesh daemon: a process-wide rule would hide everything else it calls; review each destination (see review)` };
  }
  if (NEVER_DAEMON_TYPES.has(input.detectionType)) {
    return { suggested: null, reason: `a ${input.detectionType} detection is no noise of ${sig.daemon}'s: no daemon does that, so no rule is suggested; review each one` };
  }
  if (genuine.length === 0) {
    return {
      suggested: null,
      reason: impostors.length
        ? `every binary named ${name} contradicts ${sig.daemon}'s signature: name impersonation suspected, no rule is suggested`
        : `no binary named ${name} shows ${sig.daemon}'s network signature (its ports, control-plane domains, or address ranges on its ports): the name alone proves nothing`,
    };
  }
  const unscoped = unscopable(input.scope);
  if (unscoped) {
    return { suggested: null, reason: `no rule is suggested for this view: ${unscoped}; analyse a wider view, or write a rule of your own` };
  }
  // Every genuine binary with a hash goes into one rule (an upgraded daemon has one per version);
  // a condition value holds at most MAX_RULE_HASHES of them, the most frequent first.
  // A daemon whose port is its whole signature is narrowed to its busiest server too, and to the
  // binaries that reached it: a renamed binary calling its own server on that port is judged just as
  // genuine, and only the user can tell whose server it is. The rule then names it, and a call to any
  // other server, or by a binary that never reached this one, stays visible. The server is chosen
  // among the binaries a rule can pin (one without a hash could only be covered by name).
  const pinnable = input.judged.filter((j) => j.verdict.verdict === 'genuine' && j.verdict.sha256 !== null);
  const servers = portOnly(sig) ? serversOf(pinnable.length ? pinnable : input.judged.filter((j) => j.verdict.verdict === 'genuine')) : [];
  const server = servers[0]?.[0];
  const reached = (v: BinaryVerdict) => server === undefined || input.judged.some((j) => j.verdict === v && j.servers.some(([e]) => e === server));
  const reachedHashed = genuine.filter((v) => v.sha256 !== null && reached(v));
  // A daemon with servers of its own (domains, address ranges): a binary only its port vouches for
  // is just what a renamed binary calling its own server on that port looks like, so it joins the
  // rule only when no binary is vouched for by the daemon's servers, and then only the busiest one.
  // Before, every such binary went in as "one per installed version", and a rule created from the
  // suggestion silenced a renamed tailscaled's calls to its attacker on port 41641.
  // Any genuine binary counts, with a hash or without: a daemon the servers vouch for whose hash could
  // not be read leaves the port-only binaries out as well (the rule is then blocked for want of a hash).
  const byServers = new Set(input.judged.filter((j) => j.vouchedByServers).map((j) => j.verdict));
  const anyByServers = genuine.some((v) => byServers.has(v));
  const hashed = portOnly(sig) ? reachedHashed : anyByServers ? reachedHashed.filter((v) => byServers.has(v)) : reachedHashed.slice(0, 1);
  const unvouched = reachedHashed.filter((v) => !hashed.includes(v));
  const covered = hashed.slice(0, MAX_RULE_HASHES);
  const main = covered[0] ?? genuine[0]!;
  const conditions: RuleConditions = { process: name };
  if (covered.length) conditions.process_sha256 = covered.map((v) => v.sha256!).join('|');
  if (server !== undefined) conditions.endpoint = server;
  conditions.owner = input.scope.owner ?? '*';
  conditions.repo = input.scope.repo ?? '*';
  conditions.workflow = input.scope.workflow ?? '*';
  conditions.job = input.scope.job ?? '*';
  const coveredJudged = input.judged.filter((j) => covered.includes(j.verdict));
  // What the rule silences that no part of the signature explains (a rule naming a server takes none of it)
  const unexplained = server === undefined ? mergedDesc(coveredJudged.map((j) => j.unexplained)) : [];
  const unexplainedN = unexplained.reduce((n, [, c]) => n + c, 0);
  // genuine binaries past the rule's hash limit, or without a hash (the port-only ones are said apart)
  const others = genuine.filter((v) => !covered.includes(v) && !unvouched.includes(v));
  const them = unvouched.length > 1 ? 'them' : 'it';
  const excluded = [...impostors, ...unverified];
  const rationale =
    (covered.length > 1
      ? `${covered.length} ${name} binaries (${covered.map(describeVerdict).join(', ')}: one per installed version) match ${sig.daemon}'s signature `
      : `${name} binary ${describeVerdict(main)} matches ${sig.daemon}'s signature `) +
    `(${(covered.length > 1 ? uniq(covered.flatMap((v) => v.supporting.slice(0, 2))) : main.supporting).slice(0, 4).join('; ')}) and nothing contradicts ${covered.length > 1 ? 'them' : 'it'}` +
    (covered.length ? `; the rule is narrowed to ${covered.length > 1 ? 'these hashes' : 'this hash'} so any other binary using the name stays visible` : '') +
    // Counted over the view (its window, repos and every type analysed), which is all the verdict
    // saw: a rule takes those of its own type, and any such call outside the view.
    (unexplainedN
      ? `; of the detections in this view, ${unexplainedN} at ${unexplained.length} endpoint(s) are direct-IP calls that ${sig.daemon}'s signature does not explain ` +
        `(${unexplained.slice(0, 3).map(([e, n]) => `${e} (${n})`).join(', ')}${unexplained.length > 3 ? ', ...' : ''}): ` +
        `rules with these conditions silence such calls too (each of its own detection type), and a renamed binary that made one call inside the signature looks just like this, so check them before creating it`
      : '') +
    (servers.length
      ? `; ${sig.daemon} reaches a server you choose, so its port is all its signature shows: the rule is narrowed to the server ` +
        `${servers[0]![0]} (${servers[0]![1]}), check that it is yours` +
        (servers.length > 1
          ? `; it also reached ${servers.slice(1, 6).map(([e, n]) => `endpoint=${e} (${n})`).join(', ')}${servers.length > 6 ? ` and ${servers.length - 6} more` : ''}: a rule of their own only for those that are yours`
          : '')
      : '') +
    (input.otherTypes?.length
      ? `; it covers ${input.detectionType} detections only: a rule holds one type, so ${input.otherTypes.join(', ')} detections of the group need a rule of their own with the same conditions`
      : '') +
    (excluded.length ? `; excluded: ${excluded.map((v) => `${short(v.sha256)} (${v.verdict}, ${v.count})`).join(', ')}` : '') +
    (unvouched.length
      ? `; not in the rule: ${unvouched.map((v) => `${describeVerdict(v)} (${v.count})`).join(', ')}: only ${sig.daemon}'s port vouches for ${them}, ` +
        `never one of its domains or address ranges, and a renamed binary calling its own server on that port looks the same; check ${them} before a rule of your own covers ${them}`
      : '') +
    (others.length
      ? `; other genuine binaries need their own rule: ${others.map((v) => `${v.sha256 ? `process_sha256=${v.sha256}` : `path ${v.path ?? '?'} (no sha256)`} (${v.count})`).join(', ')}`
      : '') +
    '.';
  let blocked: string | null = null;
  if (!covered.length && excluded.length) {
    blocked = `the genuine binary has no sha256, so a rule cannot exclude the other binaries named ${name}`;
  } else if (!covered.length) {
    blocked = `the binary has no sha256: a name-only rule would also silence any future binary named ${name}; suppress by endpoint or scope instead`;
  }
  if (!blocked) {
    // Never-suppress over what this view saw of the covered binaries. The verdicts already keep such
    // binaries out of the rule; this holds even if a verdict were wrong.
    const refusal = coverageRefusal(
      coveredJudged.map((j) => ({ process: name, sha256: j.verdict.sha256, path: j.verdict.path, riskyCalls: j.riskyCalls })),
      input.risky,
      input.impostors,
    );
    if (refusal) blocked = `the rule would silence detections that must stay visible: ${refusal.reason}`;
  }
  const preview = await input.impact(conditions);
  if (!blocked && preview.refused_reason) blocked = preview.refused_reason;
  const suggested: SuggestedRule = {
    detection_id: input.detectionType,
    conditions,
    severity_action: { type: 'ignore' },
    rationale,
    blocked_reason: blocked,
    impact: { would_suppress: preview.would_suppress, risky: preview.risky_matches },
  };
  return { suggested, reason: blocked };
}
