import type { CallFacts, DetectionSubject, Suppressor } from '../domain/subject.js';
import { compileRule, matchSubject, type CompiledRule } from './matcher.js';
import { callContradiction, type SuspectedImpostor } from '../analysis/impostor.js';
import { fileOfPath } from '../analysis/impostor-links.js';
import { vpnSignatureFor } from '../analysis/vpn-signatures.js';
import { riskyDestinations } from '../analysis/risky-destinations.js';
import { ImpostorSet, neverSuppress } from './guards.js';
import type { RulesPort, RulesStore } from '../storage/rules-port.js';

/**
 * Builds the ingest-time suppressor of a tenant from its active rules, with the same compiled
 * matcher preview and create use. Rules are tried in creation order; the first match wins.
 * Never-suppress guard (guards.ts): a detection to a risky destination, or of a suspected impostor
 * binary, is never suppressed at ingest, even by a rule created before the evidence appeared.
 *
 * The impostor set starts from the store's evidence and grows as calls arrive (`observe`, which is
 * synchronous: the engine evaluates a batch in memory). When a binary is first flagged mid-stream,
 * `settle()` stores the flag and moves the detections of it that rules suppressed earlier back to
 * `new`, in one write of the rules port. Ingest awaits it before each write batch, so nothing is
 * stored after the flag before the release is; a failed release fails that ingest write.
 */
export async function suppressorFor(store: RulesStore, tenant: string, extraRiskyDestinations?: string[]): Promise<Suppressor> {
  return suppressorOver(store.rulesPort(riskyDestinations(extraRiskyDestinations)), tenant);
}

export async function suppressorOver(port: RulesPort, tenant: string): Promise<Suppressor> {
  const risky = port.risky;
  const tid = await port.tenantId(tenant);
  const impostors = tid === undefined ? new ImpostorSet() : (await port.impostors(tid)).set;
  const rules: { id: number; rule: CompiledRule }[] = [];
  for (const r of tid === undefined ? [] : await port.activeRules(tid)) {
    try {
      rules.push({ id: r.id, rule: compileRule(r.detectionType, r.conditions) });
    } catch {
      // A stored rule that no longer compiles matches nothing rather than everything.
    }
  }
  // binaries flagged since the last settle(), not stored yet
  let flaggedSince: SuspectedImpostor[] = [];
  // A call since the last link() may have shown a flagged binary's file under its other identity
  // (analysis/impostor-links.ts): what is a flagged name, and where a flagged hash-less binary lives.
  let linkDue = false;
  let flaggedFiles: { names: Set<string>; pathless: Set<string> } | null = null;
  const files = () =>
    (flaggedFiles ??= {
      names: new Set(impostors.list().map((b) => b.process)),
      pathless: new Set(impostors.list().flatMap((b) => (b.sha256 === null && b.path ? [`${b.process}\u0001${fileOfPath(b.path)}`] : []))),
    });
  const mayBePartner = (b: { process: string; sha256: string | null; path: string | null }) => {
    const f = files();
    if (!b.path || !f.names.has(b.process)) return false;
    return b.sha256 === null || f.pathless.has(`${b.process}\u0001${fileOfPath(b.path)}`);
  };
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
    suspected: (b) => impostors.get(b) !== null,
    observe(call: CallFacts): boolean {
      if (!vpnSignatureFor(call.process)) return false;
      const b = facts(call);
      if (impostors.get(b)) return true;
      const reason = callContradiction({ ...b, parentChain: call.parentChain, host: call.host, port: call.port, isIp: call.isIp, risky: risky.matchHost(call.host) });
      if (!reason) {
        if (mayBePartner(b)) linkDue = true;
        return false;
      }
      const flagged = { ...b, path: b.sha256 ? null : b.path, reason };
      impostors.add(flagged);
      flaggedSince.push(flagged);
      flaggedFiles = null;
      linkDue = true;
      return true;
    },
    async settle(): Promise<void> {
      if (flaggedSince.length === 0) return;
      const flagged = flaggedSince;
      // One write: the flags and the moves commit together. Until it has, the binaries stay listed,
      // so a failed write is retried by the next settle (and fails that ingest write too).
      const stored = await port.write(async (tx) => {
        // before the tenant's first write nothing of it is stored: the flags wait for the next settle
        const t = tid ?? (await tx.tenantId(tenant));
        if (t === undefined) return false;
        for (const b of flagged) await tx.flagImpostor(t, b);
        await tx.releaseBinaries(t, new ImpostorSet(flagged));
        return true;
      });
      if (stored) flaggedSince = flaggedSince.slice(flagged.length);
    },
    async link(): Promise<SuspectedImpostor[]> {
      if (!linkDue) return [];
      // The store's verdict links what it holds, this write batch included (impostor-links.ts).
      // Recorded like a flag, so the verdict's change counter moves with it on PostgreSQL, and
      // released, so what rules suppressed of the file's other identity comes back as new.
      const linked = await port.write(async (tx) => {
        const t = tid ?? (await tx.tenantId(tenant));
        if (t === undefined) return [];
        const fresh = (await tx.impostors(t)).set.list().filter((b) => impostors.get(b) === null);
        for (const b of fresh) await tx.flagImpostor(t, b);
        if (fresh.length > 0) await tx.releaseBinaries(t, new ImpostorSet(fresh));
        return fresh;
      });
      for (const b of linked) impostors.add(b);
      if (linked.length > 0) flaggedFiles = null;
      linkDue = false;
      return linked;
    },
  };
}
