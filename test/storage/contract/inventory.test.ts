import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backends, type Connection } from './backends.js';
import { JOB, ONLY_GLOBEX, T, at, seedInventory } from './inventory-fixture.js';
import { HOLDER, proc } from './fixture.js';
import { processVariantKey, type IngestPort, type JobKey } from '../../../src/storage/ingest-port.js';
import { InventoryError } from '../../../src/domain/indicator.js';
import type { EndpointCall, RunSummary } from '../../../src/storage/inventory-port.js';

/**
 * InventoryRepository contract, identical on every backend: seeded through the ingest port
 * (inventory-fixture.ts), every expected answer worked out by hand from the fixture. The second
 * tenant holds the same world plus one call, so a query that leaked across tenants counts twice.
 */

const tampered = (parts: unknown) => Buffer.from(`i1:${JSON.stringify(parts)}`).toString('base64url');
const invalid = (c: string) => (e: unknown) => e instanceof InventoryError && e.message === `invalid cursor "${c}": pass the next_cursor value returned by the previous page, or omit it to start over`;

async function allCalls(c: Connection, q: { endpoint: string; owner?: string }, limit: number): Promise<{ pages: EndpointCall[][]; totals: number[] }> {
  const pages: EndpointCall[][] = [];
  const totals: number[] = [];
  let cursor: string | null = null;
  do {
    const p = await c.inventory.findEndpointCalls('acme', { ...q, limit, cursor });
    pages.push(p.calls);
    totals.push(p.total);
    cursor = p.next_cursor;
  } while (cursor && pages.length < 50);
  return { pages, totals };
}

async function allRuns(c: Connection, q: { owner: string; repo?: string }, limit: number): Promise<{ pages: RunSummary[][]; totals: number[] }> {
  const pages: RunSummary[][] = [];
  const totals: number[] = [];
  let cursor: string | null = null;
  do {
    const p = await c.inventory.listRecentRuns('acme', { ...q, limit, cursor });
    pages.push(p.runs);
    totals.push(p.total);
    cursor = p.next_cursor;
  } while (cursor && pages.length < 50);
  return { pages, totals };
}

const call = (x: EndpointCall) => `${x.timestamp} ${x.endpoint} ${x.owner}/${x.repo} ${x.job} run ${x.run_id} leg ${x.job_id} ${x.process}${x.blocked ? ' blocked' : ''}`;

