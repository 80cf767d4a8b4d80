import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RulesService, RuleError } from '../../src/rules/service.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { call, GENUINE_SHA, nativeLine, proc, rollupMismatchesOf, tailscaled, TS0 } from '../analysis/helpers.js';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { rememberRiskyDestinations } from '../../src/rules/risky-memory.js';
import type { AnalyzeInput, AnalyzeResult } from '../../src/analysis/types.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import type { OpenStore } from '../../src/storage/open-store.js';
import { baselineJobRows, destinationRows } from '../../src/dashboard-data/views.js';
import { detectionsView, eachStore, statusByHost, type StoreUnderTest } from '../helpers/each-store.js';

const { storeTest } = eachStore();

/**
 * A configured risky range covers the calls that reach it under a name too: the attacker's host
 * `cdn.attacker.example` resolves into 203.0.113.0/24. Such a call raises a detection in every run,
 * whatever the baseline holds (the baseline counts endpoints, not the addresses they resolved to),
 * and no rule, at ingest or over stored detections, silences it. Without the range, the same data
 * is ordinary (the last step shows the range is what protects it).
 */

const T = 'ranges';
const NOC = 'New-Outbound-Network-Call';
const RANGE = ['203.0.113.0/24'];
const ATTACKER = { domain: 'cdn.attacker.example', ip: '203.0.113.5', port: 443 };
const BENIGN = { domain: 'api.example.com', ip: '198.51.100.1', port: 443 };

function runs(from: number, to: number): NetworkCallEvent[] {
  const evs: NetworkCallEvent[] = [];
  for (let run = from; run <= to; run++) {
    const ts = TS0 + run * 3_600_000;
    evs.push(call(T, 'api', run, ts, proc('curl'), ATTACKER));
    evs.push(call(T, 'api', run, ts + 1, proc('curl'), BENIGN));
  }
  return evs;
}

let files = 0;
/** Ingests as the CLI does with `risky_destinations` configured: the engine and the ingest suppressor both get the list. */
async function ingest(at: StoreUnderTest, store: OpenStore, events: NetworkCallEvent[], extra: string[], o: { worker?: boolean } = {}): Promise<void> {
  const file = join(at.dir, `range-${++files}.ndjson`);
  writeFileSync(file, events.map(nativeLine).join('\n') + '\n');
  const risky = riskyDestinations(extra);
  await new IngestPipeline(store, {
    tenant: T, format: 'native', strict: false, defaults: {},
    // no learning runs, and an endpoint joins the baseline after two runs
    engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 0, promoteAfterRuns: 2, neverBaseline: (h) => risky.matchHost(h) !== null },
    suppressorFor: (s, t) => s.ingestSuppressor(t, extra),
    riskyDestinations: extra,
    // the parse worker even for a small file, or this thread
    workerFromBytes: o.worker ? 0 : Number.MAX_SAFE_INTEGER,
  }).ingest(file);
}

async function byAddress(at: StoreUnderTest, host: string): Promise<Record<string, string>> {
  const rows = (await at.rows(
    `SELECT i.ip AS ip, d.status AS status, count(*) AS n FROM ${detectionsView(at.backend)} AS d JOIN ips i ON i.id = d.ip_id
     JOIN endpoints e ON e.id = d.endpoint_id WHERE e.host = '${host}' GROUP BY i.ip, d.status ORDER BY i.ip, d.status`,
  )) as { ip: string; status: number; n: number }[];
  return Object.fromEntries(rows.map((r) => [r.ip, `${Number(r.n)}x${Number(r.status)}`]));
}

async function baselined(at: StoreUnderTest, host: string): Promise<number> {
  const rows = (await at.rows(`SELECT count(*) AS n FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id WHERE e.host = '${host}'`)) as { n: number }[];
  return Number(rows[0]!.n);
}

