import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { CLI, nativeEvent, ndjson, runCli, tempDir, type EventSpec } from '../helpers.js';
import { EXIT } from '../../src/cli/exit-codes.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const db = join(tmp.dir, 'pipe.db');
const policy = join(tmp.dir, 'policy.yaml');

function events(): EventSpec[] {
  const evs: EventSpec[] = [];
  for (let r = 0; r < 6; r++) {
    for (let i = 0; i < 20; i++) evs.push({ run: r, domain: `svc${i}.example.com`, process: 'node' });
    if (r >= 2) evs.push({ run: r, ip: `100.64.3.${r}`, port: 41641, protocol: 'udp', process: 'tailscaled' });
  }
  return evs;
}

/**
 * Runs the CLI with stdout going to a reader that has already gone: the parent closes its end of
 * the pipe at once, so every write the command makes fails with EPIPE (as after `| head -1`).
 */
function withClosedStdout(args: string[], input?: string): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, EGRESS_TRIAGE_CONFIG: '' } });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.stdin.on('error', () => undefined);
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${args.join(' ')} did not end after its reader closed: ${stderr}`));
    }, 60_000);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
  });
}

test('setup', () => {
  const r = runCli(['ingest', '-', '--db', db, '--learning-runs', '2'], { input: ndjson(events().map(nativeEvent)) });
  assert.equal(r.status, 0, r.stderr);
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
});

test('every command ends quietly, with its usual exit code, when stdout is closed early', async () => {
  const cases: [string[], number, string?][] = [
    [['analyze', '--db', db, '--json', '--min-count', '1'], EXIT.OK],
    [['analyze', '--db', db, '--min-count', '1'], EXIT.OK],
    [['detections', 'list', '--db', db], EXIT.OK],
    [['detections', 'list', '--db', db, '--json'], EXIT.OK],
    [['stats', '--db', db], EXIT.OK],
    [['stats', '--db', db, '--json'], EXIT.OK],
    [['baseline', 'show', '--db', db, '--owner', 'acme', '--repo', 'api', '--all'], EXIT.OK],
    [['rules', 'list', '--db', db], EXIT.OK],
    [['rules', 'audit', '--db', db, '--json'], EXIT.OK],
    [['rules', 'preview', '--db', db, '--condition', 'process=tailscaled'], EXIT.OK],
    [['audit', '--db', db], EXIT.OK],
    [['approvals', 'list', '--db', db, '--json'], EXIT.OK],
    [['policy', 'explain', policy, '--tool', 'x', '--json'], EXIT.OK],
    [['generate', '--runs', '6', '--events', '20000'], EXIT.OK],
    [['ingest', '-', '--db', db, '--json'], EXIT.OK, ndjson(events().map(nativeEvent))],
    // the documented code still holds: one record was rejected
    [['ingest', '-', '--db', db], EXIT.REJECTED, ndjson(events().map(nativeEvent)) + 'not json\n'],
    [['--help'], EXIT.OK],
    [['rules', 'create', '--help'], EXIT.OK],
  ];
  for (const [args, code, input] of cases) {
    const r = await withClosedStdout(args, input);
    assert.equal(r.signal, null, `${args.join(' ')}: killed by ${r.signal}`);
    assert.equal(r.code, code, `${args.join(' ')} exited ${r.code}: ${r.stderr}`);
    assert.equal(r.stderr, '', `${args.join(' ')} wrote to stderr`);
  }
});

test('demo ends quietly when stdout is closed early', async () => {
  const r = await withClosedStdout(['demo', '--db', join(tmp.dir, 'demo.db'), '--events', '2000', '--runs', '6']);
  assert.equal(r.code, EXIT.OK, r.stderr);
  assert.equal(r.stderr, '');
});

// A full device is no closed reader: the data was lost, and the exit code says so. Its error comes a
// tick after the write, so the command must wait for it before it ends.
test('output refused by the device (/dev/full) ends with EXIT.IO and says why, for every data command', () => {
  for (const args of [['stats'], ['stats', '--json'], ['detections', 'list', '--json'], ['analyze', '--json'], ['rules', 'list']]) {
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" ${args.join(' ')} --db "${db}" > /dev/full`], { encoding: 'utf8', env: { ...process.env, EGRESS_TRIAGE_CONFIG: '' } });
    assert.equal(r.status, EXIT.IO, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^egress-triage: cannot write output: ENOSPC/m, args.join(' '));
  }
  // generate writes its events itself, to stdout or to --out: the same message names what it could not write
  for (const [args, what] of [[['generate', '--events', '2000'], 'output'], [['generate', '--events', '2000', '--out', '/dev/full'], '/dev/full']] as const) {
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" ${args.join(' ')} > /dev/full`], { encoding: 'utf8' });
    assert.equal(r.status, EXIT.IO, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`^egress-triage: cannot write ${what}: ENOSPC`, 'm'), args.join(' '));
  }
});

// Help and version text are output too: commander ends them with code 0, which must not hide that
// the text never arrived. A closed reader is still quiet (the first test's --help cases).
test('help and version refused by the device (/dev/full) end with EXIT.IO and one line on stderr', () => {
  for (const args of [['--help'], ['--version'], ['help'], ['help', 'rules'], ['rules', '--help'], ['rules', 'create', '--help']]) {
    const r = spawnSync('bash', ['-c', `"${process.execPath}" "${CLI}" ${args.join(' ')} > /dev/full`], { encoding: 'utf8' });
    assert.equal(r.status, EXIT.IO, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^egress-triage: cannot write output: ENOSPC[^\n]*\n$/, args.join(' '));
  }
});

// Any errno of a failed write is I/O: ENOBUFS (a socket stdout out of kernel buffers, seen once from the
// stdio gateway under heavy output) was no code the error mapping knew, and ended with 70, internal error.
// Here every write to stdout fails with it (a preloaded module; the kernel's own is hard to provoke).
test('output refused with an errno the error mapping does not list (ENOBUFS) still ends with EXIT.IO, no stack trace', () => {
  const preload = join(tmp.dir, 'enobufs.mjs');
  writeFileSync(preload, "process.stdout._write = (chunk, enc, cb) => cb(Object.assign(new Error('write ENOBUFS'), { code: 'ENOBUFS', errno: -105, syscall: 'write' }));\n");
  const r = spawnSync(process.execPath, ['--import', preload, CLI, 'stats', '--db', db], { encoding: 'utf8', env: { ...process.env, EGRESS_TRIAGE_CONFIG: '' } });
  assert.equal(r.status, EXIT.IO, r.stderr);
  assert.equal(r.stderr, 'egress-triage: cannot write output: write ENOBUFS\n');
});