for (const backend of backends()) {
  test(`${backend.name}: InventoryRepository contract`, async (t) => {
    const store = await backend.create();
    const c = await store.connect();
    try {
      await seedInventory(c.ingest());
      const inv = c.inventory;

      await t.test('a domain covers itself and its subdomains on every port: baseline entries and calls, ordered and counted', async () => {
        const r = await inv.checkIocInBaseline('acme', { indicator: ' GitHub.com ', limit: 10 });
        assert.equal(r.kind, 'domain');
        assert.equal(r.truncated, false);
        // in-baseline first, most runs first, then owner/repo/workflow/job/endpoint byte-wise
        assert.deepEqual(r.baseline.map((b) => [b.owner, b.repo, b.job, b.endpoint, b.runs_seen, b.in_baseline, b.source]), [
          ['other-org', 'tool', 'lint', 'github.com:443', 3, true, 'learned'],
          ['acme', 'api', 'build', 'github.com:443', 2, true, 'learned'],
          ['Acme', 'Web', 'deploy', 'github.com:8443', 0, true, 'expected'],
          ['acme', 'api', 'build', 'api.github.com:443', 1, false, 'learned'],
          ['acme', 'api', 'test', 'github.com:443', 1, false, 'learned'],
        ]);
        assert.equal(r.baseline_total, 5);
        assert.deepEqual([r.baseline[1]!.workflow, r.baseline[1]!.first_seen, r.baseline[1]!.last_seen], ['.github/workflows/ci.yml', at(1), at(1)]);
        // most runs first (each leg of a matrix run counts), then endpoint, owner, repo
        assert.deepEqual(r.calls, [
          { endpoint: 'github.com:443', owner: 'acme', repo: 'api', runs: 4, blocked_runs: 0, processes: ['curl', 'python3'], first_seen: at(1), last_seen: at(11) },
          { endpoint: 'api.github.com:443', owner: 'acme', repo: 'api', runs: 1, blocked_runs: 0, processes: ['curl'], first_seen: at(2), last_seen: at(2) },
          { endpoint: 'github.com:443', owner: 'other-org', repo: 'tool', runs: 1, blocked_runs: 0, processes: ['curl'], first_seen: at(13), last_seen: at(13) },
          { endpoint: 'github.com:8443', owner: 'Acme', repo: 'Web', runs: 1, blocked_runs: 0, processes: ['node'], first_seen: at(8), last_seen: at(8) },
        ]);
        assert.equal(r.calls_total, 4);
        assert.deepEqual(r.detections, { new: 0, suppressed: 0, resolved: 1 });
      });

      await t.test('owner scoping is case-insensitive; limits cut the lists, not the totals', async () => {
        const r = await inv.checkIocInBaseline('acme', { indicator: 'github.com', owner: 'ACME', limit: 2 });
        assert.deepEqual(r.baseline.map((b) => `${b.owner}/${b.repo}/${b.job} ${b.endpoint}`), ['acme/api/build github.com:443', 'Acme/Web/deploy github.com:8443']);
        assert.equal(r.baseline_total, 4);
        assert.deepEqual(r.calls.map((x) => `${x.endpoint} ${x.owner}/${x.repo} ${x.runs}`), ['github.com:443 acme/api 4', 'api.github.com:443 acme/api 1']);
        assert.equal(r.calls_total, 3);
        const other = await inv.checkIocInBaseline('acme', { indicator: 'webhook.site', owner: 'other-org', limit: 5 });
        assert.deepEqual([other.calls, other.calls_total, other.detections], [[], 0, { new: 0, suppressed: 0, resolved: 0 }]);
      });

      await t.test('every indicator kind: ip in any spelling, cidr, host:port, glob, substring', async () => {
        const cases: [string, string, string[], { new: number; suppressed: number; resolved: number }][] = [
          ['2001:DB8:0:0::1', 'ip', ['[2001:db8::1]:443'], { new: 0, suppressed: 0, resolved: 0 }],
          ['2001:0db8:0000:0000:0000:0000:0000:0001', 'ip', ['[2001:db8::1]:443'], { new: 0, suppressed: 0, resolved: 0 }],
          ['::ffff:140.82.112.9', 'ip', ['140.82.112.9:443'], { new: 1, suppressed: 0, resolved: 0 }],
          ['140.82.112.9', 'ip', ['140.82.112.9:443'], { new: 1, suppressed: 0, resolved: 0 }],
          ['140.82.0.0/16', 'cidr', ['140.82.112.9:443'], { new: 1, suppressed: 0, resolved: 0 }],
          ['100.64.0.0/10', 'cidr', ['100.64.0.7:41641'], { new: 0, suppressed: 1, resolved: 0 }],
          ['2001:db8::/32', 'cidr', ['[2001:db8::1]:443'], { new: 0, suppressed: 0, resolved: 0 }],
          ['github.com:8443', 'endpoint', ['github.com:8443'], { new: 0, suppressed: 0, resolved: 0 }],
          ['*.ngrok.io', 'glob', ['evil.ngrok.io:443'], { new: 1, suppressed: 0, resolved: 0 }],
          ['gist.*:443', 'glob', ['gist.githubusercontent.com:443'], { new: 1, suppressed: 0, resolved: 0 }],
          ['python', 'substring', ['files.pythonhosted.org:443'], { new: 0, suppressed: 0, resolved: 0 }],
          ['140.82.112.99', 'ip', [], { new: 0, suppressed: 0, resolved: 0 }],
          ['hub.com', 'domain', [], { new: 0, suppressed: 0, resolved: 0 }],
        ];
        for (const [indicator, kind, endpoints, detections] of cases) {
          const r = await inv.checkIocInBaseline('acme', { indicator, limit: 10 });
          assert.deepEqual([r.kind, r.calls.map((x) => x.endpoint), r.detections], [kind, endpoints, detections], indicator);
        }
        await assert.rejects(inv.checkIocInBaseline('acme', { indicator: '10.0.0.0/99', limit: 5 }), (e) => e instanceof InventoryError && /malformed CIDR "10.0.0.0\/99"/.test(e.message));
        await assert.rejects(inv.findEndpointCalls('acme', { endpoint: '  ', limit: 5 }), InventoryError);
      });

      await t.test('endpoint calls: newest first, each matrix leg with its own job id, paged to the end with a constant total', async () => {
        const want = [
          `${at(13)} github.com:443 other-org/tool lint run 401 leg gh-401 curl`,
          `${at(11)} github.com:443 acme/api test run 301 leg gh-301 curl`,
          `${at(5)} github.com:443 acme/api build run 102 leg gh-102b curl`,
          `${at(4)} github.com:443 acme/api build run 102 leg gh-102a python3`,
          `${at(1)} github.com:443 acme/api build run 101 leg gh-101 curl`,
        ];
        const first = await inv.findEndpointCalls('acme', { endpoint: 'github.com:443', limit: 10 });
        assert.deepEqual([first.kind, first.total, first.distinct_runs, first.next_cursor, first.calls.map(call)], ['endpoint', 5, 5, null, want]);
        assert.deepEqual(
          first.calls[3],
          { endpoint: 'github.com:443', owner: 'acme', repo: 'api', workflow: '.github/workflows/ci.yml', job: 'build', run_id: '102', run_attempt: 1, job_id: 'gh-102a', process: 'python3', process_sha256: 'sha-py',
            process_path: '/usr/bin/python3', process_parent_chain: [{ name: 'bash', path: '/usr/bin/bash' }], blocked: false, timestamp: at(4) },
        );
        for (const limit of [1, 2, 3]) {
          const { pages, totals } = await allCalls(c, { endpoint: 'github.com:443' }, limit);
          assert.deepEqual(pages.flat().map(call), want, `pages of ${limit}`);
          assert.ok(pages.every((p) => p.length > 0) && pages.slice(0, -1).every((p) => p.length === limit), `full pages of ${limit}`);
          assert.ok(totals.every((n) => n === 5));
        }
        const acme = await allCalls(c, { endpoint: 'github.com:443', owner: 'ACME' }, 2);
        assert.deepEqual(acme.pages.flat().map(call), want.slice(1));
        assert.ok(acme.totals.every((n) => n === 4));
      });

      await t.test('a call both blocked and allowed in one run at one time is two calls, and paging visits both', async () => {
        const { pages, totals } = await allCalls(c, { endpoint: 'webhook.site' }, 1);
        assert.deepEqual(pages.map((p) => p.map(call)), [[`${at(3)} webhook.site:443 acme/api build run 101 leg gh-101 curl blocked`], [`${at(3)} webhook.site:443 acme/api build run 101 leg gh-101 curl`]]);
        assert.deepEqual(totals, [2, 2]);
        const r = await inv.findEndpointCalls('acme', { endpoint: 'webhook.site', limit: 5 });
        assert.equal(r.distinct_runs, 1);
        const ioc = await inv.checkIocInBaseline('acme', { indicator: 'webhook.site', limit: 5 });
        assert.deepEqual(ioc.calls.map((x) => [x.runs, x.blocked_runs]), [[1, 1]]);
      });

      await t.test('a tampered cursor is an InventoryError with the same message on every backend', async () => {
        const p = await inv.findEndpointCalls('acme', { endpoint: 'github.com:443', limit: 1 });
        assert.ok(p.next_cursor);
        const bad = ['not-a-cursor', tampered([1, 2]), tampered(['a', 'b', 'c', 'd', 'e']), tampered([1.5, 2, 3, 4, 5]), `${p.next_cursor}x`];
        for (const cursor of bad) await assert.rejects(inv.findEndpointCalls('acme', { endpoint: 'github.com:443', limit: 1, cursor }), invalid(cursor), cursor);
        const runs = await inv.listRecentRuns('acme', { owner: 'acme', limit: 1 });
        for (const cursor of ['not-a-cursor', p.next_cursor, tampered(['x', 1])]) {
          await assert.rejects(inv.listRecentRuns('acme', { owner: 'acme', limit: 1, cursor }), invalid(cursor), cursor);
        }
        assert.ok(runs.next_cursor);
      });

      await t.test('repos using an endpoint within an org (any spelling of its name)', async () => {
        const r = await inv.findReposUsingEndpoint('acme', { owner: 'acme', endpoint: 'github.com' });
        assert.deepEqual(r, {
          kind: 'domain',
          truncated: false,
          repos: [
            {
              owner: 'acme', repo: 'api', matched_endpoints: ['api.github.com:443', 'github.com:443'], runs: 4, jobs: 2,
              workflows: ['.github/workflows/ci.yml'], processes: ['curl', 'python3'], in_baseline_jobs: 1, first_seen: at(1), last_seen: at(11),
            },
            {
              owner: 'acme', repo: 'Web', matched_endpoints: ['github.com:8443'], runs: 1, jobs: 1,
              workflows: ['.github/workflows/deploy.yml'], processes: ['node'], in_baseline_jobs: 1, first_seen: at(8), last_seen: at(8),
            },
          ],
        });
        assert.deepEqual((await inv.findReposUsingEndpoint('acme', { owner: 'other-org', endpoint: 'webhook.site' })).repos, []);
      });

      await t.test('orgs: as GitHub spelled each owner, with repos, jobs, runs and the last run', async () => {
        assert.deepEqual(await inv.listOrgs('acme'), [
          { owner: 'Acme', repos: 1, jobs: 1, runs: 1, last_run: at(10) },
          { owner: 'acme', repos: 1, jobs: 2, runs: 4, last_run: at(12) },
          { owner: 'other-org', repos: 1, jobs: 1, runs: 1, last_run: at(14) },
          { owner: 'quiet-org', repos: 1, jobs: 1, runs: 0, last_run: null },
        ]);
      });

      await t.test('recent runs: newest first, matrix legs apart, with their detections, paged to the end', async () => {
        const leg = (x: RunSummary) => `${x.owner}/${x.repo} ${x.job} ${x.run_id}#${x.run_attempt} ${x.job_id} ${x.started_at}..${x.ended_at} ${x.completed ? 'completed' : 'open'}${x.learning ? ' learning' : ''} ${x.detections}/${x.new_detections}`;
        const want = [
          `acme/api test 301#1 gh-301 ${at(11)}..${at(12)} open 0/0`,
          `Acme/Web deploy 201#1 gh-201 ${at(8)}..${at(10)} open 2/1`,
          `acme/api build 102#1 gh-102b ${at(5)}..${at(7)} open learning 1/1`,
          `acme/api build 102#1 gh-102a ${at(4)}..${at(6)} open learning 0/0`,
          `acme/api build 101#1 gh-101 ${at(1)}..${at(3)} completed learning 2/1`,
        ];
        for (const limit of [1, 2, 5, 10]) {
          const { pages, totals } = await allRuns(c, { owner: 'ACME' }, limit);
          assert.deepEqual(pages.flat().map(leg), want, `pages of ${limit}`);
          assert.ok(totals.every((n) => n === 5));
          assert.ok(pages.slice(0, -1).every((p) => p.length === limit));
        }
        const api = await allRuns(c, { owner: 'acme', repo: 'API' }, 3);
        assert.deepEqual(api.pages.flat().map(leg), want.filter((w) => w.startsWith('acme/api')));
        assert.ok(api.totals.every((n) => n === 4));
        assert.deepEqual(await inv.listRecentRuns('acme', { owner: 'quiet-org', limit: 5 }), { total: 0, runs: [], next_cursor: null });
      });

      await t.test("tenant isolation: the second tenant's identical data never appears, and its own answers are its own", async () => {
        const mine = await inv.checkIocInBaseline('acme', { indicator: 'only-globex.example', limit: 5 });
        assert.deepEqual([mine.baseline_total, mine.calls_total], [0, 0]);
        assert.equal((await inv.findEndpointCalls('acme', { endpoint: ONLY_GLOBEX, limit: 5 })).total, 0);
        // 7 calls in 6 runs each (run 101 called github.com and api.github.com), never 14 in 12
        for (const tenant of ['acme', 'globex']) {
          const r = await inv.findEndpointCalls(tenant, { endpoint: 'github.com', limit: 10 });
          assert.deepEqual([r.total, r.distinct_runs, r.calls.length], [7, 6, 7], tenant);
        }
        assert.equal((await inv.findEndpointCalls('globex', { endpoint: ONLY_GLOBEX, limit: 5 })).calls[0]!.timestamp, at(15));
        const g = await inv.listOrgs('globex');
        assert.deepEqual(g.map((x) => [x.owner, x.runs]), [['Acme', 1], ['acme', 4], ['other-org', 1], ['quiet-org', 0]]);
        assert.equal(g[1]!.last_run, at(15), "globex's own run 101 lasts until its extra call");
        assert.equal((await inv.listRecentRuns('globex', { owner: 'acme', limit: 10 })).total, 5);
        assert.equal((await inv.findReposUsingEndpoint('globex', { owner: 'acme', endpoint: 'github.com' })).repos[0]!.runs, 4);
        const ioc = await inv.checkIocInBaseline('globex', { indicator: 'github.com', limit: 10 });
        assert.deepEqual([ioc.baseline_total, ioc.calls_total, ioc.calls[0]!.runs, ioc.detections.resolved], [5, 4, 4, 1]);
      });

      await t.test('an unknown tenant has nothing', async () => {
        const r = await inv.checkIocInBaseline('nobody', { indicator: 'github.com', limit: 5 });
        assert.deepEqual([r.kind, r.baseline, r.calls, r.detections], ['domain', [], [], { new: 0, suppressed: 0, resolved: 0 }]);
        assert.deepEqual(await inv.findEndpointCalls('nobody', { endpoint: 'github.com', limit: 5 }), { kind: 'domain', truncated: false, total: 0, distinct_runs: 0, calls: [], next_cursor: null });
        assert.deepEqual(await inv.findReposUsingEndpoint('nobody', { owner: 'acme', endpoint: 'github.com' }), { kind: 'domain', truncated: false, repos: [] });
        assert.deepEqual(await inv.listOrgs('nobody'), []);
        assert.deepEqual(await inv.listRecentRuns('nobody', { owner: 'acme', limit: 5 }), { total: 0, runs: [], next_cursor: null });
      });
    } finally {
      await c.close();
    }
  });
}