storeTest('a named call into a configured risky range raises a detection in every run, and no rule silences it at ingest, on create, or on restore', async (at) => {
  const store = await at.open();
  try {
    await ingest(at, store, runs(1, 4), RANGE);
    // both endpoints joined the baseline after two runs, yet every run raises the range's call
    assert.equal(await baselined(at, 'cdn.attacker.example'), 1);
    assert.equal(await baselined(at, 'api.example.com'), 1);
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '2x0', 'cdn.attacker.example': '4x0' });

    const svc = new RulesService(store, { extraRiskyDestinations: RANGE });
    // by name, by process, by scope: each would hide the range's calls, so each is refused
    for (const conditions of [{ host: 'cdn.attacker.example' }, { process: 'curl' }, { repo: 'api' }]) {
      const p = await svc.preview(T, { detection_id: NOC, conditions });
      assert.equal(p.risky_matches, 4, JSON.stringify(conditions));
      assert.deepEqual(p.risky_samples, [{ endpoint: 'cdn.attacker.example:443', address: '203.0.113.5', process: 'curl', count: 4 }]);
      assert.match(p.refused_reason ?? '', /cdn\.attacker\.example:443 at 203\.0\.113\.5 \(in a risky range\)/);
      await assert.rejects(svc.create(T, { detection_id: NOC, conditions }, 't'), (e: unknown) => e instanceof RuleError && e.code === 'refused_risky');
    }
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '2x0', 'cdn.attacker.example': '4x0' });

    // Rules made where the range was not configured (another working directory): they hide it...
    const unaware = new RulesService(store);
    const byName = await unaware.create(T, { detection_id: NOC, conditions: { host: 'cdn.attacker.example' } }, 't');
    assert.equal(byName.suppressed, 4);
    const byProcess = await unaware.create(T, { detection_id: NOC, conditions: { process: 'curl' } }, 't');
    assert.equal(byProcess.suppressed, 2);
    // ...but a restore where it is configured hands the calls to no other rule: they come back new
    const restored = await svc.delete(T, byName.rule.rule_id, { restore: true }, 't');
    assert.equal(restored.restored, 4);
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '2x1', 'cdn.attacker.example': '4x0' });

    // and at ingest the process rule, which matches it, leaves the range's call of a new run new
    await ingest(at, store, runs(5, 5), RANGE);
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '2x1', 'cdn.attacker.example': '5x0' });
    assert.equal(await rollupMismatchesOf(at), 0);

    // without the range the name is an ordinary host, in the baseline: the next run's call raises nothing
    await ingest(at, store, runs(6, 6), []);
    assert.deepEqual(await statusByHost(at), { 'api.example.com': '2x1', 'cdn.attacker.example': '5x0' });
  } finally {
    await store.close();
  }
});

