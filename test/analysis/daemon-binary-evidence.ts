import { RiskyDestinations } from '../../src/analysis/risky-destinations.js';
import { suspectedImpostors, type CallEvidence } from '../../src/analysis/impostor.js';
import { ImpostorSet, neverSuppress } from '../../src/rules/guards.js';
import type { VpnSignature } from '../../src/analysis/vpn-signatures.js';

/**
 * The binary evidence the tests of names built on a daemon's (extended-daemon-names,
 * contained-daemon-names) judge by, labelled by hand: where a payload runs from or how it is started,
 * against where an installed binary runs from. The labels are the oracle, not the verdict's reading.
 */

export const risky = new RiskyDestinations();
export const SHA = 'c'.repeat(64);

/** Where a payload runs from: no installer puts a daemon there. */
export const PAYLOAD_PATHS = [
  '/home/runner/work/_temp/1a2b/NAME',
  '/tmp/NAME',
  '/dev/shm/NAME',
  '/memfd:NAME (deleted)',
  '/proc/self/fd/3',
  '/home/runner/work/_actions/some/action/v1/dist/NAME',
  '/home/runner/work/api/api/node_modules/.bin/NAME',
  '/home/runner/.cache/NAME',
  'C:\\Users\\runneradmin\\AppData\\Local\\Temp\\NAME.exe',
  'container-image:ghcr.io/someone/NAME',
];
/** Where an installed binary runs from (the workspace too: a job may build a daemon there). */
export const INSTALLED_PATHS = ['/usr/local/bin/NAME', '/usr/bin/NAME', '/usr/sbin/NAME', '/opt/NAME/bin/NAME', '/home/runner/work/api/api/bin/NAME', null];
export const CLEAN_PARENTS = [[{ name: 'sudo' }, { name: 'bash' }, { name: 'Runner.Worker' }], [{ name: 'bash' }], []];
export const PAYLOAD_PARENTS = [[{ name: 'npm' }], [{ name: 'sh' }, { name: 'node' }, { name: 'npm' }], [{ name: 'python3' }], [{ name: 'pip3.12' }]];

/** A destination inside the daemon's signature: a control-plane domain, else an address on its port. */
export function signatureDestination(sig: VpnSignature): { host: string; port: number; isIp: boolean } {
  if (sig.domains.length) return { host: sig.domains[0]!.replace(/^\*\./, 'relay1.'), port: 443, isIp: false };
  return { host: '203.0.113.9', port: sig.ports[0] ?? sig.portRanges[0]![0], isIp: true };
}

export function call(process: string, path: string | null, parentChain: { name: string }[], dest: { host: string; port: number; isIp: boolean }): CallEvidence {
  return { process, sha256: SHA, path, parentChain, ...dest, risky: risky.matchHost(dest.host) };
}

/** The guard's answer on one call of a binary, judged only by that call (as ingest judges a first call). */
export function refused(c: CallEvidence): boolean {
  return neverSuppress({ process: c.process, sha256: c.sha256, path: c.path, endpoint: `${c.host}:${c.port}` }, risky, new ImpostorSet(suspectedImpostors([c]))) !== null;
}

/** A path template of PAYLOAD_PATHS or INSTALLED_PATHS with the binary's name in it. */
export function pathOf(template: string | null, name: string): string | null {
  return template === null ? null : template.replace(/NAME/g, name);
}

/** Whether the hand-made labels call this evidence a payload's. */
export function payloadEvidence(pathTemplate: string | null, parents: readonly { name: string }[]): boolean {
  return PAYLOAD_PATHS.includes(pathTemplate as string) || (PAYLOAD_PARENTS as readonly (readonly { name: string }[])[]).includes(parents);
}