/** One run of one job in `tenant` calling each endpoint once per process, written through the ingest port. */
async function seedCalls(port: IngestPort, tenant: string, endpoints: string[], job: JobKey = JOB.build, processes = [proc('curl', '/usr/bin/curl', 'sha-curl')]): Promise<void> {
  const lease = await port.leases.acquireIngestLease(tenant, HOLDER);
  const scope = await port.beginSource({ atomic: false });
  try {
    const ti = await scope.tenant(tenant);
    const expect = (await ti.read({ jobs: [], runs: [], observations: [] })).versions;
    await ti.write({
      lease: { token: lease.token, ttlMs: lease.ttlMs }, expect, newJobs: [{ tempRef: -1, key: job }],
      newRuns: [{ tempRef: -2, jobRef: -1, runId: '1', runAttempt: 1, ghJobId: null, firstTs: T, lastTs: T, learning: true, completed: false, expected: [] }],
      runSpans: [], completedRuns: [], jobStates: [], baseline: [], detections: [], imported: [],
      observations: endpoints.flatMap((endpoint) =>
        processes.map((p) => ({ runRef: -2, endpoint, ip: null, process: p, variantKey: processVariantKey(p), blocked: false, protocol: 'tcp' as const, ts: T })),
      ),
    });
    await scope.commit();
  } finally {
    await lease.release();
  }
}

