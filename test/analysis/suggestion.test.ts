import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RiskyDestinations } from '../../src/analysis/risky-destinations.js';
import { buildSuggestion, MAX_RULE_HASHES, type RuleImpact, type SuggestionInput } from '../../src/analysis/suggestion.js';
import { serversApart, type JudgedBinary } from '../../src/analysis/verdict.js';
import type { RuleConditions } from '../../src/rules/types.js';
import { ImpostorSet } from '../../src/rules/guards.js';
import { compileRule, matchEndpoint } from '../../src/rules/matcher.js';
import { judge, type PlainCall } from './plain-group.js';

/** Suggestion building and its refusals, from plain data: the impact is a recorded function, no store. */

const risky = new RiskyDestinations();
const TYPE = 'New-Outbound-Network-Call';
const sha = (c: string) => c.repeat(64);
const ts = (s: string | null, extra: Partial<PlainCall> = {}): PlainCall => ({ sha256: s, path: '/usr/sbin/tailscaled', host: 'controlplane.tailscale.com', port: 443, ...extra });

async function suggest(name: string, judged: JudgedBinary[], over: Partial<SuggestionInput> = {}) {
  const asked: RuleConditions[] = [];
  const impact = async (c: RuleConditions): Promise<RuleImpact> => {
    asked.push(c);
    return { would_suppress: 42, risky_matches: 0, refused_reason: null };
  };
  const s = await buildSuggestion({ name, judged, detectionType: TYPE, scope: {}, risky, impostors: new ImpostorSet(), impact, ...over });
  return { ...s, asked };
}

test('a genuine daemon binary gets a rule narrowed to its hash, scoped like the query, with the preview impact', async () => {
  const judged = judge('tailscaled', [ts(sha('a'), { n: 9 }), ts(sha('b'), { host: 'webhook.site', n: 2 })], risky);
  const s = await suggest('tailscaled', judged, { scope: { owner: 'Acme', repo: 'api' } });
  assert.equal(s.reason, null);
  assert.deepEqual(s.suggested!.conditions, { process: 'tailscaled', process_sha256: sha('a'), owner: 'Acme', repo: 'api', workflow: '*', job: '*' });
  assert.deepEqual(s.asked, [s.suggested!.conditions]);
  assert.deepEqual(s.suggested!.impact, { would_suppress: 42, risky: 0 });
  assert.equal(s.suggested!.blocked_reason, null);
  assert.match(s.suggested!.rationale, /narrowed to this hash/);
  assert.match(s.suggested!.rationale, new RegExp(`excluded: ${sha('b').slice(0, 12)} \\(impostor, 2\\)`));
});

test('several genuine versions share one rule, at most MAX_RULE_HASHES hashes; the rest are named', async () => {
  const letters = 'abcdefghij'.split('');
  const calls = letters.map((l, i) => ts(sha(l), { n: 20 - i }));
  const s = await suggest('tailscaled', judge('tailscaled', calls, risky));
  const listed = s.suggested!.conditions.process_sha256!.split('|');
  assert.equal(listed.length, MAX_RULE_HASHES);
  assert.deepEqual(listed, letters.slice(0, MAX_RULE_HASHES).map(sha));
  assert.match(s.suggested!.rationale, new RegExp(`other genuine binaries need their own rule: process_sha256=${sha('h')} \\(13\\)`));
});

