import { RulesService } from '../rules/service.js';
import { analyzeAnomalousCallsByProcess } from '../analysis/analyze-by-process.js';
import type { OpenStore } from '../storage/open-store.js';
import type { AnalyzeInput, AnalyzeResult } from '../analysis/types.js';

const rulesCache = new WeakMap<OpenStore, Map<string, RulesService>>();

/** One RulesService per (store, extra risky destinations), shared by every session. */
export async function rulesService(store: OpenStore, extraRiskyDestinations: string[] = []): Promise<RulesService> {
  let byKey = rulesCache.get(store);
  if (!byKey) rulesCache.set(store, (byKey = new Map()));
  const key = JSON.stringify(extraRiskyDestinations);
  let s = byKey.get(key);
  if (!s) {
    s = new RulesService(store, { extraRiskyDestinations });
    byKey.set(key, s);
  }
  return s;
}

/** The library analysis, reusing the cached RulesService (and its risky-endpoint cache). */
export async function analyze(store: OpenStore, input: AnalyzeInput, extraRiskyDestinations: string[] = []): Promise<AnalyzeResult> {
  return analyzeAnomalousCallsByProcess(store, input, { rules: await rulesService(store, extraRiskyDestinations) });
}
