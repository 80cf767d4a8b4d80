import assert from 'node:assert/strict';
import type { AnalysisAggregates, AnalysisScope } from '../../src/storage/analysis-port.js';
import { call, ingestCalls, proc, tailscaled, TS0 } from './helpers.js';
import { eachStore } from '../helpers/each-store.js';

const { storeTest } = eachStore();

/**
 * The analysis-aggregates port of each backend against its contract, on a real store: coarse and scanned
 * totals agree, refs resolve through the dictionaries, samples come newest first, and the filter's
 * domain semantics hold (absent types = every type; owner case-insensitive and spelt as stored).
 */

const T = 'port';
const DAY = 86_400_000;

async function sumScan(port: AnalysisAggregates, scope: AnalysisScope): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  await port.scan(scope, (rows) => {
    for (const r of rows) out.set(r[0], (out.get(r[0]) ?? 0) + r[3]);
  });
  return out;
}

storeTest('the analysis port: coarse totals equal the scan, refs resolve, samples newest first, scope semantics', async (at) => {
  const store = await at.open();
  try {
    const events = [];
    for (let i = 0; i < 6; i++) {
      events.push(call(T, 'api', 100 + i, TS0 + i * DAY + 1000, tailscaled(true), { domain: 'login.tailscale.com', port: 443 }, 'Acme'));
      events.push(call(T, 'web', 200 + i, TS0 + i * DAY + 2000, proc('curl'), { domain: `h${i % 3}.example.com`, port: 443 }, 'Acme'));
      events.push(call(T, 'web', 300 + i, TS0 + i * DAY + 3000, proc('curl'), { ip: '198.51.100.9', port: 8443 }, 'globex', 'test'));
    }
    await ingestCalls(at, store, T, events);
    const port = store.analysis;
    const NET = 'New-Outbound-Network-Call';
    assert.deepEqual(await port.scope('nobody', { types: [NET] }), { ok: false, missing: 'tenant' });
    assert.deepEqual(await port.scope(T, { types: ['Domain-Blocked'] }), { ok: false, missing: 'types' });

    const coarse = await port.scope(T, { types: [NET], statuses: ['new'] });
    assert.ok(coarse.ok && coarse.scope.coarse);
    if (!coarse.ok) return;
    const totals = await port.coarseTotals(coarse.scope);
    const variants = await port.variants(coarse.scope);
    const byName = new Map<string, number>();
    for (const t of totals) byName.set(variants.norm[t.variant]!, (byName.get(variants.norm[t.variant]!) ?? 0) + t.n);
    assert.deepEqual(Object.fromEntries(byName), { tailscaled: 6, curl: 12 });
    // the same scope as a scan (an open window forces the fine path) counts the same
    const fine = await port.scope(T, { types: [NET], statuses: ['new'], since: 0 });
    assert.ok(fine.ok && !fine.scope.coarse);
    if (!fine.ok) return;
    assert.deepEqual(Object.fromEntries(await sumScan(port, fine.scope)), Object.fromEntries(totals.map((t) => [t.variant, t.n])));

    const ts = totals.find((t) => variants.norm[t.variant] === 'tailscaled')!;
    assert.deepEqual(await port.firstLast(coarse.scope, ts.variant, ts.firstDay, ts.lastDay), [TS0 + 1000, TS0 + 5 * DAY + 1000]);
    const eps = await port.endpoints(coarse.scope);
    const seen = (await port.coarseBreakdown(coarse.scope, 'endpoint', ts.variant)).map(([ref, n]) => `${eps.endpoint[ref]} ${n}`);
    assert.deepEqual(seen, ['login.tailscale.com:443 6']);
    const samples = await port.samples(coarse.scope, ts.variant, 3);
    assert.deepEqual(samples.map((s) => [s.ts, s.owner, s.repo, s.endpoint, s.sha256, s.directIp]), [
      [TS0 + 5 * DAY + 1000, 'Acme', 'api', 'login.tailscale.com:443', 'a'.repeat(64), false],
      [TS0 + 4 * DAY + 1000, 'Acme', 'api', 'login.tailscale.com:443', 'a'.repeat(64), false],
      [TS0 + 3 * DAY + 1000, 'Acme', 'api', 'login.tailscale.com:443', 'a'.repeat(64), false],
    ]);

    // absent types = every type
    const any = await port.scope(T, {});
    assert.ok(any.ok);
    if (!any.ok) return;
    assert.equal((await port.coarseTotals(any.scope)).reduce((a, t) => a + t.n, 0), 18);
    // owner is case-insensitive, spelt as stored; workflow/job exact
    const acme = await port.scope(T, { types: [NET], owner: 'ACME' });
    assert.ok(acme.ok && !acme.scope.coarse);
    if (!acme.ok) return;
    assert.equal(await port.storedSpelling(acme.scope, 'owner', 'ACME'), 'Acme');
    assert.equal([...(await sumScan(port, acme.scope)).values()].reduce((a, b) => a + b, 0), 12);
    const job = await port.scope(T, { types: [NET], job: 'test' });
    assert.ok(job.ok);
    if (!job.ok) return;
    const jobRows = await sumScan(port, job.scope);
    assert.deepEqual([...jobRows.values()], [6]);
    const direct = (await port.samples(job.scope, [...jobRows.keys()][0]!, 1))[0]!;
    assert.deepEqual([direct.owner, direct.job, direct.directIp, direct.ip], ['globex', 'test', true, '198.51.100.9']);
  } finally {
    await store.close();
  }
});
