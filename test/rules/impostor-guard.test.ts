import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { writeTenant, SCENARIO } from '../../src/generate/index.js';
import { runIngest, engineConfigFrom } from '../../src/cli/commands/ingest.js';
import { RulesService } from '../../src/rules/service.js';
import type { OpenStore } from '../../src/storage/open-store.js';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import type { ProcessInfo } from '../../src/domain/types.js';
import { call, ingestCalls, nativeLine, proc, rollupMismatchesOf, tailscaled, TS0 } from '../analysis/helpers.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { detectionsView, eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();

const NOC = 'New-Outbound-Network-Call';

async function countBySha(at: StoreUnderTest, sha: string, status: number): Promise<number> {
  return (await at.value(`SELECT count(*) FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id WHERE p.sha256 = ? AND d.status = ?`, [sha, status])) as number;
}

storeTest('demo tenant: no rule can hide the tailscaled impostor, whatever its conditions; the baseline never learns its IPs', async (at) => {
  const store = await at.open();
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= store.close());
  try {
    const file = join(at.dir, 'events.ndjson.gz');
    await writeTenant({ runs: 14, seed: 1, events: 40_000 }, file);
    await runIngest(store, [file], { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: engineConfigFrom({}, {}), progress: false });
    const imp = SCENARIO.impostor.sha256;
    const before = (await countBySha(at, imp, 0));
    assert.ok(before > 0, 'the impostor raised detections');
    const rules = new RulesService(store);
    const byIp = { process: 'tailscaled', ip_address: '45.0.0.0/8' };
    const p = await rules.preview('default', { detection_id: NOC, conditions: byIp });
    assert.ok(p.impostor_matches > 0);
    assert.match(p.refused_reason ?? '', new RegExp(`suspected impostor binaries \\(tailscaled sha256 ${imp.slice(0, 12)}`));
    await assert.rejects(rules.create('default', { detection_id: NOC, conditions: byIp }, 't'), (e: { code?: string }) => e.code === 'refused_impostor');
    for (const conditions of [byIp, { process: 'tailscaled' }, { process: 'tailscale*', repo: '*' }, { ip_address: '45.61.136.14' }, { process_sha256: imp }]) {
      await assert.rejects(rules.create('default', { detection_id: NOC, conditions }, 't'), /suspected impostor/, JSON.stringify(conditions));
    }
    // update: a safe rule cannot be widened onto the impostor either
    const safe = await rules.create('default', { detection_id: NOC, conditions: { process: 'tailscaled', process_sha256: SCENARIO.tailscale.sha256 } }, 't');
    await assert.rejects(rules.update('default', safe.rule.rule_id, { conditions: { process: 'tailscaled' } }, 't'), /suspected impostor/);
    assert.equal((await countBySha(at, imp, 0)), before);
    assert.equal((await countBySha(at, imp, 1)), 0);
    assert.equal(await rollupMismatchesOf(at), 0);
    // the baseline holds none of the impostor's direct IPs
    const learned = (await at.value(`SELECT count(*) FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id WHERE CAST(b.in_baseline AS integer) = 1 AND e.host IN (${SCENARIO.impostor.ips.map(() => '?').join(',')})`, [...SCENARIO.impostor.ips])) as number;
    assert.equal(learned, 0);
    // analysis and guard agree on the binary
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: 'default', limit: 100 }, { rules });
    const ts = res.processes.find((g) => g.process === 'tailscaled')!;
    assert.equal(ts.vpn_evidence.binaries.find((b) => b.sha256 === imp)?.verdict, 'impostor');
    await close();
    // the CLI says why, exits non-zero and changes nothing
    const r = spawnSync(process.execPath, ['dist/bundle/cli/main.js', 'rules', 'create', '--db', at.db, '--condition', 'process=tailscaled', '--condition', 'ip_address=45.0.0.0/8', '--yes'], {
      encoding: 'utf8',
      env: { ...process.env, EGRESS_TRIAGE_CONFIG: '' },
    });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /suspected impostor/);
  } finally {
    await close();
  }
});

