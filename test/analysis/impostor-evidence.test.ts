import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { callContradiction } from '../../src/analysis/impostor.js';
import { suspiciousParent } from '../../src/analysis/vpn-signatures.js';
import { MAX_PARENT_DEPTH, mixedScript, normalizeProcessName, parentChain } from '../../src/domain/process-name.js';
import type { ProcessInfo } from '../../src/domain/types.js';

/**
 * The evidence the impostor verdict reads, on the shapes a renamed binary would use to slip past it:
 * a package manager deep in a long parent chain, an interpreter posing as the runner's node, and a
 * name that shows as a daemon's but is not spelled as one.
 */

const RUNNER_NODE = '/home/runner/actions-runner/cached/externals/node20/bin/node';

test('the runner’s own node is exempt only at the runner’s layout, started by Runner.Worker', () => {
  assert.equal(suspiciousParent([{ name: 'node', path: RUNNER_NODE }, { name: 'Runner.Worker' }]), null);
  assert.equal(suspiciousParent([{ name: 'sudo' }, { name: 'node', path: RUNNER_NODE }, { name: 'Runner.Worker' }]), null);
  assert.equal(suspiciousParent([{ name: 'node', path: 'C:\\actions-runner\\externals\\node20\\bin\\node.exe' }]), null, 'Windows runner, last link known');
  // a claimed path anywhere else, another interpreter at a runner-like path, or another parent
  assert.equal(suspiciousParent([{ name: 'node', path: '/tmp/x/actions-runner/node' }]), 'node');
  assert.equal(suspiciousParent([{ name: 'python3', path: '/tmp/externals/node/python3' }]), 'python3');
  assert.equal(suspiciousParent([{ name: 'node', path: RUNNER_NODE }, { name: 'bash' }, { name: 'Runner.Worker' }]), 'node');
  assert.equal(suspiciousParent([{ name: 'node', path: RUNNER_NODE }, { name: 'npm' }]), 'node');
});

test('versioned and less common package managers and interpreters count, as the agent records the executable a symlink resolves to', () => {
  for (const name of ['ruby3.0', 'perl5.34.0', 'pip3.12', 'pip3.11', 'python3.12', 'pythonw', 'php8.2', 'gem3.0', 'uvx', 'corepack', 'yarnpkg', 'pipenv', 'pdm', 'conda', 'mamba', 'micromamba', 'easy_install-3.8', 'lua5.4', 'luajit',
    'java', 'mvn', 'gradle', 'sbt', 'dotnet', 'msbuild', 'nuget', 'go', 'go.exe', 'pypy3', 'php-fpm8.2', 'node20', 'jruby',
    // script hosts no step starts a daemon through
    'wscript.exe', 'cscript.exe', 'mshta.exe', 'osascript', 'Rscript', 'julia', 'tclsh8.6', 'wish']) {
    assert.equal(suspiciousParent([{ name }, { name: 'bash' }]), normalizeProcessName(name), name);
    assert.equal(suspiciousParent([{ name: 'sudo' }, { name: `/usr/bin/${name}` }]), normalizeProcessName(name), `${name} deeper, by path`);
  }
  // what CI actions really start daemons with stays clean
  // PowerShell is the default shell of run: steps on Windows runners, as bash is on Linux
  for (const name of ['sudo', 'bash', 'sh', 'systemd', 'Runner.Worker', 'tailscale', 'rubyist', 'pipe', 'python-config', 'gemini', 'pwsh', 'powershell.exe', 'cmd.exe']) {
    assert.equal(suspiciousParent([{ name }]), null, name);
  }
});

test('a package manager deep in the longest chain ingest accepts is seen', () => {
  let p: ProcessInfo = { name: 'npm' };
  for (let i = 1; i < MAX_PARENT_DEPTH; i++) p = { name: 'sh', parent: p };
  const impostor: ProcessInfo = { name: 'tailscaled', path: '/tmp/.cache/tailscaled', sha256: 'b'.repeat(64), parent: p };
  const chain = parentChain(impostor);
  assert.equal(chain.length, MAX_PARENT_DEPTH);
  assert.equal(chain.at(-1)!.name, 'npm');
  assert.equal(
    callContradiction({ process: 'tailscaled', sha256: 'b'.repeat(64), path: '/tmp/.cache/tailscaled', parentChain: chain, host: '45.61.136.14', port: 443, isIp: true, risky: null }),
    'started through npm',
  );
});

