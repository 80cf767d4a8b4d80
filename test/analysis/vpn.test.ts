import assert from 'node:assert/strict';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { RulesService, RuleError } from '../../src/rules/service.js';
import { call, ingestCalls, proc, rollupMismatchesOf, tailscaled, TS0, GENUINE_SHA, IMPOSTOR_SHA } from './helpers.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import { detectionsView, eachStore } from '../helpers/each-store.js';

const { storeTest } = eachStore();

const T = 'vpn';

function fixture(): NetworkCallEvent[] {
  const evs: NetworkCallEvent[] = [];
  let run = 100;
  for (let i = 0; i < 6; i++) {
    const ts = TS0 + i * 3_600_000;
    const repo = i % 2 ? 'api' : 'web';
    run++;
    evs.push(call(T, repo, run, ts, tailscaled(true), { domain: 'controlplane.tailscale.com', port: 443 }));
    evs.push(call(T, repo, run, ts + 1, tailscaled(true), { domain: `derp${i}.tailscale.com`, port: 443 }));
    evs.push(call(T, repo, run, ts + 2, tailscaled(true), { ip: `100.64.0.${i + 1}`, port: 41641 }));
    evs.push(call(T, repo, run, ts + 3, tailscaled(true), { ip: `100.100.${i}.9`, port: 41641 }));
    evs.push(call(T, repo, run, ts + 4, proc('curl'), { domain: `api${i % 3}.example.com`, port: 443 }));
  }
  for (let i = 0; i < 3; i++) {
    const ts = TS0 + 10 * 3_600_000 + i * 3_600_000;
    run++;
    evs.push(call(T, 'lib', run, ts, tailscaled(false), { domain: 'gist.githubusercontent.com', port: 443 }));
    evs.push(call(T, 'lib', run, ts + 1, tailscaled(false), { ip: '45.61.136.14', port: 443 }));
  }
  // a binary named like a VPN daemon with no signature traffic at all
  run++;
  evs.push(call(T, 'lib', run, TS0 + 20 * 3_600_000, proc('zerotier-one'), { domain: 'downloads.example.org', port: 443 }));
  evs.push(call(T, 'lib', run, TS0 + 20 * 3_600_000 + 1, proc('zerotier-one'), { domain: 'cdn.example.org', port: 443 }));
  return evs;
}

