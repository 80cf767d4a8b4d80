import type { RulesService } from '../rules/service.js';
import { compileRule } from '../rules/matcher.js';
import { ImpostorSet } from '../rules/guards.js';
import type { RuleConditions } from '../rules/types.js';
import type { RulesPort } from '../storage/rules-port.js';
import type { AnalysisAggregates, AnalysisScope } from '../storage/analysis-port.js';
import { binaryKey, type SuspectedImpostor } from './impostor.js';
import type { RiskyDestinations } from './risky-destinations.js';
import type { RuleImpact } from './suggestion.js';
import { StampedCache } from './stamped-cache.js';

/**
 * What the analysis takes from the rules layer: the risky list, the tenant's suspected impostors
 * (whatever this call's filters) and the exact impact of a suggested rule (the same preview that
 * `rules preview` runs). Every call is awaited, so a rules layer may answer synchronously or over a
 * connection.
 */
export interface AnalysisRules {
  readonly risky: RiskyDestinations;
  /**
   * The tenant's commit stamp, taken just before the read snapshot opens (see impostors); undefined
   * inside one, null when the rules layer cannot tell (then nothing is reused).
   */
  stampBeforeSnapshot(inSnapshot: boolean, tenant: string): Promise<number | null | undefined>;
  /** The tenant's suspected impostors, as of the snapshot the analysis reads in (`scope`'s port reads them). */
  impostors(tenant: string, stamp: number | null | undefined, from: { port: AnalysisAggregates; scope: AnalysisScope }): Promise<ImpostorSet>;
  /** The exact effect of a rule over the whole tenant: the preview `rules preview` runs. */
  readonly impact: (tenant: string, stamp: number | null | undefined, type: string, conditions: RuleConditions, impostors: ImpostorSet) => Promise<RuleImpact>;
}

/**
 * What was computed per rules port (one per rules service, so per risky list): the verdict and the
 * suggestions' impact, per tenant, under the stamp they were computed at (stamped-cache.ts). An
 * unchanged store answers a repeated analysis without re-reading the tenant's evidence or
 * re-running a preview per suggestion.
 */
const CACHES = new WeakMap<RulesPort, { tenantIds: Map<string, number>; answers: StampedCache }>();

function cachesOf(repo: RulesPort): { tenantIds: Map<string, number>; answers: StampedCache } {
  let c = CACHES.get(repo);
  if (!c) CACHES.set(repo, (c = { tenantIds: new Map(), answers: new StampedCache() }));
  return c;
}

/** The rules layer of a store that runs the rules service (SQLite and PostgreSQL). */
export function rulesFromService(rules: RulesService): AnalysisRules {
  const { tenantIds, answers } = cachesOf(rules.repo);
  // a tenant keeps its id for good: only ids found are remembered
  const tenantId = async (tenant: string): Promise<number | undefined> => {
    let id = tenantIds.get(tenant);
    if (id === undefined) {
      id = await rules.repo.tenantId(tenant);
      if (id !== undefined && tenantIds.size < 4096) tenantIds.set(tenant, id);
    }
    return id;
  };
  return {
    risky: rules.risky,
    async stampBeforeSnapshot(inSnapshot, tenant) {
      if (inSnapshot) return undefined;
      const id = await tenantId(tenant);
      return id === undefined ? null : await rules.repo.commitStamp(id);
    },
    async impostors(tenant, stamp) {
      const id = await tenantId(tenant);
      if (id === undefined) return new ImpostorSet();
      const list = await answers.get(id, stamp, 'impostors', async () => (await rules.repo.impostors(id, stamp)).set.list());
      return new ImpostorSet(list);
    },
    async impact(tenant, stamp, type, conditions, impostors) {
      const id = await tenantId(tenant);
      const preview = async (): Promise<RuleImpact> => {
        const p = await rules.previewCompiled(tenant, type, compileRule(type, conditions), 0, { countsOnly: true, impostors });
        return { would_suppress: p.would_suppress, risky_matches: p.risky_matches, refused_reason: p.refused_reason };
      };
      if (id === undefined) return preview();
      const key = `impact\u0000${type}\u0000${JSON.stringify(conditions)}\u0000${impostorKey(impostors.list())}`;
      return { ...(await answers.get(id, stamp, key, preview)) };
    },
  };
}

function impostorKey(list: SuspectedImpostor[]): string {
  return list.map(binaryKey).sort().join('\u0001');
}
