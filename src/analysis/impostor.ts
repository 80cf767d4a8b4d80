import { daemonClaim, daemonLookalike, jobWritableDirectory, signatureSignals, suspiciousParent, temporaryDirectory, type VpnSignature } from './vpn-signatures.js';
import { containerImageOf, inMemoryExecutable, normalizeProcessName } from '../domain/process-name.js';
import { NEVER_DAEMON_TYPES } from '../domain/types.js';

/**
 * The suspected-impostor verdict as pure functions over plain data. The analysis, the rule guards
 * (create, update, preview, restore) and ingest (suppression and baseline learning) all use these,
 * so they agree on which binaries are suspected impostors.
 *
 * A binary is one executable claiming a process name: its sha256, or its path when the hash is
 * unknown (the analysis groups binaries the same way). It is a suspected impostor when its name is a
 * known VPN / mesh daemon and ANY of its calls contradicts that daemon: a risky destination, a
 * domain outside the daemon's signature, a parent chain through a package manager or interpreter, a
 * binary run from a temporary or job-writable folder, from memory or in a container image; or its
 * file did one of those under another name. A name that extends or contains a daemon's
 * ("tailscaled-helper", "my-tailscaled") is judged by the same checks but the daemon's signature
 * (extensionContradiction).
 * The verdict is monotone: more evidence can flag a binary, never clear it.
 */

export interface BinaryRef {
  /** normalised process name */
  process: string;
  sha256: string | null;
  path: string | null;
}

export interface CallEvidence extends BinaryRef {
  parentChain: readonly { name: string; path?: string | null }[];
  host: string;
  port: number | null;
  isIp: boolean;
  /** the risky-list entry the destination falls under, or null */
  risky: string | null;
  /** the address that put the call under `risky` (a configured range), when its name is not risky itself */
  riskyAt?: string | null;
  /** the type of an imported detection (StepSecurity), when the evidence is one */
  detectionType?: string;
}

export interface SuspectedImpostor extends BinaryRef {
  /** the first contradiction found */
  reason: string;
}

export function binaryKey(b: BinaryRef): string {
  return `${b.process}\u0001${b.sha256 ? `sha:${b.sha256.toLowerCase()}` : `path:${b.path ?? ''}`}`;
}

/**
 * Why this call contradicts the daemon its binary is named after; null when it does not (or the name
 * claims no daemon, vpn-signatures.ts daemonClaim).
 */
export function callContradiction(c: CallEvidence): string | null {
  return contradiction(c);
}

function contradiction(c: CallEvidence, started?: StartContradictions): string | null {
  const claim = daemonClaim(c.process);
  if (!claim) return null;
  if (claim.within !== null) {
    const why = extensionContradiction(claim.sig, c, started);
    return why === null ? null : `named ${normalizeProcessName(c.process)}, after ${claim.within}: ${why}`;
  }
  const sig = claim.sig;
  const like = lookalikeReason(c.process);
  if (like) return like;
  const never = neverDaemonCall(sig, c);
  if (never) return never;
  // a detection with no destination (a secret in a build log) says nothing about where it calls
  if (!c.isIp && c.host !== '' && signatureSignals(sig, c.host, c.port, false).length === 0) return `domain outside ${sig.daemon}'s signature: ${c.host}`;
  return binaryContradiction(sig, c, started);
}

/**
 * Why a binary whose name extends or contains a daemon's ("tailscaled-helper",
 * "cloudflared-linux-amd64", "my-tailscaled", "nm-openvpn-service") is a suspected impostor, or
 * null. It is judged as the daemon's binary is, by what no daemon's binary does: a risky call or a
 * detection no daemon raises, a package manager or interpreter as parent, a temporary, job-writable
 * or in-memory executable, a container image. Not by where else it calls: such a name is as often
 * another program of the vendor's, a release's file name installed as it was downloaded, or another
 * project's program built around the daemon (NetworkManager's OpenVPN plugin), whose destinations
 * the daemon's signature does not describe. So a release-named cloudflared in /usr/local/bin stays
 * unflagged, and the same file run from the job's temp folder is a suspected impostor that no rule
 * over `cloudflared*` (or `*tailscaled*` over a `my-tailscaled`) hides. A risky call counts as it
 * does for the daemon's own name: such a binary is judged with the daemon's, no longer as another
 * name of its file (sameFileOtherNameImpostors), so its risky call still flags its file's copy run as
 * the daemon.
 */
