import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { containedDaemonName, daemonClaim, daemonClaimingNames, daemonLookalike, VPN_PROCESS_NAMES, VPN_SIGNATURES, vpnSignatureFor } from '../../src/analysis/vpn-signatures.js';
import { callContradiction } from '../../src/analysis/impostor.js';
import { compileRule, matchProcess } from '../../src/rules/matcher.js';
import { normalizeProcessName } from '../../src/domain/process-name.js';
import { call, CLEAN_PARENTS, INSTALLED_PATHS, PAYLOAD_PARENTS, PAYLOAD_PATHS, pathOf, payloadEvidence, refused, risky, signatureDestination } from './daemon-binary-evidence.js';

/**
 * A name that holds a VPN daemon's name after something else (`my-tailscaled`, `x-tailscaled`,
 * `run_tailscaled`, `xtailscaledx`) is what a rule with a leading star (`process=*tailscaled*`) also
 * covers. Found by review: such a binary was judged by no daemon check, so the rule silenced it even
 * run from the job's temp folder, /tmp, /dev/shm or memory, or under npm or python. It is judged as a
 * name extending the daemon's is: by the daemon's binary evidence, never by the daemon's signature, so
 * legitimate programs built around a daemon (`nm-openvpn-service`) stay unflagged where installed.
 */

const NOC = 'New-Outbound-Network-Call';
const NAME_UNIT = fc.constantFrom(...'-._0123456789abcdefghijklmnopqrstuvwxyz');

/**
 * A name holding a daemon's name after at least one other character: made, not filtered by
 * containedDaemonName, so the properties fail rather than starve when it is wrong. Names that are a
 * daemon's own or drawn like one are left out: those are judged as the daemon itself.
 */
const containingArb = fc
  .record({
    daemon: fc.constantFrom(...VPN_PROCESS_NAMES),
    prefix: fc.string({ unit: NAME_UNIT, minLength: 1, maxLength: 8 }),
    suffix: fc.string({ unit: NAME_UNIT, maxLength: 8 }),
  })
  .map(({ daemon, prefix, suffix }) => ({ daemon, name: normalizeProcessName(prefix + daemon + suffix) }))
  .filter(({ name }) => vpnSignatureFor(name) === null);

/** The names a rule `process=*<daemon>*` covers, by the rules' own matcher. */
function coveredByStarGlob(daemon: string, name: string): boolean {
  return matchProcess(compileRule(NOC, { process: `*${daemon}*` }), name, null);
}

test('which names contain a daemon\'s: anywhere in the name, the extended name first, never a daemon\'s own name', () => {
  const cases: [string, string | null][] = [
    ['my-tailscaled', 'tailscaled'],
    ['x-tailscaled', 'tailscaled'],
    ['run_tailscaled', 'tailscaled'],
    ['xtailscaledx', 'tailscaled'],
    ['networkmanager-openvpn', 'openvpn'],
    ['nm-openvpn-service', 'openvpn'],
    ['my-wireguard-go', 'wireguard-go'],
    // a name that extends one daemon's names that one, whatever else it holds
    ['openvpn-plugin-auth-pam', 'openvpn'],
    ['netbird-wireguard-go', 'netbird'],
    ['tailscaled-helper', 'tailscaled'],
    ['tailscaled', null],
    ['wireguard-go', null],
    ['curl', null],
    ['tail-scaled-x', null],
  ];
  for (const [name, daemon] of cases) assert.equal(containedDaemonName(name), daemon, name);
  assert.equal(daemonClaim('My-Tailscaled.EXE')?.within, 'tailscaled');
  assert.equal(daemonClaim('My-Tailscaled.EXE')?.sig.daemon, 'tailscale');
  // the stores select these names with the daemon's (and other names not)
  assert.deepEqual(
    daemonClaimingNames(['my-tailscaled', 'curl', 'run_tailscaled', 'nm-openvpn-service']).filter((n) => !VPN_PROCESS_NAMES.includes(n)),
    ['my-tailscaled', 'run_tailscaled', 'nm-openvpn-service'],
  );
});

test('a name containing a daemon\'s, run from a payload\'s folder or started as a payload is, is a suspected impostor, with why', () => {
  const dest = { host: 'update.example.org', port: 443, isIp: false };
  assert.equal(
    callContradiction(call('my-tailscaled', '/home/runner/work/_temp/5f1c/my-tailscaled', [], dest)),
    'named my-tailscaled, after tailscaled: runs from /home/runner/work/_temp/, a temporary directory no installer puts tailscale in',
  );
  assert.equal(callContradiction(call('x-tailscaled', '/tmp/x-tailscaled', [], dest)), 'named x-tailscaled, after tailscaled: runs from /tmp/, a temporary directory no installer puts tailscale in');
  assert.equal(callContradiction(call('run_tailscaled', '/usr/local/bin/run_tailscaled', [{ name: 'node' }, { name: 'npm' }], dest)), 'named run_tailscaled, after tailscaled: started through node');
  assert.equal(callContradiction(call('xtailscaledx', '/usr/local/bin/xtailscaledx', [{ name: 'python3' }], dest)), 'named xtailscaledx, after tailscaled: started through python3');
  assert.match(callContradiction(call('my-tailscaled', '/memfd:my-tailscaled (deleted)', [], dest)) ?? '', /^named my-tailscaled, after tailscaled: runs from a memfd/);
});

