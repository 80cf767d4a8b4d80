import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileRule, conditionReading, hasEffectiveCondition, matchSubject, RuleError } from '../../src/rules/matcher.js';
import { neverSuppress, ImpostorSet, serverlessDaemonNames, unpinnedDaemonNames } from '../../src/rules/guards.js';
import { PORT_ONLY_PROCESS_NAMES, VPN_PROCESS_NAMES, VPN_SIGNATURES } from '../../src/analysis/vpn-signatures.js';
import { parseIpRange } from '../../src/domain/ip.js';
import { BUILTIN_RISKY_DESTINATIONS, RiskyDestinations } from '../../src/analysis/risky-destinations.js';
import type { DetectionSubject } from '../../src/domain/subject.js';
import type { RuleConditions } from '../../src/rules/types.js';
import type { ProcessInfo } from '../../src/domain/types.js';
import { RulesService } from '../../src/rules/service.js';
import { call, ingest, rollupMismatches, tmpStore, TS0 } from '../analysis/helpers.js';
import { DETECTIONS } from '../helpers.js';

/**
 * The one matcher against a tiny, obviously correct reference: globs become anchored regexes
 * (`*` any run of characters, except "/" for workflow paths; `?` one character), CIDRs are compared
 * bit by bit, hosts and endpoints case-insensitively. Random rules and detections; any disagreement
 * is a bug in one of them.
 */

const TYPE = 'New-Outbound-Network-Call';
const OWNERS = ['acme', 'ACME', 'globex', 'acme-corp'];
const REPOS = ['api', 'web', 'web-ui'];
const WORKFLOWS = ['.github/workflows/ci.yml', '.github/workflows/release.yml'];
const JOBS = ['build', 'test'];
const HOSTS = ['github.com', 'api.github.com', 'webhook.site', 'a.webhook.site', 'x.example.com', 'registry.npmjs.org', 'gist.githubusercontent.com', 'login.tailscale.com'];
const IPS = ['100.64.1.2', '100.127.255.1', '10.0.0.1', '45.61.136.14', '198.51.100.7'];
const PORTS = [443, 80, 41641, 8443];
const PROCS = ['tailscaled', 'curl', 'node', 'twingated'];
const SHAS = ['a'.repeat(64), 'b'.repeat(64), null];

const subjectArb: fc.Arbitrary<DetectionSubject> = fc
  .record({
    owner: fc.constantFrom(...OWNERS),
    repo: fc.constantFrom(...REPOS),
    workflow: fc.constantFrom(...WORKFLOWS),
    job: fc.constantFrom(...JOBS),
    direct: fc.boolean(),
    host: fc.constantFrom(...HOSTS),
    ip: fc.constantFrom(...IPS),
    port: fc.constantFrom(...PORTS),
    process: fc.constantFrom(...PROCS),
    sha: fc.constantFrom(...SHAS),
  })
  .map((r) => {
    const host = r.direct ? r.ip : r.host;
    return {
      type: TYPE, owner: r.owner, repo: r.repo, workflow: r.workflow, job: r.job,
      endpoint: `${host}:${r.port}`, host, port: r.port, ip: r.ip, process: r.process, processSha256: r.sha, processPath: `/usr/bin/${r.process}`,
    };
  });

/** a value, a case variant, a prefix glob, a suffix glob, "?" in place of a character, or "*" */
function globOf(values: string[]): fc.Arbitrary<string> {
  return fc.tuple(fc.constantFrom(...values), fc.nat(4), fc.nat(20)).map(([v, kind, cut]) => {
    const i = v.length ? cut % v.length : 0;
    switch (kind) {
      case 0: return v;
      case 1: return v.toUpperCase();
      case 2: return `${v.slice(0, i)}*`;
      case 3: return `*${v.slice(i)}`;
      default: return `${v.slice(0, i)}?${v.slice(i + 1)}`;
    }
  });
}

