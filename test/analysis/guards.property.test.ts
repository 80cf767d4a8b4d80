import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { BUILTIN_RISKY_DESTINATIONS, RiskyDestinations } from '../../src/analysis/risky-destinations.js';
import { buildSuggestion } from '../../src/analysis/suggestion.js';
import { VPN_SIGNATURES } from '../../src/analysis/vpn-signatures.js';
import { coverageRefusal, ImpostorSet, neverSuppress } from '../../src/rules/guards.js';
import type { SuspectedImpostor } from '../../src/analysis/impostor.js';
import { judge, type PlainCall } from './plain-group.js';

/**
 * Property: whatever the calls, the risky list and the tenant's impostor set, a suggestion that is
 * not blocked never covers a binary that called a risky destination or is a suspected impostor, and
 * the guards refuse every such coverage. Checked against the raw calls, independently of the verdict.
 */

const SHAS = ['a', 'b', 'c', 'd', 'e'].map((c) => c.repeat(64));
const NAMES = ['tailscaled', 'twingated', 'zerotier-one', 'cloudflared', 'warp-svc', 'openvpn', 'wg-quick', 'netbird', 'curl'];
const HOSTS = [
  'controlplane.tailscale.com', 'derp1.tailscale.com', 'relay.twingate.com', 'my.zerotier.com', 'region1.v2.argotunnel.com',
  'zero-trust-client.cloudflareclient.com', 'api.netbird.io', 'api.github.com', 'registry.npmjs.org', 'exfil.example.net',
  ...BUILTIN_RISKY_DESTINATIONS.slice(0, 12), 'sub.webhook.site', 'x.oast.fun',
];
const IPS = ['100.64.0.7', '100.101.102.103', '198.41.192.10', '162.159.193.4', '203.0.113.50', '45.61.136.14'];
const PORTS = [443, 41641, 3478, 30500, 9993, 7844, 2408, 1194, 51820, 8080];
const PARENTS = [
  [{ name: 'sudo' }, { name: 'bash' }, { name: 'Runner.Worker' }],
  [{ name: 'node', path: '/home/runner/actions-runner/externals/node20/bin/node' }],
  [{ name: 'sh' }, { name: 'npm' }],
  [{ name: 'python3' }],
  [],
];

const callArb: fc.Arbitrary<PlainCall> = fc
  .record({
    sha: fc.option(fc.constantFrom(...SHAS), { nil: null, freq: 5 }),
    path: fc.constantFrom('/usr/sbin/x', '/tmp/x', '/opt/x'),
    parents: fc.constantFrom(...PARENTS),
    ip: fc.boolean(),
    host: fc.constantFrom(...HOSTS),
    addr: fc.constantFrom(...IPS),
    port: fc.constantFrom(...PORTS),
    n: fc.integer({ min: 1, max: 5 }),
  })
  .map((r) => ({ sha256: r.sha, path: r.path, parents: r.parents, host: r.ip ? r.addr : r.host, isIp: r.ip, port: r.port, n: r.n }));

const extraRiskyArb = fc.subarray(['api.github.com', 'exfil.example.net', '203.0.113.0/24', 'tailscale.com', '100.64.0.0/10', 'relay.twingate.com']);

