import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { cliResult } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { axeViolations, launchBrowser, newPage } from './browser.js';
import { demoTenant, startServer, type DemoTenant, type RunningServer } from './server.js';

/**
 * The Policy page's edits against the real `serve --policy` on the demo tenant, in Chromium: a tool
 * moved from Allow to Approval is shown as a diff, saved with its file's comments kept, and a real
 * SDK client calling it through the same server is held for approval at once (the hot reload is
 * real); the Audit page lists the change with who made it and both hashes. An invalid edit, a save
 * over a file changed meanwhile, a reader's post and a post without the CSRF token change nothing.
 */

const ALICE = 'alice-policy-editor-0123456789';
const BOB = 'bob-policy-reader-0123456789ab';
const CAROL = 'carol-rule-writer-0123456789ab';
const AGENT = 'agent-policy-mcp-0123456789abc';

const POLICY = `# egress-triage policy for the dashboard test
version: 1
default: allow   # tools not named pass
tools:
  # read-only lookups
  find_repos_using_endpoint: { action: allow }   # agents may look things up
  list_tenant_github_orgs:
    action: allow
    rate_limit: { max: 100, window: 60 }   # generous
`;

let demo: DemoTenant;
let server: RunningServer;
let browser: Browser;
let policyFile: string;

