import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import Database from 'better-sqlite3';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { cliResult } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { axeViolations, launchBrowser, newPage } from './browser.js';
import { demoTenant, INJECTION, startServer, type DemoTenant, type RunningServer } from './server.js';

/**
 * Issue test 3: a real SDK v2 client calls a tool that `serve --policy` holds for approval and waits;
 * in Chromium a person approves it on the Approvals page and the client gets its result. Another
 * call is denied there, and that client gets the denial. A read-only grant cannot decide.
 */

const ALICE = 'alice-approver-token-0123456789';
const BOB = 'bob-reader-token-0123456789abcd';
const AGENT = 'agent-mcp-token-0123456789abcde';

let demo: DemoTenant;
let server: RunningServer;
let browser: Browser;
let db: string;

before(async () => {
  demo = await demoTenant({ runs: 6, events: 1000 });
  db = demo.db;
  const grants = demo.file(
    'grants.yaml',
    `grants:\n  - { identity: alice, token: ${ALICE}, dashboard: [read, approve] }\n  - { identity: bob, token: ${BOB} }\n  - { identity: ci-agent, token: ${AGENT}, dashboard: [] }\n`,
  );
  const policy = demo.file(
    'policy.yaml',
    `version: 1\ndefault: allow\ntools:\n  find_repos_using_endpoint: { action: require_approval, approval_timeout: 600 }\n  list_tenant_github_orgs: { action: require_approval, approval_timeout: 600 }\n`,
  );
  server = await startServer('serve', ['--db', db, '--policy', policy, '--grants', grants]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  demo?.cleanup();
});

async function agentClient(era: 'legacy' | 'modern' = 'legacy'): Promise<Client> {
  const client = new Client(
    { name: 'held-agent', version: '1.0.0' },
    era === 'modern' ? { capabilities: {}, versionNegotiation: { mode: { pin: '2026-07-28' } } } : { capabilities: {}, supportedProtocolVersions: ['2025-11-25'] },
  );
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${AGENT}` } } }));
  return client;
}

/** A confirmed decision posted from the page with its own CSRF token, as a script on it could: the status. */
function confirmedPost(page: Page, path: string): Promise<number> {
  return page.evaluate(async (p) => {
    const csrf = document.querySelector('meta[name=csrf-token]')!.getAttribute('content')!;
    const r = await fetch(p, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-csrf-token': csrf }, body: 'confirm=yes' });
    return r.status;
  }, path);
}

const text = (r: { content?: unknown }) => ((r.content as { type: string; text?: string }[] | undefined) ?? []).map((c) => c.text ?? '').join('\n');

async function signIn(page: Page, token: string): Promise<void> {
  await page.goto(`${server.base}/approvals`);
  await page.locator('#token').fill(token);
  await Promise.all([page.waitForURL(/\/approvals$/), page.locator('button[type=submit]').click()]);
}

/** Reloads the approvals page until a pending row of `tool` is there; returns its approval id. */
async function pendingRow(page: Page, tool: string): Promise<string> {
  return waitFor(
    async () => {
      await page.goto(`${server.base}/approvals`);
      const row = page.locator('section[aria-labelledby="pending"] tr[data-approval]', { hasText: tool });
      return (await row.count()) === 1 ? ((await row.getAttribute('data-approval')) ?? undefined) : undefined;
    },
    30_000,
    100,
    `a pending approval of ${tool} on the page`,
  );
}

describe('approvals page', () => {
  it('approves one held call and denies another: each waiting SDK client gets its answer at once', async () => {
    const client = await agentClient();
    const { page, dialogs, errors, close } = await newPage(browser);
    try {
      await signIn(page, ALICE);
      const approvedCall = client.callTool({ name: 'find_repos_using_endpoint', arguments: { owner: 'xss-org', endpoint: INJECTION } }, { timeout: 300_000 });
      const id = await pendingRow(page, 'find_repos_using_endpoint');
      const row = page.locator(`tr[data-approval="${id}"]`);
      const rowText = await row.innerText();
      // the arguments, the identity and the time left, with the HTML-like endpoint as text
      assert.ok(rowText.includes(INJECTION), rowText);
      assert.match(rowText, /ci-agent/);
      assert.match(rowText, /\d+m \d\ds/);
      assert.equal(await page.locator('main img').count(), 0);
      assert.deepEqual(await axeViolations(page), []);

      await row.getByRole('button', { name: /^Approve/ }).click();
      await page.waitForURL(/\/approvals\/[^/]+\/approve$/);
      assert.match(await page.locator('h1').innerText(), /Approve find_repos_using_endpoint\?/);
      assert.ok((await page.locator('.confirm').innerText()).includes(INJECTION));
      assert.deepEqual(await axeViolations(page), []);
      await Promise.all([page.waitForURL(/\/approvals\?decided=/), page.getByRole('button', { name: 'Approve and run the call' }).click()]);
      assert.match(await page.locator('[role=status]').innerText(), /approved.* by dashboard:alice/);

      const result = await approvedCall;
      assert.notEqual(result.isError, true, text(result));
      assert.doesNotMatch(text(result), /POLICY DENIED/);
      assert.equal((result.structuredContent as { endpoint?: string } | undefined)?.endpoint, INJECTION);

      const deniedCall = client.callTool({ name: 'list_tenant_github_orgs', arguments: {} }, { timeout: 300_000 });
      const id2 = await pendingRow(page, 'list_tenant_github_orgs');
      await page.locator(`tr[data-approval="${id2}"]`).getByRole('button', { name: /^Deny/ }).click();
      await Promise.all([page.waitForURL(/\/approvals\?decided=/), page.getByRole('button', { name: 'Deny the call' }).click()]);
      const denied = await deniedCall;
      assert.equal(text(denied), `[POLICY DENIED] approval ${id2} was denied by dashboard:alice`);

      // both decisions carry the person: on the approval and in the audit
      const rows = JSON.parse((await cliResult(['approvals', 'list', '--all', '--json', '--db', db])).stdout) as { id: string; status: string; decided_by: string }[];
      assert.deepEqual(
        rows.filter((r) => r.id === id || r.id === id2).map((r) => [r.id, r.status, r.decided_by]).sort(),
        [[id, 'consumed', 'dashboard:alice'], [id2, 'denied', 'dashboard:alice']].sort(),
      );
      const audit = (await cliResult(['audit', '--jsonl', '--db', db])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { decision: string; approval_id?: string; reason?: string });
      assert.ok(audit.some((r) => r.decision === 'approved' && r.approval_id === id));
      assert.ok(audit.some((r) => r.decision === 'approval_denied' && r.approval_id === id2 && /dashboard:alice/.test(r.reason ?? '')));

      assert.deepEqual(dialogs, []);
      assert.deepEqual(errors, []);
      // a decided approval cannot be decided again
      const again = await confirmedPost(page, `/approvals/${id2}/approve`);
      assert.equal(again, 409);
    } finally {
      await close();
      await client.close().catch(() => undefined);
    }
  });

  it('a read-only grant sees held calls but cannot decide them (403, the call stays held)', async () => {
    const client = await agentClient();
    const { page, close } = await newPage(browser);
    const { page: alice, close: closeAlice } = await newPage(browser);
    try {
      await signIn(page, BOB);
      const held = client.callTool({ name: 'list_tenant_github_orgs', arguments: { note: 'bob-cannot' } }, { timeout: 300_000 }).catch((e: Error) => e);
      const id = await pendingRow(page, 'list_tenant_github_orgs');
      assert.equal(await page.locator(`tr[data-approval="${id}"] button`).count(), 0, 'no decision buttons for a reader');
      assert.match(await page.locator('main').innerText(), /needs the dashboard permission "approve"/);
      const status = await confirmedPost(page, `/approvals/${id}/approve`);
      assert.equal(status, 403);
      const rows = JSON.parse((await cliResult(['approvals', 'list', '--json', '--db', db])).stdout) as { id: string; status: string }[];
      assert.equal(rows.find((r) => r.id === id)?.status, 'pending');
      assert.deepEqual(await axeViolations(page), []);
      // let the call go: someone who may, denies it
      await signIn(alice, ALICE);
      await pendingRow(alice, 'list_tenant_github_orgs');
      await alice.locator(`tr[data-approval="${id}"]`).getByRole('button', { name: /^Deny/ }).click();
      await Promise.all([alice.waitForURL(/\/approvals\?decided=/), alice.getByRole('button', { name: 'Deny the call' }).click()]);
      const r = await held;
      assert.ok(!(r instanceof Error), String(r));
      assert.match(text(r as { content?: unknown }), /denied by dashboard:alice/);
    } finally {
      await close();
      await closeAlice();
      await client.close().catch(() => undefined);
    }
  });

  it('releases a held 2026-07-28 call the same way', async () => {
    const client = await agentClient('modern');
    const { page, close } = await newPage(browser);
    try {
      assert.equal(client.getNegotiatedProtocolVersion(), '2026-07-28');
      await signIn(page, ALICE);
      const call = client.callTool({ name: 'find_repos_using_endpoint', arguments: { owner: 'acme', endpoint: 'modern.example' } }, { timeout: 300_000 });
      const id = await pendingRow(page, 'find_repos_using_endpoint');
      await page.locator(`tr[data-approval="${id}"]`).getByRole('button', { name: /^Approve/ }).click();
      await Promise.all([page.waitForURL(/\/approvals\?decided=/), page.getByRole('button', { name: 'Approve and run the call' }).click()]);
      const result = await call;
      assert.notEqual(result.isError, true, text(result));
      assert.equal((result.structuredContent as { endpoint?: string } | undefined)?.endpoint, 'modern.example');
    } finally {
      await close();
      await client.close().catch(() => undefined);
    }
  });

  // last: it adds a tenant to the store
  it("on a store another tenant shares, the pages show and decide this tenant's held calls and audit only; the rest stays with the CLI", async () => {
    const other = demo.file('globex.ndjson', JSON.stringify({
      owner: 'globex', repo: 'api', workflow: 'ci.yml', job: 'build', run_id: '1', timestamp: '2026-11-01T00:00:00Z', domain: 'registry.npmjs.org', port: 443, process: { name: 'npm' },
    }) + '\n');
    const ing = await cliResult(['ingest', other, '--tenant', 'globex', '--db', db]);
    assert.equal(ing.status, 0, ing.stderr);
    // what another tenant's server and a stand-alone gateway write to the same store's audit
    const raw = new Database(db);
    try {
      const ins = raw.prepare(
        "INSERT INTO policy_audit (ts, session, identity, tool, args_hash, decision, rule, latency_ms, upstream, tenant) VALUES (?, 's', 'someone', ?, 'h', 'allow', 'default', 1, 'ok', ?)",
      );
      ins.run(new Date().toISOString(), 'globex_only_tool', 'globex');
      ins.run(new Date().toISOString(), 'gateway_only_tool', null);
    } finally {
      raw.close();
    }
    const client = await agentClient();
    const { page, errors, close } = await newPage(browser);
    try {
      await signIn(page, ALICE);
      const held = client.callTool({ name: 'find_repos_using_endpoint', arguments: { owner: 'acme', endpoint: 'shared-store.example' } }, { timeout: 300_000 });
      const id = await pendingRow(page, 'find_repos_using_endpoint');
      assert.ok((await page.locator(`tr[data-approval="${id}"]`).innerText()).includes('shared-store.example'));
      await page.locator(`tr[data-approval="${id}"]`).getByRole('button', { name: /^Approve/ }).click();
      await Promise.all([page.waitForURL(/\/approvals\?decided=/), page.getByRole('button', { name: 'Approve and run the call' }).click()]);
      const result = await held;
      assert.notEqual(result.isError, true, text(result));

      const res = await page.goto(`${server.base}/audit`);
      assert.equal(res!.status(), 200);
      assert.match(await page.locator('[data-scope=tenant]').innerText(), /one other tenant: only the decisions of default's servers are shown/);
      const tools = await page.locator('tbody tr td:nth-child(3)').allInnerTexts();
      assert.ok(tools.includes('find_repos_using_endpoint'), tools.join(', '));
      assert.ok(!tools.some((t) => /globex_only_tool|gateway_only_tool/.test(t)), tools.join(', '));
      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(errors, []);

      // the store's administrator reads every tenant's, each named
      const all = (await cliResult(['audit', '--db', db])).stdout;
      assert.match(all, /approved +find_repos_using_endpoint .* tenant=default identity=ci-agent/);
      assert.match(all, /allow +globex_only_tool .* tenant=globex identity=someone/);
      assert.match(all, /allow +gateway_only_tool .* 1ms {2}identity=someone/);
      const globex = (await cliResult(['audit', '--tenant', 'globex', '--jsonl', '--db', db])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { tool: string; tenant?: string });
      assert.deepEqual(globex.map((r) => [r.tool, r.tenant]), [['globex_only_tool', 'globex']]);
    } finally {
      await close();
      await client.close().catch(() => undefined);
    }
  });
});