/** A tailscaled binary with a clean parent: nothing contradicts it until it calls a foreign domain. */
const LATE: ProcessInfo = { name: 'tailscaled', path: '/usr/local/bin/tailscaled', sha256: 'c'.repeat(64), parent: { name: 'sudo', parent: { name: 'bash' } } };

storeTest('ingest: a binary flagged mid-stream gets its earlier suppressions released, and rules never re-suppress it (restore too)', async (at) => {
  const store = await at.open();
  try {
    const T = 'late';
    await ingestCalls(at, store, T, [call(T, 'web', 1, TS0, tailscaled(true), { ip: '100.64.0.1', port: 41641 })]);
    const rules = new RulesService(store);
    // rules created before any impostor evidence exists
    const byName = await rules.create(T, { detection_id: NOC, conditions: { process: 'tailscaled' } }, 't');
    const byRange = await rules.create(T, { detection_id: NOC, conditions: { ip_address: '100.64.0.0/10' } }, 't');
    assert.equal(byName.suppressed, 1);
    // LATE looks like tailscale at first: suppressed at ingest by the name rule
    const first = await ingestCalls(at, store, T, [1, 2, 3].map((i) => call(T, 'web', 1 + i, TS0 + i, LATE, { ip: `100.64.0.${i + 1}`, port: 41641 })));
    assert.equal(first.suppressedOnIngest, 3);
    // then it fetches from a domain outside Tailscale's signature: flagged, its past suppressions released
    const second = await ingestCalls(at, store, T, [call(T, 'web', 9, TS0 + 9, LATE, { domain: 'evil.example.com', port: 443 }), call(T, 'web', 9, TS0 + 10, LATE, { ip: '100.64.0.9', port: 41641 })]);
    assert.equal(second.suppressedOnIngest, 0);
    // and the summary says so: which binary, why, and how many stored detections are new again
    assert.equal(second.releasedOnIngest, 3);
    assert.deepEqual(second.suspectedImpostors.map((b) => [b.process, b.sha256]), [['tailscaled', LATE.sha256]]);
    assert.match(second.suspectedImpostors[0]!.reason, /evil\.example\.com/);
    assert.equal((await countBySha(at, LATE.sha256!, 1)), 0);
    assert.equal((await countBySha(at, LATE.sha256!, 0)), 5);
    assert.equal((await countBySha(at, tailscaled(true).sha256!, 1)), 1, 'the genuine binary stays suppressed');
    assert.equal(await rollupMismatchesOf(at), 0);
    // delete --restore re-applies the remaining rules: the name rule matches LATE but must not take it
    await rules.delete(T, byRange.rule.rule_id, { restore: true }, 't');
    assert.equal((await countBySha(at, LATE.sha256!, 1)), 0);
    // the flag is stored: a new ingest process knows it before any contradicting call
    const third = await ingestCalls(at, store, T, [call(T, 'web', 12, TS0 + 12, LATE, { ip: '100.64.0.12', port: 41641 })]);
    assert.equal(third.suppressedOnIngest, 0);
    assert.deepEqual([third.releasedOnIngest, third.suspectedImpostors], [0, []], 'nothing was left to release');
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('ingest: a binary flagged after its detections were imported suppressed or resolved upstream gets them back as new', async (at) => {
  const store = await at.open();
  try {
    const T = 'imported';
    const sha = 'a'.repeat(64);
    // A StepSecurity export: two direct-IP calls of a tailscaled nothing contradicts yet, one
    // suppressed upstream (no local rule), one resolved upstream.
    const exported = (id: string, run: number, flags: Record<string, unknown>) => ({
      id, detection_id: NOC, owner: 'acme', repo: 'web', run_id: run, run_attempt: 1, job: 'build', job_id: run,
      workflow_path: '.github/workflows/build.yml', timestamp: `2026-11-02T10:0${run}:00Z`,
      tool: { name: 'tailscaled', sha256: sha, parent: 'bash' }, endpoint: '45.61.136.14:443', direct_ip_address: '45.61.136.14', ...flags,
    });
    const envelope = join(at.dir, 'export.json');
    writeFileSync(envelope, JSON.stringify({ data: { detections: [
      exported('ext-1', 1, { is_resolved: false, is_suppressed: true, suppress_rule_id: 'up-1' }),
      exported('ext-2', 2, { is_resolved: true, is_suppressed: false }),
    ] } }));
    const opts = { tenant: T, format: 'auto', strict: false, defaults: {}, engine: engineConfigFrom({}, {}), progress: false } as const;
    await runIngest(store, [envelope], opts);
    assert.equal(await countBySha(at, sha, 1), 1);
    assert.equal(await countBySha(at, sha, 2), 1);
    // then the same hash fetches from gist.githubusercontent.com: flagged, and nothing of it stays hidden
    const risky: ProcessInfo = { name: 'tailscaled', path: '/tmp/.cache/tailscaled', sha256: sha, parent: { name: 'bash' } };
    const flagged = await ingestCalls(at, store, T, [call(T, 'web', 3, TS0, risky, { domain: 'gist.githubusercontent.com', port: 443 })]);
    assert.equal(flagged.releasedOnIngest, 2, 'the suppressed and the resolved one');
    assert.deepEqual(flagged.suspectedImpostors.map((b) => b.sha256), [sha]);
    assert.equal(await countBySha(at, sha, 1), 0, 'suppressed upstream');
    assert.equal(await countBySha(at, sha, 2), 0, 'resolved upstream');
    assert.equal(await countBySha(at, sha, 0), 3);
    assert.equal(await rollupMismatchesOf(at), 0);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T, limit: 100, minCount: 1 }, { rules: new RulesService(store) });
    assert.equal(res.processes.find((g) => g.process === 'tailscaled')?.count, 3);
  } finally {
    await store.close();
  }
});

storeTest('preview: a rule naming a VPN daemon with no hash and no destination warns that it also hides a renamed binary with no contradiction yet', async (at) => {
  const store = await at.open();
  try {
    const T = 'renamed';
    // a renamed binary that calls only a direct IP, from no temporary directory: nothing contradicts tailscale yet
    const renamed: ProcessInfo = { name: 'tailscaled', path: '/home/runner/.local/bin/tailscaled', sha256: 'b'.repeat(64), parent: { name: 'bash', parent: { name: 'Runner.Worker' } } };
    await ingestCalls(at, store, T, [call(T, 'web', 1, TS0, tailscaled(true), { ip: '100.100.1.1', port: 41641 }), call(T, 'web', 2, TS0 + 1, renamed, { ip: '45.61.136.14', port: 443 })]);
    const rules = new RulesService(store);
    const warned = (w: string[]) => w.some((x) => /covers the VPN daemon name tailscaled by name alone: it also silences any binary renamed to tailscaled/.test(x));
    const byName = await rules.preview(T, { detection_id: NOC, conditions: { process: 'tailscaled' } });
    assert.ok(warned(byName.warnings), byName.warnings.join('\n'));
    assert.equal(byName.would_suppress, 2, 'the renamed binary is covered: the warning is about a real gap');
    for (const pinned of [
      { process: 'tailscaled', process_sha256: tailscaled(true).sha256! }, { process: 'tailscaled', ip_address: '100.64.0.0/10' }, { process: 'curl' },
      { process: 'tailscaled', host: '*.tailscale.com' }, { process: 'tailscaled', ip_address: '203.0.113.0/24' }, { process: 'tailscaled', endpoint: 'derp1.tailscale.com:443' },
    ]) {
      assert.ok(!warned((await rules.preview(T, { detection_id: NOC, conditions: pinned })).warnings), JSON.stringify(pinned));
    }
    // a destination that takes any server takes the renamed binary's too: half the Internet, an address glob, the daemon's port
    for (const wide of [{ ip_address: '0.0.0.0/1' }, { ip_address: '1*' }, { endpoint: '*:41641' }, { ip_address: '100.0.0.0/8' }, { host: '*.com' }]) {
      const p = await rules.preview(T, { detection_id: NOC, conditions: { process: 'tailscaled', ...wide } });
      assert.ok(warned(p.warnings), `${JSON.stringify(wide)}: ${p.warnings.join('\n')}`);
    }
    const glob = await rules.preview(T, { detection_id: NOC, conditions: { process: 'tail*', owner: '*' } });
    assert.ok(glob.warnings.some((x) => /covers the VPN daemon names tailscaled, tailscale, tailscale-ipn by name alone/.test(x)), glob.warnings.join('\n'));
    // created without a preview first (`--yes`), the rule still says what it risks
    const made = spawnSync(process.execPath, ['dist/bundle/cli/main.js', 'rules', 'create', '--db', at.db, '--tenant', T, '--condition', 'process=tailscaled', '--yes', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, EGRESS_TRIAGE_CONFIG: '' },
    });
    assert.equal(made.status, 0, made.stderr);
    assert.match(made.stderr, /^egress-triage: warning: the rule covers the VPN daemon name tailscaled by name alone: it also silences any binary renamed to tailscaled/m);
    assert.ok(warned((JSON.parse(made.stdout) as { warnings: string[] }).warnings));
  } finally {
    await store.close();
  }
});

