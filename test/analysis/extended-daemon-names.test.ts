import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { daemonClaim, daemonClaimingNames, extendedDaemonName, VPN_PROCESS_NAMES, VPN_SIGNATURES, vpnSignatureFor } from '../../src/analysis/vpn-signatures.js';
import { callContradiction } from '../../src/analysis/impostor.js';
import { ImpostorSet, neverSuppress } from '../../src/rules/guards.js';
import { normalizeProcessName } from '../../src/domain/process-name.js';
import { call, CLEAN_PARENTS, INSTALLED_PATHS, PAYLOAD_PARENTS, PAYLOAD_PATHS, refused, risky, SHA, signatureDestination } from './daemon-binary-evidence.js';

/**
 * A name that extends a VPN daemon's (`tailscaled-helper`, `tailscaled.old`, `tailscaled2`) is what a
 * rule over a glob of the daemon's name (`process=tailscaled*`) also covers. Found by review: such a
 * binary was judged by no daemon check, so the rule silenced it wherever it ran from. It is judged by
 * the daemon's binary evidence (where it runs from, how it was started, its file), not by the daemon's
 * signature: a release-named cloudflared in /usr/local/bin stays unflagged.
 */

/**
 * A name that extends a daemon's: the daemon's name and a suffix, and no daemon's name itself (nor
 * drawn like one), with the daemon it was made from. Made, not filtered by extendedDaemonName: the
 * property must fail, not starve, when that function is wrong.
 */
const extensionArb = fc
  .record({
    daemon: fc.constantFrom(...VPN_PROCESS_NAMES),
    suffix: fc.string({ unit: fc.constantFrom(...'-._0123456789abcdefghijklmnopqrstuvwxyz'), minLength: 1, maxLength: 12 }),
  })
  .map(({ daemon, suffix }) => ({ daemon, name: normalizeProcessName(daemon + suffix) }))
  .filter(({ name }) => vpnSignatureFor(name) === null);

test('which names extend a daemon\'s: its name and more, never a daemon\'s own name, the longest daemon name first', () => {
  const cases: [string, string | null][] = [
    ['tailscaled-helper', 'tailscaled'],
    ['tailscaled.old', 'tailscaled'],
    ['tailscaled2', 'tailscaled'],
    ['tailscale-update', 'tailscale'],
    ['cloudflared-linux-amd64', 'cloudflared'],
    ['zerotier-one-x', 'zerotier-one'],
    ['twingate-connec', 'twingate'],
    ['tailscaled', null],
    ['tailscale', null],
    ['zerotier-one', null],
    ['wireguard-go', null],
    ['curl', null],
    ['my-tailscaled', null],
  ];
  for (const [name, daemon] of cases) assert.equal(extendedDaemonName(name), daemon, name);
  // the stores select these names with the daemon's (and other names not)
  assert.deepEqual(daemonClaimingNames(['tailscaled-helper', 'curl', 'cloudflared-linux-amd64']).filter((n) => !VPN_PROCESS_NAMES.includes(n)), ['tailscaled-helper', 'cloudflared-linux-amd64']);
  assert.equal(daemonClaim('Tailscaled.OLD.exe')?.within, 'tailscaled');
  assert.equal(daemonClaim('tailscaled')?.within, null);
});

test('a name that extends a daemon\'s, run from a payload\'s folder or started as a payload is, is a suspected impostor, with why', () => {
  const dest = { host: '203.0.113.50', port: 443, isIp: true };
  assert.equal(
    callContradiction(call('tailscaled-helper', '/home/runner/work/_temp/x/tailscaled-helper', [], dest)),
    'named tailscaled-helper, after tailscaled: runs from /home/runner/work/_temp/, a temporary directory no installer puts tailscale in',
  );
  assert.equal(callContradiction(call('tailscaled.old', '/tmp/tailscaled.old', [], dest)), 'named tailscaled.old, after tailscaled: runs from /tmp/, a temporary directory no installer puts tailscale in');
  assert.equal(callContradiction(call('tailscaled2', '/usr/local/bin/tailscaled2', [{ name: 'node' }, { name: 'npm' }], dest)), 'named tailscaled2, after tailscaled: started through node');
  assert.match(callContradiction(call('cloudflared-linux-amd64', '/memfd:x (deleted)', [], dest)) ?? '', /^named cloudflared-linux-amd64, after cloudflared: runs from a memfd/);
});

