import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalIp, clientBlock, embeddedIpv4, isLoopbackIp, parseIpRange } from '../../src/domain/ip.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { endpointOf } from '../../src/domain/endpoint.js';
import { normalizeProcessName } from '../../src/domain/process-name.js';
import { HardenRunnerAdapter } from '../../src/ingest/adapters/harden-runner.js';
import { NativeAdapter } from '../../src/ingest/adapters/native.js';
import { StepSecurityAdapter } from '../../src/ingest/adapters/stepsecurity.js';
import { RecordError, type AdapterOutput, type RecordContext } from '../../src/ingest/adapters/types.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';

const CTX = { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', runId: '1', runAttempt: 1 };
const rc = (): RecordContext => ({ source: 't', line: 1, tenant: 'default', defaults: CTX, notes: {} });
const call = (o: AdapterOutput): NetworkCallEvent => {
  assert.equal(o.kind, 'call');
  return (o as { event: NetworkCallEvent }).event;
};
const hr = (ipAddress: string, extra: Record<string, unknown> = {}) =>
  call(new HardenRunnerAdapter().parse({ ipAddress, port: '443', timestamp: '2026-11-02T10:00:00Z', tool: { name: 'curl', sha256: '' }, ...extra }, rc()));

test('one IPv6 address has one canonical form, whatever its spelling', () => {
  const spellings = ['2001:DB8:0:0::1', '2001:db8::1', '2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8:0:0:0:0:0:1'];
  for (const s of spellings) assert.equal(canonicalIp(s), '2001:db8::1', s);
  assert.equal(canonicalIp('::ffff:140.82.112.9'), '140.82.112.9');
  assert.equal(canonicalIp('::FFFF:8c52:7009'), '140.82.112.9');
  assert.equal(canonicalIp('140.82.112.9'), '140.82.112.9');
  for (const bad of ['127.1', '0x7f.0.0.1', '3232235777', '010.0.0.1', 'github.com', '2001:db8::g']) assert.equal(canonicalIp(bad), null, bad);
});

test('every spelling of an address makes the same endpoint key, through every adapter and endpointOf', () => {
  const keys = new Set<string>();
  for (const s of ['2001:DB8:0:0::1', '2001:db8::1', '2001:0db8:0000:0000:0000:0000:0000:0001']) {
    const ev = hr(s);
    keys.add(endpointOf(ev.domain, ev.ip, ev.port));
    const native = call(new NativeAdapter().parse({ ...nativeBase(), ip: s }, rc()));
    keys.add(endpointOf(native.domain, native.ip, native.port));
    const det = new StepSecurityAdapter().parse({ id: 'x', endpoint: `[${s}]:443`, timestamp: '2026-11-02T10:00:00Z' }, rc());
    assert.equal(det.kind, 'detection');
    // the endpoint it stores, not one rebuilt from its ip: the import kept the spelling it was given
    if (det.kind === 'detection') keys.add(det.detection.endpoint);
    keys.add(endpointOf(undefined, s, 443));
  }
  assert.deepEqual([...keys], ['[2001:db8::1]:443']);
  assert.equal(hr('::ffff:140.82.112.9').ip, '140.82.112.9');
  assert.equal(endpointOf(undefined, '::ffff:140.82.112.9', 443), '140.82.112.9:443');
  const mapped = new StepSecurityAdapter().parse({ id: 'y', endpoint: '[::ffff:203.0.113.7]:443', timestamp: '2026-11-02T10:00:00Z' }, rc());
  assert.equal(mapped.kind === 'detection' && mapped.detection.endpoint, '203.0.113.7:443');
});

test('a name whose last label is numeric is an address spelt another way, not a DNS name: refused, never kept as a host', () => {
  for (const name of ['203.0.113.007', '203.0.113.7.', '1.2.3', '0x7f.0.0.1', '3232235777', 'example.123', '45.61.136.0xe', '0x2d.0x3d.0x88.0x0e', '0X2D.0X3D.0X88.0X0E', 'example.0x', 'a.0xff.']) {
    assert.throws(() => call(new NativeAdapter().parse({ ...nativeBase(), domain: name }, rc())), RecordError, name);
    assert.throws(() => new StepSecurityAdapter().parse({ id: 'x', endpoint: `${name}:443`, timestamp: '2026-11-02T10:00:00Z' }, rc()), /names no valid host/, name);
  }
  for (const name of ['123.example.com', 'x1.example.c0m', '1password.com', '0x1.example.com', 'example.0xg', 'example.x0e']) {
    assert.equal(call(new NativeAdapter().parse({ ...nativeBase(), domain: name }, rc())).domain, name);
  }
});

function nativeBase() {
  return { owner: 'acme', repo: 'api', workflow: 'ci.yml', job: 'build', run_id: '1', timestamp: '2026-11-02T10:00:00Z', port: 443, process: { name: 'curl' } };
}

test('DNS names are checked per label: 63 characters at most', () => {
  const ok = `${'a'.repeat(63)}.example.com`;
  assert.equal(hr('140.82.112.9', { domainName: `${ok}.` }).domain, ok);
  // too long a label beside a valid address: a direct-IP call to it (test/ingest/unusable-domain.test.ts)
  const long = hr('140.82.112.9', { domainName: `${'a'.repeat(64)}.example.com` });
  assert.deepEqual([long.domain, long.ip], [undefined, '140.82.112.9']);
  assert.throws(() => call(new NativeAdapter().parse({ ...nativeBase(), domain: `x.${'b'.repeat(64)}` }, rc())), RecordError);
});

test('a process name of blanks is the Unknown tool', () => {
  assert.equal(hr('140.82.112.9', { tool: { name: '   ', sha256: '' } }).process.name, 'Unknown');
  assert.equal(call(new NativeAdapter().parse({ ...nativeBase(), ip: '140.82.112.9', process: { name: ' \t ' } }, rc())).process.name, 'Unknown');
  assert.equal(normalizeProcessName('   '), 'unknown');
});

test('parseIpRange: CIDR and single addresses, matched in any accepted spelling', () => {
  const overlay = parseIpRange('100.64.0.0/10')!;
  assert.equal(overlay.first, '100.64.0.0');
  assert.equal(overlay.prefixLength, 10);
  assert.equal(parseIpRange('100.100.1.2/10')!.first, '100.64.0.0', 'the first address has its host bits cleared');
  assert.ok(overlay.contains('100.100.1.2'));
  assert.ok(overlay.contains('::ffff:100.100.1.2'), 'an IPv4-mapped spelling is the IPv4 address');
  assert.ok(!overlay.contains('100.128.0.1'));
  assert.ok(!overlay.contains('not-an-ip'));
  const v6 = parseIpRange('FD7A:115C:A1E0::/48')!;
  assert.equal(v6.first, 'fd7a:115c:a1e0::');
  assert.equal(parseIpRange('140.82.112.9')!.prefixLength, 32);
  assert.ok(v6.contains('fd7a:115c:a1e0:0:0:0:0:1'));
  assert.ok(!v6.contains('100.100.1.2'), 'families never match each other');
  const one = parseIpRange('140.82.112.9')!;
  assert.ok(one.contains('140.82.112.9') && !one.contains('140.82.112.10'));
  for (const bad of ['100.64.0.0/33', '::/129', '100.64/10', '127.1', '1.2.3.4/x', '1.2.3.4/', 'x/8']) assert.equal(parseIpRange(bad), null, bad);
});

test('isLoopbackIp: 127.0.0.0/8, ::1 and their mapped forms only', () => {
  for (const ok of ['127.0.0.1', '127.255.0.9', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopbackIp(ok), ok);
  for (const no of ['0.0.0.0', '::', '10.0.0.1', 'localhost', '127.1']) assert.ok(!isLoopbackIp(no), no);
});

test('one owner of IP parsing: no module outside src/domain/ip.ts imports ipaddr.js', () => {
  const offenders: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts') && p !== join('src', 'domain', 'ip.ts') && /from 'ipaddr\.js'/.test(readFileSync(p, 'utf8'))) offenders.push(p);
    }
  };
  walk('src');
  assert.deepEqual(offenders, []);
});

