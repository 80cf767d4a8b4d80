import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SlidingWindowLimiter, type Reservation } from '../../src/policy/rate-limiter.js';
import { HOUR, LimiterModel, limiterOps, limitsArb } from '../helpers/limiter-model.js';

/**
 * The limiter against a brute-force model: the model keeps every charge ever made and sums, for each
 * key, the charges younger than that key's window. Under any interleaving of reserve, commit, rollback,
 * housekeeping and clock moves, the limiter must admit exactly when the model says the call fits, so it
 * never admits more than `max` in any window (and never refuses a call that fits).
 */

const WINDOWS = [1000, 60_000, HOUR, 24 * HOUR, 7 * 24 * HOUR];

test('the limiter admits exactly what a brute-force model admits, so never more than max in any window', () => {
  fc.assert(
    fc.property(limitsArb(WINDOWS), fc.array(limiterOps({ forget: true }), { maxLength: 300 }), fc.integer({ min: 1, max: 5000 }), (limits, ops, sweepEvery) => {
      let now = 1_700_000_000_000;
      const l = new SlidingWindowLimiter(() => now);
      const model = new LimiterModel<Reservation>(limits, () => now);
      let n = 0;
      for (const op of ops) {
        switch (op.kind) {
          case 'reserve': {
            const reqs = model.requests(op);
            const fits = model.fits(op);
            const r = l.reserve(reqs);
            assert.equal(r.ok, fits, `reserve ${JSON.stringify(reqs)} at ${now}`);
            if (r.ok) model.admitted(op, r.reservation);
            break;
          }
          case 'commit': {
            const r = model.pick(op.i);
            if (!r) break;
            l.commit(r);
            model.commit(op.i);
            break;
          }
          case 'refund': {
            const r = model.pick(op.i);
            if (!r) break;
            l.refund(r);
            model.refund(op.i);
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
          const used = model.used(k);
          assert.ok(used <= limits[k]!.max, `model over max for k${k}`);
          assert.equal(l.used(`k${k}`, limits[k]!.windowMs), used, `usage of k${k} at ${now}`);
        }
      }
    }),
    { numRuns: 1000 },
  );
});
