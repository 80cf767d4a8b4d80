import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { fileKey, flaggedFiles, pathPartners, sameFileImpostors, type RunCall, type VariantRow } from '../../src/analysis/impostor-links.js';
import { binaryKey, callContradiction, type SuspectedImpostor } from '../../src/analysis/impostor.js';
import { ImpostorSet } from '../../src/rules/guards.js';

/**
 * A self-deleting impostor is one file with two binary identities: its hash while the file exists,
 * its path once hashing fails. Within a run where one identity contradicted its daemon, the other one
 * seen at the same path is flagged too; never across runs, paths or names, and never onwards from a
 * binary that was itself only linked.
 */

const CLEAN = [{ name: 'sudo' }, { name: 'bash' }, { name: 'Runner.Worker' }];
const X = 'f'.repeat(64);
const G = 'a'.repeat(64);
const v = (id: number, sha256: string | null, path: string | null, process = 'tailscaled'): VariantRow => ({ id, process, sha256, path, parentChain: CLEAN });
const peer = (run: number, variant: number): RunCall => ({ run, variant, host: '100.64.0.9', port: 41641, isIp: true, risky: null });
const evil = (run: number, variant: number): RunCall => ({ run, variant, host: 'evil.example.com', port: 443, isIp: false, risky: null });
const label = (r: number) => `run-${r}`;

function link(flagged: SuspectedImpostor[], variants: VariantRow[], calls: RunCall[], seen: { run: number; variant: number }[]): SuspectedImpostor[] {
  const set = new ImpostorSet(flagged);
  return sameFileImpostors(set, pathPartners(set, variants), calls, seen, label);
}

const HASHLESS_FLAG: SuspectedImpostor = { process: 'tailscaled', sha256: null, path: '/usr/local/bin/tailscaled', reason: 'domain outside Tailscale’s signature: evil.example.com' };

test('the hashed identity of a file whose hash-less calls contradicted the daemon in that run is flagged', () => {
  const variants = [v(1, X, '/usr/local/bin/tailscaled'), v(2, null, '/usr/local/bin/tailscaled')];
  const out = link([HASHLESS_FLAG], variants, [evil(7, 2)], [{ run: 7, variant: 1 }]);
  assert.equal(out.length, 1);
  assert.deepEqual({ ...out[0], reason: undefined }, { process: 'tailscaled', sha256: X, path: null, reason: undefined });
  assert.match(out[0]!.reason, /^same file \(\/usr\/local\/bin\/tailscaled\) as tailscaled at \/usr\/local\/bin\/tailscaled in run run-7, which is a suspected impostor: domain outside/);
});

test('the hash-less identity of a file whose hashed calls contradicted the daemon in that run is flagged', () => {
  const flagged: SuspectedImpostor = { process: 'tailscaled', sha256: X, path: null, reason: 'started through npm' };
  const variants = [v(1, X, '/opt/x/tailscaled'), v(2, null, '/opt/x/tailscaled')];
  const out = link([flagged], variants, [evil(3, 1)], [{ run: 3, variant: 2 }]);
  assert.deepEqual(out.map(binaryKey), [binaryKey({ process: 'tailscaled', sha256: null, path: '/opt/x/tailscaled' })]);
});

test('a path read from a deleted executable’s link (" (deleted)") is the same file', () => {
  const variants = [v(1, X, '/usr/local/bin/tailscaled'), v(2, null, '/usr/local/bin/tailscaled (deleted)')];
  const flagged: SuspectedImpostor = { ...HASHLESS_FLAG, path: '/usr/local/bin/tailscaled (deleted)' };
  const out = link([flagged], variants, [evil(7, 2)], [{ run: 7, variant: 1 }]);
  assert.deepEqual(out.map((b) => b.sha256), [X]);
  assert.match(out[0]!.reason, /^same file \(\/usr\/local\/bin\/tailscaled\) as tailscaled at \/usr\/local\/bin\/tailscaled \(deleted\) in run/);
  // a name that only ends like it is another path
  assert.deepEqual(link([flagged], [v(1, X, '/usr/local/bin/tailscaled(deleted)'), variants[1]!], [evil(7, 2)], [{ run: 7, variant: 1 }]), []);
});

