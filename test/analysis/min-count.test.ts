import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { join } from 'node:path';
import { analyzeAnomalousCallsByProcess } from '../../src/analysis/analyze-by-process.js';
import { renderAnalysisTable } from '../../src/analysis/render.js';
import { RulesService } from '../../src/rules/service.js';
import { call, ingestCalls, proc, tailscaled, TS0 } from './helpers.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import { eachStore } from '../helpers/each-store.js';
import { runCli, tempDir } from '../helpers.js';

const { storeTest } = eachStore();

/**
 * The minimum count cuts noise, never what matters most: a process group under it that calls a
 * risky destination, or whose binary is a suspected impostor, is shown anyway and named as such,
 * in the JSON note and in the table; what is left out is said to hold neither.
 */

const T = 'mincount';

function fixture(): NetworkCallEvent[] {
  const evs: NetworkCallEvent[] = [];
  // a genuine daemon with enough detections to pass any minimum used here
  for (let run = 1; run <= 3; run++) evs.push(call(T, 'api', run, TS0 + run * 3_600_000, tailscaled(true), { domain: `derp${run}.tailscale.com`, port: 443 }));
  // one call each: to webhook.site; an impostor's (a renamed binary started by npm); and plain noise
  evs.push(call(T, 'api', 4, TS0 + 4 * 3_600_000, proc('python3'), { domain: 'webhook.site', port: 443 }));
  evs.push(call(T, 'api', 5, TS0 + 5 * 3_600_000, tailscaled(false), { ip: '45.61.136.14', port: 443 }));
  evs.push(call(T, 'api', 6, TS0 + 6 * 3_600_000, proc('wget'), { domain: 'downloads.example.org', port: 443 }));
  return evs;
}

storeTest('a group under the minimum count is shown when it calls a risky destination or is a suspected impostor; the rest is said to hold neither', async (at) => {
  const store = await at.open();
  try {
    await ingestCalls(at, store, T, fixture());
    const rules = new RulesService(store);
    const r = await analyzeAnomalousCallsByProcess(store, { tenant: T, minCount: 2 }, { rules });
    assert.equal(r.total_anomalies_scanned, 6);
    const byName = new Map(r.processes.map((p) => [p.process, p]));
    // the impostor shares the daemon's name: its group has 4 detections and passes the minimum
    assert.deepEqual([...byName.keys()], ['tailscaled', 'python3']);
    assert.equal(byName.get('python3')!.risky_destinations_suppressed_by_process_rule, 1);
    assert.match(r.note, /1 group\(s\) with fewer than 2 detection\(s\) are shown anyway because they call a risky destination or are suspected impostors: python3\./);
    assert.match(r.note, /1 group\(s\) with fewer than 2 detection\(s\) \(1 detection\(s\)\) are omitted; none of them calls a risky destination or is a suspected impostor\./);
    const table = renderAnalysisTable(r);
    assert.match(table, /Shown below the minimum count because they call a risky destination or are suspected impostors: python3/);
    assert.match(table, /1 detection\(s\) in groups below the minimum count are not shown; none calls a risky destination or is a suspected impostor/);

    // a minimum above the daemon's count: the impostor's binary alone keeps its group in view
    const high = await analyzeAnomalousCallsByProcess(store, { tenant: T, minCount: 10 }, { rules });
    assert.deepEqual(high.processes.map((p) => p.process), ['tailscaled', 'python3']);
    assert.equal(high.processes[0]!.name_impersonation_suspected, true);
    assert.match(high.note, /shown anyway because they call a risky destination or are suspected impostors: tailscaled, python3\./);
    // paged one group at a time: the same two, in the same order
    const first = await analyzeAnomalousCallsByProcess(store, { tenant: T, minCount: 10, limit: 1 }, { rules });
    const second = await analyzeAnomalousCallsByProcess(store, { tenant: T, minCount: 10, limit: 1, cursor: first.next_cursor }, { rules });
    assert.deepEqual([...first.processes, ...second.processes].map((p) => p.process), ['tailscaled', 'python3']);
    assert.equal(second.next_cursor, null);
    // a filtered analysis (the streaming scan, not the coarse totals) keeps them too
    const filtered = await analyzeAnomalousCallsByProcess(store, { tenant: T, minCount: 10, repo: 'api' }, { rules });
    assert.deepEqual(filtered.processes.map((p) => p.process), ['tailscaled', 'python3']);
  } finally {
    await store.close();
  }
});

test('the built CLI: one call to webhook.site and one renamed daemon stay in the analyze table and JSON under the default minimum', () => {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const line = (run: number, name: string, path: string, sha: string, dest: Record<string, unknown>, parent = { name: 'bash' }) =>
    JSON.stringify({
      owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: String(run), run_attempt: 1,
      timestamp: `2026-11-0${run}T10:00:00Z`, port: 443, process: { name, path, sha256: sha.repeat(64), parent }, ...dest,
    });
  const file = tmp.file('calls.ndjson', [
    line(1, 'tailscaled', '/usr/sbin/tailscaled', 'b', { domain: 'derp1.tailscale.com' }, { name: 'sudo' }),
    line(2, 'tailscaled', '/usr/sbin/tailscaled', 'b', { domain: 'derp2.tailscale.com' }, { name: 'sudo' }),
    line(3, 'python3', '/usr/bin/python3', 'c', { domain: 'webhook.site' }),
    line(4, 'cloudflared', '/tmp/.c/cloudflared', 'e', { domain: 'api.github.com' }, { name: 'node' }),
    line(5, 'wget', '/usr/bin/wget', 'f', { domain: 'downloads.example.org' }),
  ].join('\n') + '\n');
  const db = join(tmp.dir, 'min.db');
  const ingest = runCli(['ingest', file, '--db', db, '--format', 'native', '--learning-runs', '0']);
  assert.equal(ingest.status, 0, ingest.stderr);
  const table = runCli(['analyze', '--db', db]);
  assert.equal(table.status, 0, table.stderr);
  assert.match(table.stdout, /^python3 /m);
  assert.match(table.stdout, /^cloudflared /m);
  assert.doesNotMatch(table.stdout, /^wget /m);
  assert.match(table.stdout, /Shown below the minimum count because they call a risky destination or are suspected impostors: cloudflared, python3/);
  assert.match(table.stdout, /1 detection\(s\) in groups below the minimum count are not shown/);
  const json = runCli(['analyze', '--db', db, '--json']);
  assert.equal(json.status, 0, json.stderr);
  assert.deepEqual((JSON.parse(json.stdout) as { processes: { process: string }[] }).processes.map((p) => p.process), ['tailscaled', 'cloudflared', 'python3']);
});
