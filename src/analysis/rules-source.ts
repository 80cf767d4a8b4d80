import type { RulesService } from '../rules/service.js';
import { compileRule } from '../rules/matcher.js';
import { ImpostorSet } from '../rules/guards.js';
import type { RuleConditions } from '../rules/types.js';
import type { AnalysisAggregates, AnalysisScope } from '../storage/analysis-port.js';
import type { RiskyDestinations } from './risky-destinations.js';
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
  /** The exact effect of a rule over the whole tenant: the preview `rules preview` runs. */
  readonly impact: (tenant: string, type: string, conditions: RuleConditions, impostors: ImpostorSet) => Promise<RuleImpact>;
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
