import { createRequire } from 'node:module';

/**
 * Look-alike names, by Unicode's confusables (UTS #39, the data of the `unhomoglyph` package): two
 * names are drawn alike when their skeletons are equal, each character replaced by the one it is
 * confusable with (Latin ɑ and Cyrillic а by a, dotless ı by i, the digit 1 by l, 0 by O).
 *
 * Every process name is compared in lower case (normalizeProcessName), which the data does not
 * expect, so beyond UTS #39:
 * - a name is compared in two skeletons, of its lower-case and of its upper-case form: Greek capital
 *   Τ, lower-cased to τ, is confusable with t only as a capital (the data maps τ to a small capital),
 *   and "taiIscaled", lower-cased to "taiiscaled", is drawn like tailscaled as TAIISCALED (I as l);
 * - marks are dropped: accents before the mapping ("tailscaléd"), every mark after it (ł maps to l
 *   and a stroke).
 *
 * Its data is read directly, one code point at a time (the package's function replaces through one
 * expression of its 6,311 characters), loaded at the first name: most commands judge none.
 */
let confusables: Record<string, string> | null = null;
/** Accents and other marks that take no space; spacing marks (an anusvara, drawn like o) are mapped first. */
const NONSPACING = /\p{Mn}/gu;
const MARKS = /\p{M}/gu;

function withoutMarks(s: string, marks: RegExp): string {
  return s.normalize('NFD').replace(marks, '');
}

function data(): Record<string, string> {
  return (confusables ??= createRequire(import.meta.url)('unhomoglyph/data.json') as Record<string, string>);
}

/**
 * The skeletons one character of a (lower-case) name may be read as: of the character and of its
 * capital (a capital I is drawn like l), each what the data maps it to, marks dropped, in lower case.
 * Remembered per character: a name's reading asks for each of its characters.
 */
function pieces(ch: string): readonly string[] {
  let p = piecesOf.get(ch);
  if (p === undefined) {
    const map = data();
    const one = (c: string) => withoutMarks(Object.hasOwn(map, c) ? map[c]! : c, MARKS).toLowerCase();
    const lower = one(ch);
    // a capital may be two characters (ß is SS)
    const upper = [...ch.toUpperCase()].map(one).join('');
    p = upper === lower ? [lower] : [lower, upper];
    if (piecesOf.size >= 65_536) piecesOf.clear();
    piecesOf.set(ch, p);
  }
  return p;
}
const piecesOf = new Map<string, readonly string[]>();

function mapped(s: string): string {
  const map = data();
  let out = '';
  for (const ch of withoutMarks(s, NONSPACING)) out += Object.hasOwn(map, ch) ? map[ch] : ch;
  return withoutMarks(out, MARKS).toLowerCase();
}

/**
 * What NFKC made of a character the data draws otherwise, as names are compared (lower case,
 * nonspacing marks dropped), with the skeletons that character had (of it and of its capital): a
 * stored name holds the image, and may have held the character. Halfwidth ￨ (drawn like l) became
 * the box-drawing │, drawn like nothing; lunate Ϲ (C) became σ; ẚ (a) became "aʾ"; long ſ (f)
 * became s. Names are folded by NFKC (normalizeProcessName), so without this reading "tai￨scaled" was
 * stored as "tai│scaled" and drawn like no daemon (100 of the 11,799 one-letter swaps of a daemon's
 * name, 2026-12-06).
 */
let images: Map<string, string[]> | null = null;

function nfkcImages(): Map<string, string[]> {
  if (images) return images;
  const readings = new Map<string, string[]>();
  for (const ch of Object.keys(data())) {
    const image = withoutMarks(ch.normalize('NFKC').toLowerCase(), NONSPACING);
    if (image === '' || image === ch) continue;
    const seen = mapped(image);
    for (const was of new Set([mapped(ch), mapped(ch.toUpperCase())])) {
      if (was === seen) continue;
      const list = readings.get(image) ?? [];
      if (!list.includes(was)) list.push(was);
      readings.set(image, list);
    }
  }
  return (images = readings);
}

