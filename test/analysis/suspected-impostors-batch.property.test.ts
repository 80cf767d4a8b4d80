import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { binaryKey, callContradiction, suspectedImpostors, type CallEvidence, type SuspectedImpostor } from '../../src/analysis/impostor.js';

/**
 * suspectedImpostors judges how a binary was started and where it runs from once per parent chain,
 * daemon and path, not once per call (a store's evidence is one call per variant and destination).
 * Whatever calls it is given, with chain arrays shared between variants of other names and paths as
 * a store's are not, its answer must be the one judging every call on its own gives.
 */

function oneByOne(calls: readonly CallEvidence[]): SuspectedImpostor[] {
  const out = new Map<string, SuspectedImpostor>();
  for (const c of calls) {
    const k = binaryKey(c);
    if (out.has(k)) continue;
    const reason = callContradiction(c);
    if (reason) out.set(k, { process: c.process, sha256: c.sha256, path: c.sha256 ? null : c.path, reason });
  }
  return [...out.values()];
}

const NAMES = ['tailscaled', 'cloudflared', 'openvpn', 'tailscaled-helper', 'cloudflared-linux-amd64', 'twingated', 'curl', 'node'];
const PATHS = [null, '/usr/sbin/tailscaled', '/usr/local/bin/cloudflared', '/tmp/x/tailscaled', '/home/runner/work/_temp/cloudflared', '/dev/shm/openvpn', '/usr/bin/curl'];
const CHAINS: CallEvidence['parentChain'][] = [
  [],
  [{ name: 'systemd', path: '/usr/lib/systemd/systemd' }],
  [{ name: 'npm', path: '/usr/bin/npm' }, { name: 'bash' }],
  [{ name: 'python3', path: '/usr/bin/python3' }],
  [{ name: 'bash', path: '/usr/bin/bash' }, { name: 'Runner.Worker' }],
];
const HOSTS: [string, number | null, boolean][] = [
  ['controlplane.tailscale.com', 443, false],
  ['login.tailscale.com', 443, false],
  ['region1.v2.argotunnel.com', 7844, false],
  ['downloads.example.org', 443, false],
  ['100.64.0.7', 41641, true],
  ['198.51.100.4', 1194, true],
  ['', null, false],
];

const variant = fc.record({
  process: fc.constantFrom(...NAMES),
  sha256: fc.option(fc.constantFrom('a'.repeat(64), 'b'.repeat(64)), { nil: null }),
  path: fc.constantFrom(...PATHS),
  // an index into CHAINS: variants drawing the same index share one array, whatever their name and path
  chain: fc.nat({ max: CHAINS.length - 1 }),
});

const call = fc.record({
  host: fc.nat({ max: HOSTS.length - 1 }),
  // mostly none: a risky call or a never-daemon type flags its binary before its start and path are judged
  risky: fc.oneof({ arbitrary: fc.constant(null), weight: 5 }, { arbitrary: fc.constantFrom('webhook.site', 'gist.githubusercontent.com'), weight: 1 }),
  detectionType: fc.oneof(
    { arbitrary: fc.constant(undefined), weight: 4 },
    { arbitrary: fc.constantFrom('New-Outbound-Network-Call', 'Secret-In-Build-Log'), weight: 1 },
  ),
});

test('suspectedImpostors gives what judging each call alone gives, with chain arrays shared across names and paths', () => {
  fc.assert(
    fc.property(fc.array(variant, { minLength: 1, maxLength: 6 }), fc.array(fc.tuple(fc.nat(), call), { maxLength: 40 }), (variants, picks) => {
      const calls: CallEvidence[] = picks.map(([i, c]) => {
        const v = variants[i % variants.length]!;
        const [host, port, isIp] = HOSTS[c.host]!;
        return {
          process: v.process,
          sha256: v.sha256,
          path: v.path,
          parentChain: CHAINS[v.chain]!,
          host,
          port,
          isIp,
          risky: c.risky,
          ...(c.detectionType !== undefined ? { detectionType: c.detectionType } : {}),
        };
      });
      assert.deepEqual(suspectedImpostors(calls), oneByOne(calls));
    }),
    { numRuns: 2000 },
  );
});

test('one variant judged by its start and path: a temp-folder copy is flagged, the installed binary on the same chain is not', () => {
  const chain = CHAINS[1]!;
  const base = { sha256: null, parentChain: chain, host: 'controlplane.tailscale.com', port: 443, isIp: false, risky: null };
  const flagged = suspectedImpostors([
    { ...base, process: 'tailscaled', path: '/usr/sbin/tailscaled' },
    { ...base, process: 'tailscaled', path: '/tmp/x/tailscaled' },
    { ...base, process: 'tailscaled', path: '/usr/sbin/tailscaled', host: 'login.tailscale.com' },
  ]);
  assert.deepEqual(
    flagged.map((b) => [b.path, b.reason]),
    [['/tmp/x/tailscaled', 'runs from /tmp/, a temporary directory no installer puts tailscale in']],
  );
});
