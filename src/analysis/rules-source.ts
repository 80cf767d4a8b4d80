import type { RulesService } from '../rules/service.js';
import { compileRule } from '../rules/matcher.js';
import { ImpostorSet } from '../rules/guards.js';
import type { RuleConditions } from '../rules/types.js';
import type { AnalysisAggregates, AnalysisScope, ImpostorEvidence } from '../storage/analysis-port.js';
import { suspectedImpostors, type CallEvidence } from './impostor.js';
import { VPN_PROCESS_NAMES } from './vpn-signatures.js';
import { riskyDestinations, type RiskyDestinations } from './risky-destinations.js';
import type { RuleImpact } from './suggestion.js';

/**
 * What the analysis takes from the rules layer: the risky list, the tenant's suspected impostors
 * (whatever this call's filters) and the exact impact of a suggested rule (the same preview that
 * `rules preview` runs). Every call is awaited, so a rules layer may answer synchronously or over a
 * connection.
 */
export interface AnalysisRules {
  readonly risky: RiskyDestinations;
  /** A commit stamp taken just before the read snapshot opens (see impostors); undefined inside one. */
  stampBeforeSnapshot(inSnapshot: boolean): Promise<number | null | undefined>;
  /** The tenant's suspected impostors, as of the snapshot the analysis reads in (`scope`'s port reads them). */
  impostors(tenant: string, stamp: number | null | undefined, from: { port: AnalysisAggregates; scope: AnalysisScope }): Promise<ImpostorSet>;
  /**
   * The exact effect of a rule over the whole tenant; null when this store runs no rules layer, and
   * then the analysis suggests no rule rather than one with an unknown effect.
   */
  readonly impact: ((tenant: string, type: string, conditions: RuleConditions, impostors: ImpostorSet) => Promise<RuleImpact>) | null;
}

/** The rules layer of a store that runs the rules service (SQLite). */
export function rulesFromService(rules: RulesService): AnalysisRules {
  return {
    risky: rules.risky,
    stampBeforeSnapshot: async (inSnapshot) => (inSnapshot ? undefined : await rules.repo.commitStamp()),
    async impostors(tenant, stamp) {
      const tenantId = await rules.repo.tenantId(tenant);
      if (tenantId === undefined) return new ImpostorSet();
      return (await rules.repo.impostors(tenantId, stamp)).set;
    },
    impact: async (tenant, type, conditions, impostors) =>
      await rules.previewCompiled(tenant, type, compileRule(type, conditions), 0, { countsOnly: true, impostors }),
  };
}

/**
 * The tenant's suspected impostors from the analysis port's evidence: the recorded ones, then every
 * VPN-named binary with a destination that contradicts its daemon (the verdict the rules layer
 * gives, from the same pure function over the same evidence).
 */
export async function impostorsFromEvidence(port: AnalysisAggregates, scope: AnalysisScope, risky: RiskyDestinations): Promise<ImpostorSet> {
  const evidence = await port.impostorEvidence(scope, VPN_PROCESS_NAMES);
  // the verdict is a pure function of the evidence and the risky list: reuse it while both are the same objects
  const hit = verdicts.get(evidence)?.get(risky);
  if (hit) return new ImpostorSet(hit.list());
  const set = await judgeEvidence(port, scope, evidence, risky);
  let byRisky = verdicts.get(evidence);
  if (!byRisky) verdicts.set(evidence, (byRisky = new WeakMap()));
  byRisky.set(risky, new ImpostorSet(set.list()));
  return set;
}

const verdicts = new WeakMap<ImpostorEvidence, WeakMap<RiskyDestinations, ImpostorSet>>();

async function judgeEvidence(port: AnalysisAggregates, scope: AnalysisScope, evidence: ImpostorEvidence, risky: RiskyDestinations): Promise<ImpostorSet> {
  const set = new ImpostorSet(evidence.recorded);
  if (evidence.calls.length === 0) return set;
  const variants = await port.variants(scope);
  const calls: CallEvidence[] = evidence.calls.map((c) => ({
    process: variants.norm[c.variant]!, sha256: variants.sha256[c.variant] ?? null, path: variants.path[c.variant] ?? null,
    parentChain: variants.parents[c.variant]!, host: c.host, port: c.port, isIp: c.isIp, risky: risky.matchHost(c.host),
  }));
  for (const b of suspectedImpostors(calls)) set.add(b);
  return set;
}

/**
 * A store without a rules layer (PostgreSQL, until the rules service runs there): the tenant's
 * impostors come from the analysis port's evidence, and no rule is suggested (its exact impact
 * cannot be computed).
 */
export function noRules(extraRiskyDestinations?: readonly string[]): AnalysisRules {
  const risky = riskyDestinations(extraRiskyDestinations);
  return {
    risky,
    stampBeforeSnapshot: async () => undefined,
    impostors: (_tenant, _stamp, { port, scope }) => impostorsFromEvidence(port, scope, risky),
    impact: null,
  };
}
