import assert from 'node:assert/strict';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';
import { compileRule } from '../../src/rules/matcher.js';
import { rememberRiskyDestinations } from '../../src/rules/risky-memory.js';
import { rejudgeStoredBinaries, VERDICT_REVISION } from '../../src/rules/verdict-revision.js';
import { NEW_STATE } from '../../src/storage/rules-port.js';
import { normalizeProcessName } from '../../src/domain/process-name.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import { call, ingestCalls, tailscaled, TS0, GENUINE_SHA } from '../analysis/helpers.js';
import { detectionsView, eachStore, type StoreUnderTest } from '../helpers/each-store.js';
import { runCli } from '../helpers.js';

/**
 * A store judged by an older impostor verdict: a rule that version let hide a binary this one flags
 * (a look-alike of a daemon's name) must not keep hiding it. The first command of this version on the
 * store makes those detections new again, once, and says so.
 */

const { storeTest } = eachStore();
const T = 'upgrade';
const TYPE = 'New-Outbound-Network-Call';
const LOOKALIKE = 'tɑilscaled';

/** A store as an older version left it: the look-alike's three detections suppressed by a rule over its name, nothing flagged. */
async function olderStore(at: StoreUnderTest, lookalike = LOOKALIKE, revision: number | null = null): Promise<void> {
  let store = await at.open();
  try {
    const alpha = { ...tailscaled(true), name: lookalike, path: `/usr/sbin/${lookalike}`, sha256: 'c'.repeat(64) };
    const evs: NetworkCallEvent[] = [];
    for (let i = 0; i < 3; i++) {
      const ts = TS0 + i * 3_600_000;
      evs.push(call(T, 'web', 700 + i, ts, tailscaled(true), { domain: 'controlplane.tailscale.com', port: 443 }));
      evs.push(call(T, 'web', 700 + i, ts + 1, alpha, { domain: 'controlplane.tailscale.com', port: 443 }));
    }
    await ingestCalls(at, store, T, evs);
  } finally {
    await store.close();
  }
  // the older verdict flagged nothing and judged no revision
  await at.rows('DELETE FROM suspected_impostors');
  await at.rows("DELETE FROM meta WHERE key = 'verdict_revision'");
  if (revision !== null) await at.rows(`INSERT INTO meta (key, value) VALUES ('verdict_revision', '${revision}')`);
  store = await at.open();
  try {
    // what `rules create process=tɑilscaled` did then: its guard knew no look-alike, so nothing held it back;
    // and a rule pinned to the genuine daemon's hash, which must keep what it suppressed
    await store.rulesPort(riskyDestinations()).write(async (tx) => {
      const tenantId = (await tx.tenantId(T))!;
      const pinned = { process: 'tailscaled', process_sha256: GENUINE_SHA };
      const daemonRule = await tx.insertRule({ tenantId, uid: 'r-daemon', detectionType: TYPE, name: 'daemon', description: '', conditions: pinned, createdBy: 'test', at: new Date().toISOString() });
      const held = await tx.move(tenantId, { kind: 'match', rule: compileRule(TYPE, pinned), guarded: true }, NEW_STATE, { status: 1, rule: daemonRule.id });
      assert.equal(held, 3, 'the genuine daemon’s three detections are suppressed by its pinned rule');
      const rule = await tx.insertRule({ tenantId, uid: 'r-old', detectionType: TYPE, name: 'old', description: '', conditions: { process: normalizeProcessName(lookalike) }, createdBy: 'test', at: new Date().toISOString() });
      const moved = await tx.move(tenantId, { kind: 'match', rule: compileRule(TYPE, { process: normalizeProcessName(lookalike) }), guarded: false }, NEW_STATE, { status: 1, rule: rule.id });
      assert.equal(moved, 3, 'the older version suppressed the look-alike’s three detections');
    });
  } finally {
    await store.close();
  }
}

async function lookalikeStatuses(at: StoreUnderTest, lookalike = LOOKALIKE): Promise<number[]> {
  return at.column<number>(`SELECT d.status FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id WHERE p.norm_name = ? ORDER BY d.status`, [lookalike]);
}

storeTest('revision 3: a name NFKC stored as drawn like no daemon ("tai│scaled", once "tai￨scaled") is judged again, and what a rule hid of it is new', async (at) => {
  // ingested by this version, the halfwidth name is stored as NFKC folds it
  const stored = 'tai│scaled';
  await olderStore(at, 'tai￨scaled', 2);
  assert.deepEqual(await lookalikeStatuses(at, stored), [1, 1, 1]);
  const store = await at.open();
  try {
    const port = store.rulesPort(riskyDestinations());
    assert.equal(await port.verdictRevision(), 2);
    assert.equal(await rejudgeStoredBinaries(port), 3);
    assert.deepEqual(await lookalikeStatuses(at, stored), [0, 0, 0]);
    assert.equal(await port.verdictRevision(), VERDICT_REVISION);
  } finally {
    await store.close();
  }
});

