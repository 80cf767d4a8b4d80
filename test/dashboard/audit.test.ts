import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { writeFileSync } from 'node:fs';
import { axeViolations, launchBrowser, newPage } from './browser.js';
import { demoTenant, INJECTION, startServer, type DemoTenant, type RunningServer } from './server.js';

/**
 * The Audit page against `serve --policy` with real SDK clients making the calls: filters by tool,
 * decision, identity and time, pages of 50, argument values only where the policy writes them, and
 * HTML-like arguments shown as text.
 */

const READER = 'reader-token-0123456789abcdefgh';
const AGENT = 'agent-token-0123456789abcdefghi';
const OTHER = 'other-token-0123456789abcdefghi';

let demo: DemoTenant;
let server: RunningServer;
let browser: Browser;
let page: Page;
let policyFile: string;
let closePage: () => Promise<void>;

async function agent(token: string): Promise<Client> {
  const client = new Client({ name: 'audited-agent', version: '1.0.0' }, { capabilities: {}, supportedProtocolVersions: ['2025-11-25'] });
  await client.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
  return client;
}

before(async () => {
  demo = await demoTenant({ runs: 6, events: 1000 });
  const grants = demo.file(
    'grants.yaml',
    `grants:\n  - { identity: reader, token: ${READER} }\n  - { identity: ci-agent, token: ${AGENT}, dashboard: [] }\n  - { identity: other-agent, token: ${OTHER}, dashboard: [] }\n`,
  );
  const policy = (policyFile = demo.file(
    'policy.yaml',
    `version: 1
default: allow
tools:
  ping: { rate_limit: { max: 55, window: 3600 } }
  find_repos_using_endpoint: { audit_args: plain }
  list_tenant_github_orgs: { action: deny, reason: no org lists for agents }
`,
  ));
  server = await startServer('serve', ['--db', demo.db, '--policy', policy, '--grants', grants]);
  const a = await agent(AGENT);
  const o = await agent(OTHER);
  try {
    // 55 allowed pings and one over the limit, one denied tool, one call with plain arguments each
    for (let i = 0; i < 56; i++) await a.callTool({ name: 'ping', arguments: {} });
    await a.callTool({ name: 'list_tenant_github_orgs', arguments: {} });
    await a.callTool({ name: 'find_repos_using_endpoint', arguments: { owner: 'xss-org', endpoint: INJECTION } });
    await o.callTool({ name: 'find_repos_using_endpoint', arguments: { owner: 'acme', endpoint: 'x.example' } });
  } finally {
    await a.close().catch(() => undefined);
    await o.close().catch(() => undefined);
  }
  browser = await launchBrowser();
  ({ page, close: closePage } = await newPage(browser));
  await page.goto(`${server.base}/audit`);
  await page.locator('#token').fill(READER);
  await Promise.all([page.waitForURL(/\/audit$/), page.locator('button[type=submit]').click()]);
});

after(async () => {
  await closePage?.();
  await browser?.close();
  await server?.stop();
  demo?.cleanup();
});

