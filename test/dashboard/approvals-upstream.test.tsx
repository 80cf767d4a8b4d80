import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderToString } from 'preact-render-to-string';
import { ApprovalsPage, DecisionSummary } from '../../src/dashboard/pages/approvals.js';
import type { PageContext } from '../../src/dashboard/pages/context.js';
import type { ApprovalRow } from '../../src/storage/policy-state.js';

const ctx: PageContext = {
  identity: 'alice', permissions: ['read', 'approve'], signedIn: true, csrf: 'tok', theme: 'auto', path: '/approvals', location: '/approvals',
  assets: { script: '/assets/main.js', styles: [] },
};
const NOW = Date.UTC(2026, 11, 2, 7, 0, 0);
const row = (upstream: string | null): ApprovalRow => ({
  id: 'apr_1', created_at: NOW - 1000, expires_at: NOW + 60_000, status: 'pending', session: 's'.repeat(20), identity: 'ci-agent',
  tool: 'delete_repo', args_hash: 'h', args_preview: '{"repo":"x"}', rule: 'hold-deletes', decided_at: null, decided_by: null, reason: null,
  upstream_name: upstream, tenant: 'acme',
});

describe('approvals page: the upstream a held call is for', () => {
  it('names the registered upstream on the list and on the confirm step; a single-upstream row names none', () => {
    const list = renderToString(<ApprovalsPage ctx={ctx} d={{ enabled: true, pending: [row('github')], recent: [], now: NOW, canDecide: true }} />);
    assert.match(list, /on upstream github/);
    const confirm = renderToString(<DecisionSummary row={row('github')} verb="approve" now={NOW} />);
    assert.match(confirm, /<dt>Upstream<\/dt>\s*<dd>github<\/dd>/);
    const single = renderToString(<ApprovalsPage ctx={ctx} d={{ enabled: true, pending: [row(null)], recent: [], now: NOW, canDecide: true }} />);
    assert.doesNotMatch(single, /upstream/i);
  });
});
