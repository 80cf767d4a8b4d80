import { cmp } from './counts.js';
import { AnalysisError } from './input.js';
import { encodeCursor, type PageCursor } from './cursor.js';

/** Grouping of process variants by normalised name, and the choice of one page of groups. Pure. */

export interface ProcessGroupTotals {
  /** normalised process name */
  name: string;
  count: number;
  /** the group's variants, in the order they were first counted */
  variants: number[];
}

/** Groups variant totals by normalised name; groups come sorted by count descending, then name. */
export function groupByName(totals: Iterable<[variant: number, n: number]>, normName: (variant: number) => string): { groups: ProcessGroupTotals[]; total: number } {
  const byName = new Map<string, ProcessGroupTotals>();
  let total = 0;
  for (const [variant, n] of totals) {
    const name = normName(variant);
    let g = byName.get(name);
    if (!g) {
      g = { name, count: 0, variants: [] };
      byName.set(name, g);
    }
    g.count += n;
    g.variants.push(variant);
    total += n;
  }
  return { groups: [...byName.values()].sort((a, b) => b.count - a.count || cmp(a.name, b.name)), total };
}

export interface PageChoice {
  page: ProcessGroupTotals[];
  /** the cursor of the following page, null on the last one */
  next: PageCursor | null;
}

/**
 * The page of `kept` (sorted as groupByName sorts) chosen by a 1-based page number or a cursor, at
 * most `limit` groups. A cursor resumes after the group it names, so groups that appear or grow
 * between calls shift no later group off the pages.
 */
export function choosePage(kept: ProcessGroupTotals[], limit: number, fingerprint: string, by: { page?: number; cursor?: PageCursor | null }): PageChoice {
  let start = 0;
  if (by.page !== undefined) {
    start = (by.page - 1) * limit;
    if (start > 0 && start >= kept.length) {
      throw new AnalysisError('invalid_input', `page ${by.page} is past the end: ${kept.length} process group(s) make ${Math.ceil(kept.length / limit)} page(s) of ${limit}`);
    }
  }
  const cursor = by.cursor;
  if (cursor) {
    start = kept.findIndex((g) => g.count < cursor.c || (g.count === cursor.c && g.name > cursor.p));
    if (start < 0) start = kept.length;
  }
  const page = kept.slice(start, start + limit);
  let next: PageCursor | null = null;
  if (start + limit < kept.length) {
    const last = page[page.length - 1]!;
    next = { c: last.count, p: last.name, f: fingerprint };
  }
  return { page, next };
}

export function nextCursorString(c: PageCursor | null): string | null {
  return c ? encodeCursor(c) : null;
}
