import picomatch from 'picomatch';
import { INVISIBLE_CLASS } from './process-name.js';

/**
 * Case-insensitive `*` wildcard matching for hosts, endpoints and process names.
 * `*` spans dots (so `*.amazonaws.com` covers `a.b.amazonaws.com`); paths use globPathMatcher.
 */
export function globMatcher(pattern: string): (value: string) => boolean {
  if (pattern === '*') return () => true;
  if (!pattern.includes('*') && !pattern.includes('?')) {
    const p = pattern.toLowerCase();
    return (v) => v.toLowerCase() === p;
  }
  // Hosts and endpoints contain no "/", so picomatch's single-segment `*` spans the whole value.
  const escaped = pattern.replace(/[\[\]{}()!+@]/g, '\\$&');
  const m = picomatch(escaped, { dot: true, nocase: true, noextglob: true, nobrace: true });
  return (v) => !v.includes('/') && m(v);
}

/**
 * Whether a host glob (globMatcher's: `*` any run, `?` one character, case-insensitive) matches
 * some name under `host`, `<anything>.host`. Decided exactly, by reading the pattern backwards
 * against `.host` (what precedes it is free): trying sample fills misses patterns such as
 * `???????????.site`, which matches abc.webhook.site.
 */
const ANY = '\u0000';

export function hostGlobReachesUnder(pattern: string, host: string): boolean {
  const p = pattern.toLowerCase();
  // ANY stands for the label's last character (any character matches it): a name under the host
  // has one, so ".webhook.site" itself is not counted
  const tail = `${ANY}.${host.toLowerCase()}`;
  const n = tail.length;
  // cur[j]: the pattern's last i characters match the tail's last j characters, for the i before this one
  let cur: boolean[] = new Array<boolean>(n + 1).fill(false);
  cur[0] = true;
  for (let i = 1; i <= p.length; i++) {
    const c = p[p.length - i]!;
    const next: boolean[] = new Array<boolean>(n + 1).fill(false);
    for (let j = 0; j <= n; j++) {
      if (c === '*') next[j] = cur[j]! || (j > 0 && next[j - 1]!);
      else if (j > 0 && (c === '?' || c === tail[n - j] || (j === n && c !== '.'))) next[j] = cur[j - 1]!;
    }
    // the whole tail matched: the rest of the pattern matches whatever comes before it
    if (next[n]) return true;
    cur = next;
  }
  return false;
}

/**
 * Globs for file paths: `*` stops at "/", `**` crosses it; `?` one character. Nothing else is a
 * pattern, as in globMatcher: picomatch's negation (`!zz/*`), braces, extglobs and classes matched
 * every workflow while the pattern read as a name to the too-broad guard and the policy.
 */
export function globPathMatcher(pattern: string): (value: string) => boolean {
  if (pattern === '*') return () => true;
  const escaped = pattern.replace(/[\[\]{}()!+@]/g, '\\$&');
  return picomatch(escaped, { dot: true, nocase: true, noextglob: true, nobrace: true, nonegate: true });
}

export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/**
 * Tool names (MCP `tools/call` name, policy `hide` and `tools` keys).
 *
 * Semantics, chosen so that a deny or hide cannot be dodged by spelling:
 * - `*` matches any run of characters, empty included, and crosses `/`, `.` and every other character
 *   (namespaced names like `admin_users/delete` are common behind aggregating upstreams).
 * - `?` matches exactly one character (one Unicode code point). Nothing else is special: `[`, `{`,
 *   `!` are literal (the policy schema refuses them in patterns so a reader never mistakes them).
 * - Matching ignores case and compatibility forms: both sides go through NFKC and a full case fold,
 *   with the dotted capital I folded to a plain "i" as a simple case mapping would.
 *   MCP names are case-sensitive, but an upstream may resolve names loosely; matching loosely means a
 *   deny, hide, approval or limit on `delete_repo` also covers `Delete_Repo` and `ｄｅｌｅｔｅ_repo`.
 *   The price: one policy cannot treat two tools that differ only in case differently.
 * Names that are not canonical (see isCanonicalToolName) are refused by the policy engine outright,
 * because no matcher can know how an upstream would read them.
 */
export function toolNameKey(name: string): string {
  // The full lower case of U+0130 (İ) is "i" + U+0307; an upstream that lower-cases with the simple
  // mapping (Go, Java, .NET) reads it as "i", so `ADMİN_users` must meet a deny on `admin_users`.
  // ẞ (U+1E9E) is upper case already, so upper-casing leaves it and lower-casing makes it ß, where
  // "straße" became "strasse": both fold to "ss", as a full case fold does (and an upstream that
  // lower-cases finds `straße_delete` for `STRAẞE_DELETE`).
  return name.normalize('NFKC').toUpperCase().toLowerCase().normalize('NFKC').replace(/i\u0307/g, 'i').replace(/ß/g, 'ss');
}

/**
 * True for a name an upstream can only read one way, and a person reads as it is: non-empty,
 * NFKC-stable, and free of whitespace and of every character INVISIBLE names (control, format,
 * surrogate and default-ignorable characters: zero-width joiners, variation selectors, soft hyphens;
 * characters drawn blank; private-use and unassigned code points). `" delete"`, `"delete\u200b"`,
 * `"delete\u2800"` and `"ｄelete"` are not canonical.
 */
export function isCanonicalToolName(name: string): boolean {
  return name.length > 0 && name === name.normalize('NFKC') && !NOT_IN_TOOL_NAMES.test(name);
}
const NOT_IN_TOOL_NAMES = new RegExp(`[\\p{White_Space}${INVISIBLE_CLASS}]`, 'u');

/** Wildcards in a tool-name pattern: `*` and `?` only. */
export function isToolNameGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}

/** Matcher for one tool-name pattern (exact name or glob), with the semantics above. */
export function toolNameMatcher(pattern: string): (name: string) => boolean {
  const p = toolNameKey(pattern);
  if (!isToolNameGlob(p)) return (name) => toolNameKey(name) === p;
  const pat = [...p];
  return (name) => wildcardMatch(pat, [...toolNameKey(name)]);
}

/**
 * `*` / `?` matching over code points. Greedy with one backtrack point (the last `*`), so it runs in
 * O(pattern x name) whatever the input: a regex here would backtrack exponentially on names an
 * agent chooses.
 */
function wildcardMatch(p: readonly string[], s: readonly string[]): boolean {
  let pi = 0;
  let si = 0;
  let star = -1;
  let mark = 0;
  while (si < s.length) {
    if (pi < p.length && (p[pi] === '?' || (p[pi] !== '*' && p[pi] === s[si]))) {
      pi++;
      si++;
    } else if (pi < p.length && p[pi] === '*') {
      star = pi++;
      mark = si;
    } else if (star >= 0) {
      pi = star + 1;
      si = ++mark;
    } else return false;
  }
  while (pi < p.length && p[pi] === '*') pi++;
  return pi === p.length;
}
