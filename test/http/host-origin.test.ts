import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { allowedHostNames, checkHostOrigin, hostHeaderName } from '../../src/http/host-origin.js';

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
