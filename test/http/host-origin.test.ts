import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allowedHostNames, checkHostOrigin, hostHeaderName, originIsHost } from '../../src/http/host-origin.js';

const loopback = allowedHostNames('127.0.0.1');
const reason = (host: string | undefined, origin?: string, allowed = loopback) => {
  const r = checkHostOrigin({ host, origin }, allowed);
  return r.ok ? 'ok' : r.reason;
};

test('Host: loopback names in any case and with any port pass; foreign, look-alike and malformed names are refused', () => {
  for (const h of ['127.0.0.1:8787', 'localhost:1', 'LOCALHOST:8787', 'LocalHost', '[::1]:8787', '[0:0:0:0:0:0:0:1]:80', '127.0.0.1']) {
    assert.equal(reason(h), 'ok', h);
  }
  assert.equal(reason(undefined), 'missing_host');
  assert.equal(reason(''), 'missing_host');
  for (const h of ['evil.example', 'evil.example:8787', 'localhost.evil.example:8787', 'localhost.', 'localhost.:8787', '127.0.0.2:8787', '[::2]:8787', 'localhost.evil.example']) {
    assert.equal(reason(h), 'foreign_host', h);
  }
  for (const h of ['localhost@evil.example', 'evil.example/localhost', 'localhost:80:80', 'local host', '::1', '[::1', 'localhost:99999999', 'localhost#x']) {
    assert.notEqual(reason(h), 'ok', h);
  }
});

test('Origin: absent passes; a loopback http(s) origin passes; null, foreign, look-alike and non-http origins are refused', () => {
  assert.equal(reason('127.0.0.1:1', undefined), 'ok');
  assert.equal(reason('127.0.0.1:1', 'http://localhost:3000'), 'ok');
  assert.equal(reason('127.0.0.1:1', 'https://[::1]'), 'ok');
  assert.equal(reason('127.0.0.1:1', 'http://evil.example'), 'foreign_origin');
  assert.equal(reason('127.0.0.1:1', 'http://localhost.evil.example'), 'foreign_origin');
  assert.equal(reason('127.0.0.1:1', 'null'), 'invalid_origin');
  assert.equal(reason('127.0.0.1:1', 'file:///etc/passwd'), 'invalid_origin');
  assert.equal(reason('127.0.0.1:1', 'chrome-extension://abc'), 'invalid_origin');
});

test('allowed names: loopback names, the listen address unless a wildcard, and --allowed-host values', () => {
  assert.deepEqual([...allowedHostNames('127.0.0.1')].sort(), ['127.0.0.1', '[::1]', 'localhost']);
  assert.deepEqual([...allowedHostNames('0.0.0.0')].sort(), ['127.0.0.1', '[::1]', 'localhost']);
  assert.deepEqual([...allowedHostNames('::')].sort(), ['127.0.0.1', '[::1]', 'localhost']);
  assert.ok(allowedHostNames('192.168.1.5').has('192.168.1.5'));
  assert.ok(allowedHostNames('::1').has('[::1]'));
  const extra = allowedHostNames('0.0.0.0', ['MCP.Example.com', 'fd00::5', '[fd00::6]']);
  assert.ok(extra.has('mcp.example.com') && extra.has('[fd00::5]') && extra.has('[fd00::6]'));
  assert.equal(reason('mcp.example.com:443', 'https://mcp.example.com', extra), 'ok');
  for (const bad of ['mcp.example.com:443', 'http://x', 'a b', '[fd00::6]:80', '']) {
    assert.throws(() => allowedHostNames('127.0.0.1', [bad]), /--allowed-host/, bad);
  }
});

test('property: a Host passes only if its canonical name is in the allowed set', () => {
  const label = fc.stringMatching(/^[a-zA-Z0-9-]{1,10}$/);
  const name = fc.oneof(
    fc.constantFrom('localhost', 'LOCALHOST', '127.0.0.1', '[::1]', 'evil.example', 'localhost.', '127.0.0.1.'),
    fc.array(label, { minLength: 1, maxLength: 4 }).map((l) => l.join('.')),
    fc.tuple(fc.constantFrom('localhost', '127.0.0.1'), label).map(([a, b]) => `${a}.${b}`),
  );
  fc.assert(
    fc.property(name, fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }), (n, port) => {
      const host = port === undefined ? n : `${n}:${port}`;
      const r = checkHostOrigin({ host }, loopback);
      const canon = hostHeaderName(n);
      assert.equal(r.ok, canon !== null && loopback.has(canon), host);
      // Only names that canonicalise to a loopback name get through.
      if (r.ok) assert.ok(['localhost', '127.0.0.1', '[::1]'].includes(canon!), host);
    }),
  );
});

test('originIsHost: the same name and port is the same origin; another port, name or a malformed value is not', () => {
  assert.equal(originIsHost('http://127.0.0.1:7777', '127.0.0.1:7777'), true);
  assert.equal(originIsHost('http://LOCALHOST:7777', 'localhost:7777'), true);
  assert.equal(originIsHost('http://[::1]:7777', '[0:0::1]:7777'), true);
  // a Host without a port is the default port of the browser's scheme, which Origin omits too
  assert.equal(originIsHost('https://dash.example.com', 'dash.example.com'), true);
  assert.equal(originIsHost('https://dash.example.com', 'dash.example.com:443'), true);
  assert.equal(originIsHost('http://dash.example.com', 'dash.example.com:80'), true);
  // behind a TLS-terminating proxy the browser's origin is https and the port one the proxy forwards as is
  assert.equal(originIsHost('https://dash.example.com:8443', 'dash.example.com:8443'), true);
  // another port of the same host: same site, another origin
  assert.equal(originIsHost('http://127.0.0.1:3000', '127.0.0.1:7777'), false);
  assert.equal(originIsHost('http://localhost', 'localhost:7777'), false);
  assert.equal(originIsHost('https://dash.example.com', 'dash.example.com:80'), false);
  // another name for the same machine is another origin
  assert.equal(originIsHost('http://localhost:7777', '127.0.0.1:7777'), false);
  for (const [o, h] of [[undefined, 'localhost:1'], ['http://localhost:1', undefined], ['null', 'localhost:1'], ['file:///x', 'localhost'], ['http://localhost:1', 'localhost:1@evil.example'], ['http://localhost:1', 'localhost:1/x'], ['not a url', 'localhost']] as const) {
    assert.equal(originIsHost(o, h), false, `${o} / ${h}`);
  }
});

test('originIsHost (property): an origin made from a Host is that Host; changing its port makes it another', () => {
  const name = fc.oneof(fc.constantFrom('localhost', '127.0.0.1', '[::1]', 'dash.example.com'), fc.domain());
  fc.assert(
    fc.property(name, fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 65534 }), fc.constantFrom('http:', 'https:'), (n, port, delta, scheme) => {
      const host = `${n}:${port}`;
      assert.equal(originIsHost(`${scheme}//${host}`, host), true);
      const other = ((port - 1 + delta) % 65535) + 1;
      assert.equal(originIsHost(`${scheme}//${n}:${other}`, host), false);
    }),
  );
});
