import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { nativeEvent, ndjson, runCli, tempDir, type EventSpec } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';

const tmp = tempDir();
after(() => tmp.cleanup());
const { storeTest, storeSuite } = eachStore();

function events(): EventSpec[] {
  const evs: EventSpec[] = [];
  for (let r = 0; r < 4; r++) {
    evs.push({ run: r, domain: 'github.com', process: 'git' });
    if (r >= 2) evs.push({ run: r, ip: `100.64.3.${r}`, port: 41641, protocol: 'udp', process: 'tailscaled' });
  }
  return evs;
}

// Every command's --help (top level and nested, status and usage line): test/cli/conventions walks them all.
test('--version prints the version', () => {
  assert.match(runCli(['--version']).stdout, /^\d+\.\d+\.\d+/);
});

// the same store through these tests, in order: ingest, then the reads and edits of what it stored
storeSuite((store) => {
  let db = '';
  before(() => {
    db = store().db;
  });

  test('ingest from stdin with --json, quiet stderr when piped', () => {
    const r = runCli(['ingest', '-', '--db', db, '--learning-runs', '2', '--json'], { input: ndjson(events().map(nativeEvent)) });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    const out = JSON.parse(r.stdout);
    assert.equal(out.sources[0].source, '<stdin>');
    assert.equal(out.sources[0].format, 'native');
    assert.equal(out.totals.accepted, 6);
    assert.equal(out.totals.detections, 2);
  });

test('detections list, stats and baseline show read the store', () => {
    const list = runCli(['detections', 'list', '--db', db, '--json', '--process', 'tailscaled']);
    assert.equal(list.status, 0, list.stderr);
    const page = JSON.parse(list.stdout);
    assert.equal(page.total, 2);
    assert.match(page.detections[0].dashboard_url, /\/github\/acme\/api\/actions\/runs\/100[23]\?jobId=500[23]&tab=network-events$/);
    const human = runCli(['detections', 'list', '--db', db]);
    assert.match(human.stdout, /100\.64\.3\.3:41641/);
    const stats = JSON.parse(runCli(['stats', '--db', db, '--json']).stdout);
    assert.equal(stats.runs, 4);
    assert.deepEqual(stats.detections, [{ type: 'New-Outbound-Network-Call', status: 'new', count: 2 }]);
    const base = runCli(['baseline', 'show', '--db', db, '--owner', 'acme', '--repo', 'api', '--json']);
    assert.equal(JSON.parse(base.stdout).jobs[0].endpoints[0].endpoint, 'github.com:443');
    assert.equal(list.stderr, '', 'the tenant has data: no note');
    // a mistyped tenant answers nothing, and says it is no tenant of the store rather than "all clear"
    const note = /^egress-triage: note: the store has no data for tenant "nobody" \(its tenants: "default"\); --tenant or EGRESS_TRIAGE_TENANT names another$/m;
    const other = runCli(['stats', '--db', db, '--tenant', 'nobody', '--json']);
    assert.equal(other.status, 0, other.stderr);
    assert.equal(JSON.parse(other.stdout).runs, 0);
    assert.match(other.stderr, note);
    for (const cmd of [['detections', 'list'], ['analyze'], ['rules', 'list']]) {
      const r = runCli([...cmd, '--db', db, '--tenant', 'nobody', '--json']);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, note, cmd.join(' '));
    }
  });

  test('dashboard links are built on an http(s) base only, from the flag, then the environment, then the config file', () => {
    const links = (args: string[], env: Record<string, string> = {}) => {
      const r = runCli(['detections', 'list', '--db', db, '--json', '--limit', '1', ...args], { env });
      return { r, url: r.status === 0 ? (JSON.parse(r.stdout).detections[0].dashboard_url as string) : '' };
    };
    const config = join(tmp.dir, `dash-${store().backend}.yaml`);
    writeFileSync(config, 'dashboard_url: https://from-config.example\n');
    assert.match(links(['--config', config], { EGRESS_TRIAGE_DASHBOARD_URL: 'https://from-env.example' }).url, /^https:\/\/from-env\.example\/github\//);
    assert.match(links(['--config', config]).url, /^https:\/\/from-config\.example\/github\//);
    assert.match(links(['--config', config, '--dashboard-url', 'http://flag.example/'], { EGRESS_TRIAGE_DASHBOARD_URL: 'https://from-env.example' }).url, /^http:\/\/flag\.example\/github\//);
    // a link people and agents follow must not run script
    const flag = links(['--dashboard-url', 'javascript:alert(1)//']);
    assert.equal(flag.r.status, 2, flag.r.stderr);
    assert.match(flag.r.stderr, /^egress-triage: --dashboard-url: "javascript:alert\(1\)\/\/" is not an http or https URL/m);
    const env = runCli(['analyze', '--db', db, '--json'], { env: { EGRESS_TRIAGE_DASHBOARD_URL: 'not a url' } });
    assert.equal(env.status, 2, env.stderr);
    assert.match(env.stderr, /^egress-triage: EGRESS_TRIAGE_DASHBOARD_URL: "not a url" is not a URL/m);
    writeFileSync(config, 'dashboard_url: "javascript:alert(1)"\n');
    const cfg = links(['--config', config]);
    assert.equal(cfg.r.status, 1, cfg.r.stderr);
    assert.ok(cfg.r.stderr.startsWith(`egress-triage: ${config}:1: dashboard_url: "javascript:alert(1)" is not an http or https URL`), cfg.r.stderr);
    // checked as the file is read, with its line, by every command that reads it, not only those that print links
    const stats = runCli(['stats', '--db', db, '--config', config]);
    assert.equal(stats.status, 1, stats.stderr);
    assert.ok(stats.stderr.startsWith(`egress-triage: ${config}:1: dashboard_url: `), stats.stderr);
  });

test('bad input gets a clear error and a non-zero exit', () => {
    const missing = runCli(['ingest', join(tmp.dir, 'nope.ndjson'), '--db', db]);
    assert.equal(missing.status, 3);
    assert.match(missing.stderr, /nope\.ndjson: no such file/);
    const badFormat = runCli(['ingest', '--format', 'xml', '--db', db], { input: '' });
    assert.notEqual(badFormat.status, 0);
    assert.match(badFormat.stderr, /xml/);
    const badTenant = runCli(['stats', '--db', db, '--tenant', 'a b']);
    assert.equal(badTenant.status, 2);
    assert.match(badTenant.stderr, /--tenant/);
    // a long value is named by its start and its length, not echoed whole
    const longTenant = runCli(['stats', '--db', db, '--tenant', `${'t'.repeat(5000)} x`]);
    assert.equal(longTenant.status, 2);
    assert.equal(longTenant.stderr, `egress-triage: --tenant: invalid tenant "${'t'.repeat(60)}…" (5002 characters): use letters, digits, ".", "_" or "-" (max 128 chars)\n`);
    const badCursor = runCli(['detections', 'list', '--db', db, '--cursor', 'zzz']);
    assert.equal(badCursor.status, 2);
    assert.match(badCursor.stderr, /--cursor: invalid cursor/);
    const badSince = runCli(['detections', 'list', '--db', db, '--since', 'yesterday-ish']);
    assert.equal(badSince.status, 2);
    assert.match(badSince.stderr, /--since/);
    const f = join(store().dir, 'strict.ndjson');
    writeFileSync(f, ndjson(events().map(nativeEvent)) + '{"owner": 1}\n');
    const strict = runCli(['ingest', f, '--db', db, '--strict']);
    assert.equal(strict.status, 1, strict.stderr);
    assert.match(strict.stdout, /strict\.ndjson:7: repo: /);
    assert.match(strict.stdout, /nothing stored/);
  });

test('baseline expect: bad input is refused and changes nothing; good input joins the baseline', () => {
    const show = () => runCli(['baseline', 'show', '--db', db, '--owner', 'acme', '--repo', 'api', '--all', '--json']).stdout;
    const before = show();
    const noPort = runCli(['baseline', 'expect', '--db', db, '--owner', 'acme', '--repo', 'api', '--endpoint', 'api.partner.io']);
    assert.equal(noPort.status, 2);
    assert.match(noPort.stderr, /--endpoint: expected one exact endpoint, host:port/);
    const noRepo = runCli(['baseline', 'expect', '--db', db, '--owner', 'acme', '--repo', 'nope', '--endpoint', 'api.partner.io:443']);
    assert.equal(noRepo.status, 3);
    assert.match(noRepo.stderr, /no jobs found for acme\/nope/);
    assert.equal(show(), before);
    const ok = runCli(['baseline', 'expect', '--db', db, '--owner', 'acme', '--repo', 'api', '--endpoint', 'api.partner.io:443', '--json']);
    assert.equal(ok.status, 0, ok.stderr);
    const after = JSON.parse(show()).jobs[0].endpoints.find((e: { endpoint: string }) => e.endpoint === 'api.partner.io:443');
    assert.equal(after.source, 'expected');
  });

test('baseline show reads --repo owner/name as every filter does, and says which filter matched no job', () => {
    const show = (...args: string[]) => runCli(['baseline', 'show', '--db', db, '--json', ...args]);
    const plain = show('--owner', 'acme', '--repo', 'api');
    assert.equal(plain.status, 0, plain.stderr);
    const qualified = show('--owner', 'acme', '--repo', 'acme/api');
    assert.equal(qualified.status, 0, qualified.stderr);
    assert.equal(qualified.stdout, plain.stdout);
    const conflict = show('--owner', 'globex', '--repo', 'acme/api');
    assert.equal(conflict.status, 2);
    assert.match(conflict.stderr, /^egress-triage: --repo: "acme\/api" belongs to owner "acme", which conflicts with --owner "globex"; give one owner$/m);
    const none = show('--owner', 'acme', '--repo', 'api', '--workflow', 'nosuch.yml', '--job', 'build');
    assert.equal(none.status, 3);
    assert.match(none.stderr, /^egress-triage: no jobs found for acme\/api workflow nosuch\.yml job build in tenant "default"$/m);
  });
});

storeTest('without --db, the store is EGRESS_TRIAGE_DB', async (at) => {
  const r = runCli(['ingest', '-', '--json'], { input: ndjson(events().map(nativeEvent)), env: at.env });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(JSON.parse(runCli(['stats', '--json'], { env: at.env }).stdout).runs, 4);
});

// the default is a SQLite file: there is no default PostgreSQL store
test('without --db or EGRESS_TRIAGE_DB, the store is ./.egress-triage/egress.db', () => {
  const cwd = tempDir();
  try {
    runCli(['ingest', '-'], { input: ndjson(events().map(nativeEvent)), cwd: cwd.dir });
    const s = JSON.parse(runCli(['stats', '--json'], { cwd: cwd.dir }).stdout);
    assert.equal(s.db, join(cwd.dir, '.egress-triage', 'egress.db'));
    assert.equal(s.runs, 4);
  } finally {
    cwd.cleanup();
  }
});

// demo writes its own SQLite store by design (README): it stays on SQLite
test('demo generates, ingests and analyses a sample tenant', () => {
  const demoDb = join(tmp.dir, 'demo.db');
  const r = runCli(['demo', '--db', demoDb, '--events', '20000', '--runs', '12']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /New-Outbound-Network-Call/);
  assert.match(r.stdout, /tailscaled/);
  assert.match(r.stdout, /Try next:/);
  const j = runCli(['demo', '--db', demoDb, '--events', '20000', '--runs', '12', '--json']);
  const out = JSON.parse(j.stdout);
  assert.ok(out.analysis.total_anomalies_scanned > 0);
  assert.equal(out.ingest.totals.rejected, 0);
});
