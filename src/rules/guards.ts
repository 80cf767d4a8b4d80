import { binaryKey, describeBinary, type BinaryRef, type SuspectedImpostor } from '../analysis/impostor.js';
import { endpointHostPattern } from './matcher.js';
import { parseIpRange } from '../domain/ip.js';
import { vpnSignatureFor, type VpnSignature } from '../analysis/vpn-signatures.js';
import type { RuleConditions } from './types.js';

/**
 * The never-suppress guard as one pure decision: a detection to a risky destination, or of a
 * binary suspected of being an impostor, is never suppressed by any rule. The SQL side (preview,
 * create, update, restore) excludes the same endpoint and process ids, computed with the same
 * functions; ingest calls this directly.
 */

export interface GuardFacts extends BinaryRef {
  /** "host:port" */
  endpoint: string;
  /** the address the call went to, when known: a configured risky range covers named calls too */
  ip?: string | null;
}

/** What the guard reads of the risky list (analysis/risky-destinations.ts). */
export interface RiskyMatcher {
  matchEndpoint(endpoint: string): string | null;
  matchHost(host: string): string | null;
}

export type GuardRefusal = { kind: 'risky'; entry: string; reason: string } | { kind: 'impostor'; binary: SuspectedImpostor; reason: string };

export class ImpostorSet {
  private readonly byKey = new Map<string, SuspectedImpostor>();
  /** flagged binaries by their sha256 (lower case), whatever name they were flagged under */
  private readonly byHash = new Map<string, SuspectedImpostor>();
  constructor(binaries: Iterable<SuspectedImpostor> = []) {
    for (const b of binaries) this.add(b);
  }
  /** true when the binary was not in the set before */
  add(b: SuspectedImpostor): boolean {
    const k = binaryKey(b);
    if (this.byKey.has(k)) return false;
    this.byKey.set(k, b);
    if (b.sha256 && !this.byHash.has(b.sha256.toLowerCase())) this.byHash.set(b.sha256.toLowerCase(), b);
    return true;
  }
  /**
   * The flag of this binary: its own, or that of the same file (sha256) flagged under another name.
   * A file is one binary whatever it is called: flagged as `tailscale`, its copy run as `tailscaled`
   * must not pass for a genuine daemon, take a suggested rule, or stay suppressed.
   */
  get(b: BinaryRef): SuspectedImpostor | null {
    const flag = this.flagOf(b);
    if (flag === null || binaryKey(flag) === binaryKey(b)) return flag;
    return { process: b.process, sha256: b.sha256, path: b.path, reason: `the same file (sha256) as ${describeBinary(flag)}, flagged: ${flag.reason}` };
  }
  /** The member of the set this binary is flagged by (itself, or its file under another name), or null. */
  flagOf(b: BinaryRef): SuspectedImpostor | null {
    return this.byKey.get(binaryKey(b)) ?? (b.sha256 ? this.byHash.get(b.sha256.toLowerCase()) : undefined) ?? null;
  }
  /** True when a flagged binary has this sha256: a process with it is that file, whatever its name. */
  flagsHash(sha256: string): boolean {
    return this.byHash.size > 0 && this.byHash.has(sha256.toLowerCase());
  }
  /** The sha256 values (lower case) of the flagged binaries: every process with one of them is the same file. */
  hashes(): string[] {
    return [...this.byHash.keys()];
  }
  get size(): number {
    return this.byKey.size;
  }
  list(): SuspectedImpostor[] {
    return [...this.byKey.values()];
  }
}

export function neverSuppress(f: GuardFacts, risky: RiskyMatcher, impostors: ImpostorSet): GuardRefusal | null {
  const entry = risky.matchEndpoint(f.endpoint);
  if (entry) return { kind: 'risky', entry, reason: `${f.endpoint} is the risky destination ${entry}` };
  const range = f.ip ? risky.matchHost(f.ip) : null;
  if (range) return { kind: 'risky', entry: range, reason: `${f.endpoint} was reached at ${f.ip}, in the risky range ${range}` };
  return impostorRefusal(f, impostors);
}

/** A binary a suppression rule would cover, with the risky destinations it is known to call. */
export interface CoveredBinary extends BinaryRef {
  /** "host:port" of every risky destination the binary called */
  riskyCalls: readonly string[];
}

/**
 * The never-suppress guard for a whole rule: the first reason a rule covering these binaries would
 * silence a detection that must stay visible (a risky destination one of them calls, or a binary
 * suspected of being an impostor), or null. A destination flagged risky that the list does not
 * confirm is still refused: the guard fails closed.
 */