test('IpRange.overlaps: two ranges share an address exactly when one holds the first address of the other', async () => {
  const fc = (await import('fast-check')).default;
  const r = (s: string) => parseIpRange(s)!;
  assert.equal(r('203.0.113.0/24').overlaps(r('203.0.113.7')), true);
  assert.equal(r('203.0.113.7').overlaps(r('203.0.113.0/24')), true);
  assert.equal(r('203.0.113.0/24').overlaps(r('203.0.113.128/25')), true);
  assert.equal(r('203.0.113.0/24').overlaps(r('203.0.0.0/16')), true, 'a wider rule range holds the risky one');
  assert.equal(r('203.0.113.77/24').overlaps(r('203.0.113.1')), true, 'a range written with host bits set is its prefix');
  assert.equal(r('203.0.113.0/24').overlaps(r('203.0.114.0/24')), false);
  assert.equal(r('2001:db8::/32').overlaps(r('2001:DB8:0:0::9')), true);
  assert.equal(r('2001:db8::/32').overlaps(r('::ffff:203.0.113.7')), false, 'another family never overlaps');
  assert.equal(r('203.0.113.0/24').overlaps(r('::ffff:203.0.113.7')), true, 'a mapped address is the IPv4 one');
  // against brute force over a small space: 10.0.0.0/24 split every way
  const range = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 24, max: 32 })).map(([a, bits]) => `10.0.0.${a}/${bits}`);
  fc.assert(
    fc.property(range, range, (a, b) => {
      const ra = r(a);
      const rb = r(b);
      let shared = false;
      for (let i = 0; i < 256 && !shared; i++) shared = ra.contains(`10.0.0.${i}`) && rb.contains(`10.0.0.${i}`);
      assert.equal(ra.overlaps(rb), shared, `${a} / ${b}`);
      assert.equal(rb.overlaps(ra), shared);
    }),
  );
});

