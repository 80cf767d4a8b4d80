import type { ParentLink, ProcessInfo } from './types.js';

/** Last component of a POSIX or Windows path. */
export function basenameOf(path: string): string {
  // Trailing separators end no name: "stage2\" is a legal Linux file name, and read as a directory
  // it left an empty name, which made a named binary the Unknown tool (packets only a firewall saw),
  // there for any rule on Unknown to hide. A name of nothing but separators is a name of its own.
  let end = path.length;
  while (end > 0 && (path.charCodeAt(end - 1) === 47 || path.charCodeAt(end - 1) === 92)) end--;
  if (end === 0) return path;
  const slash = Math.max(path.lastIndexOf('/', end - 1), path.lastIndexOf('\\', end - 1));
  return path.slice(slash + 1, end);
}

/**
 * The path a process is stored with when the monitor named a container's image instead of a binary:
 * Harden-Runner sends a call from a container as `tool: {name: <image>, sha256: <image>}`
 * (step-security/agent eventhandler.go, handleNetworkEvent). No file was hashed: whatever the image
 * is called, nothing says what runs in it.
 */
export const CONTAINER_IMAGE_PATH_PREFIX = 'container-image:';

/** The image of a container-image path (CONTAINER_IMAGE_PATH_PREFIX), or null. */
export function containerImageOf(path: string | null | undefined): string | null {
  return path?.startsWith(CONTAINER_IMAGE_PATH_PREFIX) ? path.slice(CONTAINER_IMAGE_PATH_PREFIX.length) : null;
}

/**
 * What an executable that has no file of its own runs from, or null: a memfd (`/memfd:x (deleted)`,
 * as Linux reads /proc/PID/exe of a program run from memory) or an open file descriptor
 * (`/proc/self/fd/3`, `/dev/fd/3`). That is how fileless payloads run; no installer runs a daemon so.
 */
export function inMemoryExecutable(path: string | null | undefined): 'a memfd' | 'a file descriptor' | null {
  if (!path) return null;
  const p = path.toLowerCase();
  if (p.startsWith('/memfd:')) return 'a memfd';
  return FILE_DESCRIPTOR.test(p) ? 'a file descriptor' : null;
}
const FILE_DESCRIPTOR = /^\/proc\/(?:self|thread-self|\d+)\/fd\/|^\/dev\/fd\//;

/** Printable ASCII only: nothing to fold in a name (almost every process name), nothing invisible in a text. */
export const PLAIN_ASCII = /^[\x20-\x7e]*$/;
/**
 * Characters that change a name without showing: controls, format characters (zero-width space, joiners, bidi marks), other
 * default-ignorables; the two graphic characters whose glyph is blank, which no Unicode property marks: U+2800 (Braille
 * pattern blank) and U+1D159 (musical null notehead); and code points that have a glyph only in a font that chooses to
 * give them one: private use, unassigned, lone surrogates. "tailscaled\u2800" and "tailscaled\uE000" print as
 * "tailscaled " or "tailscaled" and were judged as no daemon, so no daemon check held a rule back from hiding them.
 * Which code points are unassigned is the running Node's Unicode version (its ICU): an older one folds out a character a
 * newer version assigned, which judges a name by more of the daemon checks, never by fewer. INVISIBLE_CLASS is the set
 * as the body of a character class, for the sets built on it (reveal-invisible.ts, glob.ts); INVISIBLE is global: for
 * replace() only. The dashboard shows them by name (src/dashboard/visible-text.ts).
 */
export const INVISIBLE_CLASS = String.raw`\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}\u2800\u{1D159}\p{Co}\p{Cn}\p{Cs}`;
export const INVISIBLE = new RegExp(`[${INVISIBLE_CLASS}]`, 'gu');

/**
 * Process-name normalisation used for grouping and for every verdict: basename, `.exe` stripped,
 * lower case. A name that is not plain ASCII is first folded (NFKC: fullwidth and compatibility
 * forms) and stripped of invisible characters, so "tailscaled\u200b" or "ｔａｉｌｓｃａｌｅｄ" is
 * judged as the tailscaled it shows itself as, not as an unknown name no daemon check applies to.
 */
