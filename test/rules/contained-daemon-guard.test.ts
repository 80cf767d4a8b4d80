import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult, fakeSha } from '../helpers.js';
import { RulesService } from '../../src/rules/service.js';
import type { ProcessInfo } from '../../src/domain/types.js';
import { call, ingestCalls, nativeLine, rollupMismatchesOf, TS0 } from '../analysis/helpers.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { detectionsView, eachStore, type StoreUnderTest } from '../helpers/each-store.js';
import { binaryKeyOf, statusByBinary } from './binary-statuses.js';

/**
 * Found by review, and reproduced with the CLI on a SQLite store: a rule with a leading star
 * (`process=*tailscaled*`), made while only the genuine /usr/sbin/tailscaled was seen, also covered
 * `my-tailscaled` run from the job's temp folder, `x-tailscaled` from /tmp, `xtailscaledx` from
 * /dev/shm, `run_tailscaled` under npm and a memfd `my-tailscaled` under python, and silenced every
 * one at ingest and on create: such names were judged by no daemon check. Now they are judged by the
 * daemon's binary evidence, on both stores, on every path; the genuine daemon stays suppressed, and
 * so do programs whose names hold a daemon's where they are installed (`nm-openvpn-service`).
 */

const { storeTest } = eachStore();

const NOC = 'New-Outbound-Network-Call';
const CLEAN = { name: 'bash', path: '/usr/bin/bash', parent: { name: 'Runner.Worker' } };
const NPM = { name: 'node', path: '/usr/bin/node', parent: { name: 'npm', parent: CLEAN } };
const PYTHON = { name: 'python3', path: '/usr/bin/python3', parent: CLEAN };
const NETWORK_MANAGER = { name: 'NetworkManager', path: '/usr/sbin/NetworkManager', parent: { name: 'systemd' } };

const GENUINE_TS: ProcessInfo = { name: 'tailscaled', path: '/usr/sbin/tailscaled', sha256: fakeSha('tailscaled'), parent: { name: 'sudo', parent: CLEAN } };
const GENUINE_OVPN: ProcessInfo = { name: 'openvpn', path: '/usr/sbin/openvpn', sha256: fakeSha('openvpn'), parent: { name: 'sudo', parent: CLEAN } };

/** A binary and whether the guard must keep it visible under any rule. */
interface Case {
  p: ProcessInfo;
  visible: boolean;
}

const bin = (name: string, path: string, parent: ProcessInfo['parent'], visible: boolean): Case => ({ p: { name, path, sha256: fakeSha(`${name}@${path}@${parent?.name}`), parent }, visible });

const CASES: readonly Case[] = [
  bin('my-tailscaled', '/home/runner/work/_temp/5f1c/my-tailscaled', CLEAN, true),
  bin('x-tailscaled', '/tmp/.x/x-tailscaled', CLEAN, true),
  bin('xtailscaledx', '/dev/shm/xtailscaledx', CLEAN, true),
  bin('run_tailscaled', '/usr/local/bin/run_tailscaled', NPM, true),
  bin('my-tailscaled', '/memfd:my-tailscaled (deleted)', PYTHON, true),
  bin('nm-openvpn-service', '/tmp/nm-openvpn-service', NETWORK_MANAGER, true),
  // installed and started cleanly: nothing says payload, and a rule over the glob may take them
  bin('my-tailscaled', '/usr/local/bin/my-tailscaled', CLEAN, false),
  bin('nm-openvpn-service', '/usr/lib/NetworkManager/nm-openvpn-service', NETWORK_MANAGER, false),
  bin('networkmanager-openvpn', '/usr/lib/NetworkManager/networkmanager-openvpn', NETWORK_MANAGER, false),
];

/** The genuine daemons' calls, one run each. */
function genuineCalls(tenant: string) {
  return [
    call(tenant, 'api', 1, TS0, GENUINE_TS, { domain: 'controlplane.tailscale.com', port: 443 }),
    call(tenant, 'api', 2, TS0 + 1, GENUINE_OVPN, { domain: 'vpn.corp.example', port: 1194 }),
  ];
}