/** What the readings can do for one list of names: only readings that occur in one of their skeletons. */
interface ListReadings {
  /**
   * each name with each of its skeletons (lower- and upper-case form), and with each trimmed skeleton
   * (below): a name may have lost a blank reading at one end and hold other readings too
   */
  targets: [name: string, skeleton: string][];
  readings: Map<string, string[]>;
  /**
   * A character whose image is blank (spacing ˛ became a space and a mark) left nothing at either end
   * of a name, which is trimmed: each skeleton without such a reading at its start or end, with its name.
   */
  trimmed: Map<string, string>;
  /** by the first character of an image, the length of the longest image it starts (in characters) */
  longest: Map<string, number>;
  /**
   * The most characters with a skeleton a name can have and still spell a target: every reading
   * spells at least one character for each run of at most `run` characters, and a target has at most
   * `target` characters.
   */
  most: number;
}

function listReadings(names: readonly string[]): ListReadings {
  const targets: [string, string][] = [];
  for (const n of names) for (const sk of new Set(skeletons(n))) targets.push([n, sk]);
  const readings = new Map<string, string[]>();
  const blanks: string[] = [];
  const longest = new Map<string, number>();
  let run = 1;
  for (const [image, list] of nfkcImages()) {
    const useful = list.filter((was) => was !== '' && targets.some(([, t]) => t.includes(was)));
    if (useful.length === 0) continue;
    // inside a name the blank is still there; at its ends, trimming took it
    if (image.trim() === '') blanks.push(...useful);
    readings.set(image, useful);
    const chars = [...image];
    longest.set(chars[0]!, Math.max(longest.get(chars[0]!) ?? 0, chars.length));
    run = Math.max(run, chars.length);
  }
  const trimmed = new Map<string, string>();
  for (const [n, t] of targets) {
    for (const was of blanks) {
      if (t.startsWith(was) && !trimmed.has(t.slice(was.length))) trimmed.set(t.slice(was.length), n);
      if (t.endsWith(was) && !trimmed.has(t.slice(0, -was.length))) trimmed.set(t.slice(0, -was.length), n);
    }
  }
  const most = run * Math.max(0, ...targets.map(([, t]) => t.length));
  for (const [t, n] of trimmed) targets.push([n, t]);
  return { targets, readings, trimmed, longest, most };
}

/**
 * The name of the list that some reading of `name` (its lower-case skeleton `lower`) spells: each
 * character read as itself or as its capital, or a run of characters read as the character NFKC made
 * it from (nfkcImages). Only for a name holding such a reading, and only against names of a length
 * some reading has (spells).
 */
function byReading(name: string, lower: string, r: ListReadings): string | undefined {
  const trimmed = r.trimmed.get(lower);
  if (trimmed !== undefined && trimmed !== name) return trimmed;
  const chars = [...withoutMarks(name, NONSPACING)];
  // a long name spells no short one: said before the runs are looked for, so its length costs little
  const own: (readonly string[])[] = [];
  let spelled = 0;
  for (const ch of chars) {
    const p = pieces(ch);
    if (!p.includes('') && ++spelled > r.most) return undefined;
    own.push(p);
  }
  // at each position, the readings that start there: the character's capital, and the runs of images
  let any = false;
  const runs: [length: number, was: string][][] = chars.map((_, i) => {
    const out: [number, string][] = own[i]!.slice(1).map((p): [number, string] => [1, p]);
    let run = '';
    const longest = r.longest.get(chars[i]!) ?? 0;
    for (let n = 1; n <= longest && i + n <= chars.length; n++) {
      run += chars[i + n - 1];
      for (const was of r.readings.get(run) ?? []) out.push([n, was]);
    }
    if (out.length) any = true;
    return out;
  });
  if (!any) return undefined;
  const first = own.map((p) => p[0]!);
  // before the first position a reading can change and after the last, every reading spells the same
  let from = chars.length;
  let to = -1;
  runs.forEach((rs, i) => {
    for (const [n] of rs) {
      from = Math.min(from, i);
      to = Math.max(to, i + n - 1);
    }
  });
  const head = first.slice(0, from).join('');
  const tail = first.slice(to + 1).join('');
  const candidates = r.targets.filter(([n, t]) => n !== name && t.startsWith(head) && t.endsWith(tail));
  if (candidates.length === 0) return undefined;
  // the shortest and longest reading: a name's list holds few names of its length, most often none
  const lo = [0, ...chars.map(() => Infinity)];
  const hi = [0, ...chars.map(() => -1)];
  const reach = (i: number, n: number, len: number) => {
    lo[i + n] = Math.min(lo[i + n]!, lo[i]! + len);
    hi[i + n] = Math.max(hi[i + n]!, hi[i]! + len);
  };
  for (let i = 0; i < chars.length; i++) {
    reach(i, 1, first[i]!.length);
    for (const [n, was] of runs[i]!) reach(i, n, was.length);
  }
  const [min, max] = [lo[chars.length]!, hi[chars.length]!];
  return candidates.find(([, t]) => t.length >= min && t.length <= max && spells(first, runs, t))?.[0];
}

