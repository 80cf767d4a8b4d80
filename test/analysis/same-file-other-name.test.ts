import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult } from '../helpers.js';
import { eachStore } from '../helpers/each-store.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { RiskyDestinations } from '../../src/analysis/risky-destinations.js';

/**
 * A file is its hash, whatever it runs as (found by review): `/usr/local/bin/tailscaled` with hash E
 * fetched from webhook.site as `python3`, then called its attacker on port 41641 as `tailscaled`, and
 * was judged genuine: a flag was per name, and a name that is no daemon's is never flagged. The
 * suggested rule pinned E, and a rule pinned to E made before the webhook.site call kept hiding it.
 * Now the daemon-named binaries of such a file are suspected impostors, in either order, at ingest
 * (the store's and the source's) and in every store's verdict.
 */

const { storeTest } = eachStore();

const E = 'e'.repeat(64);
const G = 'a'.repeat(64);
const rec = (run: number, name: string, sha: string, ip: string, port: number, domain?: string) =>
  JSON.stringify({
    owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: String(run), run_attempt: 1,
    timestamp: `2026-11-02T10:${String(run).padStart(2, '0')}:00Z`, ip, port, protocol: 'tcp', status: 'allowed',
    process: { name, path: '/usr/local/bin/tailscaled', sha256: sha, parent: { name: 'sudo' } }, ...(domain ? { domain } : {}),
  });

async function ingest(at: { dir: string; db: string }, name: string, lines: string[]) {
  const file = join(at.dir, name);
  writeFileSync(file, lines.join('\n') + '\n');
  const r = await cliResult(['ingest', file, '--db', at.db, '--learning-runs', '2', '--promote-after', '1000', '--json']);
  assert.equal(r.status, 0, r.stderr);
  return (JSON.parse(r.stdout) as { sources: { releasedOnIngest: number; suspectedImpostors: { process: string; sha256: string; reason: string }[] }[] }).sources[0]!;
}

const base = [1, 2].map((run) => rec(run, 'tailscaled', G, '192.200.0.101', 443, 'controlplane.tailscale.com'));
const REASON = `the same file (sha256 ${E.slice(0, 12)}) called the risky destination webhook.site as python3`;

storeTest('the same file under another name: a risky call as python3 flags it as tailscaled, the risky call first in one source', async (at) => {
  await ingest(at, 'base.ndjson', base);
  // in one source: the webhook.site call first, then the daemon's name
  const one = await ingest(at, 'one.ndjson', [
    rec(20, 'python3', E, '46.4.105.116', 443, 'webhook.site'),
    rec(21, 'tailscaled', E, '100.64.1.9', 41641),
    rec(22, 'tailscaled', E, '45.61.136.14', 41641),
  ]);
  assert.deepEqual(one.suspectedImpostors.map((b) => [b.process, b.sha256, b.reason]), [['tailscaled', E, REASON]]);
  const a = await cliResult(['analyze', '--db', at.db, '--min-count', '1', '--json']);
  assert.equal(a.status, 0, a.stderr);
  const ts = (JSON.parse(a.stdout) as { processes: { process: string; vpn_evidence: { binaries: { sha256: string; verdict: string; contradicting: string[] }[] } }[] }).processes.find((p) => p.process === 'tailscaled')!;
  const e = ts.vpn_evidence.binaries.find((b) => b.sha256 === E)!;
  assert.equal(e.verdict, 'impostor');
  assert.ok(e.contradicting.some((c) => c.includes(REASON)), JSON.stringify(e.contradicting));
  const pinned = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=tailscaled', '--condition', `process_sha256=${E}`, '--yes']);
  assert.equal(pinned.status, 4, `${pinned.stdout}${pinned.stderr}`);
});

storeTest('the same file under another name, the other order: a rule pinned the daemon first, and the later risky call as python3 brings its detections back', async (at) => {
  await ingest(at, 'base.ndjson', base);
  await ingest(at, 'daemon.ndjson', [rec(21, 'tailscaled', E, '100.64.1.9', 41641), rec(22, 'tailscaled', E, '45.61.136.14', 41641)]);
  const rule = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=tailscaled', '--condition', `process_sha256=${E}`, '--yes', '--json']);
  assert.equal(rule.status, 0, rule.stderr);
  const hidden = await cliResult(['detections', 'list', '--db', at.db, '--status', 'new', '--json']);
  assert.deepEqual((JSON.parse(hidden.stdout) as { detections: unknown[] }).detections, [], 'the rule hid the daemon\'s detections');
  const later = await ingest(at, 'later.ndjson', [rec(30, 'python3', E, '46.4.105.116', 443, 'webhook.site')]);
  assert.deepEqual(later.suspectedImpostors.map((b) => [b.process, b.sha256, b.reason]), [['tailscaled', E, REASON]]);
  assert.equal(later.releasedOnIngest, 2);
  const back = await cliResult(['detections', 'list', '--db', at.db, '--status', 'new', '--json']);
  const endpoints = (JSON.parse(back.stdout) as { detections: { endpoint: string }[] }).detections.map((d) => d.endpoint).sort();
  assert.deepEqual(endpoints, ['100.64.1.9:41641', '45.61.136.14:41641', 'webhook.site:443']);
});

