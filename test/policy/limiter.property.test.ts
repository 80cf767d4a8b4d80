import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SlidingWindowLimiter, type Reservation } from '../../src/policy/rate-limiter.js';

/**
 * The limiter against a brute-force model: the model keeps every charge ever made and sums, for each
 * key, the charges younger than that key's window. Under any interleaving of reserve, commit, rollback,
 * housekeeping and clock moves, the limiter must admit exactly when the model says the call fits, so it
 * never admits more than `max` in any window (and never refuses a call that fits).
 */

const HOUR = 3_600_000;
const WINDOWS = [1000, 60_000, HOUR, 24 * HOUR, 7 * 24 * HOUR];

type Op =
  | { kind: 'reserve'; keys: number[]; cost: number }
  | { kind: 'commit'; i: number }
  | { kind: 'rollback'; i: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'forget' };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('reserve' as const), keys: fc.uniqueArray(fc.nat(2), { minLength: 1, maxLength: 3 }), cost: fc.integer({ min: 0, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('commit' as const), i: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('rollback' as const), i: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('advance' as const),
      ms: fc.oneof(fc.constantFrom(0, 1, 999, 1000, 59_999, 60_000, HOUR, 25 * HOUR, 3 * 24 * HOUR), fc.integer({ min: 0, max: 8 * 24 * HOUR })),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'forget' as const }) },
);

const limitArb = fc.record({ max: fc.integer({ min: 1, max: 5 }), windowMs: fc.constantFrom(...WINDOWS) });

interface Charge {
  key: number;
  t: number;
  cost: number;
  live: boolean;
}

test('the limiter admits exactly what a brute-force model admits, so never more than max in any window', () => {
  fc.assert(
    fc.property(fc.array(limitArb, { minLength: 3, maxLength: 3 }), fc.array(opArb, { maxLength: 300 }), fc.integer({ min: 1, max: 5000 }), (limits, ops, sweepEvery) => {
      let now = 1_700_000_000_000;
      const l = new SlidingWindowLimiter(() => now);
      const charges: Charge[] = [];
      const reservations: { res: Reservation; mine: Charge[]; final: boolean }[] = [];
      const usedInModel = (k: number) =>
        charges.filter((c) => c.key === k && c.live && c.t > now - limits[k]!.windowMs).reduce((a, c) => a + c.cost, 0);
      let n = 0;
      for (const op of ops) {
        switch (op.kind) {
          case 'reserve': {
            const reqs = op.keys.map((k) => ({ key: `k${k}`, max: limits[k]!.max, windowMs: limits[k]!.windowMs, cost: op.cost }));
            const fits = op.keys.every((k) => usedInModel(k) + op.cost <= limits[k]!.max);
            const r = l.reserve(reqs);
            assert.equal(r.ok, fits, `reserve ${JSON.stringify(reqs)} at ${now}`);
            if (r.ok) {
              const mine = op.keys.map((k) => ({ key: k, t: now, cost: op.cost, live: true }));
              charges.push(...mine);
              reservations.push({ res: r.reservation, mine, final: false });
            }
            break;
          }
          case 'commit': {
            const r = reservations[op.i % Math.max(1, reservations.length)];
            if (!r) break;
            l.commit(r.res);
            r.final = true;
            break;
          }
          case 'rollback': {
            const r = reservations[op.i % Math.max(1, reservations.length)];
            if (!r) break;
            l.refund(r.res);
            if (!r.final) for (const c of r.mine) c.live = false;
            r.final = true;
            break;
          }
          case 'advance':
            now += op.ms;
            break;
          case 'forget':
            l.forgetExpired();
            break;
        }
        // Housekeeping at arbitrary moments must never change an answer.
        if (++n % sweepEvery === 0) l.forgetExpired();
        for (let k = 0; k < limits.length; k++) {
          const used = usedInModel(k);
          assert.ok(used <= limits[k]!.max, `model over max for k${k}`);
          assert.equal(l.used(`k${k}`, limits[k]!.windowMs), used, `usage of k${k} at ${now}`);
        }
      }
    }),
    { numRuns: 1000 },
  );
});
