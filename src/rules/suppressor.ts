import type { SqliteStore } from '../storage/sqlite/sqlite-store.js';
import type { DetectionSubject, Suppressor } from '../domain/subject.js';
import { NO_SUPPRESSION } from '../domain/subject.js';
import { compileRule, matchSubject, type CompiledRule } from './matcher.js';
import { riskyDestinations } from '../analysis/risky-destinations.js';
import type { RuleConditions } from './types.js';

/**
 * Builds the ingest-time suppressor of a tenant from its active rules, with the same compiled
 * matcher preview and create use. Rules are tried in creation order; the first match wins.
 * Never-suppress guard: a detection to a risky destination is never suppressed at ingest, even by a
 * rule created before that destination appeared (create refuses rules covering existing ones).
 */
export function suppressorFor(store: SqliteStore, tenant: string, extraRiskyDestinations?: string[]): Suppressor {
  const db = store.db;
  const tid = db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
  if (tid === undefined) return NO_SUPPRESSION;
  const rows = db
    .prepare('SELECT id, detection_type, conditions FROM rules WHERE tenant_id = ? AND deleted_on IS NULL ORDER BY id')
    .all(tid) as { id: number; detection_type: string; conditions: string }[];
  if (rows.length === 0) return NO_SUPPRESSION;
  const rules: { id: number; rule: CompiledRule }[] = [];
  for (const r of rows) {
    try {
      rules.push({ id: r.id, rule: compileRule(r.detection_type, JSON.parse(r.conditions) as RuleConditions) });
    } catch {
      // A stored rule that no longer compiles matches nothing rather than everything.
    }
  }
  const risky = riskyDestinations(extraRiskyDestinations);
  return {
    match(subject: DetectionSubject): number {
      for (const { id, rule } of rules) {
        if (matchSubject(rule, subject)) return risky.matchEndpoint(subject.endpoint) ? 0 : id;
      }
      return 0;
    },
  };
}

/** A `suppressorFor` bound to config extras, for IngestOptions.suppressorFor. */
export function makeSuppressorFor(extraRiskyDestinations?: string[]): (store: SqliteStore, tenant: string) => Suppressor {
  return (store, tenant) => suppressorFor(store, tenant, extraRiskyDestinations);
}