storeTest('the same file under another name in a store whose ingest flagged nothing (an older version wrote it): the store\'s own verdict flags it', async (at) => {
  const store = await at.open();
  try {
    const file = join(at.dir, 'unflagged.ndjson');
    writeFileSync(file, [...base, rec(20, 'python3', E, '46.4.105.116', 443, 'webhook.site'), rec(21, 'tailscaled', E, '100.64.1.9', 41641)].join('\n') + '\n');
    // no suppressor: nothing observes the calls at ingest, as before this check existed
    const p = new IngestPipeline(store, { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 2, promoteAfterRuns: 1000 } });
    assert.deepEqual((await p.ingest(file)).suspectedImpostors, []);
    const port = store.rulesPort(new RiskyDestinations());
    const tid = (await port.tenantId('default'))!;
    const v = await port.impostors(tid);
    assert.deepEqual(v.set.list().map((b) => [b.process, b.sha256, b.reason]), [['tailscaled', E, REASON]]);
    assert.deepEqual(v.hashedDaemons.map((b) => [b.process, b.sha256]).sort(), [['tailscaled', G], ['tailscaled', E]]);
  } finally {
    await store.close();
  }
});

/** A record of a binary with its own path and parent chain (the file E under any name). */
const ran = (run: number, name: string, path: string, parent: object, ip: string, port: number, domain?: string) =>
  JSON.stringify({
    owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: String(run), run_attempt: 1,
    timestamp: `2026-11-02T10:${String(run).padStart(2, '0')}:00Z`, ip, port, protocol: 'tcp', status: 'allowed',
    process: { name, path, sha256: E, parent }, ...(domain ? { domain } : {}),
  });
const BY_NPM = { name: 'node', parent: { name: 'npm', parent: { name: 'bash' } } };
const BY_SYSTEMD = { name: 'systemd' };
// Found by review: E ran first from /tmp, started by npm, as update-helper; then as tailscaled from
// /usr/local/bin, started by systemd (sudo systemd-run leaves no other parent), calling its server on
// tailscale's port and tailscale's own control plane. Only a risky call counted as the file's evidence.
const helperFromTmp = ran(20, 'update-helper', '/tmp/.x/update-helper', BY_NPM, '45.61.136.14', 443, 'c2.attacker.example');
const daemonAfter = [
  ran(21, 'tailscaled', '/usr/local/bin/tailscaled', BY_SYSTEMD, '192.200.0.101', 443, 'controlplane.tailscale.com'),
  ran(21, 'tailscaled', '/usr/local/bin/tailscaled', BY_SYSTEMD, '45.61.136.14', 41641),
];

storeTest('the same file under another name: run from /tmp, or started by npm, as another name flags it as tailscaled, at ingest and in the store\'s verdict', async (at) => {
  await ingest(at, 'base.ndjson', base);
  const one = await ingest(at, 'one.ndjson', [helperFromTmp, ...daemonAfter]);
  const FROM_TMP = `the same file (sha256 ${E.slice(0, 12)}) ran from /tmp/ as update-helper`;
  assert.deepEqual(one.suspectedImpostors.map((b) => [b.process, b.sha256, b.reason]), [['tailscaled', E, FROM_TMP]]);
  const pinned = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=tailscaled', '--condition', `process_sha256=${G}|${E}`, '--yes']);
  assert.equal(pinned.status, 4, `${pinned.stdout}${pinned.stderr}`);
  // the store's verdict, with no ingest having flagged it: a path that is no temporary one, started by npm
  const store = await at.open();
  try {
    const file = join(at.dir, 'unflagged.ndjson');
    writeFileSync(file, [ran(30, 'update-helper', '/usr/local/lib/x/update-helper', BY_NPM, '45.61.136.15', 443, 'c3.attacker.example'), ...daemonAfter.map((l) => l.replace('"run_id":"21"', '"run_id":"31"'))].join('\n') + '\n');
    const p = new IngestPipeline(store, { tenant: 'other', format: 'native', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 0, promoteAfterRuns: 1000 } });
    assert.deepEqual((await p.ingest(file)).suspectedImpostors, []);
    const port = store.rulesPort(new RiskyDestinations());
    const v = await port.impostors((await port.tenantId('other'))!);
    assert.deepEqual(v.set.list().map((b) => [b.process, b.sha256, b.reason]), [['tailscaled', E, `the same file (sha256 ${E.slice(0, 12)}) was started through node as update-helper`]]);
  } finally {
    await store.close();
  }
});

