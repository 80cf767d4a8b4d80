import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI, nativeEvent, ndjson, runCli, tempDir, type EventSpec } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { waitFor } from '../helpers/wait.js';
import { EXIT } from '../../src/cli/exit-codes.js';
import { interruptionReport } from '../../src/cli/commands/ingest.js';

// SIGINT / SIGTERM during ingest (src/cli/commands/ingest.ts, runIngest; IngestOptions.signal): the
// lease is released and the terminal restored before the process ends by the signal.

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest } = eachStore();

function records(count: number, from: number): string {
  const evs: EventSpec[] = [];
  for (let i = from; i < from + count; i++) evs.push({ run: i % 4, domain: `h${i}.example.com`, process: 'node' });
  return ndjson(evs.map(nativeEvent));
}

function cleanEnv(extra: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const k of ['EGRESS_TRIAGE_DB', 'EGRESS_TRIAGE_TENANT', 'EGRESS_TRIAGE_CONFIG']) delete env[k];
  return env;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  storeTest(`${signal} during ingest releases the ingest lease, keeps what was committed, and ends the process by ${signal}`, async (at) => {
    // a lease left behind would hold the next ingest for ten minutes, not the default 30 s
    const env = cleanEnv({ EGRESS_TRIAGE_INGEST_LEASE_MS: '600000' });
    const child = spawn(process.execPath, [CLI, 'ingest', '-', '--db', at.db], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, sig) => resolve({ code, signal: sig })));
    // a live pipe that goes quiet: the first records are written, then the ingest waits for more
    child.stdin.write(records(50, 0));
    await waitFor(async () => Number(await at.value('SELECT count(*) FROM observations').catch(() => 0)) === 50, 20_000, 25, 'the first records stored');
    assert.equal(Number(await at.value('SELECT count(*) FROM ingest_leases')), 1, 'the ingest holds its lease');
    child.kill(signal);
    const end = await exited;
    child.stdin.destroy();
    assert.deepEqual(end, { code: null, signal }, stderr);
    // it says what it leaves behind: nothing else on stderr, no stack trace
    assert.equal(
      stderr,
      `egress-triage: ingest stopped by ${signal} while reading <stdin>, after 50 records of it: what was committed of it stays stored, ` +
        'the batch in progress was rolled back; running the same ingest again stores nothing twice\n',
    );
    assert.equal(Number(await at.value('SELECT count(*) FROM ingest_leases')), 0, 'the lease was released');
    const next = runCli(['ingest', '-', '--db', at.db], { input: records(10, 50), env: { EGRESS_TRIAGE_INGEST_LEASE_MS: '600000' } });
    assert.equal(next.status, EXIT.OK, next.stderr);
    assert.doesNotMatch(next.stderr, /wait/, 'the next ingest did not wait for a lease');
    assert.equal(Number(await at.value('SELECT count(*) FROM observations')), 60);
  });
}

