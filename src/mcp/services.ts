import { RulesService } from '../rules/service.js';
import { rememberRiskyDestinations } from '../rules/risky-memory.js';
import { analyzeAnomalousCallsByProcess } from '../analysis/analyze-by-process.js';
import type { OpenStore } from '../storage/open-store.js';
import type { AnalyzeInput, AnalyzeResult } from '../analysis/types.js';

const rulesCache = new WeakMap<OpenStore, Map<string, RulesService>>();

/**
 * One RulesService per (store, risky list), shared by every session. The list is what the store
 * remembers plus the server's config (rules/risky-memory.ts), read on each call: an entry another
 * process made the store remember applies from this server's next call, not from its restart.
 */
export async function rulesService(store: OpenStore, extraRiskyDestinations: string[] = []): Promise<RulesService> {
  const { list } = await rememberRiskyDestinations(store, extraRiskyDestinations);
  let byKey = rulesCache.get(store);
  if (!byKey) rulesCache.set(store, (byKey = new Map()));
  const key = JSON.stringify(list);
  let s = byKey.get(key);
  if (!s) {
    s = new RulesService(store, { extraRiskyDestinations: list });
    byKey.set(key, s);
  }
  return s;
}

/** The library analysis, reusing the cached RulesService (and its risky-endpoint cache). */
export async function analyze(store: OpenStore, input: AnalyzeInput, extraRiskyDestinations: string[] = []): Promise<AnalyzeResult> {
  return analyzeAnomalousCallsByProcess(store, input, { rules: await rulesService(store, extraRiskyDestinations) });
}