storeTest('a host that resolves into the range only later in a run: that call is a detection of its own at the risky address, once, and no rule hides it', async (at) => {
  const store = await at.open();
  try {
    // each run reaches the attacker's host at an ordinary address first, then inside the range
    const reResolving = (from: number, to: number): NetworkCallEvent[] => {
      const evs: NetworkCallEvent[] = [];
      for (let run = from; run <= to; run++) {
        const ts = TS0 + run * 3_600_000;
        evs.push(call(T, 'api', run, ts, proc('curl'), { ...ATTACKER, ip: '198.51.100.9' }));
        evs.push(call(T, 'api', run, ts + 1, proc('curl'), ATTACKER));
        evs.push(call(T, 'api', run, ts + 2, proc('curl'), ATTACKER));
      }
      return evs;
    };
    await ingest(at, store, reResolving(1, 3), RANGE, { worker: true });
    // the ordinary address raised until the endpoint joined the baseline; the range's call every run
    assert.deepEqual(await byAddress(at, 'cdn.attacker.example'), { '198.51.100.9': '2x0', '203.0.113.5': '3x0' });
    // the same calls again, parsed in this thread: nothing new
    await ingest(at, store, reResolving(1, 3), RANGE);
    assert.deepEqual(await byAddress(at, 'cdn.attacker.example'), { '198.51.100.9': '2x0', '203.0.113.5': '3x0' });

    const svc = new RulesService(store, { extraRiskyDestinations: RANGE });
    const p = await svc.preview(T, { detection_id: NOC, conditions: { host: 'cdn.attacker.example' } });
    assert.equal(p.risky_matches, 3);
    await assert.rejects(svc.create(T, { detection_id: NOC, conditions: { host: 'cdn.attacker.example' } }, 't'), (e: unknown) => e instanceof RuleError && e.code === 'refused_risky');
    // a rule on the ordinary address alone is fine, and the range's calls stay new under it at ingest
    const narrow = await svc.create(T, { detection_id: NOC, conditions: { ip_address: '198.51.100.9' } }, 't');
    assert.equal(narrow.suppressed, 2);
    await ingest(at, store, reResolving(4, 4), RANGE);
    assert.deepEqual(await byAddress(at, 'cdn.attacker.example'), { '198.51.100.9': '2x1', '203.0.113.5': '4x0' });
    assert.equal(await rollupMismatchesOf(at), 0);

    // The dashboard flags the destination and the job's baseline entry by the address too: the
    // observation keeps the first (ordinary) address of each run, the detections the range's.
    const endpoint = 'cdn.attacker.example:443';
    const addresses = await store.dashboard.callAddresses(T, { endpoints: [endpoint, 'api.example.com:443'] });
    assert.deepEqual(addresses, [
      { endpoint, ip: '198.51.100.9', job: null },
      { endpoint, ip: '203.0.113.5', job: null },
    ]);
    const dests = (await store.dashboard.destinations(T, { limit: 50, jobsPerDestination: 5 })).destinations;
    const dest = (risky: string[]) => destinationRows(dests, riskyDestinations(risky), addresses).find((d) => d.endpoint === endpoint)!;
    assert.deepEqual([dest(RANGE).risky, dest(RANGE).riskyAt], ['203.0.113.0/24', '203.0.113.5']);
    assert.deepEqual([dest([]).risky, dest([]).riskyAt], [null, null]);
    const jobs = (await store.dashboard.baselineJobs(T, { limit: 10 })).jobs;
    const keys = jobs.map((j) => ({ owner: j.owner, repo: j.repo, workflow: j.workflow, job: j.job }));
    const perJob = await store.dashboard.callAddresses(T, { endpoints: [endpoint], jobs: keys });
    assert.deepEqual(perJob.map((a) => [a.ip, a.job]), [['198.51.100.9', keys[0]], ['203.0.113.5', keys[0]]]);
    const entry = baselineJobRows(jobs, riskyDestinations(RANGE), perJob)[0]!.endpoints.find((e) => e.endpoint === endpoint)!;
    assert.equal(entry.inBaseline, true, 'the endpoint joined the baseline, its calls in the range raise all the same');
    assert.deepEqual([entry.risky, entry.riskyAt, entry.riskyRange], [null, '203.0.113.5', '203.0.113.0/24']);
    // another job's calls are not this one's, and another tenant sees none
    assert.deepEqual(await store.dashboard.callAddresses(T, { endpoints: [endpoint], jobs: [{ ...keys[0]!, job: 'other' }] }), []);
    assert.deepEqual(await store.dashboard.callAddresses('someone-else', { endpoints: [endpoint] }), []);
  } finally {
    await store.close();
  }
});

storeTest('a range configured after the ingest: the dashboard flags a baselined host by the address its calls reached, which no detection holds', async (at) => {
  const store = await at.open();
  try {
    // without the range: two runs at an ordinary address (detections, then the baseline), two in the range
    const evs: NetworkCallEvent[] = [];
    for (let run = 1; run <= 4; run++) evs.push(call(T, 'api', run, TS0 + run * 3_600_000, proc('curl'), { ...ATTACKER, ip: run <= 2 ? '198.51.100.9' : '203.0.113.5' }));
    await ingest(at, store, evs, []);
    assert.deepEqual(await byAddress(at, 'cdn.attacker.example'), { '198.51.100.9': '2x0' });
    const endpoint = 'cdn.attacker.example:443';
    const addresses = await store.dashboard.callAddresses(T, { endpoints: [endpoint] });
    assert.deepEqual(addresses.map((a) => a.ip), ['198.51.100.9', '203.0.113.5']);
    const dests = (await store.dashboard.destinations(T, { limit: 50, jobsPerDestination: 5 })).destinations;
    const row = destinationRows(dests, riskyDestinations(RANGE), addresses).find((d) => d.endpoint === endpoint)!;
    assert.deepEqual([row.risky, row.riskyAt], ['203.0.113.0/24', '203.0.113.5']);
  } finally {
    await store.close();
  }
});

/** The analysis of the tenant, with the rules layer as a command where the range is configured (or not) builds it. */
async function analyze(store: OpenStore, extra: string[], input: Partial<AnalyzeInput> = {}): Promise<AnalyzeResult> {
  return analyzeAnomalousCallsByProcess(store, { tenant: T, limit: 100, ...input }, { rules: new RulesService(store, { extraRiskyDestinations: extra }) });
}