for (const backend of backends()) {
  test(`${backend.name}: another tenant's endpoints never count toward a lookup's cap`, async () => {
    const store = await backend.create();
    const c = await store.connect();
    try {
      // 2,001 matching endpoints in globex, written first; one in acme
      await seedCalls(c.ingest(), 'globex', Array.from({ length: 2001 }, (_, i) => `n${i}.zz.example:443`));
      await seedCalls(c.ingest(), 'acme', ['a.zz.example:443']);
      const mine = await c.inventory.checkIocInBaseline('acme', { indicator: 'zz.example', limit: 5 });
      assert.deepEqual([mine.truncated, mine.calls.map((x) => x.endpoint)], [false, ['a.zz.example:443']]);
      const calls = await c.inventory.findEndpointCalls('acme', { endpoint: '*.zz.example', limit: 5 });
      assert.deepEqual([calls.truncated, calls.total], [false, 1]);
      // past the cap a lookup answers for the first 2,000 endpoints and says so
      const theirs = await c.inventory.checkIocInBaseline('globex', { indicator: 'zz.example', limit: 5 });
      assert.deepEqual([theirs.truncated, theirs.calls_total], [true, 2000]);
    } finally {
      await c.close();
    }
  });
}

for (const backend of backends()) {
  test(`${backend.name}: names holding commas come back whole (process and workflow names are free text)`, async () => {
    const store = await backend.create();
    const c = await store.connect();
    try {
      const job = { owner: 'acme', repo: 'api', workflow: 'Build, test, and deploy', job: 'build' };
      await seedCalls(c.ingest(), 'acme', ['pkg.example:443'], job, [proc('curl', '/usr/bin/curl', 'sha-curl'), proc('tool,v2', '/opt/tool,v2', 'sha-tool')]);
      const ioc = await c.inventory.checkIocInBaseline('acme', { indicator: 'pkg.example', limit: 5 });
      assert.deepEqual(ioc.calls.map((x) => x.processes), [['curl', 'tool,v2']]);
      const repos = await c.inventory.findReposUsingEndpoint('acme', { owner: 'acme', endpoint: 'pkg.example' });
      assert.deepEqual(repos.repos.map((r) => [r.workflows, r.processes, r.matched_endpoints]), [[['Build, test, and deploy'], ['curl', 'tool,v2'], ['pkg.example:443']]]);
    } finally {
      await c.close();
    }
  });
}

