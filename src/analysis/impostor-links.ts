import { binaryKey, callContradiction, describeBinary, type BinaryRef, type SuspectedImpostor } from './impostor.js';

/**
 * One file, two binary identities: a binary is its sha256, or its path when the hash could not be
 * read. A binary that deletes itself mid-run shows up as both: its first calls with its hash, its
 * later ones with the agent's "no such file" instead, keyed by path. Were only one of the two
 * flagged, a rule on the daemon's name would still hide the other's detections.
 *
 * So, within one job run, the file at a path is one binary. A flagged hash is that file wherever it
 * runs: the hash-less identity seen at the same path in a run where the hash called is flagged too.
 * A flagged hash-less binary is only a path, which the genuine daemon shares on every runner, so it
 * links the other way only from a run where it contradicted its daemon itself. And only from
 * binaries flagged by their own calls, never onwards from a linked one: linking by path alone would
 * flag the genuine daemon on every runner whose hashing ever failed. A file swapped for other bytes
 * (another hash at the same path) is two binaries, each judged by its own calls. These functions are
 * pure; the stores read the rows they take (SQLite and PostgreSQL rules repositories,
 * computeImpostors / tenantImpostors).
 */

/** How the reason of a linked binary starts: a link is never the start of another (isLink). */
const SAME_FILE = 'same file (';

/** True for a binary flagged as the same file as another, not by its own calls. */
export function isLink(b: SuspectedImpostor): boolean {
  return b.reason.startsWith(SAME_FILE);
}

/**
 * A path as the file it names: Linux reads the link to a deleted executable (`/proc/PID/exe`) as its
 * path plus " (deleted)", and producers that take the path from there (Auditbeat's process data)
 * report it so once the file is gone, which is exactly when the hash cannot be read.
 */
export function fileOfPath(path: string): string {
  const p = path.endsWith(DELETED) ? path.slice(0, -DELETED.length) : path;
  // Windows paths name files without case, and `\\?\C:\x` is `C:\x`.
  return WINDOWS.test(p) ? p.replace(/^\\\\\?\\/, '').toLowerCase() : p;
}
const DELETED = ' (deleted)';
/** a drive letter, or a `\\?\` long-path prefix */
const WINDOWS = /^(?:[A-Za-z]:\\|\\\\\?\\)/;

/** A file as the links see it: the process name and the path, read as the file it names. */
export function fileKey(process: string, path: string): string {
  return `${process}\u0001${fileOfPath(path)}`;
}

/** A stored process variant of a VPN-named binary (one row of the processes dictionary). */
export interface VariantRow extends BinaryRef {
  id: number;
  parentChain: readonly { name: string; path?: string | null }[];
}

/**
 * The variants to look at, given the binaries flagged by their own calls: `flagged`, their variants
 * that have a path; `partners`, variants of the same name at the same path with the other kind of
 * identity (a hash where the flagged one has none, or none where it has one) that are not flagged
 * themselves. Both empty when no flagged binary has a partner: the stores then read nothing more.
 */
export function pathPartners(
  flagged: { get(b: BinaryRef): SuspectedImpostor | null },
  variants: readonly VariantRow[],
): { flagged: VariantRow[]; partners: VariantRow[] } {
  const byFile = new Map<string, { flagged: VariantRow[]; partners: VariantRow[] }>();
  const fileOf = (v: VariantRow, hashed: boolean) => `${fileKey(v.process, v.path!)}\u0001${hashed ? 'sha' : 'path'}`;
  for (const v of variants) {
    const f = flagged.get(v);
    if (!v.path || f === null || isLink(f)) continue;
    const k = fileOf(v, v.sha256 === null);
    let e = byFile.get(k);
    if (!e) byFile.set(k, (e = { flagged: [], partners: [] }));
    e.flagged.push(v);
  }
  for (const v of variants) {
    if (!v.path || flagged.get(v) !== null) continue;
    byFile.get(fileOf(v, v.sha256 !== null))?.partners.push(v);
  }
  const out = { flagged: [] as VariantRow[], partners: [] as VariantRow[] };
  for (const e of byFile.values()) {
    if (e.partners.length === 0) continue;
    out.flagged.push(...e.flagged);
    out.partners.push(...e.partners);
  }
  return out;
}

