import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cliResult, fakeSha } from '../helpers.js';
import { RulesService } from '../../src/rules/service.js';
import type { ProcessInfo } from '../../src/domain/types.js';
import { call, ingestCalls, nativeLine, rollupMismatchesOf, TS0 } from '../analysis/helpers.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { detectionsView, eachStore } from '../helpers/each-store.js';
import { binaryKeyOf, statusByBinary } from './binary-statuses.js';

/**
 * Found by review: a rule over a glob of a daemon's name (`process=tailscaled*`, `cloudflared*`) also
 * covers binaries whose names extend the daemon's (`tailscaled-helper`, `tailscaled.old`,
 * `tailscaled2`), and those were judged by no daemon check: the rule silenced them at ingest and on
 * create, even run from the job's temp folder, /tmp, /dev/shm, memory, an action's folder or under
 * npm. Now the guard keeps them visible on both paths, on both stores, and still lets a rule take a
 * release-named daemon installed in /usr/local/bin (`cloudflared-linux-amd64`).
 */

const { storeTest } = eachStore();

const NOC = 'New-Outbound-Network-Call';
const CLEAN = { name: 'bash', path: '/usr/bin/bash', parent: { name: 'Runner.Worker' } };
const NPM = { name: 'node', path: '/usr/bin/node', parent: { name: 'npm', parent: { name: 'bash', parent: { name: 'Runner.Worker' } } } };

const GENUINE_TS: ProcessInfo = { name: 'tailscaled', path: '/usr/local/bin/tailscaled', sha256: fakeSha('tailscaled'), parent: { name: 'sudo', parent: CLEAN } };
const GENUINE_CF: ProcessInfo = { name: 'cloudflared', path: '/usr/local/bin/cloudflared', sha256: fakeSha('cloudflared'), parent: CLEAN };

/** A binary of the matrix and whether the guard must keep it visible under any rule. */
interface Case {
  p: ProcessInfo;
  visible: boolean;
}

const PAYLOAD_DIRS = ['/home/runner/work/_temp/5f1c/', '/tmp/.x/', '/dev/shm/', '/home/runner/work/_actions/evil/act/v1/'];
const EXTENDED = ['tailscaled-helper', 'tailscaled.old', 'tailscaled2', 'cloudflared-linux-amd64'];

function matrix(): Case[] {
  const out: Case[] = [];
  const bin = (name: string, path: string, parent: ProcessInfo['parent'], visible: boolean, sha = fakeSha(`${name}@${path}@${parent?.name}`)) =>
    out.push({ p: { name, path, sha256: sha, parent }, visible });
  for (const name of EXTENDED) {
    for (const dir of PAYLOAD_DIRS) bin(name, `${dir}${name}`, CLEAN, true);
    bin(name, `/memfd:${name} (deleted)`, CLEAN, true);
    bin(name, `/usr/local/bin/${name}`, NPM, true);
    // the release-named build, installed: what a rule over the daemon's glob is for
    bin(name, `/usr/local/bin/${name}`, CLEAN, false);
  }
  // the same file as a flagged binary: a tailscaled from /tmp, installed cleanly as tailscaled-helper
  const dropped = fakeSha('dropped');
  bin('tailscaled', '/tmp/tailscaled', CLEAN, true, dropped);
  bin('tailscaled-helper', '/opt/helper/tailscaled-helper', CLEAN, true, dropped);
  return out;
}

/** One call of each binary, each in a run of its own, to a destination neither risky nor in a daemon's signature. */
function calls(tenant: string, cases: readonly Case[], firstRun: number) {
  return cases.map((c, i) => call(tenant, 'api', firstRun + i, TS0 + (firstRun + i) * 1000, c.p, { domain: 'update.example.org', port: 443 }));
}

const key = (c: Case) => binaryKeyOf(c.p);