test('no suggestion: a name that is no daemon, a daemon without signature evidence, every binary an impostor', async () => {
  const curl = await suggest('curl', judge('curl', [{ sha256: sha('c'), path: '/usr/bin/curl', host: 'api.github.com', port: 443 }], risky));
  assert.equal(curl.suggested, null);
  assert.match(curl.reason!, /curl is not a VPN\/mesh daemon/);
  const silent = await suggest('tailscaled', judge('tailscaled', [ts(sha('a'), { host: '198.51.100.1', port: 8443, isIp: true })], risky));
  assert.equal(silent.suggested, null);
  assert.match(silent.reason!, /shows tailscale's network signature .* the name alone proves nothing/);
  const fake = await suggest('tailscaled', judge('tailscaled', [ts(sha('b'), { host: 'gist.githubusercontent.com' })], risky));
  assert.equal(fake.suggested, null);
  assert.match(fake.reason!, /name impersonation suspected, no rule is suggested/);
  assert.deepEqual([curl.asked, silent.asked, fake.asked], [[], [], []]);
});

test('no suggestion for a detection type that is a behaviour no daemon has, however genuine its binary looks', async () => {
  const judged = judge('tailscaled', [ts(sha('a'), { host: '100.64.1.1', port: 41641, isIp: true })], risky);
  for (const type of ['Reverse-Shell', 'Suspicious-Network-Call', 'Runner-Worker-Memory-Read', 'Source-Code-Overwritten']) {
    const s = await suggest('tailscaled', judged, { detectionType: type });
    assert.equal(s.suggested, null, type);
    assert.equal(s.reason, `a ${type} detection is no noise of tailscale's: no daemon does that, so no rule is suggested; review each one`);
    assert.deepEqual(s.asked, [], type);
  }
  assert.notEqual((await suggest('tailscaled', judged, { detectionType: 'HTTPS-Outbound-Network-Call' })).suggested, null);
});

test('refused: a genuine binary without a hash (alone, or next to other binaries)', async () => {
  const alone = await suggest('tailscaled', judge('tailscaled', [ts(null)], risky));
  assert.match(alone.suggested!.blocked_reason!, /has no sha256: a name-only rule would also silence any future binary named tailscaled/);
  assert.equal(alone.reason, alone.suggested!.blocked_reason);
  const mixed = await suggest('tailscaled', judge('tailscaled', [ts(null, { n: 5 }), ts(sha('b'), { host: 'webhook.site' })], risky));
  assert.match(mixed.suggested!.blocked_reason!, /cannot exclude the other binaries named tailscaled/);
});

test('refused: the rules preview refuses (risky or impostor matches elsewhere in the tenant)', async () => {
  const judged = judge('tailscaled', [ts(sha('a'))], risky);
  const s = await buildSuggestion({
    name: 'tailscaled', judged, detectionType: TYPE, scope: {}, risky, impostors: new ImpostorSet(),
    impact: async () => ({ would_suppress: 7, risky_matches: 1, refused_reason: 'the rule would also suppress 1 detection(s) to risky destinations (webhook.site:443)' }),
  });
  assert.equal(s.suggested!.blocked_reason, 'the rule would also suppress 1 detection(s) to risky destinations (webhook.site:443)');
  assert.deepEqual(s.suggested!.impact, { would_suppress: 7, risky: 1 });
});

test('refused by the never-suppress guard even when a verdict wrongly says genuine: risky coverage, impostor coverage', async () => {
  const [good] = judge('tailscaled', [ts(sha('a'))], risky);
  // a verdict that is wrong: genuine, yet the binary called a risky destination
  const forgedRisky: JudgedBinary = { ...good!, riskyCalls: ['webhook.site:443'] };
  const r = await suggest('tailscaled', [forgedRisky]);
  assert.match(r.suggested!.blocked_reason!, /must stay visible: webhook\.site:443 is the risky destination webhook\.site/);
  // genuine in view, but in the tenant's impostor set
  const set = new ImpostorSet([{ process: 'tailscaled', sha256: sha('a'), path: null, reason: 'started through npm' }]);
  const i = await suggest('tailscaled', [good!], { impostors: set });
  assert.match(i.suggested!.blocked_reason!, /must stay visible: tailscaled sha256 aaaaaaaaaaaa is a suspected impostor \(started through npm\)/);
  // and without either, the same binary is fine
  assert.equal((await suggest('tailscaled', [good!])).suggested!.blocked_reason, null);
});

test('a daemon whose port is its whole signature (OpenVPN, WireGuard) is narrowed to its busiest server too; the others are named', async () => {
  for (const [name, port] of [['openvpn', 1194], ['wg-quick', 51820], ['wireguard-go', 51820]] as const) {
    const calls: PlainCall[] = [
      { sha256: sha('a'), path: `/usr/sbin/${name}`, host: 'vpn.acme.example', port, n: 5 },
      { sha256: sha('a'), path: `/usr/sbin/${name}`, host: '2001:db8::7', port, isIp: true, n: 2 },
      // a direct IP on another port supports nothing and contradicts nothing: the rule leaves it visible
      { sha256: sha('a'), path: `/usr/sbin/${name}`, host: '198.51.100.9', port: 443, isIp: true, n: 1 },
      // a renamed binary calling its own server on the daemon's port looks just as genuine
      { sha256: sha('b'), path: `/home/runner/.local/bin/${name}`, host: 'c2.evil.example', port, n: 3 },
    ];
    const judged = judge(name, calls, risky);
    assert.deepEqual(judged.map((j) => j.verdict.verdict), ['genuine', 'genuine'], name);
    const s = await suggest(name, judged);
    assert.equal(s.reason, null);
    // only the binary that reached the server is pinned: the renamed one never did
    assert.deepEqual(s.suggested!.conditions, {
      process: name, process_sha256: sha('a'), endpoint: 'vpn.acme.example:' + port, owner: '*', repo: '*', workflow: '*', job: '*',
    }, name);
    assert.match(s.suggested!.rationale, new RegExp(`narrowed to the server vpn\\.acme\\.example:${port} \\(5\\), check that it is yours`));
    assert.match(s.suggested!.rationale, new RegExp(`it also reached endpoint=c2\\.evil\\.example:${port} \\(3\\), endpoint=\\[2001:db8::7\\]:${port} \\(2\\): a rule of their own only for those that are yours`));
    assert.match(s.suggested!.rationale, new RegExp(`other genuine binaries need their own rule: process_sha256=${sha('b')} \\(3\\)`));
    // the binaries reached no server in common: said, with each binary's servers
    assert.equal(serversApart(judged), `sha256 ${sha('a').slice(0, 12)} (/usr/sbin/${name}) to vpn.acme.example:${port}, [2001:db8::7]:${port}; sha256 ${sha('b').slice(0, 12)} (/home/runner/.local/bin/${name}) to c2.evil.example:${port}`);
    // each named server is a valid endpoint condition that matches the stored endpoint
    for (const e of [`c2.evil.example:${port}`, `[2001:db8::7]:${port}`]) assert.ok(matchEndpoint(compileRule(TYPE, { endpoint: e }), e), e);
  }
  // the renamed binary's server the busiest: the rule names that server and that binary's path, for the user to check
  const busy = await suggest('openvpn', judge('openvpn', [
    { sha256: sha('a'), path: '/usr/sbin/openvpn', host: 'vpn.acme.example', port: 1194, n: 2 },
    { sha256: sha('b'), path: '/home/runner/.local/bin/openvpn', host: 'c2.evil.example', port: 1194, n: 9 },
  ], risky));
  assert.equal(busy.suggested!.conditions.process_sha256, sha('b'));
  assert.equal(busy.suggested!.conditions.endpoint, 'c2.evil.example:1194');
  assert.match(busy.suggested!.rationale, /^openvpn binary sha256 bbbbbbbbbbbb \(\/home\/runner\/\.local\/bin\/openvpn\) matches .* narrowed to the server c2\.evil\.example:1194 \(9\), check that it is yours/);
  // two versions of the daemon at one server: one rule for both, no warning
  const upgraded = judge('openvpn', [
    { sha256: sha('a'), path: '/usr/sbin/openvpn', host: 'vpn.acme.example', port: 1194, n: 2 },
    { sha256: sha('c'), path: '/usr/sbin/openvpn', host: 'vpn.acme.example', port: 1194, n: 1 },
  ], risky);
  assert.equal((await suggest('openvpn', upgraded)).suggested!.conditions.process_sha256, `${sha('a')}|${sha('c')}`);
  assert.equal(serversApart(upgraded), null);
  // the busiest server reached only by a binary without a hash: the server is chosen among those a rule can pin
  const hashless = await suggest('openvpn', judge('openvpn', [
    { sha256: null, path: '/usr/sbin/openvpn', host: 'vpn1.acme.example', port: 1194, n: 5 },
    { sha256: sha('c'), path: '/usr/local/sbin/openvpn', host: 'vpn2.acme.example', port: 1194, n: 2 },
  ], risky));
  assert.equal(hashless.suggested!.blocked_reason, null);
  assert.equal(hashless.suggested!.conditions.endpoint, 'vpn2.acme.example:1194');
  assert.equal(hashless.suggested!.conditions.process_sha256, sha('c'));
  // a daemon with a control plane of its own is judged by it, and keeps no endpoint condition
  const ts1 = await suggest('tailscaled', judge('tailscaled', [ts(sha('a'), { n: 4 })], risky));
  assert.equal(ts1.suggested!.conditions.endpoint, undefined);
  assert.doesNotMatch(ts1.suggested!.rationale, /server/);
});

test('a rule holds one detection type: analysed with others, the suggestion says they need a rule of their own', async () => {
  const judged = judge('tailscaled', [ts(sha('a'))], risky);
  const s = await suggest('tailscaled', judged, { otherTypes: ['Domain-Blocked'] });
  assert.equal(s.suggested!.detection_id, TYPE);
  assert.match(s.suggested!.rationale, /it covers New-Outbound-Network-Call detections only: a rule holds one type, so Domain-Blocked detections of the group need a rule of their own with the same conditions/);
  assert.doesNotMatch((await suggest('tailscaled', judged)).suggested!.rationale, /a rule holds one type/);
});

test('a rule over a binary says what it silences that the signature does not explain: a renamed binary with one call inside it looks just so', async () => {
  const zt = (host: string, port: number, n = 1, s = sha('z')): PlainCall => ({ sha256: s, path: '/usr/sbin/zerotier-one', host, port, n });
  // one call on ZeroTier's port, then direct IPs on ports ZeroTier does not use
  const renamed = judge('zerotier-one', [zt('198.51.100.66', 9993), zt('203.0.113.5', 443, 4), zt('203.0.113.9', 8080, 2), zt('203.0.113.5', 22), zt('192.0.2.1', 443)], risky);
  assert.equal(renamed[0]!.verdict.verdict, 'genuine', 'nothing contradicts it: direct IPs prove nothing either way');
  assert.deepEqual(renamed[0]!.unexplained, [['203.0.113.5:443', 4], ['203.0.113.9:8080', 2], ['192.0.2.1:443', 1], ['203.0.113.5:22', 1]]);
  const s = await suggest('zerotier-one', renamed);
  assert.match(
    s.suggested!.rationale,
    /; of the detections in this view, 8 at 4 endpoint\(s\) are direct-IP calls that zerotier's signature does not explain \(203\.0\.113\.5:443 \(4\), 203\.0\.113\.9:8080 \(2\), 192\.0\.2\.1:443 \(1\), \.\.\.\): rules with these conditions silence such calls too \(each of its own detection type\), and a renamed binary that made one call inside the signature looks just like this, so check them before creating it/,
  );
  // two binaries only ZeroTier's port vouches for: the busiest is the rule's, the other is named and
  // left out (a renamed binary looks the same), and adds nothing to what the rule silences
  const two = judge('zerotier-one', [zt('198.51.100.66', 9993, 3), zt('203.0.113.5', 443, 2), zt('198.51.100.67', 9993, 1, sha('y')), zt('203.0.113.5', 443, 1, sha('y')), zt('gist.githubusercontent.com', 443, 1, sha('x'))], risky);
  const twoRule = (await suggest('zerotier-one', two)).suggested!;
  assert.equal(twoRule.conditions.process_sha256, sha('z'));
  assert.match(twoRule.rationale, /of the detections in this view, 2 at 1 endpoint\(s\) are direct-IP calls that zerotier's signature does not explain \(203\.0\.113\.5:443 \(2\)\): rules with these conditions silence such calls too/);
  assert.match(twoRule.rationale, /; not in the rule: sha256 yyyyyyyyyyyy \(\/usr\/sbin\/zerotier-one\) \(2\): only zerotier's port vouches for it, never one of its domains or address ranges/);
  // every call inside the signature: nothing to say
  const real = await suggest('zerotier-one', judge('zerotier-one', [zt('198.51.100.66', 9993, 5), zt('198.51.100.70', 9993)], risky));
  assert.doesNotMatch(real.suggested!.rationale, /does not explain/);
  // a rule that names a server (OpenVPN) takes none of the other addresses: nothing to say either
  const ovpn = await suggest('openvpn', judge('openvpn', [{ sha256: sha('o'), path: '/usr/sbin/openvpn', host: '198.51.100.9', port: 1194, n: 3 }, { sha256: sha('o'), path: '/usr/sbin/openvpn', host: '203.0.113.5', port: 443 }], risky));
  assert.equal(ovpn.suggested!.conditions.endpoint, '198.51.100.9:1194');
  assert.doesNotMatch(ovpn.suggested!.rationale, /does not explain/);
});

test('a second binary only the daemon\'s port vouches for stays out of the rule: a renamed tailscaled calling its own server on 41641 (found by review)', async () => {
  const genuine = (extra: Partial<PlainCall>) => ts(sha('a'), { path: '/usr/local/bin/tailscaled', ...extra });
  const renamed = (extra: Partial<PlainCall>) => ts(sha('b'), { path: '/home/runner/.local/bin/tailscaled', parents: [{ name: 'bash' }, { name: 'Runner.Worker' }], ...extra });
  const judged = judge('tailscaled', [
    genuine({ host: 'controlplane.tailscale.com', port: 443, n: 2 }), genuine({ host: '100.64.1.9', port: 41641, isIp: true, n: 3 }),
    // the renamed one has more detections than the daemon, and every one of them on tailscale's port
    renamed({ host: '45.61.136.14', port: 41641, isIp: true, n: 9 }),
  ], risky);
  assert.deepEqual(judged.map((j) => [j.verdict.sha256, j.verdict.verdict, j.vouchedByServers]), [[sha('b'), 'genuine', false], [sha('a'), 'genuine', true]]);
  const s = await suggest('tailscaled', judged);
  assert.equal(s.suggested!.conditions.process_sha256, sha('a'), 'only the binary the daemon\'s servers vouch for');
  assert.match(s.suggested!.rationale, /; not in the rule: sha256 bbbbbbbbbbbb \(\/home\/runner\/\.local\/bin\/tailscaled\) \(9\): only tailscale's port vouches for it, never one of its domains or address ranges, and a renamed binary calling its own server on that port looks the same; check it before a rule of your own covers it/);
  // the daemon the servers vouch for has no readable hash: the port-only binary stays out all the same,
  // and the rule is blocked for want of a hash (found by the diff review)
  const hashless = judge('tailscaled', [ts(null, { n: 20 }), renamed({ host: '45.61.136.14', port: 41641, isIp: true, n: 3 })], risky);
  const h = await suggest('tailscaled', hashless);
  assert.equal(h.suggested!.conditions.process_sha256, undefined);
  assert.match(h.suggested!.blocked_reason!, /has no sha256/);
  assert.match(h.suggested!.rationale, /not in the rule: sha256 bbbbbbbbbbbb .*only tailscale's port vouches for it/);
  // two installed versions each reaching tailscale's own servers are both the rule's
  const upgraded = judge('tailscaled', [genuine({ n: 4 }), ts(sha('c'), { host: '100.64.2.2', port: 41641, isIp: true, n: 2 })], risky);
  assert.equal((await suggest('tailscaled', upgraded)).suggested!.conditions.process_sha256, `${sha('a')}|${sha('c')}`);
  // none vouched for by a server: only the busiest binary, the other named
  const portOnly = judge('tailscaled', [ts(sha('d'), { host: '198.51.100.7', port: 41641, isIp: true, n: 5 }), ts(sha('e'), { host: '203.0.113.7', port: 41641, isIp: true, n: 1 })], risky);
  const p = (await suggest('tailscaled', portOnly)).suggested!;
  assert.equal(p.conditions.process_sha256, sha('d'));
  assert.match(p.rationale, /not in the rule: sha256 eeeeeeeeeeee .*only tailscale's port vouches for it/);
});

test('an address in a daemon\'s range vouches for it only on its ports: a renamed tailscaled at 100.100.100.200:80 (a cloud metadata endpoint inside 100.64.0.0/10) is not genuine by it', async () => {
  const t = (host: string, port: number, n = 1): PlainCall => ({ sha256: sha('m'), path: '/home/runner/.local/bin/tailscaled', host, port, n });
  const [metadata] = judge('tailscaled', [t('100.100.100.200', 80, 2), t('100.70.1.1', 4444)], risky);
  assert.equal(metadata!.verdict.verdict, 'unverified', 'nothing supports it: no rule is suggested');
  assert.deepEqual(metadata!.unexplained, [['100.100.100.200:80', 2], ['100.70.1.1:4444', 1]]);
  assert.match((await suggest('tailscaled', [metadata!])).reason!, /no binary named tailscaled shows tailscale's network signature/);
  // with one call on a port of tailscale's, it is genuine by that call alone, and the rest is said
  const [mixed] = judge('tailscaled', [t('100.100.100.200', 80, 2), t('100.70.1.1', 4444), t('203.0.113.9', 3478)], risky);
  assert.deepEqual([mixed!.verdict.verdict, mixed!.verdict.supporting], ['genuine', ['tailscale port 3478 (1)']]);
  assert.match((await suggest('tailscaled', [mixed!])).suggested!.rationale, /3 at 2 endpoint\(s\) are direct-IP calls that tailscale's signature does not explain \(100\.100\.100\.200:80 \(2\), 100\.70\.1\.1:4444 \(1\)\)/);
  // a peer on tailscale's port: range and port both vouch; WARP's DNS-over-HTTPS addresses on 443 too
  assert.deepEqual(judge('tailscaled', [t('100.64.0.7', 41641)], risky)[0]!.verdict.supporting, ['tailscale address range 100.64.0.0/10 (1)', 'tailscale port 41641 (1)']);
  const doh = judge('warp-svc', [{ sha256: sha('w'), path: '/usr/bin/warp-svc', host: '162.159.36.1', port: 443 }], risky)[0]!;
  assert.deepEqual([doh.verdict.verdict, doh.verdict.supporting, doh.unexplained], ['genuine', ['cloudflare-warp address range 162.159.36.1/32 (1)'], []]);
  // a port nobody recorded is no port of tailscale's
  const unknownPort = judge('tailscaled', [{ ...t('100.64.0.7', 0), port: null }], risky)[0]!;
  assert.deepEqual([unknownPort.verdict.verdict, unknownPort.verdict.supporting, unknownPort.unexplained.length], ['unverified', [], 1]);
  const warpOdd = judge('warp-svc', [{ sha256: sha('w'), path: '/usr/bin/warp-svc', host: '162.159.193.4', port: 443 }], risky)[0]!;
  assert.deepEqual([warpOdd.verdict.verdict, warpOdd.unexplained], ['unverified', [['162.159.193.4:443', 1]]]);
});

test('no suggestion for a view no rule can be scoped to: a job or workflow with a wildcard character, a blank other than a space, or a control character', async () => {
  const judged = judge('tailscaled', [ts(sha('a'))], risky);
  const cases: [SuggestionInput['scope'], RegExp][] = [
    // a rule reads ? and * as wildcards: job=b?ild would also take job build
    [{ job: 'b?ild' }, /job "b\?ild" holds \* or \?, which a rule condition reads as a wildcard/],
    [{ workflow: '.github/workflows/*.yml' }, /workflow ".github\/workflows\/\*.yml" holds \* or \?/],
    // a condition takes a space inside a job name, and no other blank, which could pass for one
    [{ job: 'build\tlinux' }, /condition job="build\tlinux": control characters and blanks other than a space are not allowed/],
    [{ job: 'test\u00a0(3.11)', owner: 'acme' }, /condition job="test\u00a0\(3.11\)": control characters and blanks other than a space/],
    [{ job: ' build' }, /job " build" begins or ends with a blank, which a rule condition drops/],
  ];
  for (const [scope, why] of cases) {
    const s = await suggest('tailscaled', judged, { scope });
    assert.equal(s.suggested, null, JSON.stringify(scope));
    assert.match(s.reason!, /^no rule is suggested for this view: /);
    assert.match(s.reason!, why, JSON.stringify(scope));
    assert.deepEqual(s.asked, [], 'no impact is asked for a rule that cannot be written');
  }
  // an exact name is a rule condition as it stands
  const plain = await suggest('tailscaled', judged, { scope: { job: 'build-linux', workflow: '.github/workflows/ci.yml' } });
  assert.equal(plain.reason, null);
  assert.equal(plain.suggested!.conditions.job, 'build-linux');
  // GitHub names a matrix leg with spaces: a rule can be scoped to it (the analysis once failed on it with exit 70)
  const leg = await suggest('tailscaled', judged, { scope: { job: 'test (3.11)', workflow: '.github/workflows/ci test.yml' } });
  assert.equal(leg.reason, null);
  assert.deepEqual([leg.suggested!.conditions.job, leg.suggested!.conditions.workflow], ['test (3.11)', '.github/workflows/ci test.yml']);
});