storeTest('one file is one binary whatever it is called: flagged as tailscale, its copy run as tailscaled is no genuine daemon, takes no rule, and its suppressed detections come back', async (at) => {
  const store = await at.open();
  try {
    const T = 'samefile';
    const H = 'f'.repeat(64);
    const as = (name: string): ProcessInfo => ({ name, path: `/usr/local/bin/${name}`, sha256: H, parent: { name: 'sudo', parent: { name: 'bash', parent: { name: 'Runner.Worker' } } } });
    // the file runs as tailscaled and calls only the control plane: nothing contradicts it yet
    await ingestCalls(at, store, T, [1, 2].map((run) => call(T, 'web', run, TS0 + run, as('tailscaled'), { domain: 'controlplane.tailscale.com', port: 443 })));
    const rules = new RulesService(store);
    const early = await rules.create(T, { detection_id: NOC, conditions: { process: 'tailscaled', process_sha256: H } }, 't');
    assert.equal(early.suppressed, 2, 'before any evidence, a pinned rule may hide it');
    // the same file, run as tailscale, calls webhook.site: the file is an impostor, under both names
    const flagged = await ingestCalls(at, store, T, [call(T, 'web', 3, TS0 + 3, as('tailscale'), { domain: 'webhook.site', port: 443 })]);
    assert.equal(await countBySha(at, H, 0), 3, 'the copy named tailscaled is released to new with the one named tailscale');
    // the summary names the binary its call flagged (its copy has the same hash: the same binary)
    assert.deepEqual(flagged.suspectedImpostors.map((b) => [b.process, b.sha256]), [['tailscale', H]]);
    // a later source at the same file shows nothing new: it names no binary again
    const later = await ingestCalls(at, store, T, [call(T, 'web', 4, TS0 + 4, as('tailscaled'), { domain: 'controlplane.tailscale.com', port: 443 })]);
    assert.deepEqual([later.detections, later.releasedOnIngest, later.suspectedImpostors], [1, 0, []]);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T, limit: 100, minCount: 1 }, { rules: new RulesService(store) });
    const daemon = res.processes.find((g) => g.process === 'tailscaled')!;
    assert.equal(daemon.vpn_evidence.binaries.find((b) => b.sha256 === H)?.verdict, 'impostor');
    assert.notEqual(daemon.suggested_rule?.blocked_reason ?? 'no rule', null, 'no rule is suggested for it');
    const again = await rules.preview(T, { detection_id: NOC, conditions: { process: 'tailscaled', process_sha256: H } });
    assert.match(again.refused_reason ?? '', /suspected impostor/);
  } finally {
    await store.close();
  }
});

