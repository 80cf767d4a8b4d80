import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dashboardUrl, dashboardUrlProblem } from '../../src/domain/dashboard.js';

test('a dashboard base URL is an http(s) base only: no query, fragment or credentials, which every link would carry', () => {
  for (const ok of ['http://localhost:8080', 'https://triage.example.com/', 'https://example.com/egress']) assert.equal(dashboardUrlProblem(ok), null, ok);
  const refused: [string, RegExp][] = [
    ['javascript:alert(1)//', /is not an http or https URL/],
    ['not a url', /is not a URL/],
    ['http://h/?q=1', /has a query or fragment; give the dashboard's base URL only/],
    ['http://h/#f', /has a query or fragment/],
    ['http://h/#', /has a query or fragment/],
    ['https://user:pw@h.example/', /holds credentials, which every link would repeat/],
    ['https://token@h.example/', /holds credentials/],
  ];
  for (const [value, why] of refused) assert.match(dashboardUrlProblem(value) ?? '', why, value);
  // what a base without them gives: the run's link, nothing swallowed
  assert.equal(dashboardUrl('https://example.com/egress', { owner: 'acme', repo: 'api', run_id: '7', job_id: '9' }), 'https://example.com/egress/github/acme/api/actions/runs/7?jobId=9&tab=network-events');
});