export function coverageRefusal(covered: readonly CoveredBinary[], risky: Pick<RiskyMatcher, 'matchEndpoint'>, impostors: ImpostorSet): GuardRefusal | null {
  for (const b of covered) {
    for (const endpoint of b.riskyCalls) {
      const entry = risky.matchEndpoint(endpoint);
      if (entry) return { kind: 'risky', entry, reason: `${endpoint} is the risky destination ${entry}` };
      return impostorRefusal(b, impostors) ?? { kind: 'risky', entry: endpoint, reason: `${endpoint} is a risky destination` };
    }
    const imp = impostorRefusal(b, impostors);
    if (imp) return imp;
  }
  return null;
}

function impostorRefusal(b: BinaryRef, impostors: ImpostorSet): GuardRefusal | null {
  const imp = impostors.get(b);
  return imp ? { kind: 'impostor', binary: imp, reason: `${describeBinary(imp)} is a suspected impostor (${imp.reason})` } : null;
}

/** What unpinnedDaemonNames reads of a compiled rule (rules/matcher.ts CompiledRule). */
export interface RuleShape {
  /** the process-name predicate; null when the rule has no process condition */
  process: ((normName: string) => boolean) | null;
  /** a process_sha256 condition */
  sha256: unknown;
  conditions: RuleConditions;
}

/**
 * The VPN / mesh daemon names a rule covers by name alone: its process condition matches them, and
 * neither a process_sha256 nor a destination condition narrows it (pinsDestination: a range as wide
 * as half the Internet does not). Such a rule also silences any binary renamed to one of those names
 * that has shown no contradicting call yet (one calling only direct IPs, say): the name proves nothing
 * (the analysis suggests no rule without a hash for the same reason). Empty when the rule is pinned
 * or names no daemon.
 */
export function unpinnedDaemonNames(r: RuleShape, daemonNames: readonly string[]): string[] {
  if (r.process === null || r.sha256) return [];
  return daemonNames.filter((n) => r.process!(n) && !pinsDestination(r, vpnSignatureFor(n)));
}

/**
 * Whether the rule's destination narrows a daemon's calls so far that a renamed binary is not
 * silenced wherever it calls: it names a server (namesServer: a written-out host, an address, a
 * range no wider than /24 or /64), or a range or host pattern inside the daemon's own signature
 * (`100.64.0.0/10`, `*.tailscale.com` for tailscaled). `0.0.0.0/1`, `ip_address=1*` or `*:41641`
 * do not: they take any server, the one a renamed binary calls on the daemon's port too.
 */
function pinsDestination(r: RuleShape, sig: VpnSignature | null): boolean {
  if (namesServer(r)) return true;
  if (sig === null) return false;
  const { endpoint, host, ip_address: ip } = r.conditions;
  const range = ip === undefined ? null : parseIpRange(ip.trim());
  if (range !== null && sig.cidrs.some((c) => {
    const own = parseIpRange(c)!;
    return range.prefixLength >= own.prefixLength && own.contains(range.first);
  })) return true;
  const own = (h: string) => sig.domains.some((d) => d === h.toLowerCase());
  return (host !== undefined && own(host.trim())) || (endpoint !== undefined && own(endpointHostPattern(endpoint.trim())));
}

/**
 * The names of daemons whose port is their whole signature (OpenVPN, WireGuard: `portOnlyNames`) that
 * a rule covers with no destination condition. Pinned to a hash or not, such a rule silences the
 * binary's calls to any server on that port, the user's or another's: a renamed binary calling its
 * own server there is judged just as genuine. Empty when the rule names a destination.
 */
export function serverlessDaemonNames(r: RuleShape, portOnlyNames: readonly string[]): string[] {
  if (r.process === null || namesServer(r)) return [];
  return portOnlyNames.filter((n) => r.process!(n));
}

/**
 * Whether the rule names servers: an endpoint or host whose host is written out (no glob), an
 * address, or a range no wider than /24 (IPv4) or /64 (IPv6). `*:1194`, `*.com` or `0.0.0.0/1` name
 * any server on the port.
 */
export function namesServer(r: Pick<RuleShape, 'conditions'>): boolean {
  const { endpoint, host, ip_address: ip } = r.conditions;
  const literal = (h: string) => h !== '' && !/[*?[\]]/.test(h);
  if (endpoint !== undefined && literal(endpointHostPattern(endpoint.trim()))) return true;
  if (host !== undefined && literal(host.trim())) return true;
  if (ip !== undefined) {
    const range = parseIpRange(ip.trim());
    if (range !== null && range.prefixLength >= (range.first.includes(':') ? 64 : 24)) return true;
  }
  return false;
}

