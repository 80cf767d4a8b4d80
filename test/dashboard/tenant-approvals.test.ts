import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { runCli, tempDir } from '../helpers.js';
import { startRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';
import { startServer, type RunningServer } from './server.js';
import { rawPost } from '../mcp/helpers.js';

/**
 * Tenants apart on the Approvals page, with real `serve` processes (found by review):
 * - two tenants' servers, each on a store of its own, share one Redis policy state (`--state`): each
 *   dashboard lists, counts and decides only its own tenant's held calls;
 * - a tenant whose only policy comes from a grant is recorded on the store like one with `--policy`,
 *   and its server audits for it: the dashboard of another tenant on that store does not show its calls;
 * Plain HTTP, as a browser would post (Origin, session cookie, CSRF token): the pages themselves are
 * driven in Chromium by approvals.test.ts.
 */

const APPROVER = 'approver-token-0123456789abcdef';
const AGENT = 'agent-token-0123456789abcdef0123';

const tmp = tempDir('egress-triage-tenant-approvals-');
let redis: TestRedis;
let alpha: RunningServer;
let beta: RunningServer;
let grants: string;
let policy: string;
const stores = { alpha: tmp.file('alpha.db', ''), beta: tmp.file('beta.db', '') };

before(async () => {
  for (const db of Object.values(stores)) assert.equal(runCli(['db', 'migrate', '--db', db]).status, 0);
  redis = await startRedis();
  grants = tmp.file('grants.yaml', `grants:\n  - { identity: approver, token: ${APPROVER}, dashboard: [read, approve] }\n  - { identity: agent, token: ${AGENT}, dashboard: [] }\n`);
  // a 2026-07-28 client that can be asked is asked (approval_elicitation); the SDK client below cannot
  policy = tmp.file(
    'policy.yaml',
    'version: 1\ndefault: allow\nsessions: { max_handles: 1 }\ntools:\n' +
      '  find_repos_using_endpoint: { action: require_approval, approval_timeout: 600, approval_elicitation: true }\n' +
      '  list_tenant_github_orgs: { rate_limit: { max: 1, window: 3600, scope: client } }\n',
  );
  // one state key for both, as replicas behind one URL are told to share it
  const env = { EGRESS_TRIAGE_REQUEST_STATE_KEY: 'shared-request-state-key-0123456789abcdef' };
  const serve = (tenant: 'alpha' | 'beta') =>
    startServer('serve', ['--db', stores[tenant], '--tenant', tenant, '--policy', policy, '--grants', grants, '--state', redis.url], env);
  [alpha, beta] = await Promise.all([serve('alpha'), serve('beta')]);
});

after(async () => {
  await Promise.all([alpha?.stop(), beta?.stop()]);
  await redis?.stop();
  tmp.cleanup();
});

async function signIn(base: string): Promise<string> {
  const res = await fetch(`${base}/signin`, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: base },
    body: new URLSearchParams({ token: APPROVER, next: '/' }),
  });
  assert.equal(res.status, 303);
  return /^et_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1]!;
}

async function get(base: string, cookie: string, path: string): Promise<{ status: number; html: string }> {
  const res = await fetch(`${base}${path}`, { redirect: 'manual', headers: { cookie: `et_session=${cookie}` } });
  return { status: res.status, html: await res.text() };
}