test('a suggestion never covers a risky destination or an impostor binary, whatever the input', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom(...NAMES),
      fc.array(callArb, { minLength: 1, maxLength: 25 }),
      extraRiskyArb,
      fc.subarray(SHAS),
      fc.boolean(),
      async (name, calls, extra, flaggedShas, previewRefuses) => {
        const risky = new RiskyDestinations(extra);
        const flagged: SuspectedImpostor[] = flaggedShas.map((s) => ({ process: name, sha256: s, path: null, reason: 'flagged elsewhere' }));
        const impostors = new ImpostorSet(flagged);
        const judged = judge(name, calls, risky, impostors);
        const s = await buildSuggestion({
          name, judged, detectionType: 'New-Outbound-Network-Call', scope: {}, risky, impostors,
          impact: async () => ({ would_suppress: 1, risky_matches: 0, refused_reason: previewRefuses ? 'refused by preview' : null }),
        });
        if (!s.suggested || s.suggested.blocked_reason !== null) return;
        assert.equal(previewRefuses, false);
        assert.equal(s.reason, null);
        const covered = s.suggested.conditions.process_sha256?.split('|') ?? [];
        assert.ok(covered.length > 0, 'an unblocked suggestion is narrowed to hashes');
        assert.equal(s.suggested.conditions.process, name);
        for (const sha of covered) {
          const mine = calls.filter((c) => c.sha256 === sha);
          assert.ok(mine.length > 0, 'covers only binaries it saw');
          for (const c of mine) {
            const endpoint = `${c.host}:${c.port}`;
            assert.equal(risky.matchEndpoint(endpoint), null, `covers ${sha.slice(0, 4)} calling risky ${endpoint}`);
            assert.equal(neverSuppress({ process: name, sha256: sha, path: c.path, endpoint }, risky, impostors), null);
          }
          assert.equal(impostors.get({ process: name, sha256: sha, path: null }), null, 'covers a flagged impostor');
        }
        assert.ok(VPN_SIGNATURES.some((sig) => sig.names.includes(name)), 'only a daemon gets a rule');
      },
    ),
    { numRuns: 400 },
  );
});

test('the never-suppress guards refuse every risky destination and every flagged binary', () => {
  const risky = new RiskyDestinations(['10.9.0.0/16']);
  const entries = risky.hostEntries();
  fc.assert(
    fc.property(
      fc.constantFrom(...entries),
      fc.constantFrom('', 'a.', 'deep.sub.'),
      fc.constantFrom(443, 80, 8443),
      fc.constantFrom(...SHAS),
      fc.subarray(SHAS),
      (entry, prefix, port, sha, flaggedShas) => {
        const endpoint = `${prefix}${entry.toUpperCase()}:${port}`;
        const impostors = new ImpostorSet(flaggedShas.map((s) => ({ process: 'tailscaled', sha256: s, path: null, reason: 'r' })));
        const r = neverSuppress({ process: 'tailscaled', sha256: sha, path: null, endpoint }, risky, impostors);
        assert.equal(r?.kind, 'risky');
        assert.equal(r.kind === 'risky' && r.entry, entry);
        // a rule covering the binary refuses for the risky call, or for the binary when flagged
        assert.notEqual(coverageRefusal([{ process: 'tailscaled', sha256: sha, path: null, riskyCalls: [endpoint] }], risky, impostors), null);
        const clean = coverageRefusal([{ process: 'tailscaled', sha256: sha.toUpperCase(), path: '/x', riskyCalls: [] }], risky, impostors);
        assert.equal(clean?.kind ?? null, flaggedShas.includes(sha) ? 'impostor' : null);
      },
    ),
  );
  assert.equal(neverSuppress({ process: 'curl', sha256: null, path: null, endpoint: '10.9.3.4:443' }, risky, new ImpostorSet())?.kind, 'risky');
  // fail closed: a destination reported risky that the list does not confirm is still refused
  assert.equal(coverageRefusal([{ process: 'x', sha256: null, path: '/x', riskyCalls: ['unlisted.example:443'] }], risky, new ImpostorSet())?.kind, 'risky');
});

