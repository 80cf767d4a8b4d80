import type { AnalysisAggregates, AnalysisScope, VariantRef } from '../storage/analysis-port.js';
import { IdCounter, type Counts } from './counts.js';

/**
 * Exact per-variant aggregates of one scope, read through the analysis-aggregates port: totals for
 * every variant first (that is all grouping and paging need), details (endpoint counts, jobs,
 * first/last seen) later and only for the variants of the page's groups.
 */

export interface VariantDetail {
  n: number;
  first: number;
  last: number;
  eps: Counts;
  /** distinct jobs */
  jobs: Int32Array;
}

interface Acc {
  n: number;
  first: number;
  last: number;
  /** coarse scopes: first / last day with a match */
  firstDay: number;
  lastDay: number;
  /** scanned scopes: integer-keyed accumulators, turned into Counts on demand */
  epMap: Map<number, number> | null;
  jobSet: Set<number> | null;
  detail: VariantDetail | null;
}

export class VariantAggregates {
  private readonly acc = new Map<VariantRef, Acc>();
  private epScratch: IdCounter | null = null;
  private jobScratch: IdCounter | null = null;

  private constructor(
    private readonly port: AnalysisAggregates,
    private readonly scope: AnalysisScope,
  ) {}

  /** Reads the totals: the coarse aggregates when they answer the scope, else one scan of it. */
  static async read(port: AnalysisAggregates, scope: AnalysisScope): Promise<VariantAggregates> {
    const va = new VariantAggregates(port, scope);
    const newAcc = (n: number): Acc => ({ n, first: Infinity, last: -Infinity, firstDay: 0, lastDay: 0, epMap: null, jobSet: null, detail: null });
    if (scope.coarse) {
      for (const t of await port.coarseTotals(scope)) {
        if (t.n <= 0) continue;
        const a = newAcc(t.n);
        a.firstDay = t.firstDay;
        a.lastDay = t.lastDay;
        va.acc.set(t.variant, a);
      }
      return va;
    }
    // The hot loop of a filtered analysis (one iteration per aggregated row, millions at 10M):
    // an array indexed by variant ref instead of a Map lookup per row.
    const byVariant: (Acc | undefined)[] = [];
    await port.scan(scope, (rows) => {
      for (let i = 0; i < rows.length; i++) {
        const r = rows[i]!;
        const v = r[0];
        let a = byVariant[v];
        if (!a) {
          a = newAcc(0);
          a.epMap = new Map();
          a.jobSet = new Set();
          byVariant[v] = a;
          va.acc.set(v, a);
        }
        const n = r[3];
        a.n += n;
        if (r[4] < a.first) a.first = r[4];
        if (r[5] > a.last) a.last = r[5];
        a.epMap!.set(r[1], (a.epMap!.get(r[1]) ?? 0) + n);
        a.jobSet!.add(r[2]);
      }
    });
    return va;
  }

  /** (variant, count) of every variant with a match, in the order they were first counted. */
  *totals(): IterableIterator<[VariantRef, number]> {
    for (const [v, a] of this.acc) yield [v, a.n];
  }

  count(variant: VariantRef): number {
    return this.acc.get(variant)!.n;
  }

  /** Endpoint counts, jobs and first/last seen of one variant (read once, then kept). */
  async detail(variant: VariantRef): Promise<VariantDetail> {
    const a = this.acc.get(variant)!;
    if (a.detail) return a.detail;
    const eps = (this.epScratch ??= new IdCounter((await this.port.endpoints(this.scope)).maxId + 1));
    const jobs = (this.jobScratch ??= new IdCounter((await this.port.jobs(this.scope)).maxId + 1));
    if (this.scope.coarse) {
      // one after the other: a snapshot is one connection, which runs one statement at a time
      const epRows = await this.port.coarseBreakdown(this.scope, 'endpoint', variant);
      const jobRows = await this.port.coarseBreakdown(this.scope, 'job', variant);
      const firstLast = await this.port.firstLast(this.scope, variant, a.firstDay, a.lastDay);
      for (let i = 0; i < epRows.length; i++) eps.add(epRows[i]![0], epRows[i]![1]);
      for (let i = 0; i < jobRows.length; i++) jobs.add(jobRows[i]![0], jobRows[i]![1]);
      [a.first, a.last] = firstLast;
    } else {
      for (const [id, n] of a.epMap!) eps.add(id, n);
      for (const j of a.jobSet!) jobs.add(j, 1);
      a.epMap = null;
      a.jobSet = null;
    }
    a.detail = { n: a.n, first: a.first, last: a.last, eps: eps.take(), jobs: jobs.take().ids };
    return a.detail;
  }
}
