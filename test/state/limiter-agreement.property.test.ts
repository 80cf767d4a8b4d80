import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startRedis } from '../helpers/redis.js';
import { RedisPolicyState } from '../../src/state/redis/state.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import type { RateCounters, Reservation } from '../../src/storage/policy-state.js';
import { HOUR, LimiterModel, limiterOps, limitsArb } from '../helpers/limiter-model.js';

/**
 * Both policy-state backends' counters against the brute-force model of test/policy/limiter.property.test.ts:
 * the model keeps every charge and sums, per key, the live charges younger than the key's window. The
 * store backend (in-process counters) and the Redis backend (Lua scripts, fed the same injected clock)
 * run the same random reserve / commit / refund / advance-clock sequence and must admit exactly when
 * the model says the call fits, and report the model's usage after every step. Windows go from one
 * second to the longest a policy accepts (a `window` of Number.MAX_VALUE seconds is Infinity ms).
 */

const WINDOWS = [1000, 60_000, HOUR, 7 * 24 * HOUR, 1e13 * 1000, Number.MAX_VALUE * 1000];

test('the Redis and the store counters admit exactly what the brute-force model admits', async () => {
  const redis = await startRedis();
  let now = 1_700_000_000_000;
  const clock = () => now;
  const shared = new RedisPolicyState({ url: redis.url, audit: { append() {}, flush() {}, query: () => [], page: () => ({ records: [], nextCursor: null }) }, clock, recoveryHoldMs: 0 });
  const local = new SqlitePolicyState({ dbPath: ':memory:', auditFile: false, clock });
  let run = 0;
  try {
    await shared.ready();
    await fc.assert(
      fc.asyncProperty(limitsArb(WINDOWS), fc.array(limiterOps({ forget: false }), { maxLength: 120 }), async (limits, ops) => {
        now = 1_700_000_000_000;
        const ns = `run-${++run}`;
        const backends: [string, RateCounters][] = [['store', local.counters(ns)], ['redis', shared.counters(ns)]];
        const model = new LimiterModel<Reservation[]>(limits, clock);
        for (const op of ops) {
          switch (op.kind) {
            case 'reserve': {
              const reqs = model.requests(op);
              const fits = model.fits(op);
              const got: Reservation[] = [];
              for (const [name, b] of backends) {
                const r = await b.reserve(reqs);
                assert.equal(r.ok, fits, `${name}: reserve ${JSON.stringify(reqs)} at ${now}`);
                if (r.ok) got.push(r.reservation);
              }
              if (fits) model.admitted(op, got);
              break;
            }
            case 'commit': {
              const r = model.pick(op.i);
              if (!r) break;
              for (let i = 0; i < backends.length; i++) await backends[i]![1].commit(r[i]!);
              model.commit(op.i);
              break;
            }
            case 'refund': {
              const r = model.pick(op.i);
              if (!r) break;
              for (let i = 0; i < backends.length; i++) await backends[i]![1].refund(r[i]!);
              model.refund(op.i);
              break;
            }
            case 'advance':
              now += op.ms;
              break;
            case 'forget':
              break;
          }
          for (let k = 0; k < limits.length; k++) {
            const used = model.used(k);
            assert.ok(used <= limits[k]!.max, `model over max for k${k}`);
            for (const [name, b] of backends) assert.equal(await b.used(`k${k}`, limits[k]!.windowMs), used, `${name}: usage of k${k} at ${now}`);
          }
        }
      }),
      { numRuns: 80 },
    );
  } finally {
    await shared.close();
    local.close();
    await redis.stop();
  }
});
