import type { CallFacts, DetectionSubject, Releases, Suppressor } from '../domain/subject.js';
import { compileStoredRule, matchSubject, type CompiledRule } from './matcher.js';
import { callContradiction, otherNameBinaryEvidence, otherNameReason, otherNameRiskyCall, riskyOfCall, sameFileOtherNameImpostors, type BinaryRef, type OtherNameEvidence, type SuspectedImpostor } from '../analysis/impostor.js';
import { fileKey, isLink } from '../analysis/impostor-links.js';
import { daemonClaim } from '../analysis/vpn-signatures.js';
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
  const verdict = tid === undefined ? { set: new ImpostorSet(), files: [], hashless: [], hashedDaemons: [] } : await port.impostors(tid);
  const impostors = verdict.set;
  const rules: { id: number; rule: CompiledRule }[] = [];
  for (const r of tid === undefined ? [] : await port.activeRules(tid)) {
    const rule = compileStoredRule(r.detectionType, r.conditions);
    if (rule) rules.push({ id: r.id, rule });
  }
  // binaries flagged since the last settle(), not stored yet
  let flaggedSince: SuspectedImpostor[] = [];
  // what settle() and link() flagged, and moved back to new, since the last takeReleases()
  let releases: Releases = { released: 0, binaries: [] };
  const noteReleased = (n: number, binaries: readonly SuspectedImpostor[]) => {
    releases.released += n;
    for (const b of binaries) releases.binaries.push({ tenant, process: b.process, sha256: b.sha256, path: b.path, reason: b.reason });
  };
  // A call since the last link() may have shown a flagged binary's file under its other identity
  // (analysis/impostor-links.ts). The files flagged binaries were seen at: the store's, and those
  // seen since. Only a call at one of them makes link() ask the store, so a genuine daemon whose
  // hash cannot be read costs nothing as long as it lives at its own path.
  // Once per ingest: a link whose release an earlier ingest did not store (it stopped between its
  // write and link()) is released by the first link() of this one.
  let linkDue = verdict.files.length > 0;
  const files = new Set(verdict.files);
  /** where a daemon-named binary ran with no readable hash: only there can a flagged hash link */
  const hashless = new Set(verdict.hashless);
  const facts = (s: { process: string; processSha256: string | null; processPath: string | null }) => ({ process: s.process, sha256: s.processSha256, path: s.processPath });
  // A file is its hash, whatever it runs as: a risky call by a daemon's file under another name flags
  // the daemon-named binaries of that file (analysis/impostor.ts sameFileOtherNameImpostors), those
  // the store holds and those this ingest sees, in either order.
  const daemonsByHash = new Map<string, BinaryRef[]>();
  let loaded = false;
  const noteDaemon = (b: BinaryRef) => {
    const h = b.sha256!.toLowerCase();
    const known = daemonsByHash.get(h);
    if (known?.some((k) => k.process === b.process)) return;
    if (!known) daemonsByHash.set(h, [b]);
    else known.push(b);
    // A daemon-named binary new to the store: its file may have done under another name, in an
    // earlier ingest, what no daemon's file does. Only the store knows (its verdict reads the other
    // names' runs), so link() asks it after this batch is written.
    if (loaded) linkDue = true;
  };
  for (const b of verdict.hashedDaemons) noteDaemon(b);
  loaded = true;
  /** per hash: the first thing its file did under a name that is no daemon's that no daemon's file does */
  const evidenceByHash = new Map<string, OtherNameEvidence>();
  /**
   * The binary evidence of a process under another name (where it ran from, how it started), judged
   * once per process: the engine derives one parent chain per process object and passes it with
   * each of its calls (a regex over the path per call was measurable).
   */
  const binaryJudged = new WeakMap<object, { path: string | null; sha256: string; evidence: OtherNameEvidence | null }>();
  const binaryEvidence = (call: CallFacts, h: string): OtherNameEvidence | null => {
    const known = binaryJudged.get(call.parentChain);
    if (known !== undefined && known.path === call.processPath && known.sha256 === h) return known.evidence;
    const evidence = otherNameBinaryEvidence({ sha256: h, process: call.process, path: call.processPath, parentChain: call.parentChain });
    binaryJudged.set(call.parentChain, { path: call.processPath, sha256: h, evidence });
    return evidence;
  };
  const flag = (flagged: SuspectedImpostor, file: string | null) => {
    impostors.add(flagged);
    flaggedSince.push(flagged);
    if (file !== null) files.add(file);
    linkDue = true;
  };
  const callOf = (c: CallFacts) => ({ parentChain: c.parentChain, host: c.host, port: c.port, isIp: c.isIp, detectionType: c.detectionType, ...riskyOfCall(risky, c.host, c.ip) });
  return {
    match(subject: DetectionSubject): number {
      if (rules.length === 0) return 0;
      if (neverSuppress({ ...facts(subject), endpoint: subject.endpoint, ip: subject.ip }, risky, impostors)) return 0;
      for (const { id, rule } of rules) {
        if (matchSubject(rule, subject)) return id;
      }
      return 0;
    },
    suspected: (b) => impostors.get(b) !== null,
    // observe() flags only a binary whose name claims a VPN daemon (its own, a look-alike, one extending or containing it)
    canFlag: (process) => daemonClaim(process) !== null,
    mayBeLinked: (b) => b.path !== null && files.has(fileKey(b.process, b.path)),
    observe(call: CallFacts): boolean {
      // Only a name claiming a daemon can be flagged by its calls, but a flag is the file's (ImpostorSet.get):
      // the flagged hash run as `curl` is the same binary, and its calls to the job's baseline or
      // allowed endpoints must raise, and teach nothing, as they do under the daemon's name.
      if (!daemonClaim(call.process)) {
        if (call.processSha256 === null) return false;
        const h = call.processSha256.toLowerCase();
        if (!evidenceByHash.has(h)) {
          const e = riskyOfCall(risky, call.host, call.ip).risky !== null ? otherNameRiskyCall(h, call.process, call.host) : binaryEvidence(call, h);
          if (e !== null) {
            evidenceByHash.set(h, e);
            for (const d of sameFileOtherNameImpostors(daemonsByHash.get(h) ?? [], [e])) if (!impostors.get(d)) flag(d, null);
          }
        }
        return impostors.flagsHash(call.processSha256);
      }
      const b = facts(call);
      if (b.sha256 !== null) noteDaemon({ process: b.process, sha256: b.sha256, path: null });
      const file = b.path ? fileKey(b.process, b.path) : null;
      if (file !== null && b.sha256 === null) hashless.add(file);
      const known = impostors.get(b);
      if (known) {
        // A flagged hash calling where a hash-less binary ran, or a flagged hash-less binary
        // contradicting its daemon again, may link the file's other identity in this run.
        if (file !== null) {
          files.add(file);
          if (b.sha256 !== null ? hashless.has(file) : callContradiction({ ...b, ...callOf(call) }) !== null) linkDue = true;
        }
        return true;
      }
      const other = b.sha256 === null ? undefined : evidenceByHash.get(b.sha256.toLowerCase());
      const reason = other !== undefined ? otherNameReason(other) : callContradiction({ ...b, ...callOf(call) });
      if (!reason) {
        if (file !== null && files.has(file)) linkDue = true;
        return false;
      }
      flag({ ...b, path: b.sha256 ? null : b.path, reason }, file);
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
        if (t === undefined) return null;
        for (const b of flagged) await tx.flagImpostor(t, b);
        return tx.releaseBinaries(t, new ImpostorSet(flagged));
      });
      if (stored !== null) {
        flaggedSince = flaggedSince.slice(flagged.length);
        noteReleased(stored, flagged);
      }
    },
    takeReleases(): Releases {
      const taken = releases;
      releases = { released: 0, binaries: [] };
      return taken;
    },
    async link(): Promise<SuspectedImpostor[]> {
      if (!linkDue) return [];
      // The store's verdict links what it holds, this write batch included (impostor-links.ts).
      // Recorded like a flag, so the verdict's change counter moves with it on PostgreSQL, and
      // released, so what rules suppressed of the file's other identity comes back as new.
      const { linked, released, fresh, unknown } = await port.write(async (tx) => {
        const t = tid ?? (await tx.tenantId(tenant));
        if (t === undefined) return { linked: [], released: 0, fresh: [], unknown: [] };
        const now = await tx.impostors(t);
        for (const f of now.files) files.add(f);
        for (const f of now.hashless) hashless.add(f);
        // Every binary of the verdict is released, not only those new here: one this suppressor
        // already knew (loaded linked, or flagged before its partner arrived) may have detections
        // that were suppressed before it was linked.
        const fresh = now.set.list().filter((b) => impostors.get(b) === null || isLink(b));
        for (const b of fresh) await tx.flagImpostor(t, b);
        return {
          linked: now.set.list(),
          released: now.set.size > 0 ? await tx.releaseBinaries(t, now.set) : 0,
          fresh,
          // suspected only now: a link recorded again, or a copy of a hash already flagged, is no news
          unknown: fresh.filter((b) => impostors.get(b) === null),
        };
      });
      // what was released is explained by the binaries linked here, or else by those an earlier ingest left owing
      noteReleased(released, released === 0 ? unknown : fresh.length ? fresh : linked);
      for (const b of linked) impostors.add(b);
      linkDue = false;
      return linked;
    },
  };
}
