import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filedFor, newPendingApproval, type ApprovalBinding } from '../../src/storage/policy-state.js';

/**
 * The check a 2026-07-28 retry's approval row passes before it is answered or spent (gateway/proxy.ts
 * answeredApproval): the row must have been filed for this very call, tenant included.
 */
const binding: ApprovalBinding = {
  session: 's1', identity: 'ci', tool: 'create_suppression_rule', argsHash: 'h1', argsPreview: '{}', rule: 'tools.create', timeoutMs: 60_000,
  tenant: 'alpha',
};
const row = newPendingApproval(binding, Date.UTC(2026, 11, 5));

test('an approval row counts for the call it was filed for, whatever the session', () => {
  assert.equal(filedFor(row, binding), true);
  assert.equal(filedFor(row, { ...binding, session: 'another' } as ApprovalBinding), true);
});

test('another tenant, tool, argument hash, identity or upstream is another call', () => {
  for (const over of [{ tenant: 'beta' }, { tenant: undefined }, { tool: 'delete_suppression_rule' }, { argsHash: 'h2' }, { identity: 'other' }, { upstreamName: 'github' }]) {
    assert.equal(filedFor(row, { ...binding, ...over }), false, JSON.stringify(over));
  }
  const gatewayRow = newPendingApproval({ ...binding, tenant: undefined }, 0);
  assert.equal(gatewayRow.tenant, null);
  assert.equal(filedFor(gatewayRow, { ...binding, tenant: undefined }), true, "a stand-alone gateway's row is its own");
  assert.equal(filedFor(gatewayRow, binding), false, "and no tenant's server spends it");
  assert.equal(newPendingApproval({ ...binding, tenant: '' }, 0).tenant, null, "'' is no tenant, as Redis reads it back");
});