storeTest('the analysis flags a named call into the range as risky: its group is shown whatever the minimum count, with the address', async (at) => {
  const store = await at.open();
  try {
    // in repo web, one curl call to the attacker's host inside the range; in repo api, one ordinary
    // curl call later, and three of node
    const evs = [call(T, 'web', 1, TS0, proc('curl'), ATTACKER), call(T, 'api', 1, TS0 + 10, proc('curl'), { domain: 'd.example.com', ip: '198.51.100.3', port: 443 })];
    for (const [i, domain] of ['a.example.com', 'b.example.com', 'c.example.com'].entries()) {
      evs.push(call(T, 'api', 1, TS0 + 1 + i, proc('node'), { domain, ip: '198.51.100.2', port: 443 }));
    }
    await ingest(at, store, evs, RANGE);

    // minimum count 3: curl (2 calls, 1 in web) is under it wherever it shows
    for (const input of [{}, { repo: 'web', since: TS0 }, { owner: 'acme', until: TS0 + 1 }]) {
      const res = await analyze(store, RANGE, { minCount: 3, ...input });
      const curl = res.processes.find((p) => p.process === 'curl');
      assert.ok(curl, `${JSON.stringify(input)}: the curl group is shown: ${res.note}`);
      assert.equal(curl.risky_destinations_suppressed_by_process_rule, 1);
      assert.deepEqual(curl.risky_destination_samples, ['cdn.attacker.example:443 at 203.0.113.5']);
      assert.ok(curl.warnings.some((w) => w.includes('1 detection(s) go to risky destinations (cdn.attacker.example:443 at 203.0.113.5)')), curl.warnings.join('\n'));
      assert.equal(
        curl.review.find((r) => r.endpoint === 'cdn.attacker.example:443')?.rationale,
        'RISKY: cdn.attacker.example was reached at 203.0.113.5, in the risky range 203.0.113.0/24; investigate the runs, never suppress',
      );
      assert.match(res.note, /shown anyway because they call a risky destination or are suspected impostors: curl\./);
    }
    // scopes that leave the range's call out (a later window, another repo): curl is an ordinary group again
    for (const input of [{ since: TS0 + 1 }, { repo: 'api' }]) {
      const res = await analyze(store, RANGE, { minCount: 3, ...input });
      assert.equal(res.processes.find((p) => p.process === 'curl'), undefined, JSON.stringify(input));
      assert.match(res.note, /1 group\(s\) with fewer than 3 detection\(s\) \(1 detection\(s\)\) are omitted/);
    }

    // without the range the same call is an ordinary one
    const unaware = await analyze(store, [], { minCount: 3 });
    assert.equal(unaware.processes.find((p) => p.process === 'curl'), undefined);
    assert.match(unaware.note, /1 group\(s\) with fewer than 3 detection\(s\) \(2 detection\(s\)\) are omitted/);
  } finally {
    await store.close();
  }
});