/** One call of each binary, each in a run of its own, to a destination neither risky nor in a daemon's signature. */
function caseCalls(tenant: string, firstRun: number) {
  return CASES.map((c, i) => call(tenant, 'api', firstRun + i, TS0 + (firstRun + i) * 1000, c.p, { domain: 'update.example.org', port: 443 }));
}

storeTest('ingest and restore: a rule over *tailscaled* or *openvpn* made for the genuine daemon never hides a binary whose name contains the daemon\'s and whose path or parent says payload; the genuine daemon stays suppressed', async (at) => {
  const store = await at.open();
  try {
    const T = 'ingest';
    await ingestCalls(at, store, T, genuineCalls(T));
    const rules = new RulesService(store);
    // rules made while only the genuine daemons were seen: a catch-all of the owner first, then the globs
    const owner = await rules.create(T, { detection_id: NOC, conditions: { owner: 'acme' } }, 't');
    const ts = await rules.create(T, { detection_id: NOC, conditions: { process: '*tailscaled*' } }, 't');
    const ovpn = await rules.create(T, { detection_id: NOC, conditions: { process: '*openvpn*' } }, 't');
    assert.equal(owner.suppressed, 2);

    const r = await ingestCalls(at, store, T, caseCalls(T, 10));
    assert.equal(r.detections, CASES.length);
    assert.equal(r.suppressedOnIngest, CASES.filter((c) => !c.visible).length, 'only the installed binaries are suppressed at ingest');
    // kept visible by the ingest's own guard, not suppressed and then released by the store's verdict after the write
    assert.equal(r.releasedOnIngest, 0);
    const flagged = new Set(r.suspectedImpostors.map((b) => b.sha256));
    for (const c of CASES) assert.equal(flagged.has(c.p.sha256!), c.visible, `${c.p.name} at ${c.p.path}`);
    assert.ok(
      r.suspectedImpostors.some((b) => b.reason === 'named my-tailscaled, after tailscaled: runs from /home/runner/work/_temp/, a temporary directory no installer puts tailscale in'),
      r.suspectedImpostors.map((b) => b.reason).join('\n'),
    );

    let status = await statusByBinary(at);
    for (const c of CASES) assert.deepEqual(status.get(binaryKeyOf(c.p))!.map((s) => s.status), [c.visible ? 0 : 1], `${c.p.name} at ${c.p.path} (ingest)`);
    assert.deepEqual(status.get(binaryKeyOf(GENUINE_TS)), [{ status: 1, rule: (await ruleIds(at)).get(owner.rule.rule_id) }]);

    // delete --restore hands what the owner rule held to the remaining rules: the globs take the
    // genuine daemons and the installed binaries again, and none of the others
    await rules.delete(T, owner.rule.rule_id, { restore: true }, 't');
    status = await statusByBinary(at);
    const ids = await ruleIds(at);
    const ruleOf = (p: ProcessInfo) => ids.get(p.name.includes('openvpn') ? ovpn.rule.rule_id : ts.rule.rule_id)!;
    for (const c of CASES) assert.deepEqual(status.get(binaryKeyOf(c.p)), [c.visible ? { status: 0, rule: 0 } : { status: 1, rule: ruleOf(c.p) }], `${c.p.name} at ${c.p.path} (restore)`);
    for (const g of [GENUINE_TS, GENUINE_OVPN]) assert.deepEqual(status.get(binaryKeyOf(g)), [{ status: 1, rule: ruleOf(g) }], `${g.name} (restore)`);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

async function ruleIds(at: StoreUnderTest): Promise<Map<string, number>> {
  return new Map((await at.rows<{ id: number; rule_uid: string }>('SELECT id, rule_uid FROM rules')).map((x) => [x.rule_uid, Number(x.id)]));
}

storeTest('analyze, preview, create and update (CLI): the store\'s verdict flags names containing a daemon\'s on binary evidence, so *tailscaled* is refused and *openvpn* takes only installed binaries', async (at) => {
  const store = await at.open();
  try {
    const file = join(at.dir, 'contained.ndjson');
    writeFileSync(file, [...genuineCalls('default'), ...caseCalls('default', 10)].map(nativeLine).join('\n') + '\n');
    // no suppressor: nothing is judged or recorded at ingest, so what refuses the rules below is the
    // store's own verdict, the one create, preview, update and restore read
    const p = new IngestPipeline(store, { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 0, promoteAfterRuns: 1_000_000 } });
    assert.deepEqual((await p.ingest(file)).suspectedImpostors, []);
  } finally {
    await store.close();
  }

  // the analysis agrees: a group with a suspected impostor is shown whatever the minimum count, and says why
  const analysis = await cliResult(['analyze', '--db', at.db, '--min-count', '1000', '--json']);
  assert.equal(analysis.status, 0, analysis.stderr);
  const groups = (JSON.parse(analysis.stdout) as { processes: { process: string; vpn_evidence: { contradicting: string[] } }[] }).processes;
  assert.deepEqual(groups.map((g) => g.process).sort(), ['my-tailscaled', 'nm-openvpn-service', 'run_tailscaled', 'x-tailscaled', 'xtailscaledx']);
  assert.ok(
    groups.find((g) => g.process === 'x-tailscaled')!.vpn_evidence.contradicting.includes(
      "flagged by the tenant's verdict: named x-tailscaled, after tailscaled: runs from /tmp/, a temporary directory no installer puts tailscale in",
    ),
    JSON.stringify(groups),
  );

  const preview = await cliResult(['rules', 'preview', '--db', at.db, '--condition', 'process=*tailscaled*', '--json']);
  assert.equal(preview.status, 0, preview.stderr);
  const pv = JSON.parse(preview.stdout) as { impostor_matches: number; refused_reason: string | null };
  assert.equal(pv.impostor_matches, CASES.filter((c) => c.visible && c.p.name.includes('tailscaled')).length);
  assert.match(pv.refused_reason ?? '', /named \S+tailscaled\S*, after tailscaled: /);

  const create = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=*tailscaled*', '--yes']);
  assert.equal(create.status, 4, create.stdout + create.stderr);
  assert.match(create.stderr, /named run_tailscaled, after tailscaled: started through node/);

  // the rule for the genuine daemon, pinned to its file, is accepted, and cannot be widened onto them
  const pinned = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=tailscaled', '--condition', `process_sha256=${GENUINE_TS.sha256}`, '--yes', '--json']);
  assert.equal(pinned.status, 0, pinned.stderr);
  const pinnedId = (JSON.parse(pinned.stdout) as { rule: { rule_id: string } }).rule.rule_id;
  const widened = await cliResult(['rules', 'update', pinnedId, '--db', at.db, '--condition', 'process=*tailscaled*', '--yes']);
  assert.equal(widened.status, 4, widened.stdout + widened.stderr);
  assert.match(widened.stderr, /named my-tailscaled, after tailscaled: (runs from|started through)/);

  // *openvpn* is refused while it covers the /tmp nm-openvpn-service; narrowed to the installed files it is accepted
  const ovpnAll = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=*openvpn*', '--yes']);
  assert.equal(ovpnAll.status, 4, ovpnAll.stdout + ovpnAll.stderr);
  assert.match(ovpnAll.stderr, /named nm-openvpn-service, after openvpn: runs from \/tmp\//);
  const installed = CASES.filter((c) => !c.visible && c.p.name.includes('openvpn')).map((c) => c.p.sha256!);
  const narrowed = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=*openvpn*', '--condition', `process_sha256=${[GENUINE_OVPN.sha256, ...installed].join('|')}`, '--yes', '--json']);
  assert.equal(narrowed.status, 0, narrowed.stderr);
  assert.equal((JSON.parse(narrowed.stdout) as { suppressed: number }).suppressed, 3);

  // what stays new: every payload, and the installed my-tailscaled no rule took
  const status = await statusByBinary(at);
  assert.deepEqual(status.get(binaryKeyOf(GENUINE_TS))?.map((s) => s.status), [1]);
  for (const c of CASES) {
    const hidden = !c.visible && c.p.name.includes('openvpn');
    assert.deepEqual(status.get(binaryKeyOf(c.p))?.map((s) => s.status), [hidden ? 1 : 0], `${c.p.name} at ${c.p.path}`);
  }
  assert.deepEqual(await at.column(`SELECT count(*) FROM ${detectionsView(at.backend)} d WHERE d.status = 0`), [CASES.length - 2]);
  assert.equal(await rollupMismatchesOf(at), 0);
});