storeTest('ingest names a hash-less copy the same file links to a flagged binary once, in the source that linked it', async (at) => {
  const store = await at.open();
  try {
    const T = 'linked';
    const H = '9'.repeat(64);
    const at_ = (sha256: string | null): ProcessInfo => ({ name: 'tailscaled', path: '/opt/tools/tailscaled', sha256: sha256 ?? undefined, parent: { name: 'sudo', parent: { name: 'bash' } } });
    const first = await ingestCalls(at, store, T, [call(T, 'web', 1, TS0, at_(H), { domain: 'webhook.site', port: 443 })]);
    assert.deepEqual(first.suspectedImpostors.map((b) => [b.process, b.sha256]), [['tailscaled', H]]);
    // the same file in the same run, its hash unread this time, at tailscale's own control plane: linked, and said
    const second = await ingestCalls(at, store, T, [call(T, 'web', 1, TS0 + 2, at_(null), { domain: 'controlplane.tailscale.com', port: 443 })]);
    assert.deepEqual(second.suspectedImpostors.map((b) => [b.process, b.sha256, b.path]), [['tailscaled', null, '/opt/tools/tailscaled']]);
    assert.match(second.suspectedImpostors[0]!.reason, /^same file/);
    // every later source at that file records the link again; it names it no more
    for (const [i, host] of ['login.tailscale.com', 'log.tailscale.com'].entries()) {
      const later = await ingestCalls(at, store, T, [call(T, 'web', 1, TS0 + 3 + i, at_(null), { domain: host, port: 443 })]);
      assert.deepEqual([later.detections, later.releasedOnIngest, later.suspectedImpostors], [1, 0, []], host);
    }
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('--strict: a flag raised by a source that is rolled back is neither stored nor told under the next source', async (at) => {
  const store = await at.open();
  try {
    const T = 'strict';
    const H = '8'.repeat(64);
    const renamed: ProcessInfo = { name: 'tailscaled', path: '/tmp/tailscaled', sha256: H, parent: { name: 'bash' } };
    const curl = proc('curl');
    const bad = join(at.dir, 'bad.ndjson');
    // the exfiltration call is in the first parsed batch, the bad record in a later one
    writeFileSync(bad, [
      call(T, 'web', 1, TS0, renamed, { domain: 'gist.githubusercontent.com', port: 443 }),
      ...[1, 2, 3].map((i) => call(T, 'web', 1, TS0 + i, curl, { domain: `h${i}.example.com`, port: 443 })),
    ].map(nativeLine).join('\n') + '\n{"bad":1}\n');
    const clean = join(at.dir, 'clean.ndjson');
    writeFileSync(clean, nativeLine(call(T, 'web', 2, TS0 + 10, curl, { domain: 'api.github.com', port: 443 })) + '\n');
    const p = new IngestPipeline(store, {
      tenant: T, format: 'native', strict: true, defaults: {}, batchSize: 2,
      engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 0 },
      suppressorFor: (s, t) => s.ingestSuppressor(t),
    });
    const first = await p.ingest(bad);
    assert.deepEqual([first.stored, first.rejected, first.suspectedImpostors], [false, 1, []]);
    const second = await p.ingest(clean);
    assert.deepEqual([second.stored, second.detections, second.suspectedImpostors], [true, 1, []]);
    assert.equal(await at.value('SELECT count(*) FROM suspected_impostors'), 0, 'nothing of the rolled-back source is stored');
  } finally {
    await store.close();
  }
});

storeTest('OpenVPN, whose port is its whole signature: the suggested rule names its busiest server, so a renamed binary calling its own server on 1194 stays visible; a rule with no server says so', async (at) => {
  const store = await at.open();
  try {
    const T = 'vpn-port';
    const openvpn = (sha: string, path: string): ProcessInfo => ({ name: 'openvpn', path, sha256: sha, parent: { name: 'sudo', parent: { name: 'bash', parent: { name: 'Runner.Worker' } } } });
    const genuine = openvpn('a'.repeat(64), '/usr/sbin/openvpn');
    const renamed = openvpn('b'.repeat(64), '/home/runner/.local/bin/openvpn');
    const events = [
      ...[1, 2, 3, 4].map((r) => call(T, 'deploy', r, TS0 + r, genuine, { domain: 'vpn.acme.example', port: 1194 })),
      ...[5, 6].map((r) => call(T, 'deploy', r, TS0 + r, renamed, { domain: 'c2.evil.example', port: 1194 })),
    ];
    await ingestCalls(at, store, T, events);
    const rules = new RulesService(store);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T, limit: 100, minCount: 1 }, { rules });
    const g = res.processes.find((x) => x.process === 'openvpn')!;
    assert.deepEqual(g.vpn_evidence.binaries.map((b) => b.verdict), ['genuine', 'genuine'], 'the port alone cannot tell them apart');
    const s = g.suggested_rule!;
    assert.equal(s.blocked_reason, null);
    assert.equal(s.conditions.endpoint, 'vpn.acme.example:1194');
    assert.equal(s.impact.would_suppress, 4);
    assert.equal(s.conditions.process_sha256, 'a'.repeat(64), 'only the binary that reached the server is pinned');
    assert.match(s.rationale, /it also reached endpoint=c2\.evil\.example:1194 \(2\): a rule of their own only for those that are yours/);
    assert.ok(g.warnings.some((w) => w.startsWith("its binaries reach different servers on openvpn's port, which proves none of them: sha256 aaaaaaaaaaaa (/usr/sbin/openvpn) to vpn.acme.example:1194; sha256 bbbbbbbbbbbb (/home/runner/.local/bin/openvpn) to c2.evil.example:1194.")), g.warnings.join('\n'));
    assert.ok(!(await rules.preview(T, { detection_id: NOC, conditions: s.conditions })).warnings.some((w) => /reaches a server you choose/.test(w)));
    assert.ok(!(await rules.preview(T, { detection_id: NOC, conditions: { process_sha256: 'a'.repeat(64), endpoint: 'vpn.acme.example:1194' } })).warnings.some((w) => /reaches a server you choose/.test(w)));
    const made = await rules.create(T, { detection_id: NOC, conditions: s.conditions }, 't');
    assert.equal(made.suppressed, 4);
    assert.equal(await countBySha(at, 'b'.repeat(64), 0), 2, "the other server's calls stay new");
    // pinned to a hash but to no server: the rule would silence the binary's calls to any server on 1194
    const serverless = /^openvpn reaches a server you choose, so its port is all its signature shows: without an endpoint condition naming a server the rule silences its calls to any server on that port/;
    // pinned to a hash, to any server on the port, or to a hash alone (which names no process, but matches openvpn's calls)
    for (const conditions of [{ process: 'openvpn', process_sha256: 'b'.repeat(64) }, { process: 'openvpn', endpoint: '*:1194' }, { process_sha256: 'b'.repeat(64) }]) {
      const p = await rules.preview(T, { detection_id: NOC, conditions });
      assert.ok(p.warnings.some((w) => serverless.test(w)), `${JSON.stringify(conditions)}: ${p.warnings.join('\n')}`);
    }
    // the suggested rule updated without a preview first (`--yes`) to drop its server: the update says what it risks
    const widened = spawnSync(process.execPath, ['dist/bundle/cli/main.js', 'rules', 'update', made.rule.rule_id, '--db', at.db, '--tenant', T, '--condition', 'process=openvpn', '--condition', `process_sha256=${'a'.repeat(64)}`, '--yes', '--json'], {
      encoding: 'utf8',
      env: { ...process.env, EGRESS_TRIAGE_CONFIG: '' },
    });
    assert.equal(widened.status, 0, widened.stderr);
    assert.match(widened.stderr, /^egress-triage: warning: openvpn reaches a server you choose/m);
    assert.ok((JSON.parse(widened.stdout) as { warnings: string[] }).warnings.some((w) => serverless.test(w)));
  } finally {
    await store.close();
  }
});