const conditionsArb: fc.Arbitrary<RuleConditions> = fc.record(
  {
    owner: globOf(OWNERS),
    repo: globOf(REPOS),
    workflow: fc.oneof(globOf(WORKFLOWS), fc.constant('*.yml'), fc.constant('.github/*/ci.yml')),
    job: globOf(JOBS),
    endpoint: fc.oneof(
      fc.tuple(globOf(HOSTS), fc.constantFrom('443', '80', '*', '4*')).map(([h, p]) => `${h}:${p}`),
      globOf(HOSTS),
      fc.tuple(fc.constantFrom(...IPS), fc.constantFrom('443', '*')).map(([h, p]) => `${h}:${p}`),
    ),
    host: globOf(HOSTS),
    ip_address: fc.oneof(fc.constantFrom(...IPS), fc.constantFrom('100.64.0.0/10', '45.0.0.0/8', '10.0.0.0/8', '0.0.0.0/0', '100.64.1.2/32'), fc.constantFrom('100.64.*', '*.7', '45.61.136.1?')),
    process: fc.oneof(globOf(PROCS), fc.constantFrom('tailscaled.exe', 'TAILSCALED')),
    process_sha256: fc.constantFrom('a'.repeat(64), 'b'.repeat(64), 'A'.repeat(64)),
  },
  { requiredKeys: [] },
);

/** 1 to 3 conditions: rules that actually match something in a small random store */
const fewConditionsArb: fc.Arbitrary<RuleConditions> = fc
  .tuple(conditionsArb, fc.record({ process: fc.constantFrom('tailscaled', 'curl', 'tail*'), ip_address: fc.constantFrom('100.64.0.0/10', '45.0.0.0/8', '0.0.0.0/0'), owner: fc.constantFrom(...OWNERS), repo: fc.constantFrom(...REPOS), host: globOf(HOSTS) }), fc.subarray(['process', 'ip_address', 'owner', 'repo', 'host'] as const, { minLength: 1, maxLength: 3 }))
  .map(([rnd, base, keys]) => {
    const out: RuleConditions = {};
    for (const k of keys) out[k] = base[k];
    // sometimes one more random condition of any kind
    const extra = Object.entries(rnd)[0];
    if (extra && keys.length < 3) out[extra[0] as keyof RuleConditions] = extra[1];
    return out;
  });

// ---- reference ----
function globRe(p: string, slashStops: boolean): RegExp {
  const any = slashStops ? '[^/]*' : '.*';
  const one = slashStops ? '[^/]' : '.';
  const body = [...p].map((ch) => (ch === '*' ? any : ch === '?' ? one : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 'i');
}
const glob = (p: string, v: string, slashStops = false) => p === '*' || globRe(p, slashStops).test(v);
function ipv4(s: string): number | null {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(s);
  return m ? m.slice(1).reduce((a, x) => a * 256 + Number(x), 0) : null;
}
function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  const a = ipv4(ip);
  const b = ipv4(base);
  if (a === null || b === null) return false;
  const size = 2 ** (32 - Number(bits));
  return Math.floor(a / size) === Math.floor(b / size);
}
function reference(c: RuleConditions, s: DetectionSubject): boolean {
  const scope = (k: 'owner' | 'repo' | 'workflow' | 'job', v: string) => c[k] === undefined || glob(c[k]!, v, k === 'workflow' || c[k]!.includes('/'));
  if (!scope('owner', s.owner) || !scope('repo', s.repo) || !scope('workflow', s.workflow) || !scope('job', s.job)) return false;
  if (c.endpoint !== undefined && c.endpoint !== '*') {
    const i = c.endpoint.lastIndexOf(':');
    if (i < 0) {
      if (!glob(c.endpoint, s.host)) return false;
    } else if (!glob(c.endpoint, s.endpoint)) return false;
  }
  if (c.host !== undefined && c.host !== '*' && !glob(c.host, s.host)) return false;
  if (c.ip_address !== undefined && c.ip_address !== '*') {
    if (s.ip === null) return false;
    const ok = c.ip_address.includes('/') ? inCidr(s.ip, c.ip_address) : glob(c.ip_address, s.ip);
    if (!ok) return false;
  }
  if (c.process !== undefined && c.process !== '*' && !glob(c.process.replace(/\.exe$/i, ''), s.process)) return false;
  if (c.process_sha256 !== undefined && c.process_sha256 !== '*' && (s.processSha256 === null || c.process_sha256.toLowerCase() !== s.processSha256)) return false;
  return true;
}

