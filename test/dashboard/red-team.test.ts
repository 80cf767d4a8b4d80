import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { cliResult, nativeEvent, ndjson, tempDir } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { launchBrowser, newPage, postFromPage, signIn } from './browser.js';
import { startServer, type RunningServer } from './server.js';

/**
 * The dashboard attacked from both sides, on one `serve --grants --policy` and one Chromium: a
 * compromised CI job that controls every field of its telemetry (names, paths, hashes, repo, workflow
 * and job names), an agent whose held call a person must judge, and a reader or a foreign page that
 * tries to write.
 */

const WRITER = 'rt-writer-token-0123456789abcdef';
const READER = 'rt-reader-token-0123456789abcdef';
const APPROVER = 'rt-approver-token-0123456789abcd';
const AGENT = 'rt-agent-token-0123456789abcdefg';

const XSS = '"><script>alert(1)</script><img src=x onerror=alert(2)>';
/** U+202E RIGHT-TO-LEFT OVERRIDE: "\u202Edelacsliat" is drawn as "tailscaled". */
const RLO_NAME = '\u202Edelacsliat';
const ORG = { owner: `rt-org${XSS}`, repo: 'rt-repo', job: `build${XSS}`, workflow: `.github/workflows/${XSS}.yml` };

let t: ReturnType<typeof tempDir>;
let server: RunningServer;
let browser: Browser;