test('a configured range covers named calls: neverSuppress refuses exactly the calls whose address lies in it, whatever the name', () => {
  const risky = new RiskyDestinations(['203.0.113.0/24', '2001:db8:bad::/48']);
  const impostors = new ImpostorSet();
  const octet = fc.integer({ min: 0, max: 255 });
  const addr = fc.oneof(
    fc.tuple(fc.constantFrom(203, 198), fc.constantFrom(0, 51), fc.constantFrom(113, 100, 114), octet).map((p) => p.join('.')),
    fc.tuple(fc.constantFrom('2001:db8:bad', '2001:db8:bae'), fc.integer({ min: 0, max: 0xffff })).map(([p, x]) => `${p}::${x.toString(16)}`),
  );
  const host = fc.constantFrom('cdn.attacker.example', 'api.github.com', 'registry.npmjs.org', 'webhook.site');
  fc.assert(
    fc.property(host, addr, fc.constantFrom(443, 8443), (h, ip, port) => {
      const inRange = ip.startsWith('203.0.113.') || ip.startsWith('2001:db8:bad:');
      const listed = h === 'webhook.site';
      const r = neverSuppress({ process: 'curl', sha256: null, path: null, endpoint: `${h}:${port}`, ip }, risky, impostors);
      assert.equal(r !== null, inRange || listed, `${h} at ${ip}`);
      if (r && !listed) assert.match(r.reason, new RegExp(`reached at ${ip.replace(/\./g, '\\.')}, in the risky range`));
      // the address alone decides, not which name the call went by
      assert.equal(risky.matchCall(h, ip) !== null, inRange || listed);
      // without an address, only the name can
      assert.equal(neverSuppress({ process: 'curl', sha256: null, path: null, endpoint: `${h}:${port}` }, risky, impostors) !== null, listed);
    }),
  );
});

/**
 * Property: an entry of the risky list either guards the destination it names, however it is spelt
 * (case, a root dot, `*.`, a port, a path, IPv6 brackets), or is refused at once. Accepted and kept
 * in another spelling, it was listed as protected and matched no call (`exfil.example.net.`,
 * `203.0.113.7:443`), so a rule could hide the calls it was meant to guard.
 */
test('a risky entry guards what it names in every spelling it is accepted in, or is refused', () => {
  const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,8}[a-z0-9])?$/);
  const name = fc.tuple(fc.array(label, { minLength: 1, maxLength: 3 }), fc.constantFrom('net', 'example', 'site', 'io')).map(([ls, tld]) => [...ls, tld].join('.'));
  const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((o) => o.join('.'));
  const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((w) => w.map((x) => x.toString(16)).join(':'));
  const target = fc.oneof(name.map((h) => ({ host: h, kind: 'name' as const })), v4.map((h) => ({ host: h, kind: 'v4' as const })), v6.map((h) => ({ host: h, kind: 'v6' as const })));
  const spelling = fc.record({ upper: fc.boolean(), rootDot: fc.boolean(), star: fc.boolean(), port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }), path: fc.boolean(), blank: fc.boolean() });
  fc.assert(
    fc.property(target, spelling, ({ host, kind }, s) => {
      let e = host;
      if (s.rootDot && kind === 'name') e += '.';
      if (s.star && kind === 'name') e = `*.${e}`;
      if (s.port !== undefined) e = kind === 'v6' ? `[${e}]:${s.port}` : `${e}:${s.port}`;
      // a path is taken after a name ("discord.com/api/webhooks"); after an address it is refused, as no range
      if (s.path && kind === 'name') e += '/api/webhooks';
      if (s.upper) e = e.toUpperCase();
      if (s.blank) e = ` ${e} `;
      let risky: RiskyDestinations;
      try {
        risky = new RiskyDestinations([e]);
      } catch {
        // refused loudly: allowed only for shapes the list documents as no host (none of these are)
        return false;
      }
      return risky.matchHost(host) !== null && risky.matchHost(host.toUpperCase()) !== null && (kind !== 'name' || risky.matchHost(`x.${host}.`) !== null);
    }),
  );
  // what names no host is refused, never kept as an entry that matches nothing
  for (const bad of ['exfil.example.net:*', 'exfil.example.net:443.', 'a..b.com', '203.0.113.007', '203.0.113.7.', '[2001:db8::1', 'exfil.example.net:99999']) {
    assert.throws(() => new RiskyDestinations([bad]), /is not a host name, IP or CIDR range/, bad);
  }
  for (const bad of ['203.0.113.0/24/x', '203.0.113.7/api', '10.0.0.0/33']) {
    assert.throws(() => new RiskyDestinations([bad]), /is neither a host nor a valid CIDR range/, bad);
  }
});