test('a flagged hash links its file’s hash-less identity in any run it called in; a link links nothing onwards', () => {
  const flaggedX: SuspectedImpostor = { process: 'tailscaled', sha256: X, path: null, reason: 'started through npm' };
  const variants = [v(1, X, '/opt/x/tailscaled'), v(2, null, '/opt/x/tailscaled')];
  // run 4: the hash only called a peer, then the file was gone
  assert.deepEqual(link([flaggedX], variants, [peer(4, 1)], [{ run: 4, variant: 2 }]).map((b) => b.path), ['/opt/x/tailscaled']);
  // the same hash-less binary flagged only as a link does not link the genuine hash seen beside it
  const [linked] = link([flaggedX], variants, [peer(4, 1)], [{ run: 4, variant: 2 }]);
  const genuine = [v(3, G, '/opt/x/tailscaled'), v(2, null, '/opt/x/tailscaled')];
  assert.deepEqual(link([linked!], genuine, [evil(5, 2)], [{ run: 5, variant: 3 }]), []);
});

test('Windows paths name one file whatever their case or long-path prefix', () => {
  const variants = [v(1, X, 'C:\\x\\TAILSCALED.EXE', 'tailscaled'), v(2, null, '\\\\?\\c:\\x\\tailscaled.exe', 'tailscaled')];
  const flagged: SuspectedImpostor = { process: 'tailscaled', sha256: null, path: '\\\\?\\c:\\x\\tailscaled.exe', reason: 'risky destination webhook.site' };
  assert.deepEqual(link([flagged], variants, [evil(2, 2)], [{ run: 2, variant: 1 }]).map((b) => b.sha256), [X]);
  // POSIX paths keep their case
  assert.deepEqual(link([{ ...flagged, path: '/x/Tailscaled' }], [v(1, X, '/x/tailscaled'), v(2, null, '/x/Tailscaled')], [evil(2, 2)], [{ run: 2, variant: 1 }]), []);
});

test('nothing is linked across runs, paths or names, or from a run where the flagged binary did not contradict its daemon', () => {
  const variants = [
    v(1, X, '/usr/local/bin/tailscaled'),
    v(2, null, '/usr/local/bin/tailscaled'),
    v(3, G, '/usr/sbin/tailscaled'),
    v(4, 'c'.repeat(64), '/usr/local/bin/tailscaled', 'zerotier-one'),
  ];
  // another run
  assert.deepEqual(link([HASHLESS_FLAG], variants, [evil(7, 2)], [{ run: 8, variant: 1 }]), []);
  // another path: the genuine daemon in the same run
  assert.deepEqual(link([HASHLESS_FLAG], variants, [evil(7, 2)], [{ run: 7, variant: 3 }]), []);
  // another name at the same path
  assert.deepEqual(link([HASHLESS_FLAG], variants, [evil(7, 2)], [{ run: 7, variant: 4 }]), []);
  // in run 9 the hash-less binary only called a peer: nothing contradicted there
  assert.deepEqual(link([HASHLESS_FLAG], variants, [evil(7, 2), peer(9, 2)], [{ run: 9, variant: 1 }]), []);
  // two hashes at one path are two binaries: the identity is clear, nothing to link
  const twoHashes = [v(1, X, '/usr/local/bin/tailscaled'), v(5, G, '/usr/local/bin/tailscaled')];
  const flaggedX: SuspectedImpostor = { process: 'tailscaled', sha256: X, path: null, reason: 'started through npm' };
  assert.deepEqual(pathPartners(new ImpostorSet([flaggedX]), twoHashes), { flagged: [], partners: [] });
  // ... even when a flagged hash-less binary at that path makes the other hash a partner: the flagged
  // hash calling in the run links its own file's hash-less identity, never the other hash
  const swapped = [v(1, X, '/tmp/tailscaled'), v(2, null, '/tmp/tailscaled (deleted)'), v(5, G, '/tmp/tailscaled'), v(6, null, '/tmp/tailscaled')];
  const flaggedPath: SuspectedImpostor = { process: 'tailscaled', sha256: null, path: '/tmp/tailscaled (deleted)', reason: 'own evidence' };
  assert.deepEqual(link([flaggedX, flaggedPath], swapped, [peer(1, 1)], [{ run: 1, variant: 5 }]), []);
  assert.deepEqual(link([flaggedX, flaggedPath], swapped, [peer(1, 1)], [{ run: 1, variant: 6 }]).map((b) => b.path), ['/tmp/tailscaled']);
});

