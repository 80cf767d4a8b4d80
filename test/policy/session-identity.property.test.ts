import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import { SlidingWindowLimiter } from '../../src/policy/rate-limiter.js';
import { limitScopeKey } from '../../src/policy/limit-scope.js';
import { createModernSessionResolver, sessionKey, SESSION_HANDLE_META_KEY, type ModernSessionSettings } from '../../src/policy/session-identity.js';

/**
 * Properties of the 2026-07-28 session identity under any sequence of calls: no identity ever holds
 * more than max_handles live handle buckets (plus its own), so rotating handles never buys more than
 * (max_handles + 1) x max calls per window; the same handle always maps to the same key; two
 * identities never share a key.
 */

const open: SqlitePolicyState[] = [];
after(() => open.forEach((s) => s.close()));

// Identities that look like other identities' keys under naive encodings ("alice#h0", JSON, NUL).
const IDENTITIES = ['alice', 'bob', 'alice#h0', 'alice:h0', '["alice","h0"]', 'c\u0000d'];
const step = fc.record({
  who: fc.nat({ max: IDENTITIES.length - 1 }),
  // mostly a small pool (reuse), sometimes a fresh handle per call (rotation), sometimes none
  handle: fc.oneof(fc.constantFrom('h0', 'h1', 'h2', 'h3'), fc.uuid(), fc.constant(undefined)),
  advance: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5_000 }), fc.integer({ min: 5_000, max: 90_000 })),
});

test('no sequence of handles lets an identity hold more than max_handles live buckets; keys are stable and never shared', async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 4 }), fc.array(step, { maxLength: 150 }), async (maxHandles, steps) => {
      let now = 1_700_000_000_000;
      const st = new SqlitePolicyState({ dbPath: ':memory:', auditFile: false, clock: () => now });
      open.push(st);
      const settings: ModernSessionSettings = { maxHandles, handleTtlMs: 60_000 };
      const resolvers = IDENTITIES.map((identity) => createModernSessionResolver({ identity, state: st, settings }));
      /** per identity: key -> last time it was handed out */
      const buckets = IDENTITIES.map(() => new Map<string, number>());
      const keyOwner = new Map<string, number>();
      const keyOfHandle = new Map<string, string>();
      try {
        for (const s of steps) {
          now += s.advance;
          const r = await resolvers[s.who]!(s.handle === undefined ? undefined : { [SESSION_HANDLE_META_KEY]: s.handle });
          if (!r.ok) {
            assert.match(r.reason, /already holds \d+ live session handles/);
            continue;
          }
          // two identities never share a key
          const owner = keyOwner.get(r.key);
          assert.ok(owner === undefined || owner === s.who, `key ${r.key} of identity ${owner} handed to identity ${s.who}`);
          keyOwner.set(r.key, s.who);
          // the same handle always maps to the same key
          const id = `${s.who}\u0000${s.handle ?? ''}`;
          assert.equal(keyOfHandle.get(id) ?? r.key, r.key);
          keyOfHandle.set(id, r.key);
          buckets[s.who]!.set(r.key, now);
          const live = [...buckets[s.who]!].filter(([k, t]) => k !== sessionKey(IDENTITIES[s.who]!) && t > now - settings.handleTtlMs);
          assert.ok(live.length <= maxHandles, `identity ${s.who} holds ${live.length} live handle buckets, cap ${maxHandles}`);
        }
      } finally {
        st.close();
      }
    }),
    { numRuns: 60 },
  );
});

test('rotating handles never buys more than (max_handles + 1) x max calls per window of a session-scoped limit', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.record({ handle: fc.oneof(fc.uuid(), fc.constantFrom('a', 'b'), fc.constant(undefined)), advance: fc.integer({ min: 0, max: 20_000 }) }), { maxLength: 120 }),
      async (maxHandles, max, calls) => {
        let now = 1_700_000_000_000;
        const windowMs = 60_000;
        const st = new SqlitePolicyState({ dbPath: ':memory:', auditFile: false, clock: () => now });
        open.push(st);
        // TTL = the window, as modernSessionSettings makes it at least.
        const resolve = createModernSessionResolver({ identity: 'agent', state: st, settings: { maxHandles, handleTtlMs: windowMs } });
        const limiter = new SlidingWindowLimiter(() => now);
        const admitted: number[] = [];
        try {
          for (const c of calls) {
            now += c.advance;
            const r = await resolve(c.handle === undefined ? undefined : { [SESSION_HANDLE_META_KEY]: c.handle });
            if (!r.ok) continue;
            const key = `tools.x.rate_limit\u0000${limitScopeKey('session', { session: r.key, identity: 'agent' })}`;
            const res = limiter.reserve([{ key, max, windowMs, cost: 1 }]);
            if (!res.ok) continue;
            limiter.commit(res.reservation);
            admitted.push(now);
            const inWindow = admitted.filter((t) => t > now - windowMs).length;
            assert.ok(inWindow <= (maxHandles + 1) * max, `${inWindow} calls admitted in one window, bound ${(maxHandles + 1) * max}`);
          }
        } finally {
          st.close();
        }
      },
    ),
    { numRuns: 60 },
  );
});

// Few, separator-like characters, so that colliding pairs come up often if the encoding allows them.
const part = fc.oneof(fc.string({ unit: fc.constantFrom('a', '#', ':', '"', ',', '[', ']', '\\', '\u0000'), maxLength: 6 }), fc.string({ unit: 'binary' }));

test('sessionKey is injective: distinct (identity, handle) pairs never share a key, and no handle never collides with a handle', () => {
  fc.assert(
    fc.property(part, fc.option(part, { nil: undefined }), part, fc.option(part, { nil: undefined }), (i1, h1, i2, h2) => {
      if (i1 === i2 && h1 === h2) assert.equal(sessionKey(i1, h1), sessionKey(i2, h2));
      else assert.notEqual(sessionKey(i1, h1), sessionKey(i2, h2));
    }),
    { numRuns: 2000 },
  );
});
