import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { renderToString } from 'preact-render-to-string';
import { policyEditRoute, policyRoute } from '../../src/dashboard/policy-routes.js';
import { policyEditFromForm } from '../../src/dashboard/policy-edit-form.js';
import { PolicyEditError } from '../../src/policy/edit.js';
import type { Reply, RouteRequest } from '../../src/dashboard/routes.js';
import type { DashboardStore } from '../../src/dashboard/store.js';
import type { DashboardPermission } from '../../src/http/grants.js';

/** The Policy page's routes without a policy file, and its form reader. */

const HASH = 'a'.repeat(64);

function request(form: URLSearchParams | undefined, store: Partial<DashboardStore> = {}, permissions: DashboardPermission[] = ['read', 'write', 'approve']): RouteRequest {
  const session = { id: 's', identity: 'alice', permissions, csrf: 'tok', lastSeen: 0 };
  return {
    req: {} as IncomingMessage,
    url: new URL('http://127.0.0.1/policy'),
    params: [],
    form,
    session,
    ctx: { identity: 'alice', permissions, signedIn: true, csrf: 'tok', theme: 'auto', path: '/policy', location: '/policy', assets: { script: '/a.js', styles: [] } },
    store: store as DashboardStore,
    tenant: 't',
  };
}

const html = (r: Reply) => (r.kind === 'page' ? renderToString(r.page) : '');

describe('policy page without a policy file', () => {
  it('says so and offers no form', async () => {
    const r = await policyRoute.handle(request(undefined));
    assert.equal(r.kind === 'page' && r.status, 200);
    assert.match(html(r), /This server runs no policy file/);
    assert.doesNotMatch(html(r), /<form[^>]*action="\/policy\/edit"/);
  });

  it('answers an edit post with 404 and changes nothing', async () => {
    const r = await policyEditRoute.handle(request(new URLSearchParams({ hash: HASH, tool: 'x', to: 'deny', reason: 'r', confirm: 'yes' })));
    assert.equal(r.kind === 'page' && r.status, 404);
    assert.match(html(r), /runs no policy file/);
  });

  it('the edit route needs write and approve', () => {
    assert.deepEqual(policyEditRoute.permission, ['write', 'approve']);
  });
});

describe('policyEditFromForm', () => {
  const form = (o: Record<string, string>) => new URLSearchParams({ hash: HASH, tool: 'x', ...o });
  const field = (o: Record<string, string>) => {
    try {
      policyEditFromForm(form(o));
      return undefined;
    } catch (e) {
      assert.ok(e instanceof PolicyEditError, String(e));
      return e.field;
    }
  };

  it('reads a move with only the fields of its column', () => {
    assert.deepEqual(policyEditFromForm(form({ op: 'move', to: 'rate_limited', max: '5', window: '60', scope: 'client', timeout: '9', reason: 'ignored' })).edit, {
      op: 'move',
      tool: 'x',
      to: 'rate_limited',
      limit: { max: 5, window: 60, scope: 'client' },
      approvalTimeout: undefined,
      reason: undefined,
    });
    assert.deepEqual(policyEditFromForm(form({ to: 'approval', timeout: '' })).edit, { op: 'move', tool: 'x', to: 'approval', limit: undefined, approvalTimeout: undefined, reason: undefined });
  });

  it('reads a limit edit', () => {
    assert.deepEqual(policyEditFromForm(form({ op: 'limit', index: '1', max: '0', window: '30' })).edit, { op: 'limit', tool: 'x', index: 1, limit: { max: 0, window: 30 } });
  });

  it('names the field of bad input', () => {
    assert.equal(field({ to: 'rate_limited', max: 'ten', window: '60' }), 'max');
    assert.equal(field({ to: 'rate_limited', max: '10' }), 'window');
    assert.equal(field({ to: 'sideways' }), 'to');
    assert.equal(field({ to: 'rate_limited', max: '1', window: '1', scope: 'planet' }), 'scope');
    assert.equal(field({ op: 'limit', index: '-1', max: '1', window: '1' }), 'index');
    assert.throws(() => policyEditFromForm(new URLSearchParams({ tool: 'x', to: 'deny' })), (e) => e instanceof PolicyEditError && e.field === 'hash');
  });
});