/** A call of a flagged variant in one run (from its detections), with the risky entry of its destination or address. */
export interface RunCall {
  run: number;
  variant: number;
  host: string;
  port: number | null;
  isIp: boolean;
  risky: string | null;
  /** the address that put the call under `risky` (a configured range), when its name is not risky itself */
  riskyAt?: string | null;
}

/**
 * The partners that are the same file as a flagged binary: seen (`partnersSeen`) in a run where a
 * flagged variant at the same path called (`flaggedCalls`): any call of a flagged hash, a call that
 * contradicts its daemon of a flagged hash-less binary. `runLabel` names a run in the reason. One
 * result per binary, with the first link found.
 */
export function sameFileImpostors(
  flagged: { get(b: BinaryRef): SuspectedImpostor | null },
  pairs: { flagged: readonly VariantRow[]; partners: readonly VariantRow[] },
  flaggedCalls: Iterable<RunCall>,
  partnersSeen: Iterable<{ run: number; variant: number }>,
  runLabel: (run: number) => string,
): SuspectedImpostor[] {
  const flaggedById = new Map(pairs.flagged.map((v) => [v.id, v]));
  const partnerById = new Map(pairs.partners.map((v) => [v.id, v]));
  /** run → the flagged variants that show their file in it */
  const contradicted = new Map<number, VariantRow[]>();
  for (const c of flaggedCalls) {
    const v = flaggedById.get(c.variant);
    if (!v) continue;
    const seen = contradicted.get(c.run);
    if (seen?.includes(v)) continue;
    if (v.sha256 === null && callContradiction({ ...v, host: c.host, port: c.port, isIp: c.isIp, risky: c.risky, riskyAt: c.riskyAt }) === null) continue;
    if (seen) seen.push(v);
    else contradicted.set(c.run, [v]);
  }
  const out = new Map<string, SuspectedImpostor>();
  for (const s of partnersSeen) {
    const p = partnerById.get(s.variant);
    if (!p) continue;
    // The other kind of identity only: a flagged hash at this path says nothing about another hash
    // seen there (a swapped file is two binaries), nor a flagged hash-less one about another.
    const of = contradicted.get(s.run)?.find((v) => (v.sha256 === null) !== (p.sha256 === null) && fileKey(v.process, v.path!) === fileKey(p.process, p.path!));
    if (!of) continue;
    const linked: SuspectedImpostor = {
      process: p.process,
      sha256: p.sha256,
      path: p.sha256 ? null : p.path,
      reason: `${SAME_FILE}${fileOfPath(p.path!)}) as ${describeBinary(of)} in run ${runLabel(s.run)}, which is a suspected impostor: ${flagged.get(of)!.reason}`,
    };
    const k = binaryKey(linked);
    if (!out.has(k)) out.set(k, linked);
  }
  return [...out.values()];
}

/**
 * The files (fileKey) of the flagged binaries' variants that have a path: where a call of the other
 * identity may link to one. Ingest asks the store's verdict only after such a call (suppressor.ts).
 */
export function flaggedFiles(flagged: { get(b: BinaryRef): SuspectedImpostor | null }, variants: readonly VariantRow[]): string[] {
  return [...new Set(variants.filter((v) => v.path && flagged.get(v) !== null).map((v) => fileKey(v.process, v.path!)))];
}

/** The files (fileKey) at which a daemon-named binary ran with no readable hash. */
export function hashlessFiles(variants: readonly VariantRow[]): string[] {
  return [...new Set(variants.filter((v) => v.path && v.sha256 === null).map((v) => fileKey(v.process, v.path!)))];
}