test('property: the rule matcher agrees with a brute-force reference on random rules and detections', () => {
  fc.assert(
    fc.property(conditionsArb, fc.array(subjectArb, { minLength: 1, maxLength: 30 }), (c, subjects) => {
      let rule;
      try {
        rule = compileRule(TYPE, c);
      } catch (err) {
        // only malformed patterns may be refused, never a well-formed generated one
        assert.ok(err instanceof RuleError, String(err));
        throw err;
      }
      for (const s of subjects) assert.equal(matchSubject(rule, s), reference(c, s), `${JSON.stringify(c)} on ${JSON.stringify(s)}`);
    }),
    { numRuns: 2000 },
  );
});

test('property: a condition without a letter or digit names nothing, and a rule of such conditions is too broad (create and preview refuse it)', () => {
  const KEYS = ['owner', 'repo', 'job', 'process', 'host', 'endpoint', 'ip_address'] as const;
  // a pattern of wildcards and separators only; at least one wildcard, so it is a pattern and not a name
  const patternArb = fc
    .tuple(fc.array(fc.constantFrom('*', '?', '.', '-', '_'), { maxLength: 5 }), fc.constantFrom('*', '?'), fc.array(fc.constantFrom('*', '?', '.', '-'), { maxLength: 5 }))
    .map(([a, w, b]) => [...a, w, ...b].join('').replace(/\*{3,}/g, '**'));
  // owners as GitHub has them: no "/" (a scope pattern with "/" is a path pattern), and not "." or ".."
  // (picomatch never matches those two with a wildcard, as path segments; no owner or repo is named so)
  const valuesArb = fc.array(fc.string({ minLength: 1, maxLength: 12 }).filter((v) => !v.includes('/') && v !== '.' && v !== '..'), { minLength: 1, maxLength: 20 });
  fc.assert(
    fc.property(fc.subarray([...KEYS], { minLength: 1 }), patternArb, valuesArb, (keys, pattern, values) => {
      const conditions: RuleConditions = Object.fromEntries(keys.map((k) => [k, pattern]));
      let rule;
      try {
        rule = compileRule(TYPE, conditions);
      } catch (err) {
        assert.ok(err instanceof RuleError && err.code === 'invalid_condition', String(err));
        return;
      }
      for (const k of keys) assert.equal(conditionReading(k, ` ${pattern} `), '*', `${k}=${pattern}`);
      assert.equal(hasEffectiveCondition(rule.conditions), false, JSON.stringify(conditions));
      // why: with "*" and "?" alone (no separator) it matches every value at least as long as its "?"s
      if (/^[*?]+$/.test(pattern) && pattern.includes('*') && rule.owner) {
        const min = pattern.replace(/\*/g, '').length;
        for (const v of values) if (v.length >= min) assert.ok(rule.owner(v), `owner=${pattern} on ${JSON.stringify(v)}`);
      }
      // one letter or digit anywhere makes it name something
      assert.equal(hasEffectiveCondition({ ...rule.conditions, owner: `${pattern}a` }), true);
    }),
    { numRuns: 1000 },
  );
  for (const range of ['0.0.0.0/0', '::/0']) assert.equal(hasEffectiveCondition({ ip_address: range }), false, range);
  assert.equal(hasEffectiveCondition({ ip_address: '10.0.0.0/8' }), true);
});

test('in a scope or workflow pattern only "*" and "?" are wildcards: negation, braces, extglobs and classes are literal text', () => {
  const wf = '.github/workflows/ci.yml';
  for (const [key, pattern, value] of [
    ['owner', '!zz/*', 'acme'],
    ['repo', '!zz/*', 'api'],
    ['workflow', '!zz*', wf],
    ['workflow', '**/!(zz)', wf],
    ['workflow', '**{a,}', wf],
    ['workflow', '.github/workflows/[a-z]i.yml', wf],
  ] as const) {
    const rule = compileRule(TYPE, { [key]: pattern });
    assert.equal(rule[key]!(value), false, `${key}=${pattern} on ${value}`);
  }
  assert.equal(compileRule(TYPE, { workflow: '.github/workflows/{ci}.yml' }).workflow!('.github/workflows/{ci}.yml'), true, 'braces are the characters');
  assert.equal(compileRule(TYPE, { workflow: '**/c?.yml' }).workflow!(wf), true, 'the wildcards still work');
});

