import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isLoopbackAddress, listenDecision, parseListen } from '../../src/http/listen.js';
import { authenticate, indexGrants, loadGrants, sha256Hex, type Grant } from '../../src/http/grants.js';
import { tempDir } from '../helpers.js';
import { allowedHostNames } from '../../src/http/host-origin.js';
import { guardRequest } from '../../src/http/guard.js';

test('listen: loopback needs nothing; any other address needs grants', () => {
  for (const h of ['127.0.0.1', '127.0.0.2', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) {
    assert.ok(isLoopbackAddress(h), h);
    assert.deepEqual(listenDecision(h, 0), { ok: true, authenticated: false });
  }
  for (const h of ['0.0.0.0', '::', '192.168.1.5', '10.0.0.1', 'myhost.example', '::ffff:10.0.0.1']) {
    assert.equal(isLoopbackAddress(h), false, h);
    const d = listenDecision(h, 0);
    assert.equal(d.ok, false, h);
    assert.match(d.ok ? '' : d.message, /refusing to listen on non-loopback address .* without bearer tokens: give --grants/);
    assert.deepEqual(listenDecision(h, 1), { ok: true, authenticated: true });
  }
});

test('parseListen accepts host:port, [v6]:port and a bare port; rejects the rest', () => {
  assert.deepEqual(parseListen('127.0.0.1:8787'), { host: '127.0.0.1', port: 8787 });
  assert.deepEqual(parseListen('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListen('8787'), { host: '127.0.0.1', port: 8787 });
  assert.deepEqual(parseListen(':9'), { host: '127.0.0.1', port: 9 });
  for (const bad of ['localhost', '1.2.3.4:99999', '::1:80', 'a:b']) assert.throws(() => parseListen(bad), /--listen/, bad);
});

const alice: Grant = { identity: 'alice', tokenSha256: sha256Hex('alice-token-0123456789'), admin: false, dashboard: ['read'] };

test('authenticate: open without grants; with grants only a known bearer token passes', () => {
  assert.deepEqual(authenticate(undefined, new Map()), { kind: 'open' });
  const g = indexGrants([alice]);
  assert.deepEqual(authenticate('Bearer alice-token-0123456789', g), { kind: 'granted', grant: alice });
  assert.deepEqual(authenticate('bearer   alice-token-0123456789 ', g), { kind: 'granted', grant: alice });
  for (const h of [undefined, '', 'Bearer', 'Basic YWxpY2U6eA==', 'Bearer wrong-token-000000000', 'alice-token-0123456789', 'Bearer alice-token-0123456789 x']) {
    assert.equal(authenticate(h, g).kind, 'denied', String(h));
  }
});

test('guard: Host/Origin is checked before the token (403 before 401)', () => {
  const guard = { allowedHosts: allowedHostNames('0.0.0.0'), grants: indexGrants([alice]) };
  const r = (headers: Record<string, string>) => {
    const v = guardRequest({ headers }, guard);
    return v.ok ? `ok:${v.grant?.identity}` : v.status;
  };
  assert.equal(r({ host: 'evil.example' }), 403);
  assert.equal(r({ host: 'evil.example', authorization: 'Bearer alice-token-0123456789' }), 403);
  assert.equal(r({ host: '127.0.0.1:1' }), 401);
  assert.equal(r({ host: '127.0.0.1:1', authorization: 'Bearer nope-nope-nope-nope' }), 401);
  assert.equal(r({ host: '127.0.0.1:1', authorization: 'Bearer alice-token-0123456789' }), 'ok:alice');
  assert.equal(r({ host: '127.0.0.1:1', origin: 'http://evil.example', authorization: 'Bearer alice-token-0123456789' }), 403);
});

test('loadGrants: an unreadable file is a one-line error naming it', () => {
  assert.throws(() => loadGrants('/nonexistent/grants.yaml'), /^Error: \/nonexistent\/grants\.yaml: cannot read the grants file: no such file$/);
});

test('loadGrants: a YAML error is a rejected file with its line and column, not a file that cannot be read; a wrong shape names its line and path', () => {
  const t = tempDir();
  try {
    const bad = t.file('syntax.yaml', 'grants:\n  - [1\n');
    // BAD_INDENT, the YAML error's code, was taken for an errno: "cannot read the grants file" (exit 5)
    assert.throws(() => loadGrants(bad), (e: Error & { readErrno?: string }) => e.readErrno === undefined && /^.*syntax\.yaml:3:1: Flow sequence in block collection must be sufficiently indented/.test(e.message));
    const shape = t.file('shape.yaml', 'grants:\n  - identity: a\n    token: short\n');
    assert.throws(() => loadGrants(shape), /shape\.yaml:3: invalid grants file: grants\[0\]\.token: Too small/);
    const scalar = t.file('scalar.yaml', 'just text\n');
    assert.throws(() => loadGrants(scalar), /scalar\.yaml:1: invalid grants file: \(root\): Invalid input: expected object, received string/);
  } finally {
    t.cleanup();
  }
});
