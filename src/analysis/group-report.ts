import type { JobDictionary, RiskyAddressRow, SampleRecord } from '../storage/analysis-port.js';
import { formatChain, mixedScript } from '../domain/process-name.js';
import { lookalikeReason } from './impostor.js';
import type { ImpostorSet } from '../rules/guards.js';
import type { RuleConditions } from '../rules/types.js';
import { addCount, mergeCounts, topCounts, topN, type IdCounter } from './counts.js';
import type { EndpointFacts } from './endpoint-facts.js';
import { pickSamples, sampleDetection } from './samples.js';
import { buildSuggestion, type RuleImpact } from './suggestion.js';
import type { ProcessGroup } from './types.js';
import { binaryKeyOf, judgeGroup, serversApart, vpnEvidence, type RiskyAddressCall, type VariantEvidence } from './verdict.js';

/**
 * One process group of the result, composed from plain data: its variants' details, the verdicts,
 * the suggestion, review notes for non-daemons, warnings and samples. No storage access.
 */

export interface GroupVariant extends VariantEvidence {
  first: number;
  last: number;
  /** distinct jobs */
  jobs: Int32Array;
}

export interface GroupContext {
  facts: EndpointFacts;
  jobs: JobDictionary;
  impostors: ImpostorSet;
  detectionType: string;
  /** the other detection types analysed: a rule holds one type, so the suggestion says they need their own */
  otherTypes: readonly string[];
  scope: { owner?: string; repo?: string; workflow?: string; job?: string };
  /** the rule's exact effect (rules preview); null: no rules layer on this store, no suggestion */
  impact: (conditions: RuleConditions) => Promise<RuleImpact>;
  samples: number;
  dashboardBase: string;
  /** scratch counters over endpoint refs and host ids */
  epScratch: IdCounter;
  hostScratch: IdCounter;
}

export async function buildGroup(ctx: GroupContext, name: string, count: number, variants: GroupVariant[], sampleRows: SampleRecord[]): Promise<ProcessGroup> {
  const { facts } = ctx;
  const dict = facts.dict;
  const eps = mergeCounts(variants.map((v) => v.eps), ctx.epScratch);
  let first = Infinity;
  let last = -Infinity;
  const repoSeen = new Uint8Array(ctx.jobs.repos);
  const ownerSeen = new Uint8Array(ctx.jobs.owners);
  let repos = 0;
  let owners = 0;
  for (const v of variants) {
    if (v.first < first) first = v.first;
    if (v.last > last) last = v.last;
    const js = v.jobs;
    for (let i = 0; i < js.length; i++) {
      const r = ctx.jobs.repoIdx[js[i]!];
      if (r === undefined) continue;
      if (!repoSeen[r]) {
        repoSeen[r] = 1;
        repos++;
      }
      const o = ctx.jobs.ownerIdx[js[i]!]!;
      if (!ownerSeen[o]) {
        ownerSeen[o] = 1;
        owners++;
      }
    }
  }
  const riskyEps = new Map<string, number>();
  let riskyCount = 0;
  const hosts = ctx.hostScratch;
  for (let i = 0; i < eps.ids.length; i++) {
    const id = eps.ids[i]!;
    const n = eps.n[i]!;
    if (dict.isIp[id]) hosts.add(dict.hostId[id]!, n);
    if (facts.isRisky(id)) {
      riskyCount += n;
      addCount(riskyEps, dict.endpoint[id]!, n);
    }
  }
  // named calls that reached an address in a configured risky range are just as risky
  const riskyAt = new Map<number, RiskyAddressCall>();
  for (const v of variants) {
    for (const r of v.riskyAt ?? []) {
      riskyCount += r.n;
      addCount(riskyEps, `${dict.endpoint[r.endpoint]!} at ${r.ip}`, r.n);
      if (!riskyAt.has(r.endpoint)) riskyAt.set(r.endpoint, r);
    }
  }
  const directIps = hosts.take();
  const epName = (id: number) => dict.endpoint[id]!;

  const parents = new Map<string, number>();
  for (const v of variants) addCount(parents, formatChain(v.parents) || '(none)', v.n);

  const judged = judgeGroup(name, variants, facts, ctx.impostors, ctx.epScratch);
  const evidence = vpnEvidence(name, judged);
  const isVpnName = evidence.name_match;
  const verdicts = judged.map((j) => j.verdict);
  const impostors = judged.filter((j) => j.verdict.verdict === 'impostor');
  const candidate = isVpnName && verdicts.some((v) => v.verdict === 'genuine');
  const impersonation = isVpnName && impostors.length > 0;

  const warnings: string[] = [];
  const short = (s: string | null) => (s ? s.slice(0, 12) : 'unknown');
  for (const { verdict: imp } of impostors) {
    warnings.push(
      `name impersonation suspected: binary sha256 ${short(imp.sha256)} (${imp.path ?? 'unknown path'}) is named ${name} but ` +
        `${imp.contradicting.slice(0, 3).join('; ')}. Its ${imp.count} detection(s) must stay visible: never suppress "${name}" by name alone.`,
    );
  }
  const apart = serversApart(judged);
  if (apart) {
    warnings.push(
      `its binaries reach different servers on ${evidence.daemon}'s port, which proves none of them: ${apart}. ` +
        'A renamed binary calling its own server looks the same: check that each server is yours before suppressing it',
    );
  }
  const like = lookalikeReason(name);
  const script = mixedScript(name);
  if (like) {
    warnings.push(
      `${like}: every binary of "${name}" is a suspected impostor of ${evidence.daemon}, and no rule hides its detections`,
    );
  } else if (script) {
    warnings.push(
      `"${name}" mixes Latin and ${script} letters: it is drawn like a Latin name it is not. It is judged as a process of its own, ` +
        `never as the daemon it may look like: check its binaries before trusting it`,
    );
  }
  if (riskyCount > 0) {
    warnings.push(
      `${riskyCount} detection(s) go to risky destinations (${topN(riskyEps, 5, (k) => k).map(([e]) => e).join(', ')}): investigate, they can never be suppressed`,
    );
  }

  const suggestion = await buildSuggestion({
    name,
    judged,
    detectionType: ctx.detectionType,
    otherTypes: ctx.otherTypes,
    scope: ctx.scope,
    risky: facts.risky,
    impostors: ctx.impostors,
    impact: ctx.impact,
  });

  const review: ProcessGroup['review'] = [];
  if (!candidate) {
    for (const [id, n] of topCounts(eps, 20, epName)) {
      review.push({ endpoint: dict.endpoint[id]!, count: n, rationale: reviewNote(facts, name, id, riskyAt.get(id)) });
    }
  }

  const variantKey = new Map(variants.map((v) => [v.variant, binaryKeyOf(v)]));
  const chosen = ctx.samples === 0 ? [] : pickSamples(sampleRows, ctx.samples, impostors.map((j) => j.key), (r) => variantKey.get(r.variant)!);

  return {
    process: name,
    count,
    distinct_endpoints: eps.ids.length,
    distinct_direct_ips: directIps.ids.length,
    is_vpn_process_candidate: candidate,
    name_impersonation_suspected: impersonation,
    endpoints_sample: topCounts(eps, 10, epName).map(([id]) => epName(id)),
    direct_ips_sample: topCounts(directIps, 10, (h) => dict.hostName[h]!).map(([h]) => dict.hostName[h]!),
    risky_destinations_suppressed_by_process_rule: riskyCount,
    risky_destination_samples: topN(riskyEps, 10, (k) => k).map(([e]) => e),
    suggested_rule: suggestion.suggested,
    sample_detections: chosen.map((r) => sampleDetection(r, ctx.dashboardBase)),
    distinct_repos: repos,
    distinct_owners: owners,
    first_seen: new Date(first).toISOString(),
    last_seen: new Date(last).toISOString(),
    binaries: verdicts.map((v) => ({ sha256: v.sha256, path: v.path, count: v.count, genuine: isVpnName ? v.verdict === 'genuine' : null })),
    parents: topN(parents, 5, (k) => k).map(([chain, count]) => ({ chain, count })),
    vpn_evidence: evidence,
    review,
    warnings,
    no_suggestion_reason: suggestion.reason,
  };
}