storeTest('genuine tailscaled is a candidate, the impostor is split off and stays visible', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const rules = new RulesService(store);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T }, { rules });
    assert.equal(res.total_anomalies_scanned, 6 * 5 + 3 * 2 + 2);
    const ts = res.processes.find((p) => p.process === 'tailscaled')!;
    assert.ok(ts);
    assert.equal(ts.count, 24 + 6);
    assert.equal(ts.is_vpn_process_candidate, true);
    assert.equal(ts.name_impersonation_suspected, true);
    assert.ok(ts.warnings.some((w) => w.includes('impersonation')));
    const gen = ts.vpn_evidence.binaries.find((b) => b.sha256 === GENUINE_SHA)!;
    const imp = ts.vpn_evidence.binaries.find((b) => b.sha256 === IMPOSTOR_SHA)!;
    assert.equal(gen.verdict, 'genuine');
    assert.equal(imp.verdict, 'impostor');
    assert.ok(imp.contradicting.some((c) => c.includes('gist.githubusercontent.com')));
    assert.ok(imp.contradicting.some((c) => c.includes('npm')));
    assert.deepEqual(
      ts.binaries.map((b) => [b.sha256, b.genuine]),
      [
        [GENUINE_SHA, true],
        [IMPOSTOR_SHA, false],
      ],
    );
    assert.equal(ts.risky_destinations_suppressed_by_process_rule, 3);
    assert.deepEqual(ts.risky_destination_samples, ['gist.githubusercontent.com:443']);
    const s = ts.suggested_rule!;
    assert.ok(s);
    assert.equal(s.blocked_reason, null);
    assert.equal(s.conditions.process, 'tailscaled');
    assert.equal(s.conditions.process_sha256, GENUINE_SHA);
    assert.deepEqual(s.impact, { would_suppress: 24, risky: 0 });
    // impostor sample is shown
    assert.ok(ts.sample_detections.some((d) => d.process_sha256 === IMPOSTOR_SHA));
    assert.match(ts.sample_detections[0]!.dashboard_url, /\/github\/acme\/[a-z]+\/actions\/runs\/\d+\?jobId=\d+&tab=network-events$/);

    // the name-only rule the reference tool would suggest is refused (it covers the gist traffic)
    const nameOnly = await rules.preview(T, { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled' } });
    assert.equal(nameOnly.risky_matches, 3);
    assert.ok(nameOnly.refused_reason);
    await assert.rejects(
      rules.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled' } }, 'test'),
      (e: unknown) => e instanceof RuleError && e.code === 'refused_risky',
    );

    // apply the suggestion: exactly its impact is suppressed; the impostor stays new
    const created = await rules.create(T, { detection_id: s.detection_id, conditions: s.conditions }, 'test');
    assert.equal(created.suppressed, s.impact.would_suppress);
    assert.equal(await rollupMismatchesOf(at), 0);
    const impostorNew = (await at.value(`SELECT count(*) FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id JOIN endpoints e ON e.id = d.endpoint_id
         WHERE p.sha256 = ? AND d.status = 0 AND e.host = 'gist.githubusercontent.com'`, [IMPOSTOR_SHA]));
    assert.equal(impostorNew, 3);

    const after = await analyzeAnomalousCallsByProcess(store, { tenant: T }, { rules });
    const ts2 = after.processes.find((p) => p.process === 'tailscaled')!;
    assert.equal(ts2.count, 6);
    assert.equal(ts2.is_vpn_process_candidate, false);
    assert.equal(ts2.name_impersonation_suspected, true);
    assert.equal(ts2.suggested_rule, null);
    assert.ok(ts2.no_suggestion_reason);

    // non-VPN processes: no process-wide suggestion, per-destination review
    const curl = after.processes.find((p) => p.process === 'curl')!;
    assert.equal(curl.suggested_rule, null);
    assert.equal(curl.is_vpn_process_candidate, false);
    assert.equal(curl.review.length, 3);
    assert.ok(curl.review.every((r) => r.rationale.length > 20));

    // a VPN name with no signature traffic is not a candidate (unverified, not impersonation)
    const zt = after.processes.find((p) => p.process === 'zerotier-one')!;
    assert.equal(zt.is_vpn_process_candidate, false);
    assert.equal(zt.suggested_rule, null);
  } finally {
    await store.close();
  }
});

storeTest('unknown tenant returns an empty result; bad inputs raise AnalysisError', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const r = await analyzeAnomalousCallsByProcess(store, { tenant: 'nobody' });
    assert.equal(r.total_anomalies_scanned, 0);
    assert.equal(r.processes.length, 0);
    await assert.rejects(analyzeAnomalousCallsByProcess(store, { tenant: T, cursor: 'garbage' }), /invalid cursor/);
    await assert.rejects(analyzeAnomalousCallsByProcess(store, { tenant: T, since: 'yesterday' }), /since/);
    await assert.rejects(analyzeAnomalousCallsByProcess(store, { tenant: T, detectionTypes: ['Nope'] }), /unknown detection type/);
    const p1 = await analyzeAnomalousCallsByProcess(store, { tenant: T, limit: 1 });
    assert.ok(p1.next_cursor);
    await assert.rejects(analyzeAnomalousCallsByProcess(store, { tenant: T, limit: 1, minCount: 3, cursor: p1.next_cursor }), /different query/);
  } finally {
    await store.close();
  }
});

