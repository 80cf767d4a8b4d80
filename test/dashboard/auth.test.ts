import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Browser } from 'playwright-core';
import { axeViolations, launchBrowser, newPage } from './browser.js';
import { demoTenant, startServer, type DemoTenant, type RunningServer } from './server.js';
import { CONTENT_SECURITY_POLICY } from '../../src/dashboard/security-headers.js';

/**
 * Sign-in, session cookie and CSRF in headless Chromium, against `dashboard --grants` on the demo
 * tenant; a second, hostile page on another port of 127.0.0.1 (same site, other origin: the cookie
 * travels and the host name passes the DNS-rebinding check) posts forms at it. Its own origin stops
 * it; the token check on its own is tested with forged requests (red-team.test.ts).
 */

const READER = 'reader-token-0123456789abcdef';
const NO_ACCESS = 'agent-token-0123456789abcdef';

let demo: DemoTenant;
let server: RunningServer;
let secure: RunningServer;
let browser: Browser;
let hostile: Server;
let hostileBase: string;

/** A page of another origin with a form that posts `fields` to `action` without any CSRF token. */
function hostilePage(action: string, fields: Record<string, string>): string {
  const inputs = Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${k}" value="${v}">`).join('');
  return `<!doctype html><html lang="en"><title>win a prize</title><form method="post" action="${action}">${inputs}<button id="go">Claim</button></form></html>`;
}

before(async () => {
  demo = await demoTenant();
  const grants = demo.file(
    'grants.yaml',
    `grants:\n  - { identity: alice, token: ${READER} }\n  - { identity: ci-agent, token: ${NO_ACCESS}, dashboard: [] }\n`,
  );
  [server, secure] = await Promise.all([
    startServer('dashboard', ['--db', demo.db, '--grants', grants]),
    startServer('dashboard', ['--db', demo.db, '--grants', grants, '--secure-cookies']),
  ]);
  hostile = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end(hostilePage(`${server.base}${u.searchParams.get('path')}`, Object.fromEntries(new URLSearchParams(u.searchParams.get('fields') ?? ''))));
  });
  await new Promise<void>((r) => hostile.listen(0, '127.0.0.1', r));
  hostileBase = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await new Promise((r) => hostile?.close(r));
  await Promise.all([server?.stop(), secure?.stop()]);
  demo?.cleanup();
});

async function signIn(page: import('playwright-core').Page, token: string, next = '/') {
  await page.goto(`${server.base}${next}`);
  await page.locator('#token').fill(token);
  const [response] = await Promise.all([page.waitForResponse((r) => r.url().endsWith('/signin') && r.request().method() === 'POST'), page.locator('button[type=submit]').click()]);
  return response;
}

