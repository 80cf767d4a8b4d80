import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { nativeEvent, ndjson, runCli, type EventSpec } from '../helpers.js';
import { spawnSync } from 'node:child_process';
import { call, ingestCalls, proc, tailscaled, TS0 } from '../analysis/helpers.js';
import { detectionsView, eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();

const CLI = 'dist/bundle/cli/main.js';

function cli(args: string[]): { code: number | null; out: string; err: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, EGRESS_TRIAGE_CONFIG: '' } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

async function state(at: StoreUnderTest): Promise<string> {
  return JSON.stringify([
    await at.rows(`SELECT status, rule_id, count(*) AS n FROM ${detectionsView(at.backend)} AS detections GROUP BY 1, 2 ORDER BY 1, 2`),
    await at.value('SELECT count(*) FROM rules'),
    await at.value('SELECT count(*) FROM rule_audit'),
    await at.value("SELECT value FROM meta WHERE key = 'rules_version'"),
  ]);
}

storeTest('CLI: bad input gets a clear error, a non-zero exit and changes nothing; good input works', async (at) => {
  const store = await at.open();
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= store.close());
  try {
    await ingestCalls(at, store, 'default', [
      call('default', 'web', 1, TS0, tailscaled(true), { ip: '100.64.0.1', port: 41641 }),
      call('default', 'web', 1, TS0 + 1, tailscaled(true), { ip: '100.64.0.2', port: 41641 }),
      call('default', 'web', 1, TS0 + 2, proc('curl'), { domain: 'webhook.site', port: 443 }),
      call('default', 'web', 1, TS0 + 3, proc('git'), { domain: 'example.org', port: 443 }),
    ]);
    await close();
    const base = ['--db', at.db, '--tenant', 'default'];
    const s0 = await state(at);
    const cases: [string[], RegExp][] = [
      [['rules', 'create', ...base, '--condition', 'proces=tailscaled', '--yes'], /unknown condition key "proces"/],
      [['rules', 'create', ...base, '--condition', 'process=tailscaled', '--condition', '__proto__=x', '--yes'], /unknown condition key "__proto__"/],
      [['rules', 'create', ...base, '--condition', 'ip_address=100.64.0.0/33', '--yes'], /ip_address="100.64.0.0\/33": malformed CIDR/],
      [['rules', 'create', ...base, '--condition', 'process=tailscaled'], /--yes/],
      [['rules', 'create', ...base, '--condition', 'host=webhook.site', '--yes'], /refused.*webhook\.site/],
      [['rules', 'create', ...base, '--condition', 'owner=?*', '--yes'], /no condition other than "\*" or a pattern that names nothing/],
      [['rules', 'update', 'no-such-rule', ...base, '--name', ' '], /^egress-triage: --name: is empty; give a value or leave the option out$/m],
      [['rules', 'update', 'no-such-rule', ...base], /nothing to change: give --name/],
      [['analyze', ...base, '--since', 'last tuesday'], /--since/],
    ];
    for (const [args, re] of cases) {
      const r = cli(args);
      assert.notEqual(r.code, 0, args.join(' '));
      assert.match(r.err, re, args.join(' '));
      assert.doesNotMatch(r.err, /internal error|\n\s+at /, args.join(' '));
      assert.equal(await state(at), s0, `unchanged after ${args.join(' ')}`);
    }
    const prev = cli(['rules', 'preview', ...base, '--condition', 'process=tailscaled', '--condition', 'ip_address=100.64.0.0/10', '--json']);
    assert.equal(prev.code, 0, prev.err);
    assert.equal(JSON.parse(prev.out).would_suppress, 2);
    const created = cli(['rules', 'create', ...base, '--condition', 'process=tailscaled', '--condition', 'ip_address=100.64.0.0/10', '--yes', '--json']);
    assert.equal(created.code, 0, created.err);
    const c = JSON.parse(created.out);
    assert.equal(c.suppressed, 2);
    const an = cli(['analyze', ...base, '--status', 'all', '--min-count', '1']);
    assert.equal(an.code, 0, an.err);
    assert.match(an.out, /tailscaled/);
    assert.match(an.out, /process\s+count\s+endpoints\s+direct IPs\s+repos\s+VPN verdict/);
    // a mistyped tenant: the rule is made as asked, with a note that the tenant has no data, and a
    // change to a rule of the right tenant finds no rule there, with the same note
    const note = (t: string) => new RegExp(`^egress-triage: note: the store has no data for tenant "${t}" \\(its tenants: "default"\\); --tenant or EGRESS_TRIAGE_TENANT names another$`, 'm');
    for (const change of [['update', c.rule.rule_id, '--name', 'x'], ['delete', c.rule.rule_id, '--yes']]) {
      const r = cli(['rules', ...change, '--db', at.db, '--tenant', 'dflt']);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, note('dflt'), change.join(' '));
    }
    const mistyped = cli(['rules', 'create', '--db', at.db, '--tenant', 'defualt', '--condition', 'process=curl', '--condition', 'host=api.github.com', '--yes']);
    assert.equal(mistyped.code, 0, mistyped.err);
    assert.match(mistyped.err, note('defualt'));
    // as text: what the rule is, without an empty description or an update time that is its creation
    assert.match(mistyped.out, /^rule_id: {5}\S+\ndetection: {3}New-Outbound-Network-Call\nname: {8}.+\nconditions: {2}process=curl host=api\.github\.com\ncreated: {5}\S+ by cli:\S+\nsuppressed 0 detection\(s\)\n$/);
    const described = cli(['rules', 'get', c.rule.rule_id, ...base]);
    assert.doesNotMatch(described.out, /^(description|updated):/m);
    const renamedText = cli(['rules', 'update', c.rule.rule_id, ...base, '--description', 'mesh peers of the deploy jobs']);
    assert.equal(renamedText.code, 0, renamedText.err);
    assert.match(renamedText.out, /^description: mesh peers of the deploy jobs\n[\s\S]*^updated: {5}\S+\n/m);
    assert.doesNotMatch(created.err, /note:/, 'the tenant has data: no note');
    // a new name moves no detection: no --yes asked; a change of what it matches still asks
    const renamed = cli(['rules', 'update', c.rule.rule_id, ...base, '--name', 'mesh peers', '--json']);
    assert.equal(renamed.code, 0, renamed.err);
    assert.deepEqual([JSON.parse(renamed.out).rule.name, JSON.parse(renamed.out).suppressed, JSON.parse(renamed.out).restored], ['mesh peers', 0, 0]);
    const s1 = await state(at);
    const rematch = cli(['rules', 'update', c.rule.rule_id, ...base, '--condition', 'process=tailscaled']);
    assert.equal(rematch.code, 2, rematch.err);
    // it says what the update would do, as create without --yes does
    const wouldDo = (n: number, match: string) =>
      new RegExp(`^egress-triage: the updated rule \\(New-Outbound-Network-Call: ${match}\\) would suppress ${n} more detection\\(s\\), and what it suppresses now that it no longer matches goes to another matching rule or back to new; the update changes stored detections: re-run with --yes to confirm \\(nothing was changed\\)\n$`);
    assert.match(rematch.err, wouldDo(0, 'process=tailscaled'));
    const toGit = cli(['rules', 'update', c.rule.rule_id, ...base, '--condition', 'process=git']);
    assert.equal(toGit.code, 2, toGit.err);
    assert.match(toGit.err, wouldDo(1, 'process=git'));
    // an update the guards refuse says so at once (exit 4), not "re-run with --yes" and then refuse
    const toCurl = cli(['rules', 'update', c.rule.rule_id, ...base, '--condition', 'process=curl']);
    assert.equal(toCurl.code, 4, toCurl.err);
    assert.match(toCurl.err, /^egress-triage: rule refused: the rule would also suppress 1 detection\(s\) to risky destinations \(webhook\.site:443\)/);
    assert.equal(await state(at), s1, 'no update without --yes changed anything');
    // the same match written again (keys in another order, a blank around a value) moves nothing: no
    // preview, no --yes, and the rule keeps every detection it suppressed
    const same = cli(['rules', 'update', c.rule.rule_id, ...base, '--condition', 'ip_address=100.64.0.0/10 ', '--condition', 'process=tailscaled', '--json']);
    assert.equal(same.code, 0, same.err);
    const sameOut = JSON.parse(same.out);
    assert.deepEqual([sameOut.rule.conditions, sameOut.suppressed, sameOut.restored, sameOut.kept], [{ process: 'tailscaled', ip_address: '100.64.0.0/10' }, 0, 0, 2]);
    const [before, after] = [JSON.parse(s1), JSON.parse(await state(at))];
    assert.deepEqual(after[0], before[0], 'no detection moved');
    // a bad cursor is said as the option that carried it
    const cursor = cli(['analyze', ...base, '--cursor', 'garbage']);
    assert.equal(cursor.code, 2, cursor.err);
    assert.match(cursor.err, /^egress-triage: --cursor: invalid cursor: unrecognised format/m);
    const del = cli(['rules', 'delete', ...base, c.rule.rule_id, '--restore', '--yes']);
    assert.equal(del.code, 0, del.err);
    assert.match(del.out, /restored 2/);
  } finally {
    await close();
  }
});

