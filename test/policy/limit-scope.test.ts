import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parsePolicy, PolicyLoadError } from '../../src/policy/load.js';
import { limitScopeKey } from '../../src/policy/limit-scope.js';
import { chargeOrder } from '../../src/state/redis/counters.js';

/** Which identity a limit counts (`scope`, `upstream` included) and the `sessions` section of a policy file. */

function issues(text: string): string[] {
  try {
    parsePolicy(text, 'p.yaml');
  } catch (e) {
    assert.ok(e instanceof PolicyLoadError);
    return e.message.split('\n').slice(1).map((l) => l.trim());
  }
  return [];
}

test('scope: upstream is accepted; an old file keeps its scopes (session by default)', () => {
  const { engine } = parsePolicy(`version: 1
tools:
  search:
    rate_limit:
      - { max: 10, window: 60 }
      - { max: 100, window: 60, scope: upstream }
      - { max: 50, window: 60, scope: client }
      - { max: 500, window: 60, scope: global }
`);
  assert.deepEqual(engine.decide('search', {}).limits.map((l) => l.scope), ['session', 'upstream', 'client', 'global']);
});

test('an unknown scope names the allowed ones, with file and line', () => {
  const got = issues('version: 1\ntools:\n  a:\n    rate_limit: { max: 1, window: 60, scope: tenant }\n');
  assert.equal(got.length, 1);
  assert.match(got[0]!, /^p\.yaml:4:\d+: tools\.a\.rate_limit\.scope: .*"session".*"client".*"global".*"upstream"/);
});

test('limitScopeKey: one counter per session, identity, upstream, or one for all; scopes never share a key', () => {
  const p = { session: 'sid-1', identity: 'alice', upstreamName: 'github' };
  assert.equal(limitScopeKey('session', p), 's:sid-1');
  assert.equal(limitScopeKey('client', p), 'c:alice');
  assert.equal(limitScopeKey('upstream', p), 'u:github');
  assert.equal(limitScopeKey('global', p), 'g');
  assert.notEqual(limitScopeKey('upstream', p), limitScopeKey('upstream', { ...p, upstreamName: 'triage' }));
  assert.equal(limitScopeKey('upstream', { ...p, session: 'other', identity: 'bob' }), 'u:github', 'every caller of one upstream shares it');
  assert.equal(limitScopeKey('upstream', { session: 's', identity: 'i' }), 'u:', 'a single-upstream gateway: its one upstream');
  // A session named like an identity or an upstream still gets its own counter.
  const named = new Set((['session', 'client', 'upstream', 'global'] as const).map((s) => limitScopeKey(s, { session: 'x', identity: 'x', upstreamName: 'x' })));
  assert.equal(named.size, 4);
});

test('Redis charges narrow scopes first: session, client, upstream, then global', () => {
  const req = (scopeKey: string) => ({ key: `tools.a.rate_limit\u0000${scopeKey}`, max: 1, windowMs: 1000, cost: 1 });
  const order = chargeOrder([req('g'), req('u:github'), req('c:alice'), req('s:["alice","h"]')]).map((r) => r.key.split('\u0000')[1]);
  assert.deepEqual(order, ['s:["alice","h"]', 'c:alice', 'u:github', 'g']);
});

test('sessions: max_handles and handle_ttl are validated with file and line', () => {
  const got = issues(`version: 1
sessions:
  max_handles: 0
  handle_ttl: -5
  handles: 3
tools:
  a: { rate_limit: { max: 1, window: 60 } }
`);
  assert.ok(got.some((l) => /^p\.yaml:3:\d+: sessions\.max_handles: /.test(l)), got.join('\n'));
  assert.ok(got.some((l) => /^p\.yaml:4:\d+: sessions\.handle_ttl: /.test(l)), got.join('\n'));
  assert.ok(got.some((l) => /^p\.yaml:5:\d+: sessions\.handles: unknown key "handles"/.test(l)), got.join('\n'));
  assert.match(issues('version: 1\nsessions: { max_handles: 2.5 }\n')[0]!, /^p\.yaml:2:\d+: sessions\.max_handles: /);
  assert.match(issues('version: 1\nsessions: { max_handles: 10001 }\n')[0]!, /^p\.yaml:2:\d+: sessions\.max_handles: /);
});

test('a handle TTL shorter than a session-scoped window is refused: rotating handles would escape that limit', () => {
  const got = issues(`version: 1
sessions:
  handle_ttl: 600
tools:
  a: { rate_limit: { max: 1, window: 60 } }
  "b*":
    rate_limit:
      - { max: 5, window: 86400, scope: client }
      - { max: 5, window: 3600 }
`);
  assert.deepEqual(got, [
    'p.yaml:3:3: sessions.handle_ttl: handle_ttl (600s) is shorter than the 3600s window of tools["b*"].rate_limit[1] (scope session): an agent could rotate session handles to escape that limit; make it at least 3600',
  ]);
  assert.deepEqual(issues('version: 1\nsessions: { handle_ttl: 3600 }\ntools:\n  a: { rate_limit: { max: 1, window: 3600 } }\n'), [], 'equal is enough');
  assert.deepEqual(issues('version: 1\nsessions: { handle_ttl: 60 }\ntools:\n  a: { rate_limit: { max: 1, window: 3600, scope: upstream } }\n'), [], 'other scopes do not count');
});
