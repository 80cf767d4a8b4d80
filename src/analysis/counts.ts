/**
 * Counting helpers of the analysis. Counts over dense integer refs (variants, endpoints, jobs, hosts)
 * are parallel typed arrays: a page's groups merge hundreds of thousands of (ref, count) pairs per
 * call at 10M detections, and typed arrays keep that allocation-free (bench/analysis.ts).
 */

/** Exact counts per ref, refs unique: parallel typed arrays. */
export interface Counts {
  ids: Int32Array;
  n: Float64Array;
}

/**
 * Scratch counter over dense integer refs: a Float64Array indexed by ref plus the list of touched refs,
 * so merging per-variant counts allocates nothing per row and `take()` resets only what it touched.
 */
export class IdCounter {
  private v: Float64Array;
  private touched: Int32Array;
  private len = 0;
  constructor(size: number) {
    this.v = new Float64Array(Math.max(16, size));
    this.touched = new Int32Array(256);
  }
  add(id: number, n: number): void {
    if (n === 0) return;
    if (id >= this.v.length) {
      const v = new Float64Array(Math.max(id + 1, this.v.length * 2));
      v.set(this.v);
      this.v = v;
    }
    if (this.v[id] === 0) {
      if (this.len === this.touched.length) {
        const t = new Int32Array(this.len * 2);
        t.set(this.touched);
        this.touched = t;
      }
      this.touched[this.len++] = id;
    }
    this.v[id] += n;
  }
  addAll(c: Counts): void {
    for (let i = 0; i < c.ids.length; i++) this.add(c.ids[i]!, c.n[i]!);
  }
  take(): Counts {
    const ids = this.touched.slice(0, this.len);
    const n = new Float64Array(this.len);
    for (let i = 0; i < ids.length; i++) {
      n[i] = this.v[ids[i]!]!;
      this.v[ids[i]!] = 0;
    }
    this.len = 0;
    return { ids, n };
  }
}

export function mergeCounts(parts: Counts[], scratch: IdCounter): Counts {
  if (parts.length === 1) return parts[0]!;
  for (const c of parts) scratch.addAll(c);
  return scratch.take();
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export function uniq(a: string[]): string[] {
  return [...new Set(a)];
}

export function addCount<K>(m: Map<K, number>, k: K, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

/** The n largest entries by count, ties by key ascending; one pass, without sorting the whole map. */
export function topN<K>(m: Map<K, number>, n: number, key: (k: K) => string): [K, number][] {
  const better = (a: [K, number], b: [K, number]) => a[1] > b[1] || (a[1] === b[1] && cmp(key(a[0]), key(b[0])) < 0);
  const top: [K, number][] = [];
  for (const e of m) {
    if (top.length === n) {
      const worst = top[n - 1]!;
      if (e[1] < worst[1] || !better(e, worst)) continue;
      top.pop();
    }
    let i = top.length;
    while (i > 0 && better(e, top[i - 1]!)) i--;
    top.splice(i, 0, e);
  }
  return top;
}

/** topN over Counts: the n largest (ref, count) pairs, ties by key ascending. */
export function topCounts(c: Counts, n: number, key: (id: number) => string): [number, number][] {
  const better = (a: [number, number], b: [number, number]) => a[1] > b[1] || (a[1] === b[1] && cmp(key(a[0]), key(b[0])) < 0);
  const top: [number, number][] = [];
  for (let i = 0; i < c.ids.length; i++) {
    const cnt = c.n[i]!;
    if (top.length === n) {
      const worst = top[n - 1]!;
      if (cnt < worst[1]) continue;
      const e: [number, number] = [c.ids[i]!, cnt];
      if (!better(e, worst)) continue;
      top.pop();
      insertSorted(top, e, better);
    } else insertSorted(top, [c.ids[i]!, cnt], better);
  }
  return top;
}

function insertSorted<T>(top: T[], e: T, better: (a: T, b: T) => boolean): void {
  let i = top.length;
  while (i > 0 && better(e, top[i - 1]!)) i--;
  top.splice(i, 0, e);
}
