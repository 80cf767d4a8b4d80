import { test } from 'node:test';
import assert from 'node:assert/strict';
import { riskyDestinations } from '../../src/analysis/risky-destinations.js';
import { baselineJobRows, countLabel, destinationRows, ruleHistory } from '../../src/dashboard-data/views.js';
import { auditFilterParams, detectionFilterParams, PAGE_PARAMS, detectionFilterQuery, pageParams } from '../../src/dashboard-data/params.js';
import { parseDetectionFilter, FilterError } from '../../src/domain/filter.js';
import type { Destination } from '../../src/storage/dashboard-port.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const risky = riskyDestinations();

test('count labels: exact counts as they are, bounded ones with a plus', () => {
  assert.equal(countLabel({ value: 1234, exact: true }), '1,234');
  assert.equal(countLabel({ value: 10000, exact: false }), '10,000+');
});

test('destinations: risky by the one list whatever the baseline says; a job is anomalous where the endpoint is not baselined', () => {
  const job = { owner: 'a', repo: 'r', workflow: 'w', job: 'j', runs: 2, blocked: false, lastSeen: '2026-12-01T00:00:00.000Z', baselineRunsSeen: 0, baselineSource: null };
  const d = (endpoint: string, host: string, inBaseline: boolean[]): Destination => ({
    endpoint, host, port: 443, isIp: false, jobsTotal: inBaseline.length, lastSeen: job.lastSeen, jobs: inBaseline.map((b) => ({ ...job, inBaseline: b })),
  });
  const [hook, gh] = destinationRows([d('x.webhook.site:443', 'x.webhook.site', [true]), d('github.com:443', 'github.com', [true, false])], risky);
  assert.equal(hook!.risky, 'webhook.site');
  assert.equal(gh!.risky, null);
  assert.deepEqual(gh!.jobs.map((j) => j.anomalous), [false, true]);
  assert.equal(gh!.anomalousJobs, 1);
});

test('baseline jobs: state, counts of baselined, pending and expected entries, risky entries marked', () => {
  const e = (endpoint: string, inBaseline: boolean, source: string) => ({ endpoint, runsSeen: 1, inBaseline, source, firstSeen: '', lastSeen: '' });
  const [row] = baselineJobRows(
    [{ owner: 'a', repo: 'r', workflow: 'w', job: 'j', completedRuns: 2, learning: true, endpoints: [e('github.com:443', true, 'learned'), e('cdn.x:443', true, 'expected'), e('webhook.site:443', false, 'learned')] }],
    risky,
  );
  assert.deepEqual([row!.state, row!.inBaseline, row!.pending, row!.expected], ['learning', 2, 1, 1]);
  assert.deepEqual(row!.endpoints.map((x) => x.risky), [null, null, 'webhook.site']);
});

test('a named destination or baseline entry whose calls reached a configured risky range is flagged at that address, and only then', () => {
  const ranged = riskyDestinations(['203.0.113.0/24']);
  const job = { owner: 'a', repo: 'r', workflow: 'w', job: 'j' };
  const other = { ...job, job: 'k' };
  const at = (endpoint: string, ip: string, j: typeof job | null = null) => ({ endpoint, ip, job: j });
  const d = (endpoint: string): Destination => ({ endpoint, host: endpoint.split(':')[0]!, port: 443, isIp: false, jobsTotal: 0, lastSeen: '', jobs: [] });
  const addresses = [at('cdn.x:443', '198.51.100.9'), at('cdn.x:443', '203.0.113.5'), at('cdn.y:443', '198.51.100.10')];
  const [x, y] = destinationRows([d('cdn.x:443'), d('cdn.y:443')], ranged, addresses);
  assert.deepEqual([x!.risky, x!.riskyAt], ['203.0.113.0/24', '203.0.113.5']);
  assert.deepEqual([y!.risky, y!.riskyAt], [null, null]);
  // the built-in list has no range: the addresses change nothing
  assert.deepEqual(destinationRows([d('cdn.x:443')], risky, addresses).map((r) => [r.risky, r.riskyAt]), [[null, null]]);
  // a risky name keeps its own entry, the address aside
  assert.deepEqual(destinationRows([d('webhook.site:443')], ranged, [at('webhook.site:443', '203.0.113.5')]).map((r) => [r.risky, r.riskyAt]), [['webhook.site', null]]);

  const e = (endpoint: string) => ({ endpoint, runsSeen: 3, inBaseline: true, source: 'learned', firstSeen: '', lastSeen: '' });
  const view = { ...job, completedRuns: 3, learning: false, endpoints: [e('cdn.x:443'), e('cdn.y:443'), e('webhook.site:443')] };
  // only this job's calls count: cdn.y reached the range in another job
  const perJob = [at('cdn.x:443', '203.0.113.7', job), at('cdn.y:443', '203.0.113.8', other), at('cdn.y:443', '198.51.100.10', job)];
  const [row] = baselineJobRows([view], ranged, perJob);
  assert.deepEqual(
    row!.endpoints.map((x) => [x.endpoint, x.risky, x.riskyAt, x.riskyRange]),
    [['cdn.x:443', null, '203.0.113.7', '203.0.113.0/24'], ['cdn.y:443', null, null, null], ['webhook.site:443', 'webhook.site', null, null]],
  );
});

