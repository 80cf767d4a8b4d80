import assert from 'node:assert/strict';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { RulesService } from '../../src/rules/service.js';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';
import { ingestCalls, rollupMismatchesOf } from './helpers.js';
import { randomTenant } from './random-tenant.js';
import type { AnalyzeInput, ProcessGroup } from '../../src/analysis/types.js';
import type { OpenStore } from '../../src/storage/open-store.js';
import { detectionsView, eachStore, type StoreUnderTest } from '../helpers/each-store.js';

const asciiFold = (s: string) => s.replace(/[A-Z]/g, (c) => c.toLowerCase());

const { storeTest } = eachStore();

const T = 'rand';

interface Row {
  type: string; status: number; owner: string; repo: string; norm: string; sha: string | null; path: string | null;
  endpoint: string; host: string; is_ip: number; ts: number;
}

async function brute(at: StoreUnderTest, input: AnalyzeInput): Promise<{ total: number; groups: Partial<ProcessGroup>[] }> {
  const rows = (await at.rows(`SELECT t.name AS type, d.status, j.owner, j.repo, p.norm_name AS norm, p.sha256 AS sha, p.path, e.endpoint, e.host, e.is_ip, d.ts
       FROM ${detectionsView(at.backend)} d JOIN detection_types t ON t.id = d.type_id JOIN jobs j ON j.id = d.job_ref JOIN processes p ON p.id = d.process_id
       JOIN endpoints e ON e.id = d.endpoint_id JOIN tenants tn ON tn.${at.backend === 'sqlite' ? 'id' : 'tenant_id'} = d.tenant_id WHERE tn.name = ?`, [input.tenant])) as Row[];
  const status = input.status ?? 'new';
  const since = input.since === undefined ? -Infinity : Date.parse(String(input.since));
  const until = input.until === undefined ? Infinity : Date.parse(String(input.until));
  const risky = riskyDestinations();
  const sel = rows.filter(
    (x) =>
      x.type === 'New-Outbound-Network-Call' &&
      (status === 'all' || x.status === { new: 0, suppressed: 1, resolved: 2 }[status]) &&
      x.ts >= since && x.ts < until &&
      (!input.owner || x.owner === input.owner) && (!input.repo || x.repo === input.repo),
  );
  const by = new Map<string, Row[]>();
  for (const x of sel) by.set(x.norm, [...(by.get(x.norm) ?? []), x]);
  const groups = [...by].map(([name, xs]) => {
    const epCount = new Map<string, number>();
    for (const x of xs) epCount.set(x.endpoint, (epCount.get(x.endpoint) ?? 0) + 1);
    const bins = new Map<string, number>();
    for (const x of xs) { const k = x.sha ?? `path:${x.path}`; bins.set(k, (bins.get(k) ?? 0) + 1); }
    return {
      process: name,
      count: xs.length,
      distinct_endpoints: epCount.size,
      distinct_direct_ips: new Set(xs.filter((x) => x.is_ip).map((x) => x.host)).size,
      // GitHub names without ASCII case, as the filters read them
      distinct_repos: new Set(xs.map((x) => `${asciiFold(x.owner)}/${asciiFold(x.repo)}`)).size,
      distinct_owners: new Set(xs.map((x) => asciiFold(x.owner))).size,
      first_seen: new Date(Math.min(...xs.map((x) => x.ts))).toISOString(),
      last_seen: new Date(Math.max(...xs.map((x) => x.ts))).toISOString(),
      risky_destinations_suppressed_by_process_rule: xs.filter((x) => risky.matchHost(x.host)).length,
      endpoints_sample: [...epCount].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, 10).map(([e]) => e),
      binaries: [...bins].map(([k, count]) => ({ k, count })).sort((a, b) => b.count - a.count || (a.k < b.k ? -1 : 1)).map((b) => b.count),
    } as unknown as Partial<ProcessGroup>;
  });
  const min = input.minCount ?? 2;
  return {
    total: sel.length,
    // a group under the minimum that calls a risky destination is shown anyway (min-count.test.ts covers impostors)
    groups: groups.filter((g) => g.count! >= min || g.risky_destinations_suppressed_by_process_rule! > 0).sort((a, b) => b.count! - a.count! || (a.process! < b.process! ? -1 : 1)),
  };
}