test('a release-named daemon installed in a system folder stays unflagged, wherever it calls that is not risky', () => {
  for (const host of ['region1.v2.argotunnel.com', 'github.com', 'update.example.org']) {
    const c = call('cloudflared-linux-amd64', '/usr/local/bin/cloudflared-linux-amd64', [{ name: 'bash' }, { name: 'Runner.Worker' }], { host, port: 443, isIp: false });
    assert.equal(callContradiction(c), null, host);
    assert.equal(refused(c), false, host);
  }
});

test('the same file as a flagged binary is flagged under a name extending a daemon\'s, wherever it is installed', () => {
  const flagged = new ImpostorSet([{ process: 'tailscaled', sha256: SHA, path: null, reason: 'runs from /tmp/' }]);
  const f = { process: 'tailscaled-helper', sha256: SHA.toUpperCase(), path: '/usr/local/bin/tailscaled-helper', endpoint: 'login.tailscale.com:443' };
  assert.equal(neverSuppress(f, risky, flagged)?.kind, 'impostor');
  assert.equal(neverSuppress({ ...f, sha256: 'd'.repeat(64) }, risky, flagged), null);
});

test('property: a name extending a daemon\'s gets the guard\'s answer its daemon\'s own name gets on the same binary evidence, and that answer is the evidence\'s', () => {
  fc.assert(
    fc.property(
      extensionArb,
      fc.constantFrom(...PAYLOAD_PATHS, ...INSTALLED_PATHS),
      fc.constantFrom(...CLEAN_PARENTS, ...PAYLOAD_PARENTS),
      ({ daemon, name }, pathTemplate, parents) => {
        // "tailscale" + "d-x" extends tailscaled, the longest daemon name it begins with: the same daemon
        assert.equal(daemonClaim(name)?.sig.daemon, vpnSignatureFor(daemon)!.daemon, name);
        const sig = vpnSignatureFor(daemon)!;
        const dest = signatureDestination(sig);
        const at = (n: string) => (pathTemplate === null ? null : pathTemplate.replace(/NAME/g, n));
        const ext = refused(call(name, at(name), parents, dest));
        // the oracle: the evidence as labelled above, not as the verdict reads it
        const payload = PAYLOAD_PATHS.includes(pathTemplate as string) || PAYLOAD_PARENTS.includes(parents);
        assert.equal(ext, payload, `${name} at ${at(name)} < ${parents.map((p) => p.name).join(' < ')}`);
        assert.equal(ext, refused(call(daemon, at(daemon), parents, dest)), `${name} against ${daemon}`);
      },
    ),
    { numRuns: 2_000 },
  );
});

test('property: a name extending a daemon\'s, installed and started cleanly, is never flagged by where it calls, unless the destination is risky', () => {
  const hosts = ['github.com', 'exfil.example.net', 'api.trycloudflare.com', 'webhook.site', ...VPN_SIGNATURES.map((s) => signatureDestination(s).host)];
  fc.assert(
    fc.property(extensionArb, fc.constantFrom(...INSTALLED_PATHS), fc.constantFrom(...CLEAN_PARENTS), fc.constantFrom(...hosts), fc.constantFrom(443, 41641, 7844, 1194), ({ name }, pathTemplate, parents, host, port) => {
      const c = call(name, pathTemplate === null ? null : pathTemplate.replace(/NAME/g, name), parents, { host, port, isIp: /^\d/.test(host) });
      const isRisky = risky.matchHost(host) !== null;
      assert.equal(callContradiction(c) !== null, isRisky, `${name} to ${host}`);
      // a risky call is refused whatever the verdict
      assert.equal(refused(c), isRisky, `${name} to ${host}`);
    }),
    { numRuns: 1_000 },
  );
});