/** A confirmed decision, posted as the page's own script would: the answer's status. */
async function decide(base: string, cookie: string, id: string, verb: 'approve' | 'deny'): Promise<number> {
  const csrf = /<meta name="csrf-token" content="([^"]+)"/.exec((await get(base, cookie, '/approvals')).html)?.[1];
  assert.ok(csrf, 'the page carries its CSRF token');
  const res = await fetch(`${base}/approvals/${id}/${verb}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: `et_session=${cookie}`, origin: base, 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf },
    body: 'confirm=yes',
  });
  return res.status;
}

const heldIds = (html: string) => [...html.matchAll(/data-approval="(apr_[0-9a-f]+)"/g)].map((m) => m[1]!);
const pendingCount = (html: string) => /<span class="value">([^<]+)<\/span>\s*<span class="label">pending approvals<\/span>/.exec(html)?.[1];

describe('one Redis policy state behind two tenants\' servers', () => {
  it("each dashboard lists, counts and decides only its own tenant's held calls", async () => {
    const agent = new Client({ name: 'beta-agent', version: '1.0.0' }, { capabilities: {}, supportedProtocolVersions: ['2025-11-25'] });
    await agent.connect(new StreamableHTTPClientTransport(new URL(`${beta.base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${AGENT}` } } }));
    try {
      // held in beta's server until someone decides
      const call = agent.callTool({ name: 'find_repos_using_endpoint', arguments: { endpoint: 'beta-private.example:443', owner: 'beta-org' } });
      const [alphaCookie, betaCookie] = await Promise.all([signIn(alpha.base), signIn(beta.base)]);
      const id = await waitFor(async () => heldIds((await get(beta.base, betaCookie, '/approvals')).html)[0], 30_000, 50, "beta's held call on beta's Approvals page");
      assert.equal(pendingCount((await get(beta.base, betaCookie, '/')).html), '1');

      const alphaPage = await get(alpha.base, alphaCookie, '/approvals');
      assert.equal(alphaPage.status, 200);
      assert.deepEqual(heldIds(alphaPage.html), [], "alpha's dashboard lists none of beta's held calls");
      assert.doesNotMatch(alphaPage.html, /beta-private/);
      assert.equal(pendingCount((await get(alpha.base, alphaCookie, '/')).html), '0', "alpha's overview counts none of them");
      assert.equal(await decide(alpha.base, alphaCookie, id, 'approve'), 404, "alpha's approver cannot approve beta's held call");
      assert.deepEqual(heldIds((await get(beta.base, betaCookie, '/approvals')).html), [id], 'still pending for beta');

      // the administrator of the store and Redis sees whose call it is
      const listed = runCli(['approvals', 'list', '--db', stores.alpha, '--state', redis.url]);
      assert.equal(listed.status, 0, listed.stderr);
      assert.match(listed.stdout, new RegExp(`${id} +pending +find_repos_using_endpoint +tenant=beta `));

      assert.equal(await decide(beta.base, betaCookie, id, 'approve'), 303);
      const result = await call;
      assert.notEqual(result.isError, true, JSON.stringify(result));
      const notice = new RegExp(`\\(${id}\\): approved`);
      assert.match((await get(beta.base, betaCookie, `/approvals?decided=${id}`)).html, notice);
      assert.doesNotMatch((await get(alpha.base, alphaCookie, `/approvals?decided=${id}`)).html, notice, "alpha's page does not report beta's decision");
      assert.deepEqual(heldIds((await get(alpha.base, alphaCookie, '/approvals')).html), [], 'nor lists it among recent decisions');
    } finally {
      await agent.close();
    }
  });
});

/** A 2026-07-28 tools/call as it goes on the wire, from the agent: the JSON-RPC answer. */
async function modernCall(
  base: string, id: number, args: Record<string, unknown>, extra: Record<string, unknown> = {}, tool = 'find_repos_using_endpoint', meta: Record<string, unknown> = {},
): Promise<Record<string, any>> {
  const res = await rawPost(
    new URL(`${base}/mcp`),
    JSON.stringify({
      jsonrpc: '2.0', id, method: 'tools/call',
      params: {
        name: tool, arguments: args, ...extra,
        _meta: {
          ...meta,
          'io.modelcontextprotocol/protocolVersion': '2026-07-28',
          'io.modelcontextprotocol/clientInfo': { name: 'raw-agent', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
        },
      },
    }),
    { authorization: `Bearer ${AGENT}`, 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': tool },
  );
  const text = res.body;
  return JSON.parse(text.startsWith('{') ? text : (/^data: (.*)$/m.exec(text)?.[1] ?? '{}')) as Record<string, any>;
}

describe('a 2026-07-28 retry carries a signed state naming its tenant', () => {
  it("an approval won in alpha is not spent by the same call in beta, though both servers share the state key and Redis", async () => {
    const args = { endpoint: 'alpha-x.example:443', owner: 'alpha-org' };
    const asked = await modernCall(alpha.base, 1, args);
    assert.equal(asked.result?.resultType, 'input_required', JSON.stringify(asked));
    const state = asked.result.requestState as string;
    const cookie = await signIn(alpha.base);
    const id = await waitFor(async () => heldIds((await get(alpha.base, cookie, '/approvals')).html)[0], 30_000, 50, "alpha's held call");
    assert.equal(await decide(alpha.base, cookie, id, 'approve'), 303);

    const elsewhere = await modernCall(beta.base, 2, args, { requestState: state });
    assert.ok(elsewhere.error !== undefined || elsewhere.result?.isError === true, `beta must refuse alpha's state: ${JSON.stringify(elsewhere)}`);
    assert.match(JSON.stringify(elsewhere), /requestState refused: it was issued for another call/);
    const rows = runCli(['approvals', 'list', '--all', '--json', '--db', stores.alpha, '--state', redis.url]);
    assert.equal(rows.status, 0, rows.stderr);
    assert.equal((JSON.parse(rows.stdout) as { id: string; status: string }[]).find((r) => r.id === id)?.status, 'approved', 'not spent by beta');

    const ran = await modernCall(alpha.base, 3, args, { requestState: state });
    assert.equal(ran.result?.resultType, 'complete', JSON.stringify(ran));
    assert.notEqual(ran.result.isError, true, JSON.stringify(ran));
  });
});