test('a bracketed endpoint host is an IP address, compared in canonical form; anything else in brackets is refused', () => {
  const subject = (endpoint: string, ip: string): DetectionSubject => ({
    type: TYPE, owner: 'acme', repo: 'api', workflow: WORKFLOWS[0]!, job: 'build', endpoint, host: ip, port: 443, ip, process: 'curl', processSha256: null, processPath: '/usr/bin/curl',
  } as DetectionSubject);
  const v4 = subject('8.8.8.8:443', '8.8.8.8');
  const v6 = subject('[2001:db8::1]:443', '2001:db8::1');
  assert.equal(matchSubject(compileRule(TYPE, { endpoint: '[::ffff:8.8.8.8]:443' }), v4), true);
  assert.equal(matchSubject(compileRule(TYPE, { endpoint: '[2001:DB8:0:0::1]:443' }), v6), true);
  assert.equal(matchSubject(compileRule(TYPE, { endpoint: '[2001:0db8:0000:0000:0000:0000:0000:0001]' }), v6), true);
  assert.equal(matchSubject(compileRule(TYPE, { endpoint: '[2001:db8::*]:4?3' }), v6), true);
  assert.equal(matchSubject(compileRule(TYPE, { endpoint: '[2001:db8::2]:443' }), v6), false);
  for (const bad of ['[zz]:443', '[example.com]:443', '[2001:db8::g]']) {
    assert.throws(() => compileRule(TYPE, { endpoint: bad }), (e: unknown) => e instanceof RuleError && e.code === 'invalid_condition' && /not an IP/.test(e.message), bad);
  }
});

test('property: the never-suppress guard agrees with a brute-force reference (risky suffixes, impostor binaries)', () => {
  const risky = new RiskyDestinations();
  const refRisky = (host: string) => BUILTIN_RISKY_DESTINATIONS.some((e) => host.toLowerCase() === e || host.toLowerCase().endsWith(`.${e}`));
  const binaryArb = fc.record({ process: fc.constantFrom(...PROCS), sha256: fc.constantFrom(...SHAS), path: fc.constantFrom('/tmp/x', '/usr/bin/x', null) });
  fc.assert(
    fc.property(fc.array(binaryArb, { maxLength: 4 }), fc.array(fc.tuple(subjectArb, fc.constantFrom('/tmp/x', '/usr/bin/x', null)), { minLength: 1, maxLength: 20 }), (flagged, subjects) => {
      const set = new ImpostorSet(flagged.map((b) => ({ ...b, path: b.sha256 ? null : b.path, reason: 'test' })));
      for (const [s, path] of subjects) {
        const f = { process: s.process, sha256: s.processSha256, path, endpoint: s.endpoint };
        // a hash is one file under any name; a hash-less binary is its name at its path
        const refImpostor = flagged.some((b) => (b.sha256 ? b.sha256 === f.sha256 : b.process === f.process && f.sha256 === null && b.path === f.path));
        const got = neverSuppress(f, risky, set);
        const want = refRisky(s.host) ? 'risky' : refImpostor ? 'impostor' : null;
        assert.equal(got?.kind ?? null, want, JSON.stringify(f));
        // what ingest asks of a process under any name, a daemon's or not (suppressor.ts observe)
        if (f.sha256 !== null) {
          const refHash = flagged.some((b) => b.sha256?.toLowerCase() === f.sha256!.toLowerCase());
          assert.equal(set.flagsHash(f.sha256), refHash, `flagsHash ${f.sha256}`);
          assert.equal(set.flagsHash(f.sha256.toUpperCase()), refHash, `flagsHash ${f.sha256.toUpperCase()}`);
        }
      }
    }),
    { numRuns: 2000 },
  );
});

