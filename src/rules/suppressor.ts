import type { SqliteStore } from '../storage/sqlite/sqlite-store.js';
import type { CallFacts, DetectionSubject, Suppressor } from '../domain/subject.js';
import { compileRule, matchSubject, type CompiledRule } from './matcher.js';
import { RulesService } from './service.js';
import { callContradiction } from '../analysis/impostor.js';
import { vpnSignatureFor } from '../analysis/vpn-signatures.js';
import { ImpostorSet, neverSuppress } from './guards.js';
import type { RuleConditions } from './types.js';

/**
 * Builds the ingest-time suppressor of a tenant from its active rules, with the same compiled
 * matcher preview and create use. Rules are tried in creation order; the first match wins.
 * Never-suppress guard (guards.ts): a detection to a risky destination, or of a suspected impostor
 * binary, is never suppressed at ingest, even by a rule created before the evidence appeared.
 *
 * The impostor set starts from the store's evidence and grows as calls arrive (`observe`). When a
 * binary is first flagged mid-stream, the detections of it that rules suppressed earlier are moved
 * back to `new` in the same transaction, so the verdict also applies to the past.
 */
export function suppressorFor(store: SqliteStore, tenant: string, extraRiskyDestinations?: string[]): Suppressor {
  const db = store.db;
  const tid = db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
  const service = new RulesService(store, { extraRiskyDestinations });
  const risky = service.risky;
  // Read in one snapshot (ingest builds this outside its write transactions).
  const impostors = tid === undefined ? new ImpostorSet() : db.transaction(() => service.repo.impostors(tid).set)();
  const rows =
    tid === undefined
      ? []
      : (db
          .prepare('SELECT id, detection_type, conditions FROM rules WHERE tenant_id = ? AND deleted_on IS NULL ORDER BY id')
          .all(tid) as { id: number; detection_type: string; conditions: string }[]);
  const rules: { id: number; rule: CompiledRule }[] = [];
  for (const r of rows) {
    try {
      rules.push({ id: r.id, rule: compileRule(r.detection_type, JSON.parse(r.conditions) as RuleConditions) });
    } catch {
      // A stored rule that no longer compiles matches nothing rather than everything.
    }
  }
  const facts = (s: { process: string; processSha256: string | null; processPath: string | null }) => ({ process: s.process, sha256: s.processSha256, path: s.processPath });
  return {
    match(subject: DetectionSubject): number {
      if (rules.length === 0) return 0;
      if (neverSuppress({ ...facts(subject), endpoint: subject.endpoint }, risky, impostors)) return 0;
      for (const { id, rule } of rules) {
        if (matchSubject(rule, subject)) return id;
      }
      return 0;
    },
    observe(call: CallFacts): boolean {
      if (!vpnSignatureFor(call.process)) return false;
      const b = facts(call);
      if (impostors.get(b)) return true;
      const reason = callContradiction({ ...b, parentChain: call.parentChain, host: call.host, port: call.port, isIp: call.isIp, risky: risky.matchHost(call.host) });
      if (!reason) return false;
      const flagged = { ...b, path: b.sha256 ? null : b.path, reason };
      impostors.add(flagged);
      const t = tid ?? (db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined);
      if (t !== undefined) {
        // Ingest evaluates between its write transactions: the flag and the moves commit together
        // (inside a write transaction already, e.g. --strict, this is a savepoint of it).
        db.transaction(() => {
          service.repo.flagImpostor(t, flagged);
          service.releaseProcesses(t, service.repo.processIdsOf(new ImpostorSet([flagged])));
        }).immediate();
      }
      return true;
    },
  };
}

/** A `suppressorFor` bound to config extras, for IngestOptions.suppressorFor. */
export function makeSuppressorFor(extraRiskyDestinations?: string[]): (store: SqliteStore, tenant: string) => Suppressor {
  return (store, tenant) => suppressorFor(store, tenant, extraRiskyDestinations);
}