storeTest('a look-alike of a daemon’s name (Latin ɑ, Cyrillic а) is a suspected impostor of it by its name alone: no suggestion, no rule hides it', async (at) => {
  let store = await at.open();
  const L = 'lookalike';
  // the daemon's own parent chain, control plane and port: only the name's letters give them away
  const alpha = { ...tailscaled(true), name: 'tɑilscaled', path: '/usr/sbin/tɑilscaled', sha256: 'c'.repeat(64) };
  const cyrillic = { ...tailscaled(true), name: 'tаilscaled', path: '/usr/sbin/tаilscaled', sha256: 'd'.repeat(64) };
  try {
    const evs: NetworkCallEvent[] = [];
    for (let i = 0; i < 3; i++) {
      const ts = TS0 + i * 3_600_000;
      evs.push(call(L, 'web', 500 + i, ts, tailscaled(true), { domain: 'controlplane.tailscale.com', port: 443 }));
      evs.push(call(L, 'web', 500 + i, ts + 1, alpha, { domain: 'controlplane.tailscale.com', port: 443 }));
      evs.push(call(L, 'web', 500 + i, ts + 2, cyrillic, { domain: 'controlplane.tailscale.com', port: 443 }));
    }
    await ingestCalls(at, store, L, evs);
    const flagged = (await at.column<string>('SELECT reason FROM suspected_impostors ORDER BY reason')).sort();
    assert.deepEqual(flagged, [
      'named "tɑilscaled", drawn like tailscaled but not it (ɑ U+0251)',
      'named "tаilscaled", drawn like tailscaled but not it (а U+0430)',
    ].sort(), 'ingest flags each look-alike at its first call');
    // a store written before look-alikes were judged has no such flags: its evidence must flag them again
    await store.close();
    await at.rows('DELETE FROM suspected_impostors');
    store = await at.open();
    const rules = new RulesService(store);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: L }, { rules });
    for (const [name, ch] of [['tɑilscaled', 'ɑ U+0251'], ['tаilscaled', 'а U+0430']] as const) {
      const look = res.processes.find((p) => p.process === name);
      assert.ok(look, `${name} is a group of its own: ${res.processes.map((p) => p.process).join(', ')}`);
      assert.equal(look.count, 3, 'every call of a suspected impostor is raised, even to the control plane');
      assert.equal(look.is_vpn_process_candidate, false);
      assert.equal(look.name_impersonation_suspected, true);
      assert.equal(look.suggested_rule, null);
      assert.deepEqual(look.vpn_evidence.binaries.map((b) => b.verdict), ['impostor']);
      assert.ok(
        look.warnings.some((w) => w.startsWith(`named "${name}", drawn like tailscaled but not it (${ch}): every binary of "${name}" is a suspected impostor of tailscale`)),
        look.warnings.join('\n'),
      );
      const preview = await rules.preview(L, { detection_id: 'New-Outbound-Network-Call', conditions: { process: name } });
      assert.equal(preview.impostor_matches, 3, `each of ${name}'s detections is an impostor's`);
      assert.match(preview.refused_reason ?? '', /suspected impostor/);
      await assert.rejects(rules.create(L, { detection_id: 'New-Outbound-Network-Call', conditions: { process: name } }), RuleError);
    }
    const daemon = res.processes.find((p) => p.process === 'tailscaled')!;
    assert.deepEqual(daemon.warnings.filter((w) => /drawn like|mixes/.test(w)), [], 'the real name is not warned about');
    assert.equal(daemon.is_vpn_process_candidate, true);
    const preview = await rules.preview(L, { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled' } });
    assert.equal(preview.would_suppress, 3, 'the daemon’s three calls, none of the look-alikes’');
  } finally {
    await store.close();
  }
});