describe("one Redis behind two tenants' servers: quotas and session handles", () => {
  it("a tenant's rate limit and session-handle cap are its own, though both servers' identity and policy file have one name", async () => {
    const orgs = (base: string, id: number, meta: Record<string, unknown> = {}) => modernCall(base, id, {}, {}, 'list_tenant_github_orgs', meta);
    const denied = (r: Record<string, any>) => JSON.stringify(r).includes('[POLICY DENIED]');
    assert.equal(denied(await orgs(alpha.base, 1)), false);
    assert.equal(denied(await orgs(beta.base, 2)), false, "alpha's call did not spend beta's quota (max 1 per client)");
    assert.match(JSON.stringify(await orgs(alpha.base, 3)), /\[POLICY DENIED\].*rate limit/, "alpha's second call is over alpha's own quota");

    const handle = (h: string) => ({ 'egress-triage/session': h });
    const ping = (base: string, id: number, h: string) => modernCall(base, id, {}, {}, 'ping', handle(h));
    assert.equal(denied(await ping(alpha.base, 4, 'alpha-handle')), false);
    assert.equal(denied(await ping(beta.base, 5, 'beta-handle')), false, "alpha's live handle does not fill beta's cap (max_handles 1)");
    assert.match(JSON.stringify(await ping(alpha.base, 6, 'alpha-second')), /session handle refused/, "alpha's own cap holds");
  });
});

describe('a tenant whose only policy comes from a grant', () => {
  it("is recorded on the store as its server starts, so another tenant's dashboard there shows only its own tenant's audit", async () => {
    const grantPolicy = tmp.file('gamma-grants.yaml', `grants:\n  - { identity: agent, token: ${AGENT}, dashboard: [], policy: ./policy.yaml }\n`);
    const gamma = await startServer('serve', ['--db', stores.alpha, '--tenant', 'gamma', '--grants', grantPolicy]);
    try {
      const db = new Database(stores.alpha, { readonly: true });
      try {
        assert.ok((db.prepare('SELECT name FROM tenants').pluck().all() as string[]).includes('gamma'));
      } finally {
        db.close();
      }
      // gamma's agent makes a call its policy allows: audited for gamma, on alpha's store
      const agent = new Client({ name: 'gamma-agent', version: '1.0.0' }, { capabilities: {}, supportedProtocolVersions: ['2025-11-25'] });
      await agent.connect(new StreamableHTTPClientTransport(new URL(`${gamma.base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${AGENT}` } } }));
      try {
        await agent.callTool({ name: 'get_my_tenant', arguments: {} });
      } finally {
        await agent.close();
      }
      const audited = runCli(['audit', '--tenant', 'gamma', '--jsonl', '--db', stores.alpha]);
      assert.equal(audited.status, 0, audited.stderr);
      assert.ok(audited.stdout.trim().split('\n').some((l) => (JSON.parse(l) as { tool: string; tenant?: string }).tool === 'get_my_tenant'), audited.stdout);
      const cookie = await signIn(alpha.base);
      const page = await get(alpha.base, cookie, '/audit');
      assert.equal(page.status, 200);
      assert.match(page.html, /data-scope="tenant"/);
      assert.doesNotMatch(page.html, /get_my_tenant/, "gamma's call is not on alpha's Audit page");
      assert.equal((await get(alpha.base, cookie, '/approvals')).status, 200);
    } finally {
      await gamma.stop();
    }
  });
});
