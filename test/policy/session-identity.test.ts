import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import { parsePolicy } from '../../src/policy/load.js';
import {
  createModernSessionResolver,
  modernSessionSettings,
  parseSessionHandle,
  sessionKey,
  SESSION_HANDLE_META_KEY,
  type ModernSessionSettings,
} from '../../src/policy/session-identity.js';

/** The 2026-07-28 session identity: the handle in `_meta`, its validation, and the cap per identity. */

const open: SqlitePolicyState[] = [];
after(() => open.forEach((s) => s.close()));
function state(clock: { t: number }) {
  const s = new SqlitePolicyState({ dbPath: ':memory:', auditFile: false, clock: () => clock.t });
  open.push(s);
  return s;
}
const meta = (handle: unknown) => ({ 'io.modelcontextprotocol/protocolVersion': '2026-07-28', [SESSION_HANDLE_META_KEY]: handle });
const settings: ModernSessionSettings = { maxHandles: 2, handleTtlMs: 60_000 };

test('the handle key is egress-triage/session, a _meta key outside the prefixes MCP reserves', () => {
  assert.equal(SESSION_HANDLE_META_KEY, 'egress-triage/session');
  // MCP reserves prefixes whose second label is modelcontextprotocol or mcp; this prefix has one label.
  const prefix = SESSION_HANDLE_META_KEY.split('/')[0]!;
  assert.ok(!['modelcontextprotocol', 'mcp'].includes(prefix.split('.')[1] ?? ''));
  assert.match(prefix, /^[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/);
});

test('parseSessionHandle: absent means none; valid strings pass; anything else is a reason that does not echo the value', () => {
  assert.deepEqual(parseSessionHandle(undefined), { ok: true });
  assert.deepEqual(parseSessionHandle({ 'io.modelcontextprotocol/protocolVersion': '2026-07-28' }), { ok: true });
  for (const h of ['a', 'conv-1', '0b9f8c2e-4d1a-4c3e-9a7b-2f1e0d9c8b7a', 'thread:42', 'A_b.c', 'x'.repeat(128)]) {
    assert.deepEqual(parseSessionHandle(meta(h)), { ok: true, handle: h }, h);
  }
  const cases: [unknown, RegExp][] = [
    [42, /it is a number$/],
    [null, /it is null$/],
    [{ id: 'x' }, /it is an object$/],
    [['x'], /it is an array$/],
    [true, /it is a boolean$/],
    ['', /it is empty$/],
    ['x'.repeat(129), /it has 129 characters$/],
    ['has space', /other characters$/],
    ['-leading', /other characters$/],
    ['naïve', /other characters$/],
    ['a\u0000b', /other characters$/],
    ['evil/../x', /other characters$/],
  ];
  for (const [v, re] of cases) {
    const r = parseSessionHandle(meta(v));
    assert.equal(r.ok, false, JSON.stringify(v));
    if (r.ok) continue;
    assert.match(r.reason, /^_meta\["egress-triage\/session"\] must be a string of 1 to 128 letters, digits/);
    assert.match(r.reason, re);
    if (typeof v === 'string' && v.length > 1) assert.ok(!r.reason.includes(v), 'the value is not echoed');
  }
});

test('without a handle the key is the identity itself, every time, and no state is touched', async () => {
  const clock = { t: 1_000_000 };
  const st = state(clock);
  const resolve = createModernSessionResolver({ identity: 'alice', state: st, settings });
  const keys = new Set<string>();
  for (let i = 0; i < 50; i++) {
    const r = await resolve(i % 2 ? undefined : { 'io.modelcontextprotocol/protocolVersion': '2026-07-28' });
    assert.equal(r.ok, true);
    if (r.ok) keys.add(r.key);
  }
  assert.deepEqual([...keys], [sessionKey('alice')]);
  assert.deepEqual(st.sessionHandles.live('alice', settings.handleTtlMs), []);
});

test('a handle gives identity + handle; the same handle the same key; a new handle over the cap is denied with the reason', async () => {
  const clock = { t: 1_000_000 };
  const st = state(clock);
  const alice = createModernSessionResolver({ identity: 'alice', state: st, settings });
  const bob = createModernSessionResolver({ identity: 'bob', state: st, settings });
  assert.deepEqual(await alice(meta('one')), { ok: true, key: sessionKey('alice', 'one') });
  assert.deepEqual(await alice(meta('one')), { ok: true, key: sessionKey('alice', 'one') });
  assert.deepEqual(await bob(meta('one')), { ok: true, key: sessionKey('bob', 'one') });
  assert.notEqual(sessionKey('alice', 'one'), sessionKey('bob', 'one'));
  clock.t += 1000;
  assert.equal((await alice(meta('two'))).ok, true);
  clock.t += 1000;
  const third = await alice(meta('three'));
  assert.deepEqual(third, {
    ok: false,
    reason:
      'session handle refused: identity "alice" already holds 2 live session handles (policy sessions.max_handles: 2); ' +
      'reuse one of them, or send no egress-triage/session handle to use the identity\'s own session, ' +
      'or retry in 58s when the least recently used one has been idle for 60s',
  });
  assert.equal((await alice(meta('one'))).ok, true, 'a held handle still works at the cap');
  assert.equal((await alice(undefined)).ok, true, 'the identity bucket is always there');
  assert.equal((await bob(meta('two'))).ok, true, "bob's cap is his own");
  // Handle "two" was last used at +1s; one ttl later its slot is free again.
  clock.t = 1_000_000 + 1000 + 60_000;
  assert.deepEqual(await alice(meta('three')), { ok: true, key: sessionKey('alice', 'three') });
});

test('a bad handle is denied with the reason and registers nothing', async () => {
  const clock = { t: 1_000_000 };
  const st = state(clock);
  const resolve = createModernSessionResolver({ identity: 'alice', state: st, settings });
  const r = await resolve(meta(7));
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /must be a string .*; it is a number/);
  assert.deepEqual(st.sessionHandles.live('alice', settings.handleTtlMs), []);
});

