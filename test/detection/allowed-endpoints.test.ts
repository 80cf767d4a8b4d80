import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AllowedEndpoints, parseAllowedEndpoints, RiskyCoverageError } from '../../src/detection/allowed-endpoints.js';

test('allowed endpoints: an entry that could match no call is refused, not kept as a pattern that allows nothing', () => {
  for (const bad of ['bar:99999', 'bar:0', 'foo:abc', '[::1', '::1', 'webhook.site:443:443', 'a:443:', '[not-v6]:443', 'bad/entry']) {
    for (const raw of [bad, `good.example.com ${bad}`]) {
      assert.throws(() => parseAllowedEndpoints(raw, '--allowed-endpoints'), (e: unknown) => e instanceof Error && !(e instanceof RiskyCoverageError) && e.message.startsWith('--allowed-endpoints: invalid entry'), raw);
    }
  }
});

test('allowed endpoints: host globs, default port 443, :*, and addresses in their canonical form', () => {
  const a = new AllowedEndpoints(parseAllowedEndpoints('*.corp.example GitHub.com:22 pypi.org:* [2001:DB8:0::1]:8443 [::ffff:198.51.100.7] 198.51.100.9:80'));
  assert.equal(a.matches('x.corp.example', 443), true);
  assert.equal(a.matches('x.corp.example', 80), false);
  assert.equal(a.matches('github.com', 22), true);
  assert.equal(a.matches('pypi.org', 65535), true);
  assert.equal(a.matches('2001:db8::1', 8443), true, 'stored calls carry the canonical address');
  assert.equal(a.matches('198.51.100.7', 443), true, 'a mapped address is its IPv4 one');
  assert.equal(a.matches('198.51.100.9', 80), true);
  // a risky destination stays a safety refusal of its own
  assert.throws(() => parseAllowedEndpoints('*.site:443'), RiskyCoverageError);
});