function extensionContradiction(sig: VpnSignature, c: CallEvidence, started?: StartContradictions): string | null {
  return neverDaemonCall(sig, c) ?? binaryContradiction(sig, c, started);
}

/** A call no daemon makes, wherever its binary runs from: a detection type no daemon raises, a risky destination. */
function neverDaemonCall(sig: VpnSignature, c: CallEvidence): string | null {
  if (c.detectionType !== undefined && NEVER_DAEMON_TYPES.has(c.detectionType)) return `a ${c.detectionType} detection: ${sig.daemon} does no such thing`;
  if (c.risky) return `risky destination ${c.host}${c.riskyAt ? ` at ${c.riskyAt}` : ''}${c.risky !== c.host ? ` (${c.risky})` : ''}`;
  return null;
}

/** How the binary was started or where it runs from, when no installed daemon is started or runs so. */
function binaryContradiction(sig: VpnSignature, c: CallEvidence, started?: StartContradictions): string | null {
  if (started === undefined) return startContradiction(sig.daemon, c.parentChain, c.path);
  let byPath = started.get(c.parentChain);
  if (byPath === undefined) started.set(c.parentChain, (byPath = new Map()));
  const key = `${sig.daemon}\u0000${c.path ?? '\u0000'}`;
  let why = byPath.get(key);
  if (why === undefined) byPath.set(key, (why = startContradiction(sig.daemon, c.parentChain, c.path)));
  return why;
}

function startContradiction(daemon: string, parentChain: CallEvidence['parentChain'], path: string | null | undefined): string | null {
  const parent = suspiciousParent([...parentChain]);
  if (parent) return `started through ${parent}`;
  return runsFromReason(daemon, path);
}

/**
 * binaryContradiction's answers within one judgement of many calls, by parent chain array (the same
 * array for every call of one stored variant, storedCallEvidence) and then daemon and path: how a
 * binary was started and where it runs from do not change from call to call, and a store's evidence
 * is one call per variant and destination (129,026 of the genuine tailscaled's in the 10M benchmark
 * store, where judging each call's start and path again was a third of `rules create`'s CPU). A
 * chain array must not be changed while its calls are judged (CallEvidence's is read-only).
 */
type StartContradictions = WeakMap<CallEvidence['parentChain'], Map<string, string | null>>;

/**
 * Why a daemon's binary at `path` is a suspected impostor by where it runs from, or null: a temporary
 * directory, a folder the job or any user writes, memory (vpn-signatures.ts temporaryDirectory,
 * jobWritableDirectory, inMemoryExecutable), or a container image (domain/process-name.ts).
 */
export function runsFromReason(daemon: string, path: string | null | undefined): string | null {
  const temp = temporaryDirectory(path);
  if (temp !== null) return `runs from ${temp}, a temporary directory no installer puts ${daemon} in`;
  const writable = jobWritableDirectory(path);
  if (writable !== null) return `runs from ${writable.dir}, ${writable.what}, where no installer puts ${daemon}`;
  const memory = inMemoryExecutable(path);
  if (memory !== null) return `runs from ${memory}, with no file of its own: no installer runs ${daemon} that way`;
  const image = containerImageOf(path);
  return image === null ? null : `runs in the container image ${image}: the monitor named the image, not a binary it hashed, so nothing shows it is ${daemon}`;
}

/**
 * Why a name is a renamed binary by its name alone: it is drawn like a daemon's name without being it
 * (vpn-signatures.ts daemonLookalike). Null for every other name.
 */
export function lookalikeReason(processName: string): string | null {
  const name = normalizeProcessName(processName);
  const like = daemonLookalike(name);
  return like === null ? null : `named "${name}", drawn like ${like} but not it (${unlike(name, like)})`;
}