describe('dashboard sign-in and CSRF', () => {
  it('sends a visitor without a session to sign in, refuses a bad token, and signs in with a good one', async () => {
    const { page, close } = await newPage(browser);
    try {
      const run = `/github/${demo.injection.owner}/${demo.injection.repo}/actions/runs/${demo.injection.runId}?tab=network-events`;
      const first = await page.goto(`${server.base}${run}`);
      assert.match(page.url(), /\/signin\?next=/);
      assert.equal(first!.headers()['content-security-policy'], CONTENT_SECURITY_POLICY);
      assert.deepEqual(await axeViolations(page), []);

      const bad = await signIn(page, 'not-a-token-0123456789', run);
      assert.equal(bad.status(), 401);
      assert.match(await page.locator('[role=alert]').innerText(), /Unknown token/);
      assert.deepEqual(await page.context().cookies(), []);

      const none = await signIn(page, NO_ACCESS, run);
      assert.equal(none.status(), 403);
      assert.match(await page.locator('[role=alert]').innerText(), /no dashboard access/);
      assert.deepEqual(await page.context().cookies(), []);

      const good = await signIn(page, READER, run);
      assert.equal(good.status(), 303);
      // back where the link pointed, signed in
      await page.waitForURL((u) => u.pathname.includes('/actions/runs/'));
      assert.match(await page.locator('h1').innerText(), /Run 1007/);
      assert.match(await page.locator('header').innerText(), /alice/);
      const [cookie] = await page.context().cookies();
      assert.equal(cookie!.name, 'et_session');
      assert.equal(cookie!.httpOnly, true);
      assert.equal(cookie!.sameSite, 'Strict');
      assert.equal(cookie!.path, '/');
      assert.equal(cookie!.secure, false);
      assert.ok(cookie!.value.length >= 40);
    } finally {
      await close();
    }
  });

  it('marks the session cookie Secure with --secure-cookies', async () => {
    const res = await fetch(`${secure.base}/signin`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: secure.base },
      body: new URLSearchParams({ token: READER, next: '/' }),
    });
    assert.equal(res.status, 303);
    assert.match(res.headers.get('set-cookie')!, /^et_session=[\w-]{40,}; HttpOnly; SameSite=Strict; Path=\/; Secure$/);
  });

  it('refuses a form post from another port of the same host (403) and changes nothing', async () => {
    const { page, close } = await newPage(browser);
    try {
      await signIn(page, READER);
      await page.waitForURL(`${server.base}/`);
      const sessionBefore = (await page.context().cookies()).find((c) => c.name === 'et_session')!.value;

      for (const [path, fields] of [
        ['/signout', {}],
        ['/theme', { theme: 'dark', return: '/' }],
      ] as const) {
        await page.goto(`${hostileBase}/?path=${encodeURIComponent(path)}&fields=${encodeURIComponent(new URLSearchParams(fields).toString())}`);
        const [response] = await Promise.all([page.waitForResponse((r) => r.url() === `${server.base}${path}`), page.locator('#go').click()]);
        assert.equal(response.status(), 403, path);
        assert.match(await page.locator('main').innerText(), new RegExp(`comes from "${hostileBase}", not from this dashboard.*Nothing was changed`, 's'));
      }
      // still signed in with the same session, and no theme was set
      const cookies = await page.context().cookies();
      assert.equal(cookies.find((c) => c.name === 'et_session')?.value, sessionBefore);
      assert.equal(cookies.find((c) => c.name === 'et_theme'), undefined);
      const home = await page.goto(`${server.base}/`);
      assert.equal(home!.status(), 200);
      assert.equal(new URL(page.url()).pathname, '/');

      // the same forms with the page's own token do work
      await page.locator('#theme-select').selectOption('dark');
      await page.locator('form[action="/theme"] button').click();
      await page.waitForURL(`${server.base}/`);
      assert.equal(await page.locator('html').getAttribute('data-theme'), 'dark');
      assert.deepEqual(await axeViolations(page), []);
      await page.locator('form[action="/signout"] button').click();
      await page.waitForURL(/\/signin$/);
      assert.equal((await page.goto(`${server.base}/`))!.url().includes('/signin'), true);
    } finally {
      await close();
    }
  });

  it('refuses a sign-in posted from another port of the same host (no login CSRF): 403, no session', async () => {
    const { page, close } = await newPage(browser);
    try {
      // the hostile page holds a token of its own (here a valid one) and tries to sign the visitor in with it
      await page.goto(`${hostileBase}/?path=${encodeURIComponent('/signin')}&fields=${encodeURIComponent(new URLSearchParams({ token: READER, next: '/' }).toString())}`);
      const [response] = await Promise.all([page.waitForResponse((r) => r.url() === `${server.base}/signin`), page.locator('#go').click()]);
      assert.equal(response.status(), 403);
      assert.equal(response.headers()['set-cookie'], undefined);
      assert.match(await page.locator('body').innerText(), new RegExp(`Refused: the request comes from "${hostileBase}", not from this dashboard`));
      assert.equal((await page.context().cookies()).find((c) => c.name === 'et_session'), undefined);
      // the same token signs in from the dashboard's own page
      await signIn(page, READER);
      await page.waitForURL(`${server.base}/`);
    } finally {
      await close();
    }
  });

  it('refuses a write without an Origin header, even with the session and token', async () => {
    const signin = await fetch(`${server.base}/signin`, {
      method: 'POST',
      redirect: 'manual',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: server.base },
      body: new URLSearchParams({ token: READER }),
    });
    const cookie = signin.headers.get('set-cookie')!.split(';')[0]!;
    const home = await (await fetch(`${server.base}/`, { headers: { cookie } })).text();
    const token = /<meta name="csrf-token" content="([^"]+)"/.exec(home)![1]!;
    const noOrigin = await fetch(`${server.base}/signout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ _csrf: token }),
    });
    assert.equal(noOrigin.status, 403);
    const withHeader = await fetch(`${server.base}/signout`, {
      method: 'POST',
      redirect: 'manual',
      headers: { cookie, origin: server.base, 'x-csrf-token': token },
    });
    assert.equal(withHeader.status, 303);
    // the session is gone
    assert.equal((await fetch(`${server.base}/`, { headers: { cookie }, redirect: 'manual' })).status, 303);
  });
});