storeTest("a daemon's name reaching the range is a suspected impostor: in the analysis, in the rule guards, and flagged at ingest", async (at) => {
  const store = await at.open();
  try {
    const ts = TS0;
    const daemon = tailscaled(true);
    // the genuine daemon's hash and path, its control plane at an address inside the range, a peer
    const evs = [
      call(T, 'api', 1, ts, daemon, { domain: 'controlplane.tailscale.com', ip: '203.0.113.9', port: 443 }),
      call(T, 'api', 1, ts + 1, daemon, { ip: '100.64.0.7', port: 41641 }),
    ];
    // ingested where the range is not configured: nothing flags the binary then
    await ingest(at, store, evs, []);
    const before = await analyze(store, []);
    assert.deepEqual(before.processes.find((p) => p.process === 'tailscaled')?.binaries.map((b) => b.genuine), [true]);

    // the store's verdict, computed where the range is configured, finds it from the detections' addresses
    const res = await analyze(store, RANGE);
    const g = res.processes.find((p) => p.process === 'tailscaled')!;
    assert.deepEqual(g.binaries.map((b) => b.genuine), [false]);
    assert.equal(g.name_impersonation_suspected, true);
    assert.equal(g.is_vpn_process_candidate, false);
    assert.ok(
      g.vpn_evidence.contradicting.some((c) => c.startsWith('risky destination controlplane.tailscale.com:443 at 203.0.113.9 (203.0.113.0/24)')),
      g.vpn_evidence.contradicting.join('\n'),
    );
    // a rule over the daemon's other destination would hide a suspected impostor's calls: refused
    const svc = new RulesService(store, { extraRiskyDestinations: RANGE });
    const peerOnly = { process: 'tailscaled', process_sha256: GENUINE_SHA, ip_address: '100.64.0.7' };
    // the preview too, on the connection that judged the binary genuine without the range just before
    // (a verdict is kept per tenant and list)
    const p = await svc.preview(T, { detection_id: NOC, conditions: peerOnly });
    assert.equal(p.impostor_matches, 1);
    assert.match(p.refused_reason ?? '', /suspected impostor/);
    await assert.rejects(svc.create(T, { detection_id: NOC, conditions: peerOnly }, 't'), (e: unknown) => e instanceof RuleError && e.code === 'refused_impostor');
    assert.ok(await new RulesService(store).create(T, { detection_id: NOC, conditions: peerOnly }, 't'), 'without the range the binary is genuine');

    // the store remembering the range (as every command does where a config names it) brings back
    // what that rule hid of the binary the range makes an impostor
    const remembered = await rememberRiskyDestinations(store, RANGE);
    assert.deepEqual([remembered.added, remembered.released], [RANGE, 1]);
    assert.deepEqual(await statusByHost(at), { '100.64.0.7': '1x0', 'controlplane.tailscale.com': '1x0' });

    // an ingest where the range is configured flags a binary itself, as it sees the call: here the
    // daemon's next build, installed at another path (nothing links it to the flagged file), in two
    // runs; a suspected impostor's calls never teach the baseline, so curl's call to the same peer in
    // the run after still raises a detection
    const upgraded = { ...daemon, sha256: 'c'.repeat(64), path: '/opt/tailscale/tailscaled' };
    const PEER = { ip: '100.64.0.8', port: 41641 };
    const later: NetworkCallEvent[] = [];
    for (const run of [2, 3]) {
      later.push(call(T, 'api', run, ts + run * 3_600_000, upgraded, { domain: 'controlplane.tailscale.com', ip: '203.0.113.9', port: 443 }));
      later.push(call(T, 'api', run, ts + run * 3_600_000 + 1, upgraded, PEER));
    }
    later.push(call(T, 'api', 4, ts + 4 * 3_600_000, proc('curl'), PEER));
    await ingest(at, store, later, RANGE);
    assert.equal((await statusByHost(at))['100.64.0.8'], '3x0');
    // (the first build was flagged when the store remembered the range, from its stored calls)
    const flagged = (await at.rows('SELECT process, sha256, reason FROM suspected_impostors')) as { process: string; sha256: string; reason: string }[];
    const reason = 'risky destination controlplane.tailscale.com at 203.0.113.9 (203.0.113.0/24)';
    assert.deepEqual(
      flagged.map((f) => [f.process, f.sha256, f.reason]).sort(),
      [['tailscaled', GENUINE_SHA, reason], ['tailscaled', 'c'.repeat(64), reason]],
    );
    assert.deepEqual((await analyze(store, RANGE)).processes.find((p) => p.process === 'tailscaled')?.binaries.map((b) => b.genuine), [false, false]);

    // a build whose control plane resolves into the range only later in its run is flagged by that
    // call, at once: its calls to a peer teach the baseline nothing, and curl's call there raises
    const another = { ...daemon, sha256: 'd'.repeat(64), path: '/srv/tailscaled' };
    const PEER2 = { ip: '100.64.0.9', port: 41641 };
    const reResolving: NetworkCallEvent[] = [];
    for (const run of [5, 6]) {
      const at0 = ts + run * 3_600_000;
      reResolving.push(call(T, 'api', run, at0, another, { domain: 'controlplane.tailscale.com', ip: '198.51.100.20', port: 443 }));
      reResolving.push(call(T, 'api', run, at0 + 1, another, { domain: 'controlplane.tailscale.com', ip: '203.0.113.9', port: 443 }));
      reResolving.push(call(T, 'api', run, at0 + 2, another, PEER2));
    }
    reResolving.push(call(T, 'api', 7, ts + 7 * 3_600_000, proc('curl'), PEER2));
    await ingest(at, store, reResolving, RANGE);
    assert.equal((await statusByHost(at))['100.64.0.9'], '3x0');
    const flaggedNow = (await at.rows('SELECT sha256 FROM suspected_impostors ORDER BY sha256')) as { sha256: string }[];
    assert.deepEqual(flaggedNow.map((f) => f.sha256), [GENUINE_SHA, 'c'.repeat(64), 'd'.repeat(64)]);
  } finally {
    await store.close();
  }
});

