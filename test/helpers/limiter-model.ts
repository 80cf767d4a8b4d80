import fc from 'fast-check';

/**
 * The brute-force model the rate limiters are checked against (test/policy/limiter.property.test.ts,
 * test/state/limiter-agreement.property.test.ts): it keeps every charge ever made and sums, for each
 * key, the live charges younger than that key's window. A limiter must admit exactly when the model
 * says the call fits.
 */

export const HOUR = 3_600_000;

export type LimiterOp =
  | { kind: 'reserve'; keys: number[]; cost: number }
  | { kind: 'commit'; i: number }
  | { kind: 'refund'; i: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'forget' };

/** Random operations over keys 0..2; `forget` (housekeeping) only for limiters that have it. */
export function limiterOps(opts: { forget: boolean }): fc.Arbitrary<LimiterOp> {
  const ops: fc.WeightedArbitrary<LimiterOp>[] = [
    { weight: 5, arbitrary: fc.record({ kind: fc.constant('reserve' as const), keys: fc.uniqueArray(fc.nat(2), { minLength: 1, maxLength: 3 }), cost: fc.integer({ min: 0, max: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ kind: fc.constant('commit' as const), i: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ kind: fc.constant('refund' as const), i: fc.nat() }) },
    {
      weight: 2,
      arbitrary: fc.record({
        kind: fc.constant('advance' as const),
        ms: fc.oneof(fc.constantFrom(0, 1, 999, 1000, 59_999, 60_000, HOUR, 25 * HOUR, 3 * 24 * HOUR), fc.integer({ min: 0, max: 8 * 24 * HOUR })),
      }),
    },
  ];
  if (opts.forget) ops.push({ weight: 1, arbitrary: fc.constant({ kind: 'forget' as const }) });
  return fc.oneof(...ops);
}

export interface ModelLimit {
  max: number;
  windowMs: number;
}

/** Three limits, one per key, with windows drawn from `windows`. */
export function limitsArb(windows: number[]): fc.Arbitrary<ModelLimit[]> {
  return fc.array(fc.record({ max: fc.integer({ min: 1, max: 5 }), windowMs: fc.constantFrom(...windows) }), { minLength: 3, maxLength: 3 });
}

interface Charge {
  key: number;
  t: number;
  cost: number;
  live: boolean;
}

/** The model's side of one run; `R` is whatever the limiter under test returns for a reservation. */
export class LimiterModel<R> {
  private readonly charges: Charge[] = [];
  private readonly reservations: { res: R; mine: Charge[]; final: boolean }[] = [];

  constructor(
    readonly limits: ModelLimit[],
    private readonly now: () => number,
  ) {}

  /** The requests a reserve op makes, as the limiters take them. */
  requests(op: { keys: number[]; cost: number }): { key: string; max: number; windowMs: number; cost: number }[] {
    return op.keys.map((k) => ({ key: `k${k}`, max: this.limits[k]!.max, windowMs: this.limits[k]!.windowMs, cost: op.cost }));
  }

  fits(op: { keys: number[]; cost: number }): boolean {
    return op.keys.every((k) => this.used(k) + op.cost <= this.limits[k]!.max);
  }

  /** Records an admitted reservation. */
  admitted(op: { keys: number[]; cost: number }, res: R): void {
    const t = this.now();
    const mine = op.keys.map((k) => ({ key: k, t, cost: op.cost, live: true }));
    this.charges.push(...mine);
    this.reservations.push({ res, mine, final: false });
  }

  /** The reservation an op's index picks (any, cyclically), or undefined when none was made. */
  pick(i: number): R | undefined {
    return this.reservations[i % Math.max(1, this.reservations.length)]?.res;
  }

  commit(i: number): void {
    const r = this.reservations[i % Math.max(1, this.reservations.length)];
    if (r) r.final = true;
  }

  /** A refund frees the charge only while it is not final. */
  refund(i: number): void {
    const r = this.reservations[i % Math.max(1, this.reservations.length)];
    if (!r) return;
    if (!r.final) for (const c of r.mine) c.live = false;
    r.final = true;
  }

  used(k: number): number {
    const now = this.now();
    return this.charges.filter((c) => c.key === k && c.live && c.t > now - this.limits[k]!.windowMs).reduce((a, c) => a + c.cost, 0);
  }
}