storeTest('the same file under another name that ran as any program does (from /usr/bin, started by bash) flags nothing', async (at) => {
  await ingest(at, 'base.ndjson', base);
  const one = await ingest(at, 'one.ndjson', [ran(20, 'update-helper', '/usr/bin/update-helper', { name: 'bash', parent: { name: 'Runner.Worker' } }, '45.61.136.14', 443, 'c2.attacker.example'), ...daemonAfter]);
  assert.deepEqual(one.suspectedImpostors, []);
});

storeTest('the same file under another name, in an earlier ingest and raising nothing (an allowed endpoint): the daemon-named binary of that file is flagged when it comes', async (at) => {
  await ingest(at, 'base.ndjson', base);
  const file = join(at.dir, 'helper.ndjson');
  // run from /tmp by npm as update-helper, calling only what the job allows: no detection of it
  writeFileSync(file, ran(20, 'update-helper', '/tmp/.x/update-helper', BY_NPM, '104.16.2.35', 443, 'registry.npmjs.org') + '\n');
  const first = await cliResult(['ingest', file, '--db', at.db, '--learning-runs', '2', '--promote-after', '1000', '--allowed-endpoints', 'registry.npmjs.org:443', '--json']);
  assert.equal(first.status, 0, first.stderr);
  assert.equal((JSON.parse(first.stdout) as { sources: { detections: number }[] }).sources[0]!.detections, 0);
  const later = await ingest(at, 'daemon.ndjson', daemonAfter);
  assert.deepEqual(later.suspectedImpostors.map((b) => [b.process, b.sha256, b.reason]), [['tailscaled', E, `the same file (sha256 ${E.slice(0, 12)}) ran from /tmp/ as update-helper`]]);
  const rule = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=tailscaled', '--yes']);
  assert.equal(rule.status, 4, `${rule.stdout}${rule.stderr}`);
});

storeTest('another tenant\'s daemon of the same file judges nothing here: its hash flags no binary of this tenant, and this tenant\'s rules stay its own', async (at) => {
  const inTenant = async (tenant: string, name: string, lines: string[]) => {
    const file = join(at.dir, name);
    writeFileSync(file, lines.join('\n') + '\n');
    const r = await cliResult(['ingest', file, '--db', at.db, '--tenant', tenant, '--learning-runs', '0', '--json']);
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { sources: { suspectedImpostors: unknown[] }[] }).sources[0]!;
  };
  // tenant B runs the file as its daemon; tenant A runs the same file from /tmp under another name
  await inTenant('B', 'b.ndjson', daemonAfter);
  const a = await inTenant('A', 'a.ndjson', [helperFromTmp]);
  assert.deepEqual(a.suspectedImpostors, [], 'A never ran a tailscaled');
  const rule = await cliResult(['rules', 'create', '--db', at.db, '--tenant', 'A', '--condition', 'process=update-helper', '--yes']);
  assert.equal(rule.status, 0, `${rule.stdout}${rule.stderr}`);
  const b = await cliResult(['analyze', '--db', at.db, '--tenant', 'B', '--min-count', '1', '--json']);
  const ts = (JSON.parse(b.stdout) as { processes: { process: string; name_impersonation_suspected: boolean }[] }).processes.find((p) => p.process === 'tailscaled')!;
  assert.equal(ts.name_impersonation_suspected, false, 'nor does A\'s run judge B\'s tailscaled');
});

storeTest('the reason a file under other names gives is worded the same on every store: its first name, then its first risky destination, in order', async (at) => {
  const names = ['python3', 'curl'];
  const hosts = ['webhook.site', 'abc.ngrok.io'];
  const lines = names.flatMap((n, i) => hosts.map((h, j) => ran(40 + i, n, `/usr/bin/${n}`, { name: 'bash' }, `46.4.105.${10 * i + j}`, 443, h)));
  await ingest(at, 'others.ndjson', lines);
  const later = await ingest(at, 'daemon.ndjson', daemonAfter.map((l) => l.replace('"run_id":"21"', '"run_id":"45"')));
  assert.deepEqual(later.suspectedImpostors.map((b) => b.reason), [`the same file (sha256 ${E.slice(0, 12)}) called the risky destination abc.ngrok.io as curl`]);
});