test('property: a preview warns of exactly the VPN daemon names a rule covers by name alone (no hash, no destination that names a server or stays in the daemon\'s signature), and of the port-only daemons it covers with no destination', () => {
  const processArb = fc.oneof(globOf([...PROCS, 'cloudflared', 'wg-quick', 'openvpn']), fc.constantFrom('*', 'tail*', '*d', 'TAILSCALED', 'wireguard*'));
  fc.assert(
    fc.property(conditionsArb, processArb, fc.boolean(), (rnd, process, withProcess) => {
      const c: RuleConditions = { ...rnd };
      if (withProcess) c.process = process;
      let rule;
      try {
        rule = compileRule(TYPE, c);
      } catch (e) {
        if (e instanceof RuleError) return;
        throw e;
      }
      // a server named: a host written out (no * or ?), an address, or a range of /24 or narrower
      const written = (h: string) => !/[*?]/.test(h);
      const toServer =
        (c.endpoint !== undefined && written(c.endpoint.split(':')[0]!)) ||
        (c.host !== undefined && written(c.host)) ||
        (c.ip_address !== undefined && (/^[\d.]+$/.test(c.ip_address) || /\/(2[4-9]|3[0-2])$/.test(c.ip_address)));
      // or a destination inside the daemon's own signature: one of its ranges, or one of its domain patterns as written
      const inSignature = (name: string) => {
        const sig = VPN_SIGNATURES.find((s) => s.names.includes(name))!;
        const range = c.ip_address === undefined ? null : parseIpRange(c.ip_address);
        const ownRange = range !== null && sig.cidrs.some((x) => parseIpRange(x)!.prefixLength <= range.prefixLength && parseIpRange(x)!.contains(range.first));
        const ownHost = [c.host, c.endpoint?.split(':')[0]].some((h) => h !== undefined && sig.domains.includes(h.toLowerCase()));
        return ownRange || ownHost;
      };
      const pinned = c.process_sha256 !== undefined || toServer;
      const want = c.process === undefined || c.process === '*' || pinned ? [] : VPN_PROCESS_NAMES.filter((n) => glob(c.process!.replace(/\.exe$/i, ''), n) && !inSignature(n));
      assert.deepEqual(unpinnedDaemonNames(rule, VPN_PROCESS_NAMES), want, JSON.stringify(c));
      // a daemon whose port is its whole signature needs a server whether or not a hash pins it
      const wantServerless = c.process === undefined || c.process === '*' || toServer ? [] : PORT_ONLY_PROCESS_NAMES.filter((n) => glob(c.process!.replace(/\.exe$/i, ''), n));
      assert.deepEqual(serverlessDaemonNames(rule, PORT_ONLY_PROCESS_NAMES), wantServerless, JSON.stringify(c));
    }),
    { numRuns: 2000 },
  );
  // a destination condition that names nothing narrows nothing, nor one that takes any server: half the Internet, an address glob, the daemon's port
  for (const extra of [{ ip_address: '0.0.0.0/0' }, { endpoint: '*:*' }, { host: '*.*' }, { ip_address: '0.0.0.0/1' }, { ip_address: '1*' }, { endpoint: '*:41641' }]) {
    assert.deepEqual(unpinnedDaemonNames(compileRule(TYPE, { process: 'tailscaled', ...extra }), VPN_PROCESS_NAMES), ['tailscaled'], JSON.stringify(extra));
    assert.deepEqual(serverlessDaemonNames(compileRule(TYPE, { process: 'openvpn', process_sha256: 'a'.repeat(64), ...extra }), PORT_ONLY_PROCESS_NAMES), ['openvpn'], JSON.stringify(extra));
  }
  // nor does one that names any server on the port, or a wide range; a server written out does
  for (const [extra, warned] of [
    [{ endpoint: '*:1194' }, true], [{ endpoint: '*.com:1194' }, true], [{ host: '*.example.com' }, true], [{ ip_address: '0.0.0.0/1' }, true],
    [{ ip_address: '2001:db8::/32' }, true], [{ endpoint: 'vpn.acme.example:1194' }, false], [{ endpoint: '[2001:db8::7]:1194' }, false],
    [{ host: 'vpn.acme.example' }, false], [{ ip_address: '203.0.113.0/24' }, false], [{ ip_address: '2001:db8::/64' }, false],
  ] as const) {
    assert.deepEqual(serverlessDaemonNames(compileRule(TYPE, { process: 'openvpn', ...extra }), PORT_ONLY_PROCESS_NAMES), warned ? ['openvpn'] : [], JSON.stringify(extra));
  }
  assert.deepEqual(PORT_ONLY_PROCESS_NAMES, ['openvpn', 'wireguard', 'wireguard-go', 'wg-quick']);
});