storeTest('Ctrl-C on a terminal shows the cursor and turns line wrap back on before the process ends', async (at) => {
  // script(1) gives the ingest a pseudo-terminal, so the progress bar runs; ^C written to it is the
  // terminal's SIGINT to the foreground job (a quiet pipe into `ingest -`). The writer ignores it, so
  // the input does not end at the same moment (an ingest that finishes first rightly exits 0); it
  // writes a blank line now and then, and ends by SIGPIPE once the ingest is gone.
  const cmd = `(trap '' INT; while sleep 0.2; do printf '\\n'; done) | '${process.execPath}' '${CLI}' ingest - --db '${at.db}'`;
  // CI=true (set by .ci/run) turns the progress bar off, terminal or not: this test needs the bar
  const env = cleanEnv({ TERM: 'xterm' });
  delete env.CI;
  const child = spawn('script', ['-qfec', cmd, '/dev/null'], { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let code: number | null;
  try {
    await waitFor(() => out.includes('\x1b[?25l'), 20_000, 25, 'the progress bar on the terminal');
    child.stdin.write('\x03');
    code = await exited;
  } finally {
    // a failed wait must not leave the terminal and its pipeline running (they would hold the suite)
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  assert.equal(code, 128 + 2, `ended by SIGINT: ${JSON.stringify(out)}`);
  assert.ok(out.lastIndexOf('\x1b[?25h') > out.lastIndexOf('\x1b[?25l'), `the cursor is shown again: ${JSON.stringify(out)}`);
  assert.ok(out.includes('\x1b[?7l') && out.lastIndexOf('\x1b[?7h') > out.lastIndexOf('\x1b[?7l'), `line wrap is on again: ${JSON.stringify(out)}`);
  assert.equal(Number(await at.value('SELECT count(*) FROM ingest_leases')), 0, 'the lease was released');
});

test('the report of an interrupted ingest says what is stored: whole sources, the one cut short, --strict', () => {
  const reading = { source: 'b.ndjson', records: 1 };
  assert.equal(
    interruptionReport('SIGINT', { sourcesDone: 2, sources: 3, reading, strict: false }),
    'ingest stopped by SIGINT while reading b.ndjson, after 1 record of it: what was committed of it stays stored, the batch in progress was rolled back; ' +
      'the 2 sources before it are stored in full; running the same ingest again stores nothing twice',
  );
  assert.equal(
    interruptionReport('SIGTERM', { sourcesDone: 1, sources: 2, reading: { source: 'c.ndjson', records: 5000 }, strict: true }),
    'ingest stopped by SIGTERM while reading c.ndjson, after 5000 records of it: nothing of it is stored (--strict); the 1 source before it is stored in full; ' +
      'running the same ingest again stores nothing twice',
  );
  assert.equal(interruptionReport('SIGINT', { sourcesDone: 2, sources: 2, reading, strict: false }), 'ingest stopped by SIGINT after its last source: everything read is stored');
  // the binaries flagged before the signal are stored: said, as the summary would have (names quoted, controls by name)
  const flagged = [
    { tenant: 'default', process: 'tailscaled', sha256: 'a'.repeat(64), path: null, reason: 'risky destination webhook.site' },
    { tenant: 'default', process: 'tailscaled', sha256: null, path: '/tmp/x\n"y', reason: 'started through npm' },
  ];
  assert.equal(
    interruptionReport('SIGINT', { sourcesDone: 2, sources: 2, reading, strict: false, flagged }),
    'ingest stopped by SIGINT after its last source: everything read is stored; flagged and stored before the signal: 2 suspected impostor binaries, ' +
      'kept visible whatever the rules ("tailscaled" sha256 aaaaaaaaaaaa: risky destination webhook.site; "tailscaled" "/tmp/x\\n\\"y" (no hash): started through npm; ' +
      '`egress-triage analyze` shows them)',
  );
});

storeTest('SIGINT after an impostor was flagged: the report names it, since the summary that would have is never printed', async (at) => {
  const child = spawn(process.execPath, [CLI, 'ingest', '-', '--db', at.db, '--learning-runs', '0'], { env: cleanEnv({}), stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
  child.stdin.write(ndjson([nativeEvent({ run: 1, process: 'tailscaled', sha256: 'b'.repeat(64), domain: 'webhook.site' })]));
  await waitFor(async () => Number(await at.value('SELECT count(*) FROM suspected_impostors').catch(() => 0)) === 1, 20_000, 25, 'the flag stored');
  child.kill('SIGINT');
  assert.equal(await exited, 'SIGINT', stderr);
  child.stdin.destroy();
  assert.match(stderr, /; flagged and stored before the signal: 1 suspected impostor binary, kept visible whatever the rules \("tailscaled" sha256 bbbbbbbbbbbb: risky destination webhook\.site; `egress-triage analyze` shows them\)\n$/);
});