for (const backend of backends()) {
  test(`${backend.name}: one binary under two parent chains in one run is two calls, each naming its chain, and paging visits both`, async () => {
    const store = await backend.create();
    const c = await store.connect();
    try {
      const curl = proc('curl', '/usr/bin/curl', 'sha-curl');
      const fromNpm = { ...curl, parentChain: [{ name: 'node', path: '/usr/bin/node' }, { name: 'npm', path: '/usr/bin/npm' }] };
      await seedCalls(c.ingest(), 'acme', ['pkg.example:443'], JOB.build, [curl, fromNpm]);
      const { pages, totals } = await allCalls(c, { endpoint: 'pkg.example' }, 1);
      assert.deepEqual(totals, [2, 2]);
      const rows = pages.flat();
      // the rows differed in nothing but an internal id: apparent duplicates
      assert.equal(new Set(rows.map((x) => JSON.stringify(x))).size, 2, 'two rows, told apart');
      assert.deepEqual(
        rows.map((x) => [x.process, x.process_path, x.process_sha256, x.process_parent_chain.map((p) => p.name).join('<')]).sort(),
        [['curl', '/usr/bin/curl', 'sha-curl', 'bash'], ['curl', '/usr/bin/curl', 'sha-curl', 'node<npm']],
      );
      const one = await c.inventory.findEndpointCalls('acme', { endpoint: 'pkg.example', limit: 5 });
      assert.deepEqual([one.total, one.distinct_runs, one.next_cursor], [2, 1, null]);
      assert.deepEqual(one.calls, rows, 'pages of one visit the same rows in the same order as one page');
    } finally {
      await c.close();
    }
  });
}