before(async () => {
  demo = await demoTenant({ runs: 6, events: 1000 });
  const grants = demo.file(
    'grants.yaml',
    [
      'grants:',
      `  - { identity: alice, token: ${ALICE}, dashboard: [read, write, approve] }`,
      `  - { identity: bob, token: ${BOB} }`,
      `  - { identity: carol, token: ${CAROL}, dashboard: [read, write] }`,
      `  - { identity: ci-agent, token: ${AGENT}, dashboard: [] }`,
      '',
    ].join('\n'),
  );
  policyFile = demo.file('policy.yaml', POLICY);
  server = await startServer('serve', ['--db', demo.db, '--policy', policyFile, '--grants', grants]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  demo?.cleanup();
});

async function signIn(page: Page, token: string): Promise<void> {
  await page.goto(`${server.base}/policy`);
  await page.locator('#token').fill(token);
  await Promise.all([page.waitForURL(/\/policy$/), page.locator('button[type=submit]').click()]);
}

async function agentClient(): Promise<Client> {
  const client = new Client({ name: 'policy-agent', version: '1.0.0' }, { capabilities: {}, supportedProtocolVersions: ['2025-11-25'] });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${AGENT}` } } }));
  return client;
}

const text = (r: { content?: unknown }) => ((r.content as { type: string; text?: string }[] | undefined) ?? []).map((c) => c.text ?? '').join('\n');
const commentLines = (t: string) => t.split('\n').filter((l) => l.includes('#')).map((l) => l.slice(l.indexOf('#')));

interface AuditLine {
  decision: string;
  identity: string;
  tool: string;
  reason?: string;
  policy_hash?: string;
  previous_policy_hash?: string;
}
async function policyChanges(): Promise<AuditLine[]> {
  const r = await cliResult(['audit', '--jsonl', '--decision', 'policy_change', '--db', demo.db]);
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim() ? r.stdout.trim().split('\n').map((l) => JSON.parse(l) as AuditLine) : [];
}

/** A POST from inside the page (same origin), with or without the session's CSRF token. */
async function post(page: Page, path: string, body: string, withToken = true): Promise<number> {
  return page.evaluate(
    async ([p, b, t]) => {
      const csrf = document.querySelector('meta[name=csrf-token]')!.getAttribute('content')!;
      const r = await fetch(p, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...(t ? { 'x-csrf-token': csrf } : {}) }, body: b });
      return r.status;
    },
    [path, body, withToken] as const,
  );
}

async function fileHashOnPage(page: Page): Promise<string> {
  return (await page.locator('form.policy-edit input[name=hash]').first().getAttribute('value')) ?? '';
}

describe('policy page edits', () => {
  it('moves a tool from Allow to Approval: diff, save with comments kept, the next call is held, the audit lists it', async () => {
    const client = await agentClient();
    const { page, errors, close } = await newPage(browser);
    try {
      // before: the tool is allowed, the call runs
      const first = await client.callTool({ name: 'find_repos_using_endpoint', arguments: { owner: 'acme', endpoint: 'before.example' } });
      assert.notEqual(first.isError, true, text(first));

      await signIn(page, ALICE);
      const tool = page.locator('section[data-column=allow] li[data-tool=find_repos_using_endpoint]');
      assert.equal(await tool.count(), 1);
      assert.deepEqual(await axeViolations(page), []);
      await tool.locator('summary').click();
      await tool.locator('form.move select[name=to]').selectOption('approval');
      await Promise.all([page.waitForURL(/\/policy\/edit$/), tool.getByRole('button', { name: 'Preview the move' }).click()]);

      assert.equal(await page.locator('h1').innerText(), 'Change the policy');
      const diff = await page.locator('pre.diff').innerText();
      assert.ok(diff.includes('-  find_repos_using_endpoint: { action: allow }   # agents may look things up'), diff);
      assert.ok(diff.includes('+  find_repos_using_endpoint: { action: require_approval } # agents may look things up'), diff);
      assert.match(await page.locator('.confirm').innerText(), /find_repos_using_endpoint: allow → approval, by dashboard:alice/);
      assert.deepEqual(await axeViolations(page), []);
      await Promise.all([page.waitForURL(/\/policy\?saved=[0-9a-f]{64}$/), page.getByRole('button', { name: 'Save the policy' }).click()]);
      assert.match(await page.locator('[role=status]').innerText(), /Saved\. The running server enforces the new version now/);
      assert.equal(await page.locator('section[data-column=approval] li[data-tool=find_repos_using_endpoint]').count(), 1);

      // on disk: the one line changed, every comment kept
      const onDisk = readFileSync(policyFile, 'utf8');
      assert.match(onDisk, /^ {2}find_repos_using_endpoint: \{ action: require_approval \} # agents may look things up$/m);
      assert.deepEqual(commentLines(onDisk), commentLines(POLICY));
      assert.equal(onDisk.split('\n').length, POLICY.split('\n').length);

      // the running server enforces it: the same call is now held for a person
      const held = client.callTool({ name: 'find_repos_using_endpoint', arguments: { owner: 'acme', endpoint: 'after.example' } }, { timeout: 300_000 });
      const id = await waitFor(
        async () => {
          const r = await cliResult(['approvals', 'list', '--json', '--db', demo.db]);
          return (JSON.parse(r.stdout) as { id: string; tool: string }[]).find((a) => a.tool === 'find_repos_using_endpoint')?.id;
        },
        30_000,
        100,
        'the call to be held for approval',
      );
      assert.equal((await cliResult(['approvals', 'deny', id, '--reason', 'held as the new policy says', '--db', demo.db])).status, 0);
      assert.match(text(await held), /\[POLICY DENIED\].*held as the new policy says/);

      // the audit: who, what, both hashes
      const changes = await policyChanges();
      const mine = changes.filter((c) => c.identity === 'dashboard:alice');
      assert.equal(mine.length, 1, JSON.stringify(changes));
      assert.equal(mine[0]!.reason, 'find_repos_using_endpoint: allow → approval');
      assert.equal(mine[0]!.tool, 'find_repos_using_endpoint');
      const newHash = new URL(page.url()).searchParams.get('saved')!;
      assert.equal(mine[0]!.policy_hash, newHash);
      assert.match(mine[0]!.previous_policy_hash ?? '', /^[0-9a-f]{64}$/);
      assert.notEqual(mine[0]!.previous_policy_hash, newHash);

      await page.goto(`${server.base}/audit?decision=policy_change`);
      const row = page.locator('tr[data-decision=policy_change]', { hasText: 'dashboard:alice' });
      assert.equal(await row.count(), 1);
      const rowText = await row.innerText();
      assert.match(rowText, /find_repos_using_endpoint: allow → approval/);
      assert.ok(rowText.includes(`${mine[0]!.previous_policy_hash!.slice(0, 12)} → ${newHash.slice(0, 12)}`), rowText);
      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(errors, []);
    } finally {
      await close();
      await client.close().catch(() => undefined);
    }
  });

  it('an edit that makes the policy invalid is refused with the error at its path, and nothing is written', async () => {
    const { page, close } = await newPage(browser);
    try {
      await signIn(page, ALICE);
      const before = readFileSync(policyFile, 'utf8');
      const tool = page.locator('section[data-column=rate_limited] li[data-tool=list_tenant_github_orgs]');
      await tool.locator('summary').click();
      await tool.locator('form.limit input[name=max]').fill('0');
      const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/policy/edit')), tool.getByRole('button', { name: 'Preview the limit' }).click()]);
      assert.equal(response.status(), 422);
      assert.equal(await page.locator('h1').innerText(), 'The change would make the policy invalid');
      const alert = await page.locator('[role=alert]').innerText();
      assert.match(alert, /line 9:\d+, tools\.list_tenant_github_orgs\.rate_limit\.max: /);
      assert.match(await page.locator('pre.diff').innerText(), /\+ {4}rate_limit: \{ max: 0, window: 60 \}/);
      assert.equal(await page.getByRole('button', { name: /Save/ }).count(), 0, 'no save is offered');
      assert.deepEqual(await axeViolations(page), []);
      // a confirmed post of the same edit is refused the same way
      const hash = await (async () => {
        await page.goto(`${server.base}/policy`);
        return fileHashOnPage(page);
      })();
      assert.equal(await post(page, '/policy/edit', new URLSearchParams({ hash, op: 'limit', tool: 'list_tenant_github_orgs', index: '0', max: '0', window: '60', confirm: 'yes' }).toString()), 422);
      assert.equal(readFileSync(policyFile, 'utf8'), before);
    } finally {
      await close();
    }
  });

  it('a save over a file that changed on disk since the preview is refused (409); the other editor’s change is kept and audited as `file`', async () => {
    const { page, close } = await newPage(browser);
    try {
      await signIn(page, ALICE);
      const tool = page.locator('li[data-tool=list_tenant_github_orgs]');
      await tool.locator('summary').click();
      await tool.locator('form.limit input[name=max]').fill('50');
      await Promise.all([page.waitForURL(/\/policy\/edit$/), tool.getByRole('button', { name: 'Preview the limit' }).click()]);
      assert.match(await page.locator('pre.diff').innerText(), /\+ {4}rate_limit: \{ max: 50, window: 60 \}/);

      // another editor saves the file meanwhile
      const theirs = readFileSync(policyFile, 'utf8').replace('default: allow', 'default: deny');
      writeFileSync(policyFile, theirs);
      const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/policy/edit')), page.getByRole('button', { name: 'Save the policy' }).click()]);
      assert.equal(response.status(), 409);
      assert.match(await page.locator('[role=alert]').innerText(), /changed on disk after you loaded the page/);
      assert.equal(readFileSync(policyFile, 'utf8'), theirs);
      assert.deepEqual(await axeViolations(page), []);
      const fromFile = await waitFor(async () => (await policyChanges()).find((c) => c.identity === 'file' && c.reason === 'default allow → deny'), 30_000, 100, 'the reload of the edited file to be audited');
      assert.equal(fromFile.tool, '');
    } finally {
      await close();
    }
  });

  it('a save while another process holds the policy file’s lock is refused (409) after the wait, and nothing is written', async () => {
    const { page, close } = await newPage(browser);
    const lock = join(dirname(policyFile), `.${basename(policyFile)}.lock`);
    try {
      await signIn(page, ALICE);
      const tool = page.locator('li[data-tool=list_tenant_github_orgs]');
      await tool.locator('summary').click();
      await tool.locator('form.limit input[name=max]').fill('70');
      await Promise.all([page.waitForURL(/\/policy\/edit$/), tool.getByRole('button', { name: 'Preview the limit' }).click()]);
      const before = readFileSync(policyFile, 'utf8');
      // a live process (this test) holds the lock, as another server in the middle of its save would
      writeFileSync(lock, String(process.pid));
      const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/policy/edit')), page.getByRole('button', { name: 'Save the policy' }).click()]);
      assert.equal(response.status(), 409);
      assert.match(await page.locator('[role=alert]').innerText(), /Another process is saving the policy file right now/);
      assert.equal(readFileSync(policyFile, 'utf8'), before);
      assert.equal(readFileSync(lock, 'utf8'), String(process.pid), "the holder's lock is left alone");
    } finally {
      rmSync(lock, { force: true });
      await close();
    }
  });

  it('a reader sees no forms and cannot post (403); nor can write without approve; nor a post without the CSRF token', async () => {
    const before = readFileSync(policyFile, 'utf8');
    const { page: alice, close: closeAlice } = await newPage(browser);
    const { page: bob, close: closeBob } = await newPage(browser);
    const { page: carol, close: closeCarol } = await newPage(browser);
    try {
      await signIn(alice, ALICE);
      const hash = await fileHashOnPage(alice);
      assert.match(hash, /^[0-9a-f]{64}$/);
      const body = new URLSearchParams({ hash, op: 'move', tool: 'list_tenant_github_orgs', to: 'deny', reason: 'no', confirm: 'yes' }).toString();
      assert.equal(await post(alice, '/policy/edit', body, false), 403, 'no CSRF token');

      for (const [page, token, name] of [[bob, BOB, 'bob'], [carol, CAROL, 'carol']] as const) {
        await signIn(page, token);
        assert.equal(await page.locator('li[data-tool]').count() > 0, true);
        assert.equal(await page.locator('details.tool-edit, form.policy-edit').count(), 0, `${name} sees no edit form`);
        assert.match(await page.locator('main').innerText(), /needs the dashboard permissions "write" and "approve"/);
        assert.equal(await post(page, '/policy/edit', body), 403, `${name} cannot post`);
        assert.deepEqual(await axeViolations(page), []);
      }
      assert.equal(readFileSync(policyFile, 'utf8'), before);
    } finally {
      await closeAlice();
      await closeBob();
      await closeCarol();
    }
  });
});
