import type { ParentLink } from '../domain/types.js';
import { formatChain } from '../domain/process-name.js';
import type { ImpostorSet } from '../rules/guards.js';
import { lookalikeReason, runsFromReason } from './impostor.js';
import { addCount, cmp, mergeCounts, topN, uniq, type Counts, type IdCounter } from './counts.js';
import type { EndpointFacts } from './endpoint-facts.js';
import { daemonClaim, namesOwnServer, portOnly, suspiciousParent, vpnSignatureFor, type VpnSignature } from './vpn-signatures.js';
import type { BinaryVerdict, VpnEvidence } from './types.js';

/**
 * The VPN verdict of each binary of a process group, with its evidence: pure, over plain data (the
 * group's variants with their destination counts and parent chains). A name match alone proves
 * nothing (DOMAIN.md): supporting evidence is a destination inside the daemon's signature;
 * contradicting evidence is a risky destination, a domain outside the signature, or a parent chain
 * through a package manager or interpreter. Any contradiction makes the binary a suspected impostor.
 */

/** One process variant of a group: a distinct (path, sha256, parent chain) under the group's name. */
export interface VariantEvidence {
  variant: number;
  sha256: string | null;
  path: string | null;
  parents: ParentLink[];
  /** detections of this variant */
  n: number;
  /** detections per destination */
  eps: Counts;
  /** calls of this variant into a configured risky range under a name that is not risky itself */
  riskyAt?: readonly RiskyAddressCall[];
}

/** Detections of one variant to one destination that reached an address in a risky range. */
export interface RiskyAddressCall {
  endpoint: number;
  ip: string;
  /** the range's entry in the risky list */
  entry: string;
  n: number;
}

/** One executable claiming the name: its sha256, or its path when the hash is unknown. */
export interface Binary {
  key: string;
  sha256: string | null;
  paths: Map<string | null, number>;
  variants: VariantEvidence[];
  count: number;
}

export interface JudgedBinary {
  key: string;
  verdict: BinaryVerdict;
  /** the binary's variants */
  variants: number[];
  /** risky destinations ("host:port", or "host:port at ip" for one reached in a risky range) this binary called in view */
  riskyCalls: string[];
  /**
   * For a daemon whose port is its whole signature (portOnly): the destinations that supported it,
   * with their detections, most first. Empty for every other daemon.
   */
  servers: [endpoint: string, n: number][];
  /**
   * True when a destination of the daemon's own (one of its domains, or an address in one of its
   * ranges) supports the binary, not its port alone: a renamed binary calling its own server on
   * tailscaled's port 41641 is supported by the port as well as the daemon is (suggestion.ts).
   */
  vouchedByServers: boolean;
  /**
   * Direct-IP destinations that neither support nor contradict the daemon (no signal: a port and an
   * address outside its signature), with their detections, most first. A daemon's peers are often
   * such addresses, so they prove nothing either way; but a rule over the binary silences them too,
   * and a renamed binary that made one call inside the signature looks exactly like this.
   */
  unexplained: [endpoint: string, n: number][];
}

/** A judged binary as its rationale and warnings name it: its short hash and its path. */
export function describeVerdict(v: BinaryVerdict): string {
  return `sha256 ${v.sha256 ? v.sha256.slice(0, 12) : 'unknown'} (${v.path ?? 'unknown path'})`;
}

export function binaryKeyOf(v: { sha256: string | null; path: string | null }): string {
  return v.sha256 ? `sha:${v.sha256}` : `path:${v.path ?? ''}`;
}

/** Groups variants into binaries, in the order the variants come. */
export function groupBinaries(variants: VariantEvidence[]): Binary[] {
  const binaries = new Map<string, Binary>();
  for (const v of variants) {
    const key = binaryKeyOf(v);
    let b = binaries.get(key);
    if (!b) {
      b = { key, sha256: v.sha256, paths: new Map(), variants: [], count: 0 };
      binaries.set(key, b);
    }
    b.variants.push(v);
    b.count += v.n;
    addCount(b.paths, v.path, v.n);
  }
  return [...binaries.values()];
}

/**
 * Verdict for one binary of a VPN-named group. `eps` is the binary's detections per destination
 * (its variants' counts merged).
 */
