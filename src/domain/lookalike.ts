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

function mapped(s: string): string {
  confusables ??= createRequire(import.meta.url)('unhomoglyph/data.json') as Record<string, string>;
  let out = '';
  for (const ch of withoutMarks(s, NONSPACING)) out += Object.hasOwn(confusables, ch) ? confusables[ch] : ch;
  return withoutMarks(out, MARKS).toLowerCase();
}

/** The two skeletons of a (lower-case) name: of its lower-case and of its upper-case form. */
export function skeletons(name: string): [lower: string, upper: string] {
  return [mapped(name), mapped(name.toUpperCase())];
}

const byList = new WeakMap<readonly string[], [Map<string, string>, Map<string, string>]>();

/** The name of `names` that `name` is drawn like but is not, or null (the first such, in list order). */
export function drawnLike(name: string, names: readonly string[]): string | null {
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
  const like = maps[0].get(lower) ?? maps[1].get(upper);
  return like === undefined || like === name ? null : like;
}