/** What to do about one destination of a process that is no VPN daemon (or shows no daemon evidence). */
function reviewNote(facts: EndpointFacts, name: string, id: number, at: RiskyAddressCall | undefined): string {
  const endpoint = facts.endpoint(id);
  const host = facts.host(id);
  const r = facts.risky.matchHost(host);
  if (r) return `RISKY: ${r} is a known payload-staging / exfiltration destination; investigate the runs, never suppress`;
  if (at) return `RISKY: ${host} was reached at ${at.ip}, in the risky range ${at.entry}; investigate the runs, never suppress`;
  if (facts.isIp(id)) {
    return `direct IP call (no DNS lookup) from ${name}: identify who owns ${host} before allowing it; if expected, allow endpoint=${endpoint} for the affected repos`;
  }
  return `new destination for ${name}: if expected, allow endpoint=${endpoint} scoped to the affected owner/repo rather than silencing every call of ${name}`;
}

/**
 * True when a group must be shown whatever the minimum count: one of its calls goes to a risky
 * destination (by name, or by the address it reached in a configured range), or one of its
 * binaries is judged a suspected impostor (by its own calls or by the tenant's evidence), exactly as
 * the group's report would say.
 */
export function mustShowGroup(name: string, variants: readonly GroupVariant[], facts: EndpointFacts, impostors: ImpostorSet, scratch: IdCounter): boolean {
  for (const v of variants) {
    if (v.riskyAt?.length) return true;
    for (let i = 0; i < v.eps.ids.length; i++) if (facts.isRisky(v.eps.ids[i]!)) return true;
  }
  return judgeGroup(name, [...variants], facts, impostors, scratch).some((j) => j.verdict.verdict === 'impostor');
}

/**
 * The calls that reached an address in a configured risky range (the port's riskyAddressCalls), by
 * variant, with the range's entry; a destination already risky by its name is counted as such.
 */
export function riskyAddressesByVariant(rows: readonly RiskyAddressRow[], facts: EndpointFacts): Map<number, RiskyAddressCall[]> {
  const out = new Map<number, RiskyAddressCall[]>();
  for (const r of rows) {
    if (facts.isRisky(r.endpoint)) continue;
    const entry = facts.risky.matchHost(r.ip);
    // the backend's ranges are these: an address it returned that no range covers is no risk to report
    if (entry === null) continue;
    let list = out.get(r.variant);
    if (!list) out.set(r.variant, (list = []));
    list.push({ endpoint: r.endpoint, ip: r.ip, entry, n: r.n });
  }
  return out;
}