test('a name shows as what it is judged as: invisible characters and compatibility forms are folded', () => {
  assert.equal(normalizeProcessName('tailscaled\u200b'), 'tailscaled');
  assert.equal(normalizeProcessName('tail\u200dscaled'), 'tailscaled');
  assert.equal(normalizeProcessName('\u202etailscaled'), 'tailscaled');
  assert.equal(normalizeProcessName('ｔａｉｌｓｃａｌｅｄ'), 'tailscaled');
  assert.equal(normalizeProcessName('/usr/sbin/TailScaled.EXE'), 'tailscaled');
  assert.equal(normalizeProcessName('\u200b'), 'unknown');
  // a trailing separator ends no name: a named binary is never the Unknown tool
  assert.equal(normalizeProcessName('stage2\\'), 'stage2');
  assert.equal(normalizeProcessName('/opt/x/stage2//'), 'stage2');
  assert.equal(normalizeProcessName('C:\\t\\TAILSCALED.exe\\'), 'tailscaled');
  assert.equal(normalizeProcessName('\\'), '\\');
  assert.equal(normalizeProcessName(''), 'unknown');
  // graphic characters drawn blank, which no Unicode property marks: "tailscaled\u2800" prints as "tailscaled "
  assert.equal(normalizeProcessName('tailscaled\u2800'), 'tailscaled');
  assert.equal(normalizeProcessName('tail\u2800scaled'), 'tailscaled');
  assert.equal(normalizeProcessName('\u{1D159}tailscaled'), 'tailscaled');
  assert.equal(normalizeProcessName('\u2800'), 'unknown');
  // code points drawn only by a font that chooses to: private use, unassigned, a lone surrogate
  for (const odd of ['\uE000', '\u{F0000}', '\u0378', '\uFFFF', '\uFDD0', '\u{1D455}', '\uD800']) {
    assert.equal(normalizeProcessName(`tailscaled${odd}`), 'tailscaled', JSON.stringify(odd));
    assert.equal(normalizeProcessName(`tail${odd}scaled`), 'tailscaled', JSON.stringify(odd));
  }
  // a mark after a stripped character composes with the letter before it, in one call
  assert.equal(normalizeProcessName('tailscale\u2800\u0301d'), 'tailscal\u00e9d');
  // other scripts stay as they are (look-alike letters are a different name: docs/analysis.md)
  assert.equal(normalizeProcessName('tаilscaled'), 'tаilscaled');
});

test('a name that mixes Latin letters with look-alike letters of another script is told apart, and which script', () => {
  assert.equal(mixedScript(normalizeProcessName('tаilscaled')), 'Cyrillic', 'a Cyrillic а');
  assert.equal(mixedScript(normalizeProcessName('cloudflarеd')), 'Cyrillic', 'a Cyrillic е, last but one');
  assert.equal(mixedScript('netbirdο'), 'Greek');
  assert.equal(mixedScript('zerotier-օne'), 'Armenian');
  assert.equal(mixedScript('tailscaledᎪ'), 'Cherokee');
  assert.equal(mixedScript('node日本'), 'non-Latin', 'another script beside Latin letters, named generically');
  // one script only, or nothing to mix
  for (const name of ['tailscaled', 'zerotier-one', 'warp-svc', 'таилскейлд', 'ταιλ', '日本', 'café', 'unknown', '123'])
    assert.equal(mixedScript(normalizeProcessName(name)), null, name);
});

test('normalising a normalised name changes nothing: a second ".exe", spaces around it, a folded form', () => {
  for (const [raw, name] of [
    ['tailscaled.exe.exe', 'tailscaled'],
    ['TailScaled.EXE.exe', 'tailscaled'],
    ['tailscaled .exe', 'tailscaled'],
    ['/usr/sbin/ tailscaled', 'tailscaled'],
    ['tailscaled.exe\u3000.exe', 'tailscaled'],
    ['a..exe', 'a.'],
    [' .exe', 'unknown'],
  ] as const) {
    assert.equal(normalizeProcessName(raw), name, JSON.stringify(raw));
  }
  // the store keeps normalizeProcessName(raw) and every reader normalises it again (engine, verdicts, matcher)
  const piece = fc.constantFrom('tailscaled', 'Node', '.exe', '.EXE', ' ', '\t', '\u00a0', '\u3000', '\u1680', '/', '\\', '\u200b', 'ｅｘｅ', '．', '.', 'x');
  fc.assert(
    fc.property(fc.array(fc.oneof(piece, fc.string({ unit: 'binary', maxLength: 4 })), { maxLength: 8 }), (parts) => {
      const once = normalizeProcessName(parts.join(''));
      assert.equal(normalizeProcessName(once), once, JSON.stringify(parts));
    }),
    { numRuns: 3000 },
  );
});