function project(g: ProcessGroup): Partial<ProcessGroup> {
  return {
    process: g.process, count: g.count, distinct_endpoints: g.distinct_endpoints, distinct_direct_ips: g.distinct_direct_ips,
    distinct_repos: g.distinct_repos, distinct_owners: g.distinct_owners, first_seen: g.first_seen, last_seen: g.last_seen,
    risky_destinations_suppressed_by_process_rule: g.risky_destinations_suppressed_by_process_rule, endpoints_sample: g.endpoints_sample,
    binaries: g.binaries.map((b) => b.count) as unknown as ProcessGroup['binaries'],
  };
}

async function all(store: OpenStore, input: AnalyzeInput): Promise<{ total: number; groups: Partial<ProcessGroup>[] }> {
  const groups: Partial<ProcessGroup>[] = [];
  let cursor: string | null = null;
  let total = -1;
  do {
    const res = await analyzeAnomalousCallsByProcess(store, { ...input, limit: 3, cursor });
    if (total >= 0) assert.equal(res.total_anomalies_scanned, total);
    total = res.total_anomalies_scanned;
    groups.push(...res.processes.map(project));
    cursor = res.next_cursor;
  } while (cursor);
  return { total, groups };
}

storeTest('analysis is exact against a brute-force reference (windows, filters, statuses, paging)', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, randomTenant(42));
    await ingestCalls(at, store, 'other', randomTenant(7).map((e) => ({ ...e, tenant: 'other' })));
    const rules = new RulesService(store);
    await rules.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { process: 'dockerd', host: '*.example.com' } }, 't');
    // (not the tailscaled / twingated binaries: their random traffic flags them all as suspected impostors)
    await rules.create(T, { detection_id: 'New-Outbound-Network-Call', conditions: { ip_address: '100.64.0.0/10', repo: 'api', process: 'c*' } }, 't');
    assert.equal(await rollupMismatchesOf(at), 0);
    const inputs: AnalyzeInput[] = [
      { tenant: T },
      { tenant: T, status: 'all', minCount: 1 },
      { tenant: T, status: 'suppressed' },
      { tenant: T, since: '2026-11-03T07:13:00.000Z', until: '2026-11-08T17:45:30.000Z' },
      { tenant: T, since: '2026-11-04T01:00:00.000Z', until: '2026-11-04T23:00:00.000Z', status: 'all' },
      { tenant: T, since: '2026-11-05T00:00:00.000Z' },
      { tenant: T, until: '2026-11-06T12:00:00.000Z', owner: 'globex' },
      { tenant: T, owner: 'acme', repo: 'web', minCount: 3 },
    ];
    for (const input of inputs) {
      const got = await all(store, input);
      const want = await brute(at, input);
      assert.equal(got.total, want.total, JSON.stringify(input));
      assert.deepEqual(got.groups, want.groups, JSON.stringify(input));
      assert.ok(want.groups.length > 0, JSON.stringify(input));
    }
    // The default query (no since/until/owner/repo) reads the coarse rollups; the same query with an
    // all-time `since` takes the fine-rollup path. Every field must agree, samples and impact included.
    for (const status of ['new', 'suppressed', 'all'] as const) {
      const coarse = await analyzeAnomalousCallsByProcess(store, { tenant: T, status, minCount: 1, limit: 100 }, { rules });
      const fine = await analyzeAnomalousCallsByProcess(store, { tenant: T, status, minCount: 1, limit: 100, since: '1970-01-01T00:00:00.000Z' }, { rules });
      assert.equal(coarse.total_anomalies_scanned, fine.total_anomalies_scanned, status);
      assert.ok(coarse.processes.length > 0, status);
      assert.deepEqual(coarse.processes, fine.processes, status);
      assert.equal(coarse.total_anomalies_scanned, (await brute(at, { tenant: T, status, minCount: 1 })).total, status);
    }
  } finally {
    await store.close();
  }
});