for (const [stored, judgedBefore, sha] of [
  // revision 4: a character drawn blank
  ['tailscaled\u2800', 3, 'd'.repeat(64)],
  // revision 5: a private-use code point; a name a space splits (NFKC stored "tail\u200ascaled" so)
  ['tailscaled\uE000', 4, 'e'.repeat(64)],
  ['tail scaled', 4, 'f'.repeat(64)],
  // revision 6: a name that extends a daemon's, run from /tmp (a rule over `tailscaled*` covered it)
  ['tailscaled-helper', 5, '9'.repeat(64)],
  // revision 7: a name that contains a daemon's elsewhere (a rule over `*tailscaled*` covered it)
  ['my-tailscaled', 6, '8'.repeat(64)],
] as const) {
  storeTest(`revision ${judgedBefore + 1}: "${stored.replace(/[^ -~]/gu, (c) => `\\u${c.codePointAt(0)!.toString(16).padStart(4, '0')}`)}", stored by a version judged by revision ${judgedBefore}, is judged as the tailscaled it shows, and what a rule hid of it is new`, async (at) => {
    let store = await at.open();
    try {
      // a renamed binary that a person reads as tailscaled, calling a domain outside tailscale's signature
      const bin = { ...tailscaled(true), name: stored, path: `/tmp/.cache/${stored}`, sha256: sha };
      await ingestCalls(at, store, T, [0, 1, 2].map((i) => call(T, 'web', 800 + i, TS0 + i * 3_600_000, bin, { domain: 'relay.example.net', port: 443 })));
    } finally {
      await store.close();
    }
    // as that version left it: the name as it stored it, judged as no daemon, nothing flagged, and a rule hid its calls
    await at.rows(`UPDATE processes SET norm_name = '${stored}' WHERE sha256 = '${sha}'`);
    await at.rows('DELETE FROM suspected_impostors');
    await at.rows("DELETE FROM meta WHERE key = 'verdict_revision'");
    await at.rows(`INSERT INTO meta (key, value) VALUES ('verdict_revision', '${judgedBefore}')`);
    const statuses = () => at.column<number>(`SELECT d.status FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id WHERE p.sha256 = '${sha}' ORDER BY d.status`);
    store = await at.open();
    try {
      const port = store.rulesPort(riskyDestinations());
      await port.write(async (tx) => {
        const tenantId = (await tx.tenantId(T))!;
        const rule = await tx.insertRule({ tenantId, uid: 'r-old', detectionType: TYPE, name: 'old', description: '', conditions: { process_sha256: sha }, createdBy: 'test', at: new Date().toISOString() });
        assert.equal(await tx.move(tenantId, { kind: 'match', rule: compileRule(TYPE, { process_sha256: sha }), guarded: false }, NEW_STATE, { status: 1, rule: rule.id }), 3);
      });
      assert.deepEqual(await statuses(), [1, 1, 1]);
      assert.equal(await rejudgeStoredBinaries(port), 3);
      assert.deepEqual(await statuses(), [0, 0, 0]);
      assert.equal(await port.verdictRevision(), VERDICT_REVISION);
    } finally {
      await store.close();
    }
  });
}

storeTest('the first judgement by this version makes new again what a rule hid of a binary an older verdict did not flag, once', async (at) => {
  await olderStore(at);
  assert.deepEqual(await lookalikeStatuses(at), [1, 1, 1]);
  const store = await at.open();
  try {
    const port = store.rulesPort(riskyDestinations());
    assert.equal(await port.verdictRevision(), 0);
    assert.equal(await rejudgeStoredBinaries(port), 3);
    assert.deepEqual(await lookalikeStatuses(at), [0, 0, 0]);
    assert.equal(await port.verdictRevision(), VERDICT_REVISION);
    assert.equal(await rejudgeStoredBinaries(port), 0, 'judged once');
    // the genuine daemon's detections stay as its pinned rule left them
    const genuine = await at.column<number>(`SELECT d.status FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id WHERE p.norm_name = 'tailscaled'`);
    assert.deepEqual(genuine, [1, 1, 1]);
  } finally {
    await store.close();
  }
});

storeTest('every command reaches it through the risky-list step, and the CLI says how many came back', async (at) => {
  await olderStore(at);
  const store = await at.open();
  try {
    const r = await rememberRiskyDestinations(store, []);
    assert.equal(r.rejudged, 3);
    assert.equal((await rememberRiskyDestinations(store, [])).rejudged, 0);
  } finally {
    await store.close();
  }
  assert.deepEqual(await lookalikeStatuses(at), [0, 0, 0]);

  // the same store state again, through the built CLI
  await at.rows(`UPDATE meta SET value = '0' WHERE key = 'verdict_revision'`);
  const s2 = await at.open();
  try {
    await s2.rulesPort(riskyDestinations()).write(async (tx) => {
      const tenantId = (await tx.tenantId(T))!;
      const rule = (await tx.activeRules(tenantId))[0]!;
      await tx.move(tenantId, { kind: 'match', rule: compileRule(TYPE, { process: LOOKALIKE }), guarded: false }, NEW_STATE, { status: 1, rule: rule.id });
    });
  } finally {
    await s2.close();
  }
  const stats = runCli(['stats', '--db', at.db, '--tenant', T]);
  assert.equal(stats.status, 0, stats.stderr);
  assert.match(stats.stderr, /judges stored binaries by a newer impostor verdict: 3 detection\(s\) of suspected impostors that were suppressed or resolved are new again/);
  assert.deepEqual(await lookalikeStatuses(at), [0, 0, 0]);
  const again = runCli(['stats', '--db', at.db, '--tenant', T]);
  assert.doesNotMatch(again.stderr, /newer impostor verdict/);
});