test('the files flagged binaries were seen at: every path of a flagged hash, the path of a flagged hash-less binary', () => {
  const flaggedX: SuspectedImpostor = { process: 'tailscaled', sha256: X, path: null, reason: 'started through npm' };
  const variants = [v(1, X, '/tmp/a/tailscaled'), v(2, X, '/tmp/b/tailscaled (deleted)'), v(3, G, '/usr/sbin/tailscaled'), v(4, null, '/usr/local/bin/tailscaled'), v(5, X, null)];
  assert.deepEqual(flaggedFiles(new ImpostorSet([flaggedX, HASHLESS_FLAG]), variants).sort(), [
    fileKey('tailscaled', '/tmp/a/tailscaled'), fileKey('tailscaled', '/tmp/b/tailscaled'), fileKey('tailscaled', '/usr/local/bin/tailscaled'),
  ].sort());
});

test('no partner at a flagged binary’s path: the stores read nothing more', () => {
  const variants = [v(1, G, '/usr/sbin/tailscaled'), v(2, null, '/usr/local/bin/tailscaled')];
  assert.deepEqual(pathPartners(new ImpostorSet([HASHLESS_FLAG]), variants), { flagged: [], partners: [] });
  assert.deepEqual(pathPartners(new ImpostorSet([]), [v(1, X, '/p/tailscaled'), v(2, null, '/p/tailscaled')]), { flagged: [], partners: [] });
});

/**
 * Property: against a direct reading of the rule over random variants, runs and calls, the linked
 * binaries are exactly the unflagged variants seen in some run where a flagged variant of the same
 * name at the same path, with the other kind of identity, called: any call of a flagged hash, a call
 * that contradicts its daemon of a flagged hash-less binary.
 */
test('property: exactly the other identities of a flagged file in a run where it contradicted the daemon', () => {
  const SHAS = [X, G, null];
  const PATHS = ['/usr/sbin/tailscaled', '/tmp/tailscaled', '/tmp/tailscaled (deleted)', null];
  const NAMES = ['tailscaled', 'zerotier-one'];
  const variantArb = fc.record({ sha: fc.constantFrom(...SHAS), path: fc.constantFrom(...PATHS), name: fc.constantFrom(...NAMES), npm: fc.boolean() });
  fc.assert(
    fc.property(
      fc.array(variantArb, { minLength: 1, maxLength: 6 }),
      fc.array(fc.nat(5), { maxLength: 4 }),
      fc.array(fc.record({ run: fc.nat(3), variant: fc.nat(5), dest: fc.constantFrom('peer', 'evil') }), { maxLength: 10 }),
      fc.array(fc.record({ run: fc.nat(3), variant: fc.nat(5) }), { maxLength: 10 }),
      (specs, flaggedIdx, callSpecs, seenSpecs) => {
        const variants: VariantRow[] = specs.map((s, id) => ({
          id, process: s.name, sha256: s.sha, path: s.path, parentChain: s.npm ? [{ name: 'npm' }] : CLEAN,
        }));
        const flagged = new ImpostorSet(
          flaggedIdx.filter((i) => i < variants.length).map((i) => ({ ...variants[i]!, path: variants[i]!.sha256 ? null : variants[i]!.path, reason: 'own evidence' })),
        );
        const calls = callSpecs.filter((c) => c.variant < variants.length).map((c) => (c.dest === 'peer' ? peer(c.run, c.variant) : evil(c.run, c.variant)));
        const seen = seenSpecs.filter((s) => s.variant < variants.length);
        const got = new Set(sameFileImpostors(flagged, pathPartners(flagged, variants), calls, seen, label).map(binaryKey));
        const want = new Set<string>();
        for (const s of seen) {
          const p = variants[s.variant]!;
          if (!p.path || flagged.get(p)) continue;
          const linked = calls.some((c) => {
            const f = variants[c.variant]!;
            const file = (path: string | null) => path?.replace(/ \(deleted\)$/, '');
            return c.run === s.run && flagged.get(f) !== null && f.process === p.process && f.path !== null && file(f.path) === file(p.path)
              && (f.sha256 === null) !== (p.sha256 === null)
              && (f.sha256 !== null || callContradiction({ ...f, host: c.host, port: c.port, isIp: c.isIp, risky: c.risky }) !== null);
          });
          if (linked) want.add(binaryKey({ process: p.process, sha256: p.sha256, path: p.sha256 ? null : p.path }));
        }
        assert.deepEqual([...got].sort(), [...want].sort());
      },
    ),
    { numRuns: 500 },
  );
});
