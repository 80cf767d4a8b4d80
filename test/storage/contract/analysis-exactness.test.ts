import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { tempDir } from '../../helpers.js';
import { backends } from './backends.js';
import { runIngest, engineConfigFrom } from '../../../src/cli/commands/ingest.js';
import { analyzeAnomalousCallsByProcess } from '../../../src/analysis/analyze-by-process.js';
import { openStore, type OpenStore } from '../../../src/storage/open-store.js';
import { resolveStoreLocation } from '../../../src/storage/location.js';
import type { AnalyzeInput, AnalyzeResult } from '../../../src/analysis/types.js';
import type { NetworkCallEvent } from '../../../src/domain/types.js';
import { randomTenant } from '../../analysis/random-tenant.js';
import { call, tailscaled, TS0 } from '../../analysis/helpers.js';

/**
 * The analysis on every backend over the same random tenants (VPN daemons and their impostors,
 * risky hosts, three owners, ~12 days; a second tenant alongside): every field of every page equal
 * to SQLite's for windows, owner / repo / job scopes and statuses, but for what needs the rules
 * service (no suggestion on PostgreSQL) and sample ids; the coarse and fine paths agree; the tenant's
 * impostors read through the port equal the rules layer's; and on PostgreSQL the coarse rollups are
 * exact GROUP BYs of the fine rollup, which is one of detections.
 */

const T = 'rand';
const tmp = tempDir();
after(() => tmp.cleanup());

function nativeLine(e: NetworkCallEvent): string {
  const c = e.ctx;
  return JSON.stringify({
    tenant: e.tenant, owner: c.owner, repo: c.repo, workflow: c.workflow, job: c.job, run_id: c.runId, run_attempt: c.runAttempt, job_id: c.jobId,
    timestamp: new Date(e.timestamp).toISOString(), domain: e.domain, ip: e.ip, port: e.port, process: e.process, status: e.status,
  });
}

const file = join(tmp.dir, 'tenants.ndjson');
// 'flag': the genuine tailscaled binary calls only its control plane in repo a, and a risky host in
// repo b: a view of repo a alone must still call it an impostor (the tenant's other evidence)
const flag = [
  ...[1, 2, 3].map((i) => call('flag', 'a', 500 + i, TS0 + i * 3_600_000, tailscaled(true), { domain: 'controlplane.tailscale.com', port: 443 })),
  call('flag', 'b', 600, TS0 + 5 * 3_600_000, tailscaled(true), { domain: 'webhook.site', port: 443 }),
];
writeFileSync(file, [...randomTenant(42, T), ...randomTenant(7, 'other'), ...flag].map(nativeLine).join('\n') + '\n');

const INPUTS: AnalyzeInput[] = [
  { tenant: T },
  { tenant: T, status: 'all', minCount: 1 },
  { tenant: T, since: '2026-11-03T07:13:00.000Z', until: '2026-11-08T17:45:30.000Z' },
  { tenant: T, since: '2026-11-04T01:00:00.000Z', until: '2026-11-04T23:00:00.000Z', status: 'all' },
  { tenant: T, since: '2026-11-05T00:00:00.000Z', samples: 3 },
  { tenant: T, until: '2026-11-06T12:00:00.000Z', owner: 'GLOBEX' },
  { tenant: T, owner: 'acme', repo: 'web', minCount: 3 },
  { tenant: T, filter: { types: ['New-Outbound-Network-Call'], statuses: ['new'], workflow: '.github/workflows/ci.yml', job: 'test' }, minCount: 1 },
  { tenant: 'other', minCount: 1 },
  { tenant: 'flag', repo: 'a', minCount: 1 },
  { tenant: 'nobody' },
];

async function pages(ports: OpenStore, input: AnalyzeInput): Promise<AnalyzeResult[]> {
  const rules = ports.analysisRules();
  const out: AnalyzeResult[] = [];
  let cursor: string | null = null;
  do {
    const r = await analyzeAnomalousCallsByProcess(ports, { ...input, limit: 3, cursor }, { rules });
    out.push(r);
    cursor = r.next_cursor;
  } while (cursor);
  return out;
}

/** Sample ids as '#': each store numbers its own rows. Everything else must be equal. */
function withoutIds(r: AnalyzeResult): AnalyzeResult {
  const c = JSON.parse(JSON.stringify(r)) as AnalyzeResult;
  for (const g of c.processes) for (const s of g.sample_detections) s.id = '#';
  return c;
}

const results = new Map<string, AnalyzeResult[][]>();

