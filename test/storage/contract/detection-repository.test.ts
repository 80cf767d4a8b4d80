import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectionQueryKey } from '../../../src/storage/detection-cursor.js';
import { backends, type Connection } from './backends.js';
import { BASELINE, COMPLETED, DETECTIONS, JOBS, T0, VERDICT, seed, seedTenant, type FixtureDetection } from './fixture.js';
import type { DetectionFilter } from '../../../src/storage/store.js';
import type { Detection } from '../../../src/domain/types.js';

/**
 * DetectionRepository contract, identical on every backend: the store is seeded through the ingest
 * port, and every expected answer is computed from the fixture description.
 */

const H = 3_600_000;

/** newest first; ties (same time) keep insertion order reversed, as ids grow with insertion */
function expected(tenant: string, keep: (x: FixtureDetection) => boolean): FixtureDetection[] {
  return DETECTIONS.map((x, i) => ({ x, i }))
    .filter(({ x }) => x.tenant === tenant && keep(x))
    .sort((a, b) => b.x.ts - a.x.ts || b.i - a.i)
    .map(({ x }) => x);
}

function same(got: Detection[], want: FixtureDetection[], what: string): void {
  assert.deepEqual(
    got.map((g) => `${g.timestamp} ${g.detection_id} ${g.endpoint} ${g.tool.name} ${g.status}`),
    want.map((w) => `${new Date(w.ts).toISOString()} ${w.type} ${w.endpoint} ${w.process.name} ${w.status}`),
    what,
  );
}

async function all(c: Connection, tenant: string, f: DetectionFilter, limit: number): Promise<{ pages: Detection[][]; totals: number[] }> {
  const pages: Detection[][] = [];
  const totals: number[] = [];
  let cursor: string | null = null;
  do {
    const p = await c.detections.list(tenant, f, limit, cursor);
    pages.push(p.detections);
    totals.push(p.total);
    cursor = p.nextCursor;
  } while (cursor && pages.length < 50);
  return { pages, totals };
}

