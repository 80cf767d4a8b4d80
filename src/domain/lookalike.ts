import { createRequire } from 'node:module';

/**
 * Look-alike names, by Unicode's confusables (UTS #39, through the `unhomoglyph` package): two names
 * are drawn alike when their skeletons are equal, each character replaced by the one it is
 * confusable with (Latin ɑ and Cyrillic а by a, dotless ı by i, the digit 1 by l, 0 by O).
 * Compared in lower case, as every process name is (normalizeProcessName), and without combining
 * marks, which UTS #39 keeps: "tailscaléd" is not the daemon's name, but a reader of a table takes it
 * for it, so it is judged as drawn like it.
 *
 * Loaded at the first name, not at start: the package builds its expression of 6,311 characters as
 * it loads, and most commands judge no name.
 */
let unhomoglyph: ((s: string) => string) | null = null;
const MARKS = /\p{M}/gu;

export function skeleton(name: string): string {
  unhomoglyph ??= createRequire(import.meta.url)('unhomoglyph') as (s: string) => string;
  return unhomoglyph(name.normalize('NFD').replace(MARKS, '')).toLowerCase();
}

const skeletons = new WeakMap<readonly string[], Map<string, string>>();

/** The name of `names` that `name` is drawn like but is not, or null (the first such, in list order). */
export function drawnLike(name: string, names: readonly string[]): string | null {
  let bySkeleton = skeletons.get(names);
  if (!bySkeleton) {
    bySkeleton = new Map();
    for (const n of names) if (!bySkeleton.has(skeleton(n))) bySkeleton.set(skeleton(n), n);
    skeletons.set(names, bySkeleton);
  }
  const like = bySkeleton.get(skeleton(name));
  return like === undefined || like === name ? null : like;
}