test('CLI: the ingest summary counts detections raised, and says how many an existing rule suppressed on arrival', () => {
  const dir = mkdtempSync(join(tmpdir(), 'egress-triage-raised-'));
  try {
    const db = join(dir, 'store.db');
    // two learning runs, then curl reaches a new host in each later run
    const evs = (from: number, to: number) => {
      const out: EventSpec[] = [];
      for (let r = from; r < to; r++) out.push({ run: r, domain: 'github.com', process: 'git' }, ...(r >= 2 ? [{ run: r, domain: `h${r}.example.com`, process: 'curl' }] : []));
      return ndjson(out.map(nativeEvent));
    };
    const first = runCli(['ingest', '-', '--db', db, '--learning-runs', '2'], { input: evs(0, 4) });
    assert.equal(first.status, 0, first.stderr);
    assert.match(first.stderr + first.stdout, /total: \d+ events in .*, 2 detections raised, 0 rejected/);
    const rule = runCli(['rules', 'create', '--db', db, '--condition', 'process=curl', '--yes']);
    assert.equal(rule.status, 0, rule.stderr);
    const second = runCli(['ingest', '-', '--db', db, '--learning-runs', '2'], { input: evs(4, 7) });
    assert.equal(second.status, 0, second.stderr);
    assert.match(second.stderr + second.stdout, /total: \d+ events in .*, 3 detections raised \(3 suppressed by existing rules\), 0 rejected/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI ingest names a binary it flags as a suspected impostor, with why, even when no rule had hidden anything of it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'egress-flagged-'));
  try {
    const db = join(dir, 'store.db');
    // a look-alike of tailscaled (Latin alpha) at tailscale's own control plane: only its name gives it away
    const alpha = { process: 'tɑilscaled', sha256: 'd'.repeat(64) };
    const calls = [1, 2].map((run) => nativeEvent({ run, domain: 'controlplane.tailscale.com', port: 443, ...alpha }));
    // a hash-less one whose path is written to read as the end of its entry and as another line
    const forged = nativeEvent({ run: 3, domain: 'controlplane.tailscale.com', port: 443, process: 'taiIscaled' });
    (forged.process as Record<string, unknown>).sha256 = '';
    (forged.process as Record<string, unknown>).path = '/tmp/x: fine; "tailscaled" ok\n  new again         0 stored detection(s)';
    const r = runCli(['ingest', '-', '--db', db, '--learning-runs', '0'], { input: ndjson([...calls, forged]) });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    const at = lines.findIndex((l) => l.startsWith('  impostors '));
    assert.deepEqual(lines.slice(at, at + 3).map((l) => l.replace(/: named .*/, ': named ...')), [
      '  impostors         2 binaries suspected, kept visible whatever the rules:',
      '    - "tɑilscaled" sha256 dddddddddddd: named ...',
      '    - "taiiscaled" "/tmp/x: fine; \\"tailscaled\\" ok\\n  new again         0 stored detection(s)" (no hash): named ...',
    ]);
    assert.match(lines[at + 1]!, /: named "tɑilscaled", drawn like tailscaled but not it /);
    assert.doesNotMatch(r.stdout, /^ {2}new again/m);
    // flagged once: a later source that shows nothing new about it says nothing of it
    const again = JSON.parse(runCli(['ingest', '-', '--db', db, '--json', '--learning-runs', '0'], { input: ndjson([nativeEvent({ run: 3, domain: 'controlplane.tailscale.com', port: 443, ...alpha })]) }).stdout);
    assert.deepEqual([again.sources[0].detections, again.sources[0].suspectedImpostors], [1, []]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI ingest: one source flags the same binary in two tenants, and each flag is told with its tenant', () => {
  const dir = mkdtempSync(join(tmpdir(), 'egress-flagged-tenants-'));
  try {
    const db = join(dir, 'store.db');
    const renamed = { process: 'tailscaled', sha256: 'e'.repeat(64), domain: 'webhook.site', port: 443 };
    const input = ndjson([nativeEvent({ run: 1, ...renamed }), nativeEvent({ run: 1, tenant: 'other', ...renamed })]);
    const r = runCli(['ingest', '-', '--db', db, '--learning-runs', '0'], { input });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ {2}impostors {9}2 binaries suspected, kept visible whatever the rules:\n {4}- "tailscaled" sha256 eeeeeeeeeeee in tenant (default|other): risky destination webhook\.site\n {4}- "tailscaled" sha256 eeeeeeeeeeee in tenant (default|other): risky destination webhook\.site$/m);
    assert.match(r.stdout, /in tenant default/);
    assert.match(r.stdout, /in tenant other/);
    const j = JSON.parse(runCli(['ingest', '-', '--db', join(dir, 'two.db'), '--json', '--learning-runs', '0'], { input }).stdout);
    assert.deepEqual(j.sources[0].suspectedImpostors.map((b: { tenant: string }) => b.tenant).sort(), ['default', 'other']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI ingest says how many stored detections a newly flagged binary brought back, which binary, and why', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'egress-released-'));
  try {
    const db = join(dir, 'store.db');
    const daemon = { process: 'tailscaled', sha256: 'c'.repeat(64) };
    const peers: EventSpec[] = [1, 2, 3].map((run) => ({ run, ip: `100.64.0.${run}`, port: 41641, protocol: 'udp', ...daemon }));
    assert.equal(runCli(['ingest', '-', '--db', db, '--learning-runs', '0'], { input: ndjson(peers.map(nativeEvent)) }).status, 0);
    const rule = cli(['rules', 'create', '--db', db, '--condition', `process_sha256=${'c'.repeat(64)}`, '--yes']);
    assert.equal(rule.code, 0, rule.err);
    assert.match(rule.out, /suppressed 3 /);
    // the same hash now fetches from a domain outside Tailscale's signature: flagged at ingest
    const exfil = ndjson([nativeEvent({ run: 4, domain: 'drop.attacker.example', port: 443, ...daemon })]);
    const r = runCli(['ingest', '-', '--db', db, '--learning-runs', '0'], { input: exfil });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ {2}impostors {9}1 binary suspected, kept visible whatever the rules:\n {4}- "tailscaled" sha256 cccccccccccc: .*drop\.attacker\.example.*\n {2}new again {9}3 stored detection\(s\) of suspected impostors that were suppressed or resolved$/m);
    assert.match(r.stdout, /^total: 1 events .*, 1 detections raised, 3 stored detections new again \(suspected impostors\), 0 rejected$/m);
    const j = JSON.parse(runCli(['ingest', '-', '--db', db, '--json', '--learning-runs', '0'], { input: exfil }).stdout);
    assert.deepEqual([j.totals.releasedOnIngest, j.sources[0].releasedOnIngest, j.sources[0].suspectedImpostors], [0, 0, []], 'nothing left to release');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