storeTest("a daemon's file that reached the range without a readable hash links the hash it shows in the same run", async (at) => {
  const store = await at.open();
  try {
    const daemon = tailscaled(true);
    // one run: the file at the daemon's path, its hash unread, reaches the control plane inside the
    // range; then the same file with its hash read calls a peer
    await ingest(
      at,
      store,
      [
        call(T, 'api', 1, TS0, { ...daemon, sha256: undefined }, { domain: 'controlplane.tailscale.com', ip: '203.0.113.9', port: 443 }),
        call(T, 'api', 1, TS0 + 1, daemon, { ip: '100.64.0.7', port: 41641 }),
      ],
      RANGE,
    );
    const flagged = (await at.rows('SELECT sha256, reason FROM suspected_impostors')) as { sha256: string | null; reason: string }[];
    // the hash-less binary by its own call; the hash as the same file (its reason names the path)
    assert.deepEqual(
      flagged.map((f) => [f.sha256, f.sha256 === null ? f.reason : f.reason.includes('/usr/sbin/tailscaled')]).sort((a, b) => String(a[0] ?? '').localeCompare(String(b[0] ?? ''))),
      [
        [null, 'risky destination controlplane.tailscale.com at 203.0.113.9 (203.0.113.0/24)'],
        [GENUINE_SHA, true],
      ],
    );
  } finally {
    await store.close();
  }
});

storeTest('a range remembered after the fact judges calls that left no detection too: the daemon that reached it while its endpoint was in the baseline', async (at) => {
  const store = await at.open();
  try {
    const daemon = tailscaled(true);
    const evs: NetworkCallEvent[] = [];
    // the control plane joins the baseline after two runs at an ordinary address; in run 3 it
    // resolves into what will be the range, and raises nothing then
    for (const [run, ip] of [[1, '192.200.0.101'], [2, '192.200.0.101'], [3, '203.0.113.9']] as const) {
      const ts = TS0 + run * 3_600_000;
      evs.push(call(T, 'api', run, ts, daemon, { domain: 'controlplane.tailscale.com', ip, port: 443 }));
      evs.push(call(T, 'api', run, ts + 1, daemon, { ip: `100.64.0.${run}`, port: 41641 }));
    }
    await ingest(at, store, evs, []);
    assert.deepEqual(await byAddress(at, 'controlplane.tailscale.com'), { '192.200.0.101': '2x0' });
    const peers = await new RulesService(store).create(T, { detection_id: NOC, conditions: { process: 'tailscaled', process_sha256: GENUINE_SHA, ip_address: '100.64.0.*' } }, 't');
    assert.equal(peers.suppressed, 3);

    const remembered = await rememberRiskyDestinations(store, RANGE);
    assert.equal(remembered.released, 3);
    const flagged = (await at.rows('SELECT sha256, reason FROM suspected_impostors')) as { sha256: string; reason: string }[];
    assert.deepEqual(flagged.map((f) => [f.sha256, f.reason]), [[GENUINE_SHA, 'risky destination controlplane.tailscale.com at 203.0.113.9 (203.0.113.0/24)']]);
    assert.deepEqual((await analyze(store, RANGE, { status: 'all' })).processes.find((p) => p.process === 'tailscaled')?.binaries.map((b) => b.genuine), [false]);
    assert.equal(await rollupMismatchesOf(at), 0);
  } finally {
    await store.close();
  }
});