test('rule history: what each change changed, field by field', () => {
  const rule = { rule_id: 'r1', id: 'New-Outbound-Network-Call', name: 'n', description: '', conditions: { process: 'tailscaled' }, created_on: 'x', updated_on: 'x' };
  const h = ruleHistory([
    { rule_id: 'r1', action: 'update', actor: 'bob', at: 't2', affected: 3, before: rule, after: { ...rule, name: 'm', conditions: { process: 'tailscaled', host: '*.ts.net' }, updated_on: 'y' } },
    { rule_id: 'r1', action: 'create', actor: 'alice', at: 't1', affected: 7, before: null, after: rule },
  ]);
  assert.deepEqual(h[0]!.changes, [
    { field: 'conditions', before: '{"process":"tailscaled"}', after: '{"process":"tailscaled","host":"*.ts.net"}' },
    { field: 'name', before: '"n"', after: '"m"' },
  ]);
  assert.deepEqual(h[1]!.changes.map((c) => [c.field, c.before]), [['conditions', null], ['description', null], ['id', null], ['name', null], ['rule_id', null]], 'the detection type (id) is a field like any other');
});

test('page parameters: the CLI parser under query-parameter names, and back to a query string', () => {
  const q = new URLSearchParams('type=domain-blocked&type=New-Outbound-Network-Call&owner=ACME&process=/usr/bin/curl&sha256=AB12cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd&endpoint=github.com:443&since=2026-11-30T00:00:00Z');
  const f = detectionFilterParams(q, NOW);
  assert.deepEqual(f, parseDetectionFilter({ types: ['domain-blocked', 'New-Outbound-Network-Call'], owner: 'ACME', process: '/usr/bin/curl', sha256: 'AB12cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd', endpoint: 'github.com:443', since: '2026-11-30T00:00:00Z' }, { now: NOW }));
  assert.deepEqual(detectionFilterParams(detectionFilterQuery(f), NOW), f, 'round trip');
  assert.deepEqual(detectionFilterParams(detectionFilterQuery(parseDetectionFilter({ endpoint: '[2001:db8::1]:443', status: 'new' }, { now: NOW })), NOW), parseDetectionFilter({ endpoint: '[2001:db8::1]:443', status: 'new' }, { now: NOW }));
  assert.throws(() => detectionFilterParams(new URLSearchParams('endpoint=http://x/'), NOW), (e: unknown) => e instanceof FilterError && e.argument === 'endpoint');
  assert.throws(() => detectionFilterParams(new URLSearchParams('owner=a&owner=b'), NOW), /owner: given 2 times/);
  // a misspelt filter is refused, not read as none (which selects the whole tenant); paging only where given
  assert.throws(() => detectionFilterParams(new URLSearchParams('proces=tailscaled'), NOW), (e: unknown) => e instanceof FilterError && e.argument === 'proces' && /is not a filter here; the filters are type, status, owner/.test(e.reason));
  assert.throws(() => detectionFilterParams(new URLSearchParams('process=a&after=x'), NOW), (e: unknown) => e instanceof FilterError && e.argument === 'after');
  assert.deepEqual(detectionFilterParams(new URLSearchParams('process=a&after=x&limit=5'), NOW, PAGE_PARAMS), detectionFilterParams(new URLSearchParams('process=a'), NOW));
  assert.deepEqual(pageParams(new URLSearchParams('')), { limit: 50, after: null, before: null });
  assert.throws(() => pageParams(new URLSearchParams('limit=0')), /limit/);
  assert.throws(() => pageParams(new URLSearchParams('after=a&before=b')), /not both/);
  assert.deepEqual(auditFilterParams(new URLSearchParams('decision=deny&upstream=gh&tool='), NOW), { decision: 'deny', upstreamName: 'gh' });
});