export function judgeBinary(
  facts: EndpointFacts, sig: VpnSignature, name: string, b: Binary, eps: Counts, v: BinaryVerdict, riskyCalls: string[],
  servers: [endpoint: string, n: number][] = [],
  unexplained: [endpoint: string, n: number][] = [],
): { vouchedByServers: boolean } {
  let vouchedByServers = false;
  const support = new Map<string, number>();
  const serversToo = portOnly(sig);
  const contra = new Map<string, number>();
  // a look-alike of the daemon's name: every call of it contradicts the daemon, whatever it reached
  const like = lookalikeReason(name);
  if (like) addCount(contra, like, b.count);
  for (let i = 0; i < eps.ids.length; i++) {
    const id = eps.ids[i]!;
    const n = eps.n[i]!;
    if (facts.isRisky(id)) {
      riskyCalls.push(facts.endpoint(id));
      addCount(contra, `risky destination ${facts.endpoint(id)}`, n);
      continue;
    }
    const s = facts.signalsFor(sig, id);
    for (let k = 0; k < s.length; k++) {
      addCount(support, s[k]!, n);
      if (!vouchedByServers && namesOwnServer(sig, s[k]!)) vouchedByServers = true;
    }
    if (serversToo && s.length > 0) servers.push([facts.endpoint(id), n]);
    if (s.length === 0) {
      if (!facts.isIp(id)) addCount(contra, `domain outside ${sig.daemon}'s signature: ${facts.endpoint(id)}`, n);
      else unexplained.push([facts.endpoint(id), n]);
    }
  }
  for (const variant of b.variants) {
    for (const r of variant.riskyAt ?? []) {
      const at = `${facts.endpoint(r.endpoint)} at ${r.ip}`;
      riskyCalls.push(at);
      addCount(contra, `risky destination ${at} (${r.entry})`, r.n);
    }
    const bad = suspiciousParent(variant.parents);
    if (bad) addCount(contra, `started through ${bad}: ${name} < ${formatChain(variant.parents)}`, variant.n);
    const temp = runsFromReason(sig.daemon, variant.path);
    if (temp) addCount(contra, `${temp}: ${variant.path}`, variant.n);
  }
  v.supporting = topN(support, 10, (k) => k).map(([s, n]) => `${s} (${n})`);
  v.contradicting = topN(contra, 10, (k) => k).map(([s, n]) => `${s} (${n})`);
  if (contra.size > 0 && support.size === 0) {
    v.contradicting.push(`binary ${b.sha256 ? `sha256 ${b.sha256.slice(0, 12)}` : 'with unknown hash'} is seen only with such traffic (${b.count})`);
  }
  v.verdict = contra.size > 0 ? 'impostor' : support.size > 0 ? 'genuine' : 'unverified';
  servers.sort((x, y) => y[1] - x[1] || cmp(x[0], y[0]));
  unexplained.sort((x, y) => y[1] - x[1] || cmp(x[0], y[0]));
  return { vouchedByServers: vouchedByServers && v.verdict === 'genuine' };
}

/**
 * Verdicts of every binary of a group, most detections first (ties by key). Names that are no
 * daemon's leave every binary unverified. A binary the tenant's other evidence flags (another status,
 * window or repo, or a call seen at ingest that left no detection) is an impostor here too, so the
 * analysis and the rule guards always agree. A name that extends or contains a daemon's
 * ("tailscaled-helper", "my-tailscaled") is no daemon's here, no signature vouches for it, but a
 * binary of it the tenant's verdict flags (impostor.ts callContradiction) is an impostor: the group is
 * shown whatever the minimum count, and says why no rule hides it.
 */
export function judgeGroup(name: string, variants: VariantEvidence[], facts: EndpointFacts, impostors: ImpostorSet, scratch: IdCounter): JudgedBinary[] {
  const sig = vpnSignatureFor(name);
  const extension = sig === null && daemonClaim(name) !== null;
  const out: JudgedBinary[] = [];
  for (const b of groupBinaries(variants)) {
    const path = topN(b.paths, 1, (k) => k ?? '')[0]?.[0] ?? null;
    const v: BinaryVerdict = { sha256: b.sha256, path, count: b.count, verdict: 'unverified', supporting: [], contradicting: [] };
    const riskyCalls: string[] = [];
    const servers: [string, number][] = [];
    const unexplained: [string, number][] = [];
    let vouchedByServers = false;
    if (sig) {
      const eps = mergeCounts(b.variants.map((x) => x.eps), scratch);
      vouchedByServers = judgeBinary(facts, sig, name, b, eps, v, riskyCalls, servers, unexplained).vouchedByServers;
      const flagged = impostors.get({ process: name, sha256: b.sha256, path });
      if (flagged && v.verdict !== 'impostor') {
        v.verdict = 'impostor';
        v.contradicting.push(`flagged from the tenant's other evidence: ${flagged.reason}`);
        vouchedByServers = false;
      }
    } else if (extension) {
      const flagged = impostors.get({ process: name, sha256: b.sha256, path });
      if (flagged) {
        v.verdict = 'impostor';
        v.contradicting.push(`flagged by the tenant's verdict: ${flagged.reason}`);
      }
    }
    out.push({ key: b.key, verdict: v, variants: b.variants.map((x) => x.variant), riskyCalls, servers, vouchedByServers, unexplained });
  }
  out.sort((a, b) => b.verdict.count - a.verdict.count || cmp(a.key, b.key));
  return out;
}

/**
 * For a daemon whose port is its whole signature: genuine binaries that reached no server in common
 * with the first (most detections), described with their servers, or null. Two installed versions of
 * one daemon reach the same server; a binary with servers of its own may be a renamed one calling its
 * own, and the port cannot tell.
 */
export function serversApart(judged: readonly JudgedBinary[]): string | null {
  const g = judged.filter((j) => j.verdict.verdict === 'genuine' && j.servers.length > 0);
  const first = new Set(g[0]?.servers.map(([e]) => e));
  const apart = g.slice(1).filter((j) => !j.servers.some(([e]) => first.has(e)));
  if (apart.length === 0) return null;
  const describe = (j: JudgedBinary) =>
    `${describeVerdict(j.verdict)} to ${j.servers.slice(0, 3).map(([e]) => e).join(', ')}${j.servers.length > 3 ? ', ...' : ''}`;
  return [g[0]!, ...apart].slice(0, 4).map(describe).join('; ');
}

/** The group's VPN evidence (vpn_evidence of the result). */
export function vpnEvidence(name: string, judged: JudgedBinary[]): VpnEvidence {
  const sig = vpnSignatureFor(name);
  const verdicts = judged.map((j) => j.verdict);
  return {
    name_match: sig !== null,
    daemon: sig?.daemon ?? null,
    supporting: uniq(verdicts.flatMap((v) => (v.verdict === 'genuine' ? v.supporting : []))).slice(0, 12),
    contradicting: uniq(verdicts.flatMap((v) => v.contradicting)).slice(0, 12),
    binaries: sig !== null ? verdicts.map((v) => ({ ...v })) : [],
  };
}