/** The characters that tell a look-alike name from the name it is drawn like, each with its code point. */
function unlike(name: string, like: string): string {
  const own = new Set(like);
  const odd = [...new Set([...name].filter((ch) => !own.has(ch)))];
  return odd.map((ch) => `${ch} U+${ch.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`).join(', ') || 'its letters differ';
}

/**
 * What a file did under a name that is no daemon's that no daemon's file does: `what` completes
 * "the same file (sha256 …) … as <process>".
 */
export interface OtherNameEvidence {
  sha256: string;
  /** the name it ran under */
  process: string;
  what: string;
}

/** A binary run under a name that is no daemon's, by a file whose sha256 is known. */
export interface OtherNameBinary {
  sha256: string;
  process: string;
  path: string | null;
  parentChain: readonly { name: string; path?: string | null }[];
}

/**
 * Where the binary ran from, or how it was started, when that is how a payload runs and no daemon
 * does: a temporary or job-writable folder, memory, a package manager or interpreter as parent (the
 * checks a daemon-named binary gets, runsFromReason and suspiciousParent). Null otherwise.
 */
export function otherNameBinaryEvidence(b: OtherNameBinary): OtherNameEvidence | null {
  const dir = temporaryDirectory(b.path) ?? jobWritableDirectory(b.path)?.dir ?? inMemoryExecutable(b.path);
  if (dir !== null) return { sha256: b.sha256, process: b.process, what: `ran from ${dir}` };
  const parent = suspiciousParent([...b.parentChain]);
  return parent === null ? null : { sha256: b.sha256, process: b.process, what: `was started through ${parent}` };
}

/** The evidence a call to a risky destination is, under a name that is no daemon's. */
export function otherNameRiskyCall(sha256: string, process: string, host: string): OtherNameEvidence {
  return { sha256, process, what: `called the risky destination ${host}` };
}

/** Why a daemon-named binary is a suspected impostor by what its file did under another name. */
export function otherNameReason(e: OtherNameEvidence): string {
  return `the same file (sha256 ${e.sha256.slice(0, 12)}) ${e.what} as ${e.process}`;
}

/**
 * Daemon-named binaries whose file, run under another name, did what no daemon's file does (found by
 * review): `/usr/local/bin/tailscaled` fetched from webhook.site as `python3`, then called its
 * attacker as `tailscaled`, and was judged genuine, because a flag is per name and a name that is
 * no daemon's is never flagged; so was a file first run from /tmp by npm as `update-helper`, then as
 * tailscaled from /usr/local/bin. A hash is the file, whatever it is called. Only the daemon-named
 * binaries of such a file are flagged: flagging every hash that ever called a risky destination or
 * ran from /tmp would make a curl's or python's other detections unsuppressible.
 */
export function sameFileOtherNameImpostors(daemons: readonly BinaryRef[], evidence: Iterable<OtherNameEvidence>): SuspectedImpostor[] {
  const byHash = new Map<string, OtherNameEvidence>();
  for (const e of evidence) if (!byHash.has(e.sha256.toLowerCase())) byHash.set(e.sha256.toLowerCase(), e);
  const out: SuspectedImpostor[] = [];
  for (const d of daemons) {
    const e = d.sha256 === null ? undefined : byHash.get(d.sha256.toLowerCase());
    if (e) out.push({ process: d.process, sha256: d.sha256, path: null, reason: otherNameReason(e) });
  }
  return out;
}

/** A stored process that shares a daemon-named binary's hash under another name. */
export interface StoredOtherName {
  id: number;
  norm_name: string;
  sha256: string;
  path: string | null;
  parent_chain: string;
}

/**
 * What stored processes sharing a daemon's hash did under their other names (both stores read it so):
 * each call of theirs to a risky destination, from the tenant's detections (a risky call always
 * leaves one), then where each that ran in the tenant (`ran`: any call of it stored, detection or
 * not) ran from and how it was started.
 */