/** Breadth first over positions in the name and in the target, so every choice is tried once. */
function spells(own: string[], runs: [number, string][][], target: string): boolean {
  // at[i]: the lengths of target prefixes some reading of the first i characters spells
  const at: Set<number>[] = Array.from({ length: own.length + 1 }, () => new Set<number>());
  at[0]!.add(0);
  for (let i = 0; i < own.length; i++) {
    for (const j of at[i]!) {
      if (target.startsWith(own[i]!, j)) at[i + 1]!.add(j + own[i]!.length);
      for (const [n, was] of runs[i]!) if (target.startsWith(was, j)) at[i + n]!.add(j + was.length);
    }
  }
  return at[own.length]!.has(target.length);
}

/** The two skeletons of a (lower-case) name: of its lower-case and of its upper-case form. */
export function skeletons(name: string): [lower: string, upper: string] {
  return [mapped(name), mapped(name.toUpperCase())];
}

const byList = new WeakMap<readonly string[], [Map<string, string>, Map<string, string>]>();
const readingsByList = new WeakMap<readonly string[], ListReadings>();

/**
 * The name of `names` that `name` is drawn like but is not, or null (the first such, in list order):
 * by its skeletons, or by reading a character NFKC changed as the one it changed (nfkcImages), as
 * written or with its spaces and separators taken out.
 */
export function drawnLike(name: string, names: readonly string[]): string | null {
  if (names.includes(name)) return null;
  const like = drawnLikeAsWritten(name, names);
  if (like !== null) return like;
  // Split or joined otherwise than the name it shows: a space inside a name does not tell it apart,
  // the more so one NFKC made of a hair or thin space ("tail\u200ascaled" is stored as "tail scaled"),
  // and a dash can be dropped (a soft hyphen, stripped as invisible, draws as one: "wg\u00adquick" is
  // stored as "wgquick") or drawn by another character ("wgーquick"). So a name is also compared with
  // every space and separator taken out of it and of the names.
  const squeezed = name.replace(SEPARATORS, '');
  if (squeezed === '') return null;
  let bare = bareNames.get(names);
  if (!bare) {
    const of = new Map<string, string>();
    for (const n of names) {
      const b = n.replace(SEPARATORS, '');
      if (!of.has(b)) of.set(b, n);
    }
    bareNames.set(names, (bare = { of, list: [...of.keys()] }));
  }
  return bare.of.get(squeezed) ?? bare.of.get(drawnLikeAsWritten(squeezed, bare.list) ?? '') ?? null;
}
/** White space, dashes, and the marks that join or split a name (underscore, dot, middle dots, the katakana long mark). */
const SEPARATORS = /[\s\p{Pd}_.\u00b7\u2027\u30fb\u30fc]/gu;
/** Each list's names without separators: the name each stands for, and the list of them (its identity is drawnLike's cache key). */
const bareNames = new WeakMap<readonly string[], { of: Map<string, string>; list: string[] }>();

function drawnLikeAsWritten(name: string, names: readonly string[]): string | null {
  let maps = byList.get(names);
  if (!maps) {
    maps = [new Map(), new Map()];
    for (const n of names) {
      const sk = skeletons(n);
      for (const f of [0, 1] as const) if (!maps[f].has(sk[f])) maps[f].set(sk[f], n);
    }
    byList.set(names, maps);
  }
  const [lower, upper] = skeletons(name);
  let like = maps[0].get(lower) ?? maps[1].get(upper);
  // the readings of NFKC's images, tried only for a name that is none of the names and their look-alikes
  if (like === undefined && !names.includes(name)) {
    let r = readingsByList.get(names);
    if (!r) readingsByList.set(names, (r = listReadings(names)));
    like = byReading(name, lower, r);
  }
  return like === undefined || like === name ? null : like;
}