test('IpRange.mayMatch: a glob over address text, exact on ranges up to 65,536 addresses, "may" beyond', async () => {
  const { globMatcher } = await import('../../src/domain/glob.js');
  const may = (range: string, glob: string) => parseIpRange(range)!.mayMatch(globMatcher(glob), glob);
  assert.equal(may('203.0.113.0/24', '203.0.113.1?'), true, 'matches 203.0.113.10-19, not the first address');
  assert.equal(may('203.0.113.0/24', '203.0.113.255'), true);
  assert.equal(may('203.0.113.0/24', '203.0.114.*'), false);
  assert.equal(may('203.0.113.0/24', '*.7'), true);
  assert.equal(may('10.0.0.0/16', '10.0.255.25?'), true, 'a /16 is enumerated to its last address');
  assert.equal(may('10.0.0.0/16', '10.1.*'), false);
  assert.equal(may('2001:db8::/112', '2001:db8::ff?f'), true);
  assert.equal(may('2001:db8::/112', '2001:db9::*'), false);
  // wider than /16: cannot enumerate, so any glob that could spell an address of the family may match
  assert.equal(may('10.0.0.0/8', '11.*'), true);
  assert.equal(may('2001:db8::/32', '2001:db9::*'), true);
  // a pattern no address of the family can spell never matches, however wide the range
  assert.equal(may('10.0.0.0/8', '*.example.com'), false);
  assert.equal(may('2001:db8::/32', '*.example.com'), false);
  assert.equal(may('2001:db8::/32', '10.*'), false, 'IPv6 text has no dots');
});