for (const backend of backends()) {
  test(`${backend.name}: DetectionRepository contract`, async (t) => {
    const store = await backend.create();
    const c = await store.connect();
    try {
      const refs = await seed(c.ingest());

      await t.test('tenants are listed by name; an unknown tenant has nothing', async () => {
        assert.deepEqual(await c.detections.tenants(), ['acme', 'globex']);
        assert.deepEqual(await c.detections.list('nobody', {}, 10), { detections: [], total: 0, nextCursor: null });
        assert.equal(await c.detections.get('nobody', '1'), null);
        assert.deepEqual(await c.detections.baselines('nobody', {}), []);
      });

      await t.test('list: newest first, exact total, and a detection carries its whole context', async () => {
        const p = await c.detections.list('acme', {}, 100);
        same(p.detections, expected('acme', () => true), 'acme, unfiltered');
        assert.equal(p.total, 14);
        assert.equal(p.nextCursor, null);
        const blocked = p.detections.find((d) => d.endpoint === 'webhook.site:443')!;
        assert.equal(blocked.matched_policy, VERDICT.matchedPolicy, 'the producer verdict of a blocked call');
        assert.equal(blocked.reason, VERDICT.reason);
        const direct = p.detections.find((d) => d.endpoint === '100.64.0.7:41641')!;
        assert.deepEqual(
          { host: direct.host, ip: direct.ip_address, direct: direct.direct_ip_address, port: direct.port, protocol: direct.protocol, job_id: direct.job_id, run: direct.run_id },
          { host: null, ip: '100.64.0.7', direct: '100.64.0.7', port: 41641, protocol: 'udp', job_id: 'gh-1001', run: '1001' },
        );
        assert.deepEqual(direct.tool, { name: 'tailscaled', normalized_name: 'tailscaled', path: '/usr/sbin/tailscaled', sha256: 'sha-ts', parent: [{ name: 'bash', path: '/usr/bin/bash' }] });
        assert.deepEqual(direct.expected_outbound_connections, ['github.com:443']);
        const named = p.detections.find((d) => d.endpoint === 'controlplane.tailscale.com:443')!;
        assert.deepEqual([named.host, named.ip_address, named.direct_ip_address, named.is_suppressed, named.suppress_rule_id], ['controlplane.tailscale.com', '192.0.2.10', null, true, null]);
        assert.equal(p.detections.find((d) => d.status === 'resolved')!.is_resolved, true);
      });

      await t.test('cursor paging visits every detection once, in order, with a constant total', async () => {
        for (const limit of [1, 3, 5]) {
          const { pages, totals } = await all(c, 'acme', {}, limit);
          same(pages.flat(), expected('acme', () => true), `pages of ${limit}`);
          assert.ok(totals.every((n) => n === 14));
          assert.ok(pages.slice(0, -1).every((p) => p.length === limit));
        }
        const p1 = await c.detections.list('acme', {}, 3);
        const skip = await c.detections.list('acme', {}, 3, p1.nextCursor, 3);
        same(skip.detections, expected('acme', () => true).slice(6, 9), 'offset skips rows after the cursor');
        await assert.rejects(c.detections.list('acme', {}, 3, 'not-a-cursor'), /invalid cursor "not-a-cursor"/);
        // a forged cursor with numbers past any this store wrote: the same refusal on every backend
        const key = detectionQueryKey('acme', {});
        for (const forged of [`d2:99999999999999999999:1:${key}`, `d2:1:99999999999999999999:${key}`, `d2:-9007199254740993:1:${key}`]) {
          const cursor = Buffer.from(forged).toString('base64url');
          await assert.rejects(c.detections.list('acme', {}, 3, cursor), new RegExp(`invalid cursor "${cursor}"`), forged);
        }
        // a cursor pages only its own query: handed to another filter it would skip every match newer
        // than its position (a reviewer's agent lost a webhook.site detection so); the time window
        // and the case of owner and repo are not part of it
        const first = await c.detections.list('acme', { process: 'tailscaled', owner: 'acme' }, 1);
        assert.ok(first.nextCursor);
        for (const other of [{ host: 'webhook.site', owner: 'acme' }, { process: 'tailscaled' }, {}]) {
          await assert.rejects(c.detections.list('acme', other, 3, first.nextCursor), /was issued for another query \(the tenant or a filter differs\)/, JSON.stringify(other));
        }
        await assert.rejects(c.detections.list('globex', { process: 'tailscaled', owner: 'acme' }, 3, first.nextCursor), /another query/);
        const rest = await c.detections.list('acme', { process: 'tailscaled', owner: 'ACME', since: T0, until: T0 + 100 * H }, 50, first.nextCursor);
        same([...first.detections, ...rest.detections], expected('acme', (x) => x.process.name === 'tailscaled'), 'the rest of the same query');
      });

      const filters: [string, DetectionFilter, (x: FixtureDetection) => boolean][] = [
        ['type', { types: ['Domain-Blocked'] }, (x) => x.type === 'Domain-Blocked'],
        ['status', { statuses: ['suppressed', 'resolved'] }, (x) => x.status !== 'new'],
        ['owner, case-insensitive', { owner: 'ACME' }, (x) => x.job.owner.toLowerCase() === 'acme'],
        ['repo, case-insensitive', { repo: 'web' }, (x) => x.job.repo.toLowerCase() === 'web'],
        ['workflow and job, exact', { workflow: '.github/workflows/ci.yml', job: 'build' }, (x) => x.job === JOBS.api],
        ['job, case-sensitive', { job: 'Build' }, () => false],
        ['run id', { runId: '1002' }, (x) => x.runId === '1002'],
        ['process (normalised name)', { process: 'tailscaled' }, (x) => x.process.name === 'tailscaled'],
        ['host on any port', { host: 'github.com' }, (x) => x.host === 'github.com'],
        ['host and port', { host: 'github.com', port: 8443 }, (x) => x.endpoint === 'github.com:8443'],
        ['an IP host', { host: '203.0.113.5' }, (x) => x.host === '203.0.113.5'],
        ['since (inclusive) and until (exclusive)', { since: T0 + 3 * H, until: T0 + 7 * H }, (x) => x.ts >= T0 + 3 * H && x.ts < T0 + 7 * H],
        ['several at once', { statuses: ['new'], process: 'python3', host: 'pypi.org' }, (x) => x.status === 'new' && x.process.name === 'python3' && x.host === 'pypi.org'],
        ['a job and an endpoint at once', { owner: 'acme', host: 'github.com' }, (x) => x.job.owner.toLowerCase() === 'acme' && x.host === 'github.com'],
      ];
      for (const [name, f, keep] of filters) {
        await t.test(`filter: ${name}`, async () => {
          const want = expected('acme', keep);
          const { pages, totals } = await all(c, 'acme', f, 4);
          same(pages.flat(), want, name);
          assert.ok(totals.every((n) => n === want.length), `${name}: total ${totals} vs ${want.length}`);
        });
      }

      await t.test('get returns the listed detection, only within its tenant', async () => {
        const [first] = (await c.detections.list('acme', {}, 1)).detections;
        assert.deepEqual(await c.detections.get('acme', first!.id), first);
        assert.equal(await c.detections.get('globex', first!.id), null, "another tenant's id is not found");
        assert.equal(await c.detections.get('acme', 'abc'), null);
        assert.equal(await c.detections.get('acme', '999999999'), null);
      });

      await t.test('tenant isolation: the same job, run and endpoint in two tenants never mix', async () => {
        const g = await c.detections.list('globex', {}, 100);
        same(g.detections, expected('globex', () => true), 'globex');
        assert.ok(g.detections.every((d) => d.tenant === 'globex'));
        const acmeIds = new Set((await c.detections.list('acme', {}, 100)).detections.map((d) => d.id));
        assert.ok(g.detections.every((d) => !acmeIds.has(d.id)));
        assert.equal((await c.detections.list('globex', { runId: '1001', host: 'github.com' }, 100)).total, 2);
        assert.equal((await c.detections.list('globex', { process: 'python3' }, 100)).total, 0, 'python3 exists only in acme');
      });

      await t.test('stats count jobs, runs, calls, baseline, learning jobs and detections by type and status', async () => {
        const s = await c.detections.stats('acme');
        const mine = DETECTIONS.filter((x) => x.tenant === 'acme');
        const byKey = new Map<string, number>();
        for (const x of mine) byKey.set(`${x.type}/${x.status}`, (byKey.get(`${x.type}/${x.status}`) ?? 0) + 1);
        const order = { new: 0, suppressed: 1, resolved: 2 };
        const want = [...byKey].map(([k, count]) => ({ type: k.split('/')[0]!, status: k.split('/')[1] as 'new', count }))
          .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : order[a.status] - order[b.status]));
        assert.deepEqual(s, {
          tenant: 'acme', jobs: 2, runs: 3, observations: mine.length, baselineEndpoints: BASELINE.filter((b) => b.entry.inBaseline).length,
          learningJobs: 2, detections: want, rules: 0,
        });
        assert.equal((await c.detections.stats('globex')).jobs, 1);
        assert.equal((await c.detections.stats('nobody')).jobs, 0);
      });

      await t.test('baselines: per job, in-baseline first, with how each entry got there', async () => {
        const views = await c.detections.baselines('acme', {});
        assert.deepEqual(views.map((v) => [v.owner, v.repo, v.completedRuns, v.learning]), [['Acme', 'Web', COMPLETED.web, true], ['acme', 'api', COMPLETED.api, true]]);
        const api = views[1]!;
        assert.deepEqual(api.endpoints.map((e) => [e.endpoint, e.runsSeen, e.inBaseline, e.source]), [
          ['github.com:443', 3, true, 'learned'], ['registry.npmjs.org:443', 0, true, 'expected'], ['pypi.org:443', 1, false, 'learned'],
        ]);
        assert.equal(api.endpoints[0]!.firstSeen, new Date(T0 + 2 * H).toISOString());
        assert.deepEqual((await c.detections.baselines('acme', { owner: 'ACME', repo: 'API' })).map((v) => v.job), ['build']);
        assert.deepEqual(await c.detections.baselines('acme', { job: 'nope' }), []);
      });

      await t.test('re-ingesting the same data stores nothing twice', async () => {
        const again = await seedTenant(c.ingest(), 'acme', refs.get('acme'));
        assert.equal(again.stored.length, 14);
        assert.ok(again.stored.every((s) => s === false), 'every detection reported as already stored');
        assert.equal((await c.detections.list('acme', {}, 1)).total, 14);
        assert.equal((await c.detections.stats('acme')).observations, 14);
      });
    } finally {
      await c.close();
    }
  });
}