/**
 * The genuine tailscaled's first call in tenant T, then a rule over `tai*` that hides it: written
 * before any look-alike was seen, and broad enough to match a look-alike's stored name. Returns the
 * rules service it was made with.
 */
async function genuineBehindBroadRule(at: StoreUnderTest, store: OpenStore, T: string): Promise<RulesService> {
  const rules = new RulesService(store);
  await ingestCalls(at, store, T, [call(T, 'web', 1, TS0, tailscaled(true), { domain: 'controlplane.tailscale.com', port: 443 })]);
  const broad = await rules.create(T, { detection_id: NOC, conditions: { process: 'tai*' } }, 't');
  assert.equal(broad.suppressed, 1, 'the genuine daemon');
  return rules;
}

storeTest('ingest: names that print as tailscaled (a hair space inside, a Braille blank or a private-use character after it) are flagged at their first call, and a rule made before them hides none of it', async (at) => {
  const store = await at.open();
  try {
    const T = 'printed';
    const rules = await genuineBehindBroadRule(at, store, T);
    // stored as "tail scaled": a look-alike by its name alone, even on tailscale's own control plane
    const split: ProcessInfo = { name: 'tail\u200ascaled', path: '/usr/sbin/tail\u200ascaled', sha256: '1'.repeat(64), parent: { name: 'bash' } };
    // stored as "tailscaled": judged as tailscaled, and its call outside the signature contradicts it
    const blank: ProcessInfo = { name: 'tailscaled\u2800', path: '/tmp/.x/tailscaled\u2800', sha256: '2'.repeat(64), parent: { name: 'bash' } };
    const pua: ProcessInfo = { name: 'tailscaled\uE000', path: '/tmp/.x/tailscaled\uE000', sha256: '3'.repeat(64), parent: { name: 'bash' } };
    const r = await ingestCalls(at, store, T, [
      call(T, 'web', 2, TS0 + 2, split, { domain: 'controlplane.tailscale.com', port: 443 }),
      call(T, 'web', 3, TS0 + 3, blank, { domain: 'relay.example.net', port: 443 }),
      call(T, 'web', 4, TS0 + 4, pua, { domain: 'relay.example.net', port: 443 }),
    ]);
    assert.equal(r.detections, 3);
    assert.equal(r.suppressedOnIngest, 0, 'the rule over tai* takes none of their calls');
    assert.deepEqual(r.suspectedImpostors.map((b) => [b.process, b.sha256]).sort(), [
      ['tail scaled', '1'.repeat(64)],
      ['tailscaled', '2'.repeat(64)],
      ['tailscaled', '3'.repeat(64)],
    ]);
    for (const sha of ['1', '2', '3']) assert.equal(await countBySha(at, sha.repeat(64), 0), 1, `${sha}: new`);
    for (const sha of ['1', '2', '3']) {
      await assert.rejects(rules.create(T, { detection_id: NOC, conditions: { process_sha256: sha.repeat(64) } }, 't'), /suspected impostor/, sha);
    }
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('ingest: a look-alike name that NFKC stores as drawn like no daemon ("tai￨scaled", stored "tai│scaled") is flagged at its first call, and a rule made before it hides none of it', async (at) => {
  const store = await at.open();
  try {
    const T = 'nfkc';
    const rules = await genuineBehindBroadRule(at, store, T);
    const sha = 'e'.repeat(64);
    // halfwidth ￨ (U+FFE8, drawn like l): NFKC folds it into the box-drawing │ (U+2502)
    const halfwidth: ProcessInfo = { name: 'tai\uFFE8scaled', path: '/usr/sbin/tai\uFFE8scaled', sha256: sha, parent: { name: 'sudo', parent: { name: 'bash' } } };
    // its first calls reach tailscale's own control plane, so nothing but the name gives it away
    const first = await ingestCalls(at, store, T, [2, 3].map((run) => call(T, 'web', run, TS0 + run, halfwidth, { domain: 'controlplane.tailscale.com', port: 443 })));
    assert.equal(first.detections, 2);
    assert.equal(first.suppressedOnIngest, 0, 'the rule over tai* takes none of the look-alike’s calls');
    assert.deepEqual(first.suspectedImpostors.map((b) => [b.process, b.sha256]), [['tai\u2502scaled', sha]]);
    assert.match(first.suspectedImpostors[0]!.reason, /drawn like tailscaled/);
    assert.equal(await countBySha(at, sha, 0), 2);
    // no rule can take it: not by its stored name, not by its hash
    for (const conditions of [{ process: 'tai\u2502scaled' }, { process_sha256: sha }]) {
      await assert.rejects(rules.create(T, { detection_id: NOC, conditions }, 't'), /suspected impostor/, JSON.stringify(conditions));
    }
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T, limit: 100, minCount: 1 }, { rules });
    const group = res.processes.find((g) => g.process === 'tai\u2502scaled');
    assert.equal(group?.vpn_evidence.binaries.find((b) => b.sha256 === sha)?.verdict, 'impostor');
    assert.equal(group?.suggested_rule, null);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});