test('fails closed: a state backend that cannot answer denies a call with a handle, with the reason', async () => {
  const clock = { t: 1_000_000 };
  const st = state(clock);
  const resolve = createModernSessionResolver({ identity: 'alice', state: st, settings });
  st.close();
  const r = await resolve(meta('one'));
  assert.equal(r.ok, false);
  assert.match(!r.ok ? r.reason : '', /^policy state error: .*not open/);
  assert.deepEqual(await resolve(undefined), { ok: true, key: sessionKey('alice') }, 'no handle needs no state');
});

test('settings given as a function apply to the next call (policy hot reload); now() is the injected clock', async () => {
  const clock = { t: 1_000_000 };
  const st = state(clock);
  let current: ModernSessionSettings = { maxHandles: 1, handleTtlMs: 60_000 };
  let resolverNow = 5_000_000;
  const resolve = createModernSessionResolver({ identity: 'alice', state: st, settings: () => current, now: () => resolverNow });
  assert.equal((await resolve(meta('a'))).ok, true);
  assert.equal((await resolve(meta('b'))).ok, false);
  current = { maxHandles: 2, handleTtlMs: 60_000 };
  assert.equal((await resolve(meta('b'))).ok, true);
  assert.deepEqual(st.sessionHandles.live('alice', 60_000, resolverNow), ['a', 'b'], 'the uses were stamped with the resolver clock');
  resolverNow += 60_000;
  assert.equal((await resolve(meta('c'))).ok, true);
});

test('modernSessionSettings: defaults, and the TTL follows the longest session-scoped window', () => {
  const file = (text: string) => parsePolicy(`version: 1\n${text}`).engine.file;
  assert.deepEqual(modernSessionSettings(file('')), { maxHandles: 16, handleTtlMs: 3_600_000 });
  assert.deepEqual(
    modernSessionSettings(file('tools:\n  a: { rate_limit: [{ max: 1, window: 86400 }, { max: 5, window: 604800, scope: client }] }\n')),
    { maxHandles: 16, handleTtlMs: 86_400_000 },
    'the client-scoped week does not count; the session-scoped day does',
  );
  assert.deepEqual(modernSessionSettings(file('sessions: { max_handles: 4, handle_ttl: 7200 }\n')), { maxHandles: 4, handleTtlMs: 7_200_000 });
});