for (const backend of backends()) {
  test(`analysis is exact and equal across backends: ${backend.name}`, async () => {
    const store = await backend.create();
    const ports = await openStore(resolveStoreLocation(store.location, {}), 'create');
    try {
      const engine = { ...engineConfigFrom({}, {}), learningRuns: 0, promoteAfterRuns: 1_000_000 };
      await runIngest(ports, [file], { tenant: T, format: 'native', strict: false, defaults: {}, engine, progress: false });
      const outs: AnalyzeResult[][] = [];
      for (const input of INPUTS) outs.push(await pages(ports, input));
      results.set(backend.name, outs);
      assert.ok(outs[0]!.flatMap((p) => p.processes).some((g) => g.vpn_evidence.binaries.some((b) => b.verdict === 'impostor')), 'the tenant has impostors');
      const flagged = outs[INPUTS.findIndex((i) => i.tenant === 'flag')]![0]!.processes[0]!;
      assert.equal(flagged.count, 3);
      assert.deepEqual(flagged.vpn_evidence.binaries.map((b) => [b.verdict, b.contradicting]), [
        ['impostor', ["flagged from the tenant's other evidence: risky destination webhook.site"]],
      ]);

      // coarse (no window, no scope) and fine (an all-time window) paths agree
      for (const status of ['new', 'all'] as const) {
        const [coarse] = await pages(ports, { tenant: T, status, minCount: 1, limit: 100 });
        const [fine] = await pages(ports, { tenant: T, status, minCount: 1, limit: 100, since: '1970-01-01T00:00:00.000Z' });
        assert.ok(coarse!.processes.length > 0);
        assert.deepEqual(coarse!.processes, fine!.processes, status);
      }

      if (backend.name === 'sqlite') return;

      const ref = results.get('sqlite');
      assert.ok(ref, 'the SQLite run comes first');
      INPUTS.forEach((input, i) => {
        assert.deepEqual(outs[i]!.map(withoutIds), ref[i]!.map(withoutIds), JSON.stringify(input));
      });
      // the rollups are exact: coarse = GROUP BY fine, fine = GROUP BY detections
      const c = new pg.Client({ connectionString: store.location });
      await c.connect();
      try {
        for (const [table, col] of [['rollup_process_day', 'day'], ['rollup_process_endpoint', 'endpoint_id'], ['rollup_process_job', 'job_ref']]) {
          const key = `tenant_id, type_id, status, rule_id, process_id, ${col}`;
          const r = await c.query(
            `SELECT count(*)::int AS n FROM (SELECT ${key}, n FROM ${table} EXCEPT SELECT ${key}, sum(n) FROM detection_rollup GROUP BY ${key}
              UNION ALL SELECT ${key}, sum(n) FROM detection_rollup GROUP BY ${key} EXCEPT SELECT ${key}, n FROM ${table}) x`,
          );
          assert.equal(r.rows[0].n, 0, `${table} equals the GROUP BY of detection_rollup`);
        }
        const fine = await c.query(
          `SELECT count(*)::int AS n FROM (SELECT tenant_id, type_id, status, rule_id, floor(ts / 86400000.0)::int AS day, job_ref, process_id, endpoint_id, ip_id, count(*) AS n, min(ts), max(ts)
             FROM detections GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9
           EXCEPT SELECT tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts FROM detection_rollup) x`,
        );
        assert.equal(fine.rows[0].n, 0);
        // a statement that moves detections (as a rule will) keeps the coarse rollups in step
        await c.query(`UPDATE detection_rollup SET status = 1, rule_id = 9 WHERE tenant_id = (SELECT tenant_id FROM tenants WHERE name = $1) AND day % 2 = 0`, [T]);
        await c.query(`DELETE FROM detection_rollup WHERE tenant_id = (SELECT tenant_id FROM tenants WHERE name = 'other') AND day % 3 = 0`);
        for (const [table, col] of [['rollup_process_day', 'day'], ['rollup_process_endpoint', 'endpoint_id'], ['rollup_process_job', 'job_ref']]) {
          const key = `tenant_id, type_id, status, rule_id, process_id, ${col}`;
          const r = await c.query(
            `SELECT count(*)::int AS n FROM (SELECT ${key}, n FROM ${table} EXCEPT SELECT ${key}, sum(n) FROM detection_rollup GROUP BY ${key}
              UNION ALL SELECT ${key}, sum(n) FROM detection_rollup GROUP BY ${key} EXCEPT SELECT ${key}, n FROM ${table}) x`,
          );
          assert.equal(r.rows[0].n, 0, `${table} follows updates and deletes of detection_rollup`);
        }
      } finally {
        await c.end();
      }
    } finally {
      await ports.close();
    }
  });
}

for (const backend of backends()) {
  test(`a binary flagged by evidence ingested after an analysis is an impostor in the next one (${backend.name})`, async () => {
    const store = await backend.create();
    const ports = await openStore(resolveStoreLocation(store.location, {}), 'create');
    try {
      const engine = { ...engineConfigFrom({}, {}), learningRuns: 0, promoteAfterRuns: 1_000_000 };
      const ingestCalls = async (name: string, calls: NetworkCallEvent[]) => {
        const f = join(tmp.dir, `${backend.name}-${name}.ndjson`);
        writeFileSync(f, calls.map(nativeLine).join('\n') + '\n');
        await runIngest(ports, [f], { tenant: 'late', format: 'native', strict: false, defaults: {}, engine, progress: false });
      };
      const verdicts = async () => {
        const [page] = await pages(ports, { tenant: 'late', repo: 'a', minCount: 1 });
        return page!.processes[0]!.vpn_evidence.binaries.map((b) => b.verdict);
      };
      await ingestCalls('first', [1, 2, 3].map((i) => call('late', 'a', 700 + i, TS0 + i * 3_600_000, tailscaled(true), { domain: 'controlplane.tailscale.com', port: 443 })));
      assert.deepEqual(await verdicts(), ['genuine']);
      assert.deepEqual(await verdicts(), ['genuine']);
      await ingestCalls('second', [call('late', 'b', 800, TS0 + 9 * 3_600_000, tailscaled(true), { domain: 'webhook.site', port: 443 })]);
      assert.deepEqual(await verdicts(), ['impostor']);
    } finally {
      await ports.close();
    }
  });
}
