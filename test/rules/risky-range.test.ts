import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { RulesService, RuleError } from '../../src/rules/service.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';
import { DEFAULT_ENGINE_CONFIG } from '../../src/detection/engine.js';
import { IngestPipeline } from '../../src/ingest/pipeline.js';
import { call, nativeLine, proc, rollupMismatchesOf, TS0 } from '../analysis/helpers.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import type { OpenStore } from '../../src/storage/open-store.js';
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
  } finally {
    await store.close();
  }
});