storeTest("a renamed binary that reaches its own server on the daemon's STUN port is an impostor: no suggestion, no rule over its hash", async (at) => {
  const store = await at.open();
  try {
    // the genuine parent chain and the control plane: only the destination's name gives it away
    const renamed = { ...tailscaled(true), sha256: IMPOSTOR_SHA, path: '/usr/local/bin/tailscaled' };
    const evs: NetworkCallEvent[] = [];
    for (let i = 0; i < 3; i++) {
      const ts = TS0 + i * 3_600_000;
      evs.push(call(T, 'web', 300 + i, ts, renamed, { domain: 'controlplane.tailscale.com', port: 443 }));
      evs.push(call(T, 'web', 300 + i, ts + 1, renamed, { domain: 'derp1.exfil.example.net', port: 3478 }));
    }
    await ingestCalls(at, store, T, evs);
    const rules = new RulesService(store);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T }, { rules });
    const ts = res.processes.find((p) => p.process === 'tailscaled')!;
    const bin = ts.vpn_evidence.binaries.find((b) => b.sha256 === IMPOSTOR_SHA)!;
    assert.equal(bin.verdict, 'impostor', JSON.stringify(bin));
    assert.ok(bin.contradicting.some((c) => c.includes("domain outside tailscale's signature: derp1.exfil.example.net:3478")), bin.contradicting.join());
    assert.equal(ts.name_impersonation_suspected, true);
    assert.equal(ts.is_vpn_process_candidate, false);
    assert.equal(ts.suggested_rule, null);
    await assert.rejects(
      rules.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled', process_sha256: IMPOSTOR_SHA } }, 'test'),
      (e: unknown) => e instanceof RuleError && e.code === 'refused_impostor',
    );
  } finally {
    await store.close();
  }
});

storeTest('a view of a job whose name holds a space (GitHub matrix names do) gets a rule scoped to that job, which hides its detections and no other leg\'s', async (at) => {
  const store = await at.open();
  try {
    const evs: NetworkCallEvent[] = [];
    for (let run = 1; run <= 3; run++) {
      for (const job of ['test (3.11)', 'test (3.12)']) {
        evs.push(call(T, 'api', run, TS0 + run * 60_000, tailscaled(true), { domain: 'controlplane.tailscale.com', port: 443 }, 'acme', job));
        evs.push(call(T, 'api', run, TS0 + run * 60_000 + 1, tailscaled(true), { ip: `100.64.0.${run}`, port: 41641 }, 'acme', job));
      }
    }
    await ingestCalls(at, store, T, evs);
    const rules = new RulesService(store);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T, filter: { types: ['New-Outbound-Network-Call'], statuses: ['new'], job: 'test (3.11)' }, minCount: 1 }, { rules });
    const ts = res.processes.find((p) => p.process === 'tailscaled')!;
    assert.equal(ts.count, 6);
    assert.equal(ts.vpn_evidence.binaries[0]!.verdict, 'genuine');
    assert.equal(ts.no_suggestion_reason, null);
    const rule = ts.suggested_rule!;
    assert.equal(rule.conditions.job, 'test (3.11)');
    await rules.create(T, { detection_id: rule.detection_id, conditions: rule.conditions }, 'test');
    const left = await analyzeAnomalousCallsByProcess(store, { tenant: T, minCount: 1 }, { rules });
    const other = left.processes.find((p) => p.process === 'tailscaled')!;
    assert.equal(other.count, 6, 'the other leg keeps its detections');
    assert.deepEqual(other.sample_detections.map((d) => d.job).filter((j) => j !== 'test (3.12)'), []);
  } finally {
    await store.close();
  }
});

storeTest('one owner and repository spelled in two cases (jobs apart by their job name) count once in distinct_owners and distinct_repos', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, [
      call(T, 'API', 1, TS0, proc('curl'), { domain: 'x1.example.com', port: 443 }, 'Acme', 'build'),
      call(T, 'api', 3, TS0 + 60_000, proc('curl'), { domain: 'x3.example.com', port: 443 }, 'acme', 'Build'),
      call(T, 'web', 4, TS0 + 120_000, proc('curl'), { domain: 'x4.example.com', port: 443 }, 'ACME', 'build'),
    ]);
    const rules = new RulesService(store);
    const res = await analyzeAnomalousCallsByProcess(store, { tenant: T, minCount: 1 }, { rules });
    const curl = res.processes.find((p) => p.process === 'curl')!;
    assert.equal(curl.count, 3);
    assert.deepEqual([curl.distinct_owners, curl.distinct_repos], [1, 2]);
  } finally {
    await store.close();
  }
});