test('legitimate programs whose names hold a short daemon name stay unflagged where installed, wherever they call that is not risky; binary evidence flags them', () => {
  const legit: [string, string][] = [
    ['networkmanager-openvpn', '/usr/lib/NetworkManager/networkmanager-openvpn'],
    ['nm-openvpn-service', '/usr/lib/NetworkManager/nm-openvpn-service'],
    ['openvpn-plugin-auth-pam', '/usr/lib/openvpn/openvpn-plugin-auth-pam'],
    ['nm-wireguard-service', '/usr/libexec/nm-wireguard-service'],
    ['my-netbird', '/usr/local/bin/my-netbird'],
  ];
  const parents = [{ name: 'NetworkManager' }, { name: 'systemd' }];
  for (const [name, path] of legit) {
    for (const host of ['vpn.corp.example', 'github.com', 'api.netbird.io']) {
      const c = call(name, path, parents, { host, port: 1194, isIp: false });
      assert.equal(callContradiction(c), null, `${name} to ${host}`);
      assert.equal(refused(c), false, `${name} to ${host}`);
    }
    assert.equal(refused(call(name, `/tmp/${name}`, parents, { host: 'vpn.corp.example', port: 1194, isIp: false })), true, `${name} from /tmp`);
    assert.equal(refused(call(name, path, [{ name: 'python3' }], { host: 'vpn.corp.example', port: 1194, isIp: false })), true, `${name} under python3`);
    assert.equal(refused(call(name, path, parents, { host: 'webhook.site', port: 443, isIp: false })), true, `${name} to webhook.site`);
  }
});

test('property: a name holding a daemon\'s after other characters is claimed by that name (or the one it extends), and the stores select it', () => {
  fc.assert(
    fc.property(containingArb, ({ daemon, name }) => {
      const within = containedDaemonName(name);
      assert.notEqual(within, null, name);
      assert.ok(name.includes(within!), `${name} holds ${within}`);
      // the longest daemon name inside it, unless the name begins with one: "netbird-wireguard-go" extends netbird
      const begins = VPN_PROCESS_NAMES.filter((n) => name.startsWith(n));
      if (begins.length === 0) assert.ok(within!.length >= daemon.length, `${name}: ${within} before ${daemon}`);
      else assert.ok(begins.includes(within!), `${name}: ${within}, not one it begins with (${begins.join(', ')})`);
      assert.equal(daemonClaim(name)?.within, within, name);
      assert.ok(daemonClaimingNames([name]).includes(name), name);
    }),
    { numRuns: 1_000 },
  );
});

test('property: every name a rule over `*<daemon>*` covers is judged against a daemon, and a name holding no daemon\'s name is claimed only when drawn like one', () => {
  // pieces of the daemons' names, so near misses ("tailscale-d", "openvp", "wg_quick") are common
  const pieces = [...new Set(VPN_PROCESS_NAMES.flatMap((n) => [n, n.slice(0, -1), n.slice(1), n.slice(0, 4), n.slice(4)]))];
  const nameArb = fc
    .array(fc.oneof(fc.constantFrom(...pieces), fc.string({ unit: NAME_UNIT, minLength: 1, maxLength: 3 })), { minLength: 1, maxLength: 4 })
    .map((parts) => normalizeProcessName(parts.join('')))
    .filter((name) => name !== '');
  fc.assert(
    fc.property(nameArb, fc.constantFrom(...VPN_PROCESS_NAMES), (name, daemon) => {
      if (coveredByStarGlob(daemon, name)) assert.notEqual(daemonClaim(name), null, `${name} under *${daemon}*`);
      const holdsNone = !VPN_PROCESS_NAMES.some((n) => name.includes(n));
      if (holdsNone) {
        assert.equal(containedDaemonName(name), null, name);
        assert.equal(daemonClaim(name) === null, daemonLookalike(name) === null, name);
      }
    }),
    { numRuns: 2_000 },
  );
});

test('property: a name containing a daemon\'s is refused on the binary evidence alone: as its daemon\'s own name on the same evidence, and never by where it calls', () => {
  const hosts = ['update.example.org', 'github.com', 'webhook.site', ...VPN_SIGNATURES.map((s) => signatureDestination(s).host)];
  fc.assert(
    fc.property(
      containingArb,
      fc.constantFrom(...PAYLOAD_PATHS, ...INSTALLED_PATHS),
      fc.constantFrom(...CLEAN_PARENTS, ...PAYLOAD_PARENTS),
      fc.constantFrom(...hosts),
      ({ name }, pathTemplate, parents, host) => {
        const { sig, within } = daemonClaim(name)!;
        const dest = { host, port: 443, isIp: false };
        const isRisky = risky.matchHost(host) !== null;
        const got = refused(call(name, pathOf(pathTemplate, name), parents, dest));
        // the oracle: the evidence as labelled by hand, and the risky list
        assert.equal(got, isRisky || payloadEvidence(pathTemplate, parents), `${name} at ${pathOf(pathTemplate, name)} < ${parents.map((p) => p.name).join(' < ')} to ${host}`);
        // the daemon's own name it holds, on the same binary evidence, calling inside its signature
        const own = signatureDestination(sig);
        assert.equal(refused(call(name, pathOf(pathTemplate, name), parents, own)), refused(call(within!, pathOf(pathTemplate, within!), parents, own)), `${name} against ${within}`);
      },
    ),
    { numRuns: 2_000 },
  );
});
