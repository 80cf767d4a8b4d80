import assert from 'node:assert/strict';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { RulesService, RuleError } from '../../src/rules/service.js';
import { compileRule, matchProcess } from '../../src/rules/matcher.js';
import { call, ingestCalls, rollupMismatchesOf, tailscaled, TS0, GENUINE_SHA, IMPOSTOR_SHA } from './helpers.js';
import type { NetworkCallEvent, ProcessInfo } from '../../src/domain/types.js';
import { detectionsView, eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();

/**
 * A daemon upgraded mid-tenant has two genuine binaries: the suggested rule covers both hashes, and
 * still not the impostor; its impact, preview and create agree on every genuine detection.
 */

const T = 'upgrade';
const UPGRADED_SHA = 'c'.repeat(64);

function upgraded(): ProcessInfo {
  return { ...tailscaled(true), sha256: UPGRADED_SHA };
}

function fixture(): NetworkCallEvent[] {
  const evs: NetworkCallEvent[] = [];
  for (let run = 1; run <= 8; run++) {
    const ts = TS0 + run * 3_600_000;
    const p = run <= 5 ? tailscaled(true) : upgraded();
    evs.push(call(T, 'api', run, ts, p, { domain: 'controlplane.tailscale.com', port: 443 }));
    evs.push(call(T, 'api', run, ts + 1, p, { domain: `derp${run}.tailscale.com`, port: 443 }));
    evs.push(call(T, 'api', run, ts + 2, p, { ip: `100.64.0.${run}`, port: 41641 }));
  }
  for (let run = 20; run < 22; run++) {
    evs.push(call(T, 'lib', run, TS0 + run * 3_600_000, tailscaled(false), { domain: 'gist.githubusercontent.com', port: 443 }));
    evs.push(call(T, 'lib', run, TS0 + run * 3_600_000 + 1, tailscaled(false), { ip: '45.61.136.14', port: 443 }));
  }
  return evs;
}

async function newCount(at: StoreUnderTest, sha: string): Promise<number> {
  return (await at.value(`SELECT count(*) FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id WHERE p.sha256 = ? AND d.status = 0`, [sha])) as number;
}

storeTest('an upgraded daemon: the suggested rule covers both genuine hashes and no impostor', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const genuineDetections = (await newCount(at, GENUINE_SHA)) + (await newCount(at, UPGRADED_SHA));
    assert.equal(genuineDetections, 24);
    assert.equal((await newCount(at, IMPOSTOR_SHA)), 4);
    const rules = new RulesService(store);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T }, { rules });
    const ts = res.processes.find((p) => p.process === 'tailscaled')!;
    assert.deepEqual(
      ts.binaries.map((b) => [b.sha256, b.genuine]).sort(),
      [[GENUINE_SHA, true], [IMPOSTOR_SHA, false], [UPGRADED_SHA, true]],
    );
    const s = ts.suggested_rule!;
    assert.equal(s.blocked_reason, null);
    assert.deepEqual(s.conditions.process_sha256!.split('|').sort(), [GENUINE_SHA, UPGRADED_SHA]);
    assert.deepEqual(s.impact, { would_suppress: genuineDetections, risky: 0 });
    assert.doesNotMatch(s.rationale, /need their own rule/);

    const preview = await rules.preview(T, { detection_id: s.detection_id, conditions: s.conditions });
    assert.equal(preview.would_suppress, genuineDetections);
    assert.equal(preview.refused_reason, null);
    const created = await rules.create(T, { detection_id: s.detection_id, conditions: s.conditions }, 'test');
    assert.equal(created.suppressed, genuineDetections);
    assert.equal((await newCount(at, GENUINE_SHA)) + (await newCount(at, UPGRADED_SHA)), 0);
    assert.equal((await newCount(at, IMPOSTOR_SHA)), 4);
    assert.equal(await rollupMismatchesOf(at), 0);

    // Ingest applies the same rule: a later run of either version is suppressed, the impostor is not.
    const later = await ingestCalls(at, store, T, [
      call(T, 'api', 30, TS0 + 30 * 3_600_000, tailscaled(true), { ip: '100.64.1.30', port: 41641 }),
      call(T, 'api', 31, TS0 + 31 * 3_600_000, upgraded(), { ip: '100.64.1.31', port: 41641 }),
      call(T, 'lib', 32, TS0 + 32 * 3_600_000, tailscaled(false), { ip: '45.61.136.15', port: 443 }),
    ]);
    assert.deepEqual([later.detections, later.suppressedOnIngest, later.releasedOnIngest], [3, 2, 0]);
    assert.equal((await newCount(at, IMPOSTOR_SHA)), 5);
  } finally {
    await store.close();
  }
});

storeTest('process_sha256 takes one digest or an any-of set "a|b"; a malformed member is refused', async (at) => {
  const r = compileRule('New-Outbound-Network-Call', { process_sha256: `${GENUINE_SHA}|${UPGRADED_SHA.toUpperCase()}` });
  assert.equal(matchProcess(r, 'tailscaled', GENUINE_SHA), true);
  assert.equal(matchProcess(r, 'tailscaled', UPGRADED_SHA), true);
  assert.equal(matchProcess(r, 'tailscaled', IMPOSTOR_SHA), false);
  assert.equal(matchProcess(r, 'tailscaled', null), false);
  assert.equal(matchProcess(r, 'tailscaled', `${GENUINE_SHA}|${UPGRADED_SHA}`), false);
  for (const bad of [`${GENUINE_SHA}|`, `|${GENUINE_SHA}`, `${GENUINE_SHA}||${UPGRADED_SHA}`, `${GENUINE_SHA}|x y`]) {
    assert.throws(() => compileRule('New-Outbound-Network-Call', { process_sha256: bad }), (e: unknown) => e instanceof RuleError && e.code === 'invalid_condition', bad);
  }
});