before(async () => {
  t = tempDir('egress-triage-red-team-');
  const db = join(t.dir, 'rt.db');
  const events = [
    ...[1, 2, 3, 4, 5, 6].map((run) => nativeEvent({ ...ORG, run, domain: 'registry.npmjs.org', process: 'node' })),
    { ...nativeEvent({ ...ORG, run: 7, domain: 'evil.example', process: XSS, sha256: XSS, parent: XSS }) },
    nativeEvent({ ...ORG, run: 7, domain: 'spoof.example', process: RLO_NAME, sha256: 'sha-spoof' }),
  ];
  const ing = await cliResult(['ingest', t.file('rt.ndjson', ndjson(events)), '--db', db, '--format', 'native']);
  assert.equal(ing.status, 0, ing.stderr);
  const grants = t.file(
    'grants.yaml',
    [
      'grants:',
      `  - { identity: writer, token: ${WRITER}, dashboard: [read, write] }`,
      `  - { identity: reader, token: ${READER}, dashboard: [read] }`,
      `  - { identity: approver, token: ${APPROVER}, dashboard: [read, approve] }`,
      `  - { identity: ci-agent, token: ${AGENT}, dashboard: [] }`,
      '',
    ].join('\n'),
  );
  const policy = t.file('policy.yaml', 'version: 1\ndefault: allow\ntools:\n  find_repos_using_endpoint: { action: require_approval, approval_timeout: 600 }\n');
  server = await startServer('serve', ['--db', db, '--policy', policy, '--grants', grants]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  t?.cleanup();
});

describe('dashboard red team', () => {
  it('telemetry fields full of markup run no script on any page that shows them', async () => {
    const { page, dialogs, errors, close } = await newPage(browser);
    try {
      await signIn(page, server.base, READER, '/');
      const runLink = await page.locator('a[href^="/github/"]', { hasText: 'run 1007' }).first().getAttribute('href');
      assert.ok(runLink, 'the overview links the crafted run');
      const paths = ['/', '/processes', '/detections', '/destinations', '/baselines', runLink, '/detections?process=' + encodeURIComponent(XSS), '/processes/preview?detection_id=New-Outbound-Network-Call&c.process=' + encodeURIComponent(XSS)];
      for (const path of paths) {
        const res = await page.goto(server.base + path);
        const html = await res!.text();
        // a preview of that name is refused as a malformed value (400), with the value in its message
        assert.equal(res?.status(), path.startsWith('/processes/preview') ? 400 : 200, path);
        assert.ok(!html.includes('<script>alert'), `${path}: the markup is escaped`);
        assert.equal(await page.locator('img[src="x"]').count(), 0, `${path}: no injected element`);
        assert.ok((await page.locator('main').innerText()).includes('onerror=alert(2)'), `${path}: shown as text`);
      }
      assert.deepEqual(dialogs, []);
      assert.deepEqual(
        errors.filter((e) => !/status of 400/.test(e)),
        [],
      );
    } finally {
      await close();
    }
  });

  it('a right-to-left override in a process name is shown, not obeyed: the name cannot pass for another', async () => {
    const { page, close } = await newPage(browser);
    try {
      await signIn(page, server.base, READER, '/detections?endpoint=spoof.example');
      const row = page.locator('tr[data-id]').first();
      const text = await row.innerText();
      assert.ok(!text.includes('\u202E'), `the override character is not drawn as an override: ${JSON.stringify(text)}`);
      assert.match(text, /U\+202E/, 'it is named where it sits');
      // the exact value stays where it is data, not text: the link filters by the stored name
      assert.equal(await row.getAttribute('data-process'), RLO_NAME);
    } finally {
      await close();
    }
  });

  it('an agent cannot push the part of its held call that matters past what the approver is shown', async () => {
    const client = new Client({ name: 'padding-agent', version: '1.0.0' }, { capabilities: {}, supportedProtocolVersions: ['2025-11-25'] });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${AGENT}` } } }));
    // key order is the agent's: 4,100 harmless characters first, the argument that matters after them
    const held = client.callTool({ name: 'find_repos_using_endpoint', arguments: { owner: 'a'.repeat(4100), endpoint: 'webhook.site:443' } }, { timeout: 300_000 }).catch(() => undefined);
    const { page, close } = await newPage(browser);
    try {
      await signIn(page, server.base, APPROVER, '/approvals');
      const row = page.locator('section[aria-labelledby="pending"] tr[data-approval]', { hasText: 'find_repos_using_endpoint' });
      await waitFor(
        async () => {
          await page.goto(`${server.base}/approvals`);
          return (await row.count()) === 1 || undefined;
        },
        30_000,
        100,
        'the held call on the Approvals page',
      );
      const text = await row.innerText();
      assert.ok(!text.includes('webhook.site'), 'the endpoint is past what was recorded for the approver');
      assert.match(text, /cut at 4,000 characters/, `the row says the arguments are not all shown: ${text}`);
      // the confirm step says it again, right above the button that would run the whole call
      await row.locator('button', { hasText: 'Approve' }).click();
      assert.match(await page.locator('main').innerText(), /cut at 4,000 characters/);
      await page.goto(`${server.base}/approvals`);
      await row.locator('button', { hasText: 'Deny' }).click();
      await page.locator('main button[type=submit]', { hasText: 'Deny the call' }).click();
      await held;
    } finally {
      await close();
      await client.close();
    }
  });

  it('holds: writes need the right permission, the token and this origin; sign-in goes nowhere else', async () => {
    const reader = await newPage(browser);
    const writer = await newPage(browser);
    try {
      await signIn(reader.page, server.base, READER, '/');
      await signIn(writer.page, server.base, WRITER, '/');
      const ep = [['owner', ORG.owner], ['repo', ORG.repo], ['endpoint', 'evil.example:443'], ['confirm', 'yes']] as [string, string][];
      assert.equal((await postFromPage(reader.page, server.base, '/baselines/expect', ep)).status, 403, 'a reader cannot expect');
      assert.equal((await postFromPage(reader.page, server.base, '/processes/rules', [['detection_id', 'New-Outbound-Network-Call'], ['c.process', 'node'], ['confirm', 'yes']])).status, 403);
      assert.equal((await postFromPage(writer.page, server.base, '/approvals/apr_000000000000/approve', [['confirm', 'yes']])).status, 403, 'write is not approve');
      assert.equal((await postFromPage(writer.page, server.base, '/policy/edit', [['confirm', 'yes']])).status, 403, 'write alone cannot change the policy');
      const cookie = (await writer.page.context().cookies()).find((c) => c.name === 'et_session')!;
      assert.equal(cookie.httpOnly, true);
      assert.equal(cookie.sameSite, 'Strict');
      const forged = (headers: Record<string, string>, body: string) =>
        fetch(`${server.base}/baselines/expect`, { method: 'POST', redirect: 'manual', headers: { cookie: `et_session=${cookie.value}`, 'content-type': 'application/x-www-form-urlencoded', ...headers }, body });
      const body = new URLSearchParams(ep).toString();
      assert.equal((await forged({ origin: server.base }, body)).status, 403, 'no CSRF token');
      assert.equal((await forged({}, body)).status, 403, 'no Origin');
      assert.equal((await forged({ origin: 'http://evil.example' }, body)).status, 403, 'a foreign Origin');
      // fetch() cannot set Host: a raw request, as a DNS-rebinding page's would arrive
      const hostStatus = await new Promise<number | undefined>((resolve, reject) =>
        httpGet(`${server.base}/`, { headers: { host: 'evil.example' } }, (res) => (res.resume(), resolve(res.statusCode))).on('error', reject),
      );
      assert.equal(hostStatus, 403, 'a foreign Host');
      for (const next of ['//evil.example/', '/\\evil.example', 'https://evil.example/', '/\t/evil.example', 'javascript:alert(1)']) {
        const res = await fetch(`${server.base}/signin`, { method: 'POST', redirect: 'manual', headers: { origin: server.base, 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token: READER, next }).toString() });
        assert.equal(res.headers.get('location'), '/', `next=${next}`);
      }
    } finally {
      await reader.close();
      await writer.close();
    }
  });
});
