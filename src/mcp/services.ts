import { RulesService } from '../rules/service.js';
import { analyzeAnomalousCallsByProcess } from '../analysis/analyze-by-process.js';
import type { SqliteStore } from '../storage/sqlite/sqlite-store.js';
import type { AnalyzeInput, AnalyzeResult } from '../analysis/types.js';

const rulesCache = new WeakMap<SqliteStore, Map<string, RulesService>>();

/** One RulesService per (store, extra risky destinations), shared by every session; better-sqlite3 serialises writes. */
export async function rulesService(store: SqliteStore, extraRiskyDestinations: string[] = []): Promise<RulesService> {
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
export async function analyze(store: SqliteStore, input: AnalyzeInput, extraRiskyDestinations: string[] = []): Promise<AnalyzeResult> {
  return analyzeAnomalousCallsByProcess(store, input, { rules: await rulesService(store, extraRiskyDestinations) });
}