export function normalizeProcessName(raw: string): string {
  // To a fixed point: a name stored normalised is read back and normalised again (the engine, the
  // verdicts, the rule matcher), and the store selects daemon names by the stored value. One pass left
  // "tailscaled.exe.exe" as "tailscaled.exe" and "tailscaled .exe" as "tailscaled ", judged as
  // tailscaled by the ones and by no daemon check by the other, so the store missed the impostor. The
  // fold is inside the loop: a mark after a stripped character ("tailscale\u2800\u0301d") composes
  // with the letter before it only in the next NFKC.
  let name = raw;
  for (let before = ''; name !== before; ) {
    before = name;
    if (!PLAIN_ASCII.test(name)) name = name.normalize('NFKC').replace(INVISIBLE, '');
    name = basenameOf(name.trim()).toLowerCase();
    if (name.endsWith('.exe')) name = name.slice(0, -4);
  }
  return name === '' ? 'unknown' : name;
}


/**
 * Scripts with letters drawn like Latin ones (Cyrillic а, е, о, р, с; Greek ο, ν; Armenian օ; Cherokee
 * Ꭺ): most of Unicode's confusables for Latin letters come from these. Named, so a warning can say which.
 */
const LOOKALIKE_SCRIPTS: readonly (readonly [string, RegExp])[] = [
  ['Cyrillic', /\p{Script=Cyrillic}/u],
  ['Greek', /\p{Script=Greek}/u],
  ['Armenian', /\p{Script=Armenian}/u],
  ['Cherokee', /\p{Script=Cherokee}/u],
];
const LATIN_LETTER = /\p{Script=Latin}/u;
const OTHER_LETTER = /(?!\p{Script=Latin})\p{L}/u;

/**
 * The script a (normalised) process name mixes with Latin letters, or null. Such a name is drawn like
 * a Latin name it is not, and a person reading it must be told. (One drawn like a VPN daemon's name,
 * "tаilscaled" with a Cyrillic а, is more: a suspected impostor of the daemon, analysis/impostor.ts.)
 * A name of one script only (all Cyrillic, all Latin) is not mixed.
 */
export function mixedScript(name: string): string | null {
  if (PLAIN_ASCII.test(name) || !LATIN_LETTER.test(name)) return null;
  for (const [script, re] of LOOKALIKE_SCRIPTS) if (re.test(name)) return script;
  return OTHER_LETTER.test(name) ? 'non-Latin' : null;
}


/** Most parent links a process keeps: the adapters cut a deeper chain (CHAIN_CUT), every verdict reads them all. */
export const MAX_PARENT_DEPTH = 32;

/**
 * The last link of a parent chain cut at MAX_PARENT_DEPTH: it stands for the links not kept. They
 * cannot be judged, so a daemon-named binary with such a chain is a suspected impostor
 * (suspiciousParent): otherwise 32 `sh` between an npm postinstall and a renamed tailscaled hid the
 * npm from the verdict, and the record was kept, or (in the adapters that refused such chains) a
 * call was dropped because its sender chose a deep chain. A real daemon runs a few links below the
 * runner. A process that names itself so is judged the same way, which fails closed.
 */
export const CHAIN_CUT = '<parent chain cut: more links than 32>';

/**
 * Flattens the recursive parent structure into a nearest-first chain, bounded to avoid cycles. The
 * bound is the one ingest accepts: a chain cut shorter would hide a package manager deeper in it
 * from the impostor verdict.
 */
export function parentChain(process: ProcessInfo, maxDepth = MAX_PARENT_DEPTH): ParentLink[] {
  const chain: ParentLink[] = [];
  let p = process.parent ?? null;
  while (p && chain.length < maxDepth) {
    const link: ParentLink = { name: p.name };
    if (p.path) link.path = p.path;
    if (p.sha256) link.sha256 = p.sha256;
    chain.push(link);
    p = p.parent ?? null;
  }
  return chain;
}

/** "node < npm < bash": readable chain for tables and evidence. */
export function formatChain(chain: ParentLink[]): string {
  return chain.map((l) => l.name).join(' < ');
}
