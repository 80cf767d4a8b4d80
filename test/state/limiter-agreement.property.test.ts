import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { startRedis } from '../helpers/redis.js';
import { RedisPolicyState } from '../../src/state/redis/state.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import type { RateCounters, Reservation } from '../../src/storage/policy-state.js';

/**
 * Both policy-state backends' counters against the brute-force model of test/policy/limiter.property.test.ts:
 * the model keeps every charge and sums, per key, the live charges younger than the key's window. The
 * store backend (in-process counters) and the Redis backend (Lua scripts, fed the same injected clock)
 * run the same random reserve / commit / refund / advance-clock sequence and must admit exactly when
 * the model says the call fits, and report the model's usage after every step. Windows go from one
 * second to the longest a policy accepts (a `window` of Number.MAX_VALUE seconds is Infinity ms).
 */

const HOUR = 3_600_000;
const WINDOWS = [1000, 60_000, HOUR, 7 * 24 * HOUR, 1e13 * 1000, Number.MAX_VALUE * 1000];

type Op =
  | { kind: 'reserve'; keys: number[]; cost: number }
  | { kind: 'commit'; i: number }
  | { kind: 'refund'; i: number }
  | { kind: 'advance'; ms: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
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
);

const limitArb = fc.record({ max: fc.integer({ min: 1, max: 5 }), windowMs: fc.constantFrom(...WINDOWS) });

interface Charge {
  key: number;
  t: number;
  cost: number;
  live: boolean;
}

test('the Redis and the store counters admit exactly what the brute-force model admits', async () => {
  const redis = await startRedis();
  let now = 1_700_000_000_000;
  const clock = () => now;
  const shared = new RedisPolicyState({ url: redis.url, audit: { append() {}, flush() {}, query: () => [] }, clock, recoveryHoldMs: 0 });
  const local = new SqlitePolicyState({ dbPath: ':memory:', auditFile: false, clock });
  let run = 0;
  try {
    await shared.ready();
    await fc.assert(
      fc.asyncProperty(fc.array(limitArb, { minLength: 3, maxLength: 3 }), fc.array(opArb, { maxLength: 120 }), async (limits, ops) => {
        now = 1_700_000_000_000;
        const ns = `run-${++run}`;
        const backends: [string, RateCounters][] = [['store', local.counters(ns)], ['redis', shared.counters(ns)]];
        const charges: Charge[] = [];
        const reservations: { res: Reservation[]; mine: Charge[]; final: boolean }[] = [];
        const usedInModel = (k: number) =>
          charges.filter((c) => c.key === k && c.live && c.t > now - limits[k]!.windowMs).reduce((a, c) => a + c.cost, 0);
        for (const op of ops) {
          switch (op.kind) {
            case 'reserve': {
              const reqs = op.keys.map((k) => ({ key: `k${k}`, max: limits[k]!.max, windowMs: limits[k]!.windowMs, cost: op.cost }));
              const fits = op.keys.every((k) => usedInModel(k) + op.cost <= limits[k]!.max);
              const got: Reservation[] = [];
              for (const [name, b] of backends) {
                const r = await b.reserve(reqs);
                assert.equal(r.ok, fits, `${name}: reserve ${JSON.stringify(reqs)} at ${now}`);
                if (r.ok) got.push(r.reservation);
              }
              if (fits) {
                const mine = op.keys.map((k) => ({ key: k, t: now, cost: op.cost, live: true }));
                charges.push(...mine);
                reservations.push({ res: got, mine, final: false });
              }
              break;
            }
            case 'commit': {
              const r = reservations[op.i % Math.max(1, reservations.length)];
              if (!r) break;
              for (let i = 0; i < backends.length; i++) await backends[i]![1].commit(r.res[i]!);
              r.final = true;
              break;
            }
            case 'refund': {
              const r = reservations[op.i % Math.max(1, reservations.length)];
              if (!r) break;
              for (let i = 0; i < backends.length; i++) await backends[i]![1].refund(r.res[i]!);
              if (!r.final) for (const c of r.mine) c.live = false;
              r.final = true;
              break;
            }
            case 'advance':
              now += op.ms;
              break;
          }
          for (let k = 0; k < limits.length; k++) {
            const used = usedInModel(k);
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