storeTest('a daemon name spelled with a second ".exe" is the daemon for the store\'s own verdict too: what a rule hid of the impostor comes back, and its next call is raised', async (at) => {
  const store = await at.open();
  try {
    // One pass of the old normalisation stored "tailscaled.exe.exe" as "tailscaled.exe": ingest and the
    // analysis read it as tailscaled, the store's daemon checks as no daemon, so the rule below kept
    // hiding the binary's calls after the range made it an impostor.
    const renamed = { ...tailscaled(true), name: 'tailscaled.exe.exe', path: '/usr/sbin/tailscaled.exe.exe', sha256: 'e'.repeat(64) };
    const ts = TS0 + 3_600_000;
    await ingest(at, store, [
      call(T, 'api', 1, ts, proc('curl'), BENIGN),
      call(T, 'api', 2, ts + 3_600_000, renamed, { ip: '203.0.113.5', port: 41641 }),
      call(T, 'api', 2, ts + 3_600_000 + 1, renamed, { domain: 'controlplane.tailscale.com', ip: '198.51.100.7', port: 443 }),
    ], []);
    const created = await new RulesService(store).create(T, { detection_id: NOC, conditions: { process_sha256: 'e'.repeat(64) } }, 't');
    assert.equal(created.suppressed, 2, 'without the range nothing contradicts the binary');
    const remembered = await rememberRiskyDestinations(store, RANGE);
    assert.deepEqual([remembered.added, remembered.released], [RANGE, 2]);
    await ingest(at, store, [call(T, 'api', 3, ts + 2 * 3_600_000, renamed, { domain: 'derp1.tailscale.com', ip: '198.51.100.8', port: 443 })], RANGE);
    assert.deepEqual(await statusByHost(at), { '203.0.113.5': '1x0', 'api.example.com': '1x0', 'controlplane.tailscale.com': '1x0', 'derp1.tailscale.com': '1x0' });
  } finally {
    await store.close();
  }
});

storeTest('a store written with the single-pass process names gets them normalised again by its migration', async (at) => {
  let store = await at.open();
  try {
    const renamed = { ...tailscaled(true), name: 'tailscaled.exe.exe', sha256: 'e'.repeat(64) };
    await ingest(at, store, [call(T, 'api', 1, TS0, renamed, BENIGN), call(T, 'api', 1, TS0 + 1, proc('curl'), BENIGN), call(T, 'api', 1, TS0 + 2, proc('a..exe'), BENIGN)], []);
  } finally {
    await store.close();
  }
  // as the old normalisation left them (and one it would leave alone as well)
  await at.rows("UPDATE processes SET norm_name = 'tailscaled.exe' WHERE name = 'tailscaled.exe.exe'");
  await at.rows("UPDATE processes SET norm_name = ? WHERE name = 'curl'", ['\u3000curl .exe\u00a0.exe']);
  await at.rows('DELETE FROM schema_migrations WHERE version = ?', [at.backend === 'sqlite' ? 13 : 21]);
  store = await at.open();
  await store.close();
  const names = (await at.rows('SELECT name, norm_name FROM processes ORDER BY name')) as { name: string; norm_name: string }[];
  assert.deepEqual(names.map((r) => [r.name, r.norm_name]), [['a..exe', 'a.'], ['curl', 'curl'], ['tailscaled.exe.exe', 'tailscaled']]);
});

storeTest('an address or a range looked up in the inventory finds the calls that named a domain but went there, as check_ioc_in_baseline does', async (at) => {
  const store = await at.open();
  try {
    await ingest(at, store, [
      call(T, 'api', 1, TS0, proc('curl'), ATTACKER),
      call(T, 'api', 1, TS0 + 1, proc('curl'), BENIGN),
      call(T, 'web', 2, TS0 + 3_600_000, proc('node'), { ip: '203.0.113.77', port: 8443 }),
    ], []);
    for (const indicator of ['203.0.113.5', '203.0.113.0/24']) {
      const calls = await store.inventory.findEndpointCalls(T, { endpoint: indicator, limit: 10 });
      const want = indicator.includes('/') ? ['203.0.113.77:8443', 'cdn.attacker.example:443'] : ['cdn.attacker.example:443'];
      assert.deepEqual(calls.calls.map((c) => c.endpoint).sort(), want, indicator);
      assert.equal(calls.total, want.length, indicator);
      const repos = await store.inventory.findReposUsingEndpoint(T, { owner: 'acme', endpoint: indicator });
      assert.deepEqual(repos.repos.map((r) => [r.repo, r.matched_endpoints]), indicator.includes('/') ? [['api', ['cdn.attacker.example:443']], ['web', ['203.0.113.77:8443']]] : [['api', ['cdn.attacker.example:443']]], indicator);
      const ioc = await store.inventory.checkIocInBaseline(T, { indicator, limit: 10 });
      assert.equal(ioc.calls_total, want.length, `check_ioc_in_baseline agrees for ${indicator}`);
    }
    // a name still finds only itself
    assert.deepEqual((await store.inventory.findEndpointCalls(T, { endpoint: 'api.example.com', limit: 10 })).calls.map((c) => c.endpoint), ['api.example.com:443']);
  } finally {
    await store.close();
  }
});