export function storedOtherNameEvidence(
  others: readonly StoredOtherName[],
  calls: readonly { processId: number; host: string }[],
  ran: ReadonlySet<number>,
  risky: { matchHost(host: string): string | null },
): OtherNameEvidence[] {
  const byId = new Map(others.map((o) => [o.id, o]));
  const out: OtherNameEvidence[] = [];
  // The first evidence of a hash names it in the reason: taken in an order of names, not of the rows
  // a store happened to return (two stores worded one verdict two ways).
  const byName = <T>(key: (x: T) => string) => (a: T, b: T) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0);
  const named: { o: StoredOtherName; host: string }[] = [];
  for (const c of calls) {
    const o = byId.get(c.processId);
    if (o !== undefined) named.push({ o, host: c.host });
  }
  for (const n of named.sort(byName((x) => `${x.o.norm_name}\u0000${x.host}`))) {
    if (risky.matchHost(n.host) !== null) out.push(otherNameRiskyCall(n.o.sha256, n.o.norm_name, n.host));
  }
  for (const o of [...others].sort(byName((x) => `${x.norm_name}\u0000${x.path ?? ''}\u0000${x.parent_chain}`))) {
    if (!ran.has(o.id)) continue;
    const e = otherNameBinaryEvidence({ sha256: o.sha256, process: o.norm_name, path: o.path, parentChain: JSON.parse(o.parent_chain) as { name: string }[] });
    if (e !== null) out.push(e);
  }
  return out;
}

/** The daemon-named processes with a readable hash, as binaries (one per name and hash). */
export function hashedDaemons(procs: readonly { norm_name: string; sha256: string | null }[]): BinaryRef[] {
  const out = new Map<string, BinaryRef>();
  for (const p of procs) if (p.sha256) out.set(`${p.norm_name}\u0001${p.sha256.toLowerCase()}`, { process: p.norm_name, sha256: p.sha256, path: null });
  return [...out.values()];
}

/** The suspected impostors among the binaries of these calls. */
export function suspectedImpostors(calls: Iterable<CallEvidence>): SuspectedImpostor[] {
  const out = new Map<string, SuspectedImpostor>();
  const started: StartContradictions = new WeakMap();
  for (const c of calls) {
    const k = binaryKey(c);
    if (out.has(k)) continue;
    const reason = contradiction(c, started);
    if (reason) out.set(k, { process: c.process, sha256: c.sha256, path: c.sha256 ? null : c.path, reason });
  }
  return [...out.values()];
}

/**
 * The risky entry a call falls under: its destination's, or else that of the address it reached, as a
 * configured risky range covers named calls too (rules/guards.ts neverSuppress judges the same way).
 */
export function riskyOfCall(risky: { matchHost(host: string): string | null }, host: string, ip: string | null): { risky: string | null; riskyAt: string | null } {
  const byName = risky.matchHost(host);
  if (byName !== null || ip === null || ip === host) return { risky: byName, riskyAt: null };
  const byAddress = risky.matchHost(ip);
  return { risky: byAddress, riskyAt: byAddress === null ? null : ip };
}

/** A stored process named like a daemon, as both stores' dictionaries give it (its parent chain as JSON text). */
export interface StoredDaemonProcess {
  id: number;
  norm_name: string;
  path: string | null;
  sha256: string | null;
  parent_chain: string;
}

/**
 * Call evidence about stored daemon-named processes: each parent chain parsed once, not per
 * destination (a mesh daemon has thousands of peers), and each call judged for risk by its
 * destination or the address it reached (riskyOfCall).
 */
export function storedCallEvidence(procs: readonly StoredDaemonProcess[], risky: { matchHost(host: string): string | null }) {
  const byId = new Map(procs.map((p) => [p.id, { ...p, chain: JSON.parse(p.parent_chain) as { name: string }[] }]));
  return {
    byId,
    call(processId: number, host: string, port: number | null, isIp: boolean, ip: string | null): CallEvidence {
      const p = byId.get(processId)!;
      return { process: p.norm_name, sha256: p.sha256, path: p.path, parentChain: p.chain, host, port, isIp, ...riskyOfCall(risky, host, ip) };
    },
  };
}

export function describeBinary(b: BinaryRef): string {
  return `${b.process} ${b.sha256 ? `sha256 ${b.sha256.slice(0, 12)}` : `at ${b.path ?? 'an unknown path'}`}`;
}