test('clientBlock: an IPv4 address itself, mapped or not; an IPv6 address its /64, however written', () => {
  assert.equal(clientBlock('203.0.113.9'), '203.0.113.9');
  assert.equal(clientBlock('::ffff:203.0.113.9'), '203.0.113.9');
  assert.equal(clientBlock('2001:DB8:0:0:1:2:3:4'), '2001:db8::/64');
  assert.equal(clientBlock('2001:db8:0:7:ffff::1'), '2001:db8:0:7::/64');
  assert.equal(clientBlock('::1'), '::/64');
  assert.equal(clientBlock('fe80::1%eth0'), 'fe80::/64');
  assert.equal(clientBlock('unknown'), 'unknown', 'not an address: as given');
});

test('embeddedIpv4: the IPv4 host a NAT64, SIIT, IPv4-compatible, 6to4 or Teredo address reaches; a risky IPv4 range sees it through them', () => {
  assert.equal(embeddedIpv4('64:ff9b::198.51.100.7'), '198.51.100.7');
  assert.equal(embeddedIpv4('64:FF9B:0:0:0:0:C633:6407'), '198.51.100.7');
  assert.equal(embeddedIpv4('64:ff9b:1::c633:6407'), '198.51.100.7', 'local-use NAT64 (RFC 8215), as a /96');
  assert.equal(embeddedIpv4('::ffff:0:198.51.100.7'), '198.51.100.7', 'SIIT IPv4-translated');
  assert.equal(embeddedIpv4('::c633:6407'), '198.51.100.7', 'IPv4-compatible');
  assert.equal(embeddedIpv4('2002:c633:6407::1'), '198.51.100.7');
  // Teredo: server 65.54.227.120, client 198.51.100.7 behind its NAT (the last 32 bits inverted)
  assert.equal(embeddedIpv4('2001:0:4136:e378:8000:63bf:39cc:9bf8'), '198.51.100.7');
  // ISATAP (RFC 5214): any prefix, the interface identifier 0:5efe or 200:5efe, then the IPv4 address
  assert.equal(embeddedIpv4('fe80::5efe:c633:6407'), '198.51.100.7');
  assert.equal(embeddedIpv4('::5efe:2d3d:8816'), '45.61.136.22');
  assert.equal(embeddedIpv4('2001:db8:1:2:200:5efe:198.51.100.7'), '198.51.100.7');
  assert.equal(embeddedIpv4('2001:db8:1:2:300:5efe:c633:6407'), null, 'not an ISATAP identifier');
  for (const other of ['198.51.100.7', '::ffff:198.51.100.7', '::1', '::', '::ff', '2001:db8::c633:6407', '64:ff9b:2::c633:6407', 'fe80::1', 'not an ip']) {
    assert.equal(embeddedIpv4(other), null, other);
  }
  // a range written in NAT64 form covers the IPv4 hosts it translates to
  assert.equal(riskyDestinations(['64:ff9b::198.51.100.0/120']).matchHost('198.51.100.7'), '64:ff9b::198.51.100.0/120');
  assert.equal(riskyDestinations(['64:ff9b::198.51.100.0/120']).matchHost('198.51.101.7'), null);
  const risky = riskyDestinations(['198.51.100.0/24']);
  for (const via of ['64:ff9b::198.51.100.7', '[64:ff9b::c633:6407]', '2002:c633:6407::', '64:ff9b:1::c633:6407', '::ffff:0:c633:6407', '::c633:6407', '::198.51.100.7', '2001:0:4136:e378:8000:63bf:39cc:9bf8', 'fe80::5efe:c633:6407', '2001:db8::200:5efe:c633:6407']) {
    assert.equal(risky.matchHost(via.replace(/^\[|\]$/g, '')), '198.51.100.0/24', via);
    assert.equal(risky.coveredBy(via), '198.51.100.0/24', `${via}: a pattern that would expect or allow it is refused`);
  }
  assert.equal(risky.matchHost('64:ff9b::203.0.113.7'), null);
});
