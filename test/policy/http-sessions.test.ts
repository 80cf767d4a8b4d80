import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { admitHttpSession, httpSessionSettings, DEFAULT_MAX_HTTP_SESSIONS, type OpenSession } from '../../src/policy/http-sessions.js';

/**
 * The cap on an identity's open 2025-11-25 HTTP sessions (src/policy/http-sessions.ts), as plain data:
 * whatever sessions are open, however many are being opened, an admitted one never takes the identity
 * past the cap, and only idle sessions are ever closed.
 */

const S = { maxOpen: 3, idleMs: 3_600_000 };

test('admits below the cap, refuses at it with the reason, and closes only idle sessions first', () => {
  const now = 10_000_000;
  const open: OpenSession[] = [
    { id: 'a1', identity: 'alice', lastUsed: now - 1 },
    { id: 'a2', identity: 'alice', lastUsed: now - 5 },
    { id: 'b1', identity: 'bob', lastUsed: now - S.idleMs },
  ];
  assert.deepEqual(admitHttpSession(open, 'alice', S, now), { close: ['b1'], admit: true });
  const full = admitHttpSession(open, 'alice', S, now, 1);
  assert.equal(full.admit, false, 'one more being opened fills the cap');
  assert.deepEqual(full.close, ['b1']);
  assert.match(full.admit ? '' : full.reason, /identity "alice" already holds 3 open MCP sessions on this gateway \(policy sessions\.max_http_sessions: 3\)/);
  // alice's oldest idle session frees her slot
  const withIdle = [...open, { id: 'a3', identity: 'alice', lastUsed: now - S.idleMs - 1 }];
  assert.deepEqual(admitHttpSession(withIdle, 'alice', S, now), { close: ['b1', 'a3'], admit: true });
});

test('the settings: the policy\'s cap, or 64; idle after the handle TTL (at least an hour, never shorter than a session window)', () => {
  assert.deepEqual(httpSessionSettings({}), { maxOpen: DEFAULT_MAX_HTTP_SESSIONS, idleMs: 3_600_000 });
  assert.deepEqual(httpSessionSettings({ sessions: { max_http_sessions: 2, handle_ttl: 7200 } }), { maxOpen: 2, idleMs: 7_200_000 });
  assert.equal(httpSessionSettings({ tools: { t: { rate_limit: { max: 1, window: 86_400, scope: 'session' } } } }).idleMs, 86_400_000);
});

test('an admitted session never takes its identity past the cap; no session in use is closed (fast-check)', () => {
  const session = fc.record({ id: fc.uuid(), identity: fc.constantFrom('alice', 'bob', 'carol'), age: fc.nat(2 * S.idleMs) });
  fc.assert(
    fc.property(fc.array(session, { maxLength: 12 }), fc.constantFrom('alice', 'bob'), fc.nat(4), fc.integer({ min: 1, max: 5 }), (raw, identity, opening, maxOpen) => {
      const now = 100_000_000;
      const open = raw.map((r) => ({ id: r.id, identity: r.identity, lastUsed: now - r.age }));
      const s = { maxOpen, idleMs: S.idleMs };
      const r = admitHttpSession(open, identity, s, now, opening);
      const closed = new Set(r.close);
      for (const o of open) assert.equal(closed.has(o.id), now - o.lastUsed >= s.idleMs, 'exactly the idle ones are closed');
      const heldAfter = open.filter((o) => o.identity === identity && !closed.has(o.id)).length + opening;
      assert.equal(r.admit, heldAfter < maxOpen);
    }),
    { numRuns: 1000 },
  );
});