storeTest('ingest and restore: a rule over a daemon\'s glob never hides a binary whose name extends the daemon\'s and whose path or parent says payload; the installed release name stays hidden', async (at) => {
  const store = await at.open();
  try {
    const T = 'ingest';
    const cases = matrix();
    await ingestCalls(at, store, T, [
      call(T, 'api', 1, TS0, GENUINE_TS, { domain: 'controlplane.tailscale.com', port: 443 }),
      call(T, 'api', 2, TS0 + 1, GENUINE_CF, { domain: 'region1.v2.argotunnel.com', port: 7844 }),
    ]);
    const rules = new RulesService(store);
    // rules made while only the genuine daemons were seen: a catch-all of the owner first, then the globs
    const owner = await rules.create(T, { detection_id: NOC, conditions: { owner: 'acme' } }, 't');
    const ts = await rules.create(T, { detection_id: NOC, conditions: { process: 'tailscaled*' } }, 't');
    const cf = await rules.create(T, { detection_id: NOC, conditions: { process: 'cloudflared*' } }, 't');
    assert.equal(owner.suppressed, 2);

    const r = await ingestCalls(at, store, T, calls(T, cases, 10));
    const hidden = cases.filter((c) => !c.visible);
    assert.equal(r.detections, cases.length);
    assert.equal(r.suppressedOnIngest, hidden.length, 'only the installed release names are suppressed at ingest');
    // kept visible by the ingest's own guard, not suppressed and then released by the store's verdict after the write
    assert.equal(r.releasedOnIngest, 0);
    const flagged = new Set(r.suspectedImpostors.map((b) => b.sha256));
    for (const c of cases) assert.equal(flagged.has(c.p.sha256!), c.visible, `${c.p.name} at ${c.p.path}`);
    const reasons = r.suspectedImpostors.filter((b) => b.process === 'tailscaled-helper').map((b) => b.reason);
    assert.ok(reasons.some((x) => x === 'named tailscaled-helper, after tailscaled: runs from /home/runner/work/_temp/, a temporary directory no installer puts tailscale in'), reasons.join('\n'));

    let status = await statusByBinary(at);
    for (const c of cases) assert.deepEqual(status.get(key(c))!.map((s) => s.status), [c.visible ? 0 : 1], `${c.p.name} at ${c.p.path} (ingest)`);

    // delete --restore hands what the owner rule held to the remaining rules: the globs take the
    // installed binaries again, and none of the others
    const del = await rules.delete(T, owner.rule.rule_id, { restore: true }, 't');
    assert.equal(del.restored, 0);
    status = await statusByBinary(at);
    const ruleIds = new Map((await at.rows<{ id: number; rule_uid: string }>('SELECT id, rule_uid FROM rules')).map((x) => [x.rule_uid, x.id]));
    for (const c of cases) {
      const want = c.visible ? { status: 0, rule: 0 } : { status: 1, rule: ruleIds.get(c.p.name.startsWith('cloudflared') ? cf.rule.rule_id : ts.rule.rule_id)! };
      assert.deepEqual(status.get(key(c)), [want], `${c.p.name} at ${c.p.path} (restore)`);
    }
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('preview and create (CLI): a glob over a daemon\'s name is refused while it covers a payload-like extension of the name; narrowed to the installed files it is accepted', async (at) => {
  const store = await at.open();
  const cases = matrix();
  try {
    const file = join(at.dir, 'matrix.ndjson');
    writeFileSync(file, [
      call('default', 'api', 1, TS0, GENUINE_TS, { domain: 'controlplane.tailscale.com', port: 443 }),
      call('default', 'api', 2, TS0 + 1, GENUINE_CF, { domain: 'region1.v2.argotunnel.com', port: 7844 }),
      ...calls('default', cases, 10),
    ].map(nativeLine).join('\n') + '\n');
    // no suppressor: nothing is judged or recorded at ingest, so what refuses the rules below is the
    // store's own verdict, the one create, preview, update and restore read
    const p = new IngestPipeline(store, { tenant: 'default', format: 'native', strict: false, defaults: {}, engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 0, promoteAfterRuns: 1_000_000 } });
    assert.deepEqual((await p.ingest(file)).suspectedImpostors, []);
  } finally {
    await store.close();
  }
  const visible = (prefix: string) => cases.filter((c) => c.visible && c.p.name.startsWith(prefix)).length;

  // the analysis agrees: a group with a suspected impostor is shown whatever the minimum count, and says why
  const analysis = await cliResult(['analyze', '--db', at.db, '--min-count', '1000', '--json']);
  assert.equal(analysis.status, 0, analysis.stderr);
  const groups = (JSON.parse(analysis.stdout) as { processes: { process: string; vpn_evidence: { contradicting: string[] } }[] }).processes;
  assert.deepEqual(groups.map((g) => g.process).sort(), ['cloudflared-linux-amd64', 'tailscaled', 'tailscaled-helper', 'tailscaled.old', 'tailscaled2']);
  assert.ok(
    groups.find((g) => g.process === 'tailscaled.old')!.vpn_evidence.contradicting.includes(
      "flagged by the tenant's verdict: named tailscaled.old, after tailscaled: runs from /tmp/, a temporary directory no installer puts tailscale in",
    ),
    JSON.stringify(groups),
  );

  const preview = await cliResult(['rules', 'preview', '--db', at.db, '--condition', 'process=tailscaled*', '--json']);
  assert.equal(preview.status, 0, preview.stderr);
  const p = JSON.parse(preview.stdout) as { impostor_matches: number; refused_reason: string | null };
  assert.equal(p.impostor_matches, visible('tailscaled'));
  assert.match(p.refused_reason ?? '', /named tailscaled\.old, after tailscaled: runs from \/tmp\//);

  const create = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=tailscaled*', '--yes']);
  assert.equal(create.status, 4, create.stdout + create.stderr);
  assert.match(create.stderr, /suspected impostor/);
  const cfCreate = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=cloudflared*', '--yes']);
  assert.equal(cfCreate.status, 4, cfCreate.stdout + cfCreate.stderr);
  assert.match(cfCreate.stderr, /named cloudflared-linux-amd64, after cloudflared: runs from a memfd/);

  // nor can a rule pinned to the genuine daemon be widened onto them
  const pinned = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=tailscaled', '--condition', `process_sha256=${GENUINE_TS.sha256}`, '--yes', '--json']);
  assert.equal(pinned.status, 0, pinned.stderr);
  const pinnedId = (JSON.parse(pinned.stdout) as { rule: { rule_id: string } }).rule.rule_id;
  const widened = await cliResult(['rules', 'update', pinnedId, '--db', at.db, '--condition', 'process=tailscaled*', '--yes']);
  assert.equal(widened.status, 4, widened.stdout + widened.stderr);
  assert.match(widened.stderr, /named tailscaled2, after tailscaled: started through node/);

  // narrowed to the files installed cleanly: the genuine cloudflared and its release-named build
  const installed = cases.find((c) => !c.visible && c.p.name === 'cloudflared-linux-amd64')!.p.sha256!;
  const narrowed = await cliResult(['rules', 'create', '--db', at.db, '--condition', 'process=cloudflared*', '--condition', `process_sha256=${GENUINE_CF.sha256}|${installed}`, '--yes', '--json']);
  assert.equal(narrowed.status, 0, narrowed.stderr);
  assert.equal((JSON.parse(narrowed.stdout) as { suppressed: number }).suppressed, 2);
  // every other detection stays new but the genuine tailscaled's (the pinned rule): the installed tailscaled extensions too (no rule took them)
  assert.deepEqual(await at.column(`SELECT count(*) FROM ${detectionsView(at.backend)} d WHERE d.status = 0`), [cases.length - 1]);
  assert.equal(await rollupMismatchesOf(at), 0);
});