test('property: create, on a real SQLite store, never suppresses a risky destination or a suspected impostor, and suppresses exactly what it matches', async () => {
  const genuine: ProcessInfo = { name: 'tailscaled', path: '/usr/sbin/tailscaled', sha256: 'a'.repeat(64), parent: { name: 'sudo', parent: { name: 'bash' } } };
  const impostor: ProcessInfo = { name: 'tailscaled', path: '/tmp/.cache/tailscaled', sha256: 'b'.repeat(64), parent: { name: 'node', parent: { name: 'npm' } } };
  const curl: ProcessInfo = { name: 'curl', path: '/usr/bin/curl', sha256: null as unknown as string, parent: { name: 'bash' } };
  const eventArb = fc.record({
    who: fc.constantFrom(genuine, impostor, curl),
    owner: fc.constantFrom(...OWNERS),
    repo: fc.constantFrom(...REPOS),
    dest: fc.oneof(fc.constantFrom(...HOSTS).map((domain) => ({ domain, port: 443 })), fc.constantFrom(...IPS).map((ip) => ({ ip, port: 41641 }))),
    run: fc.nat(5),
  });
  let accepted = 0;
  let refusedGuarded = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(eventArb, { minLength: 1, maxLength: 25 }), fewConditionsArb, async (evs, c) => {
      const { store, cleanup } = tmpStore();
      try {
        await ingest(store, 'p', evs.map((e, i) => call('p', e.repo, 100 + e.run, TS0 + i * 1000, e.who, e.dest, e.owner)));
        const rows = store.db
          .prepare(
            `SELECT d.id, d.status, j.owner, j.repo, j.workflow, j.job, e.endpoint, e.host, e.port, i.ip, p.norm_name, p.sha256, p.path
             FROM ${DETECTIONS} d JOIN jobs j ON j.id = d.job_ref JOIN endpoints e ON e.id = d.endpoint_id
             JOIN processes p ON p.id = d.process_id LEFT JOIN ips i ON i.id = d.ip_id`,
          )
          .all() as { id: number; status: number; owner: string; repo: string; workflow: string; job: string; endpoint: string; host: string; port: number; ip: string | null; norm_name: string; sha256: string | null; path: string | null }[];
        const subject = (r: (typeof rows)[number]): DetectionSubject => ({
          type: TYPE, owner: r.owner, repo: r.repo, workflow: r.workflow, job: r.job, endpoint: r.endpoint, host: r.host, port: r.port,
          ip: r.ip, process: r.norm_name, processSha256: r.sha256, processPath: r.path,
        });
        const guarded = (r: (typeof rows)[number]) =>
          BUILTIN_RISKY_DESTINATIONS.some((e) => r.host === e || r.host.endsWith(`.${e}`)) || r.sha256 === impostor.sha256;
        const matched = rows.filter((r) => r.status === 0 && reference(c, subject(r)));
        let res;
        try {
          res = await new RulesService(store).create('p', { detection_id: TYPE, conditions: c }, 't');
        } catch (err) {
          assert.ok(err instanceof RuleError, String(err));
          if (matched.some(guarded)) refusedGuarded++;
          return;
        }
        accepted++;
        assert.equal(matched.some(guarded), false, 'a rule matching a guarded detection was accepted');
        assert.equal(res.suppressed, matched.length);
        const suppressed = store.db.prepare(`SELECT id FROM ${DETECTIONS} AS detections WHERE status = 1`).pluck().all() as number[];
        assert.deepEqual(suppressed.sort((a, b) => a - b), matched.map((r) => r.id).sort((a, b) => a - b));
        assert.equal(rollupMismatches(store), 0);
      } finally {
        cleanup();
      }
    }),
    { numRuns: 60 },
  );
  // the property is not vacuous: both outcomes happen
  assert.ok(accepted >= 5, `only ${accepted} rules accepted`);
  assert.ok(refusedGuarded >= 5, `only ${refusedGuarded} rules refused for matching guarded detections`);
});
