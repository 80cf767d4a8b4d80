import { test } from 'node:test';
import assert from 'node:assert/strict';
import { classifyIndicator, InventoryError, type IndicatorEndpoint } from '../../src/domain/indicator.js';

const ep = (endpoint: string, isIp: boolean): IndicatorEndpoint => ({ endpoint, host: endpoint.replace(/:\d+$/, '').replace(/^\[|\]$/g, ''), isIp });

test('an IP indicator matches its canonical form, whatever the spelling', () => {
  for (const spelling of ['2001:DB8:0:0::1', '2001:db8::1', '2001:0db8:0000:0000:0000:0000:0000:0001']) {
    const c = classifyIndicator(spelling);
    assert.equal(c.kind, 'ip');
    assert.equal(c.norm, '2001:db8::1');
    assert.ok(c.test(ep('[2001:db8::1]:443', true)), spelling);
  }
  assert.equal(classifyIndicator('::ffff:140.82.112.9').norm, '140.82.112.9');
});

test('a domain covers itself and its subdomains on any port, never an IP or a look-alike', () => {
  const c = classifyIndicator(' Webhook.Site ');
  assert.equal(c.kind, 'domain');
  assert.ok(c.test(ep('webhook.site:443', false)));
  assert.ok(c.test(ep('a.webhook.site:8443', false)));
  assert.ok(!c.test(ep('notwebhook.site:443', false)));
});

test('CIDR, host:port, glob and substring indicators', () => {
  const cidr = classifyIndicator('100.64.0.0/10');
  assert.equal(cidr.kind, 'cidr');
  assert.ok(cidr.test(ep('100.100.1.2:41641', true)));
  assert.ok(!cidr.test(ep('100.128.0.1:41641', true)));
  assert.equal(classifyIndicator('gist.githubusercontent.com:443').kind, 'endpoint');
  const g = classifyIndicator('*.oast.fun');
  assert.equal(g.kind, 'glob');
  assert.ok(g.test(ep('x.oast.fun:443', false)));
  assert.equal(classifyIndicator('ngrok').kind, 'substring');
});

test('malformed indicators are refused with what to pass instead', () => {
  assert.throws(() => classifyIndicator('   '), (e: Error) => e instanceof InventoryError && /empty indicator/.test(e.message));
  assert.throws(() => classifyIndicator('10.0.0.0/99'), (e: Error) => e instanceof InventoryError && /malformed CIDR/.test(e.message));
  assert.throws(() => classifyIndicator('a'.repeat(300)), (e: Error) => e instanceof InventoryError && /too long/.test(e.message));
});