const rows = () => page.locator('main tbody tr');
const decisions = async () => (await rows().evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-decision'))));

describe('audit page', () => {
  it('lists the newest 50 decisions, pages to the older ones, and passes axe', async () => {
    const res = await page.goto(`${server.base}/audit`);
    assert.equal(res!.status(), 200);
    assert.equal(await rows().count(), 50);
    const first = await rows().first().innerText();
    assert.match(first, /find_repos_using_endpoint/);
    assert.match(first, /other-agent/);
    assert.deepEqual(await axeViolations(page), []);
    await Promise.all([page.waitForURL(/page=2/), page.getByRole('link', { name: 'Older' }).click()]);
    assert.equal(await rows().count(), 59 - 50);
    assert.equal(await page.getByRole('link', { name: 'Older' }).count(), 0);
    assert.equal(await page.getByRole('link', { name: 'Newer' }).count(), 1);
  });

  it('filters by decision, tool, identity and time', async () => {
    await page.goto(`${server.base}/audit?decision=deny`);
    assert.deepEqual(await decisions(), ['deny']);
    assert.match(await rows().first().innerText(), /no org lists for agents/);
    await page.goto(`${server.base}/audit?decision=rate_limited`);
    assert.deepEqual(await decisions(), ['rate_limited']);
    await page.goto(`${server.base}/audit?identity=other-agent`);
    assert.equal(await rows().count(), 1);
    await page.goto(`${server.base}/audit?tool=ping&identity=ci-agent`);
    assert.equal(await rows().count(), 50);
    await page.goto(`${server.base}/audit?tool=ping&page=2`);
    assert.equal(await rows().count(), 6);
    await page.goto(`${server.base}/audit?since=1h&tool=find_repos_using_endpoint`);
    assert.equal(await rows().count(), 2);
    await page.goto(`${server.base}/audit?until=2000-01-01`);
    assert.equal(await rows().count(), 0);
    assert.match(await page.locator('main').innerText(), /No decision matches/);
    // the form itself applies the filter
    await page.goto(`${server.base}/audit`);
    await page.locator('select[name=decision]').selectOption('deny');
    await Promise.all([page.waitForURL(/decision=deny/), page.getByRole('button', { name: 'Filter' }).click()]);
    assert.deepEqual(await decisions(), ['deny']);
  });

  it('says which filter field is wrong (400) and applies none', async () => {
    const res = await page.goto(`${server.base}/audit?since=yesterday-ish&decision=maybe`);
    assert.equal(res!.status(), 400);
    const alert = await page.locator('[role=alert]').innerText();
    assert.match(alert, /since: "yesterday-ish" is not a time; expected an RFC 3339 time/);
    assert.match(alert, /decision must be one of allow/);
    assert.equal(await rows().count(), 0);
    assert.deepEqual(await axeViolations(page), []);
  });

  it('shows argument values only where the policy writes them, HTML-like ones as text', async () => {
    const { page: p, dialogs, close } = await newPage(browser);
    try {
      await p.goto(`${server.base}/audit?tool=find_repos_using_endpoint&identity=ci-agent`);
      await p.locator('#token').fill(READER);
      await Promise.all([p.waitForURL(/\/audit\?/), p.locator('button[type=submit]').click()]);
      const text = await p.locator('main tbody tr').first().innerText();
      assert.ok(text.includes(INJECTION), text);
      assert.equal(await p.locator('main img').count(), 0);
      await p.goto(`${server.base}/audit?tool=ping&decision=allow`);
      assert.match(await p.locator('main tbody tr').first().innerText(), /hashed [0-9a-f]{12}/);
      assert.deepEqual(dialogs, []);
    } finally {
      await close();
    }
  });

  it('shows the policy file with its tools in columns, and problems beside the tool they are about', async () => {
    const res = await page.goto(`${server.base}/policy`);
    assert.equal(res!.status(), 200);
    const column = async (c: string) => page.locator(`section[data-column="${c}"] li.tool`).evaluateAll((lis) => lis.map((li) => li.getAttribute('data-tool')));
    assert.deepEqual(await column('rate_limited'), ['ping']);
    assert.deepEqual(await column('allow'), ['find_repos_using_endpoint']);
    assert.deepEqual(await column('deny'), ['list_tenant_github_orgs']);
    assert.match(await page.locator('section[data-column="rate_limited"]').innerText(), /55 per 3600s/);
    assert.match(await page.locator('main').innerText(), /valid/);
    assert.deepEqual(await axeViolations(page), []);

    // an invalid version on disk: the problems show where they are, an HTML-like tool name as text
    writeFileSync(
      policyFile,
      `version: 1\ndefault: allow\nhide: [secret_tool]\ntools:\n  ping: { action: deny }\n  "${INJECTION}": { action: require_approval }\n`,
    );
    const { page: p, dialogs, close } = await newPage(browser);
    try {
      await p.goto(`${server.base}/policy`);
      await p.locator('#token').fill(READER);
      await Promise.all([p.waitForURL(/\/policy$/), p.locator('button[type=submit]').click()]);
      assert.match(await p.locator('main dl.facts').innerText(), /invalid/);
      const ping = await p.locator('section[data-column="deny"] li[data-tool="ping"]').innerText();
      assert.match(ping, /line 5.*tools\.ping.*needs a reason/s);
      const injected = p.locator('section[data-column="approval"] li.tool.has-issues');
      assert.equal(await injected.count(), 1);
      assert.ok((await injected.innerText()).includes(INJECTION));
      assert.match(await injected.innerText(), /whitespace/);
      assert.deepEqual(await p.locator('section[data-column="hidden"] li.tool').evaluateAll((lis) => lis.map((li) => li.getAttribute('data-tool'))), ['secret_tool']);
      assert.equal(await p.locator('main img').count(), 0);
      assert.deepEqual(dialogs, []);
      assert.deepEqual(await axeViolations(p), []);
    } finally {
      await close();
    }
  });
});
