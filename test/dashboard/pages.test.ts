import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { get as httpGet } from 'node:http';
import type { Browser } from 'playwright-core';
import { cliResult } from '../helpers.js';
import { axeViolations, launchBrowser, newPage } from './browser.js';
import { demoTenant, INJECTION, startServer, type DemoTenant, type RunningServer } from './server.js';
import { CONTENT_SECURITY_POLICY } from '../../src/dashboard/security-headers.js';

/** The dashboard's pages in headless Chromium, against `serve` on the demo tenant (open: loopback, no grants). */

let demo: DemoTenant;
let server: RunningServer;
let browser: Browser;

before(async () => {
  demo = await demoTenant();
  server = await startServer('serve', ['--db', demo.db]);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  demo?.cleanup();
});

/** A dashboard_url as the tools emit it, moved onto the test server. */
const onServer = (dashboardUrl: string) => server.base + new URL(dashboardUrl).pathname + new URL(dashboardUrl).search;

describe('dashboard pages', () => {
  it('opens a dashboard_url from an analyze --json result and shows the run with the detection highlighted', async () => {
    const res = await cliResult(['analyze', '--json', '--db', demo.db]);
    assert.equal(res.status, 0, res.stderr);
    const analysis = JSON.parse(res.stdout) as { processes: { process: string; sample_detections: { dashboard_url: string; endpoint: string; run_id: string }[] }[] };
    const sample = analysis.processes.find((p) => p.process === 'tailscaled')!.sample_detections[0]!;
    assert.match(sample.dashboard_url, /\/actions\/runs\/\d+\?jobId=\d+&tab=network-events$/);
    const { page, errors, close } = await newPage(browser);
    try {
      const response = await page.goto(onServer(sample.dashboard_url));
      assert.equal(response!.status(), 200);
      assert.equal(response!.headers()['content-security-policy'], CONTENT_SECURITY_POLICY);
      assert.match(await page.locator('h1').innerText(), new RegExp(`Run ${sample.run_id}`));
      const rows = page.locator('tbody tr');
      assert.ok((await rows.count()) > 1, 'the run has several calls');
      const hit = page.locator(`tr[data-endpoint="${sample.endpoint}"]`);
      assert.equal(await hit.count(), 1);
      assert.equal(await hit.getAttribute('class'), 'detected');
      assert.match(await hit.innerText(), /Detection\s+New-Outbound-Network-Call/);
      assert.match(await hit.innerText(), /tailscaled/);
      // calls without a detection are not highlighted
      assert.ok((await page.locator('tbody tr:not(.detected)').count()) > 0);
      // the parent chain is a walkable tree and the job's baseline is linked
      assert.ok((await page.locator('details.tree').count()) > 0);
      assert.match((await page.locator('a', { hasText: "this job's baseline" }).first().getAttribute('href'))!, /^\/baselines\?owner=/);
      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it('shows a process and endpoint named like HTML as text: no element, no dialog', async () => {
    const { page, dialogs, errors, close } = await newPage(browser);
    try {
      const i = demo.injection;
      const response = await page.goto(`${server.base}/github/${i.owner}/${i.repo}/actions/runs/${i.runId}?jobId=${i.jobId}&tab=network-events`);
      assert.equal(response!.status(), 200);
      const row = page.locator('tr.detected');
      assert.equal(await row.count(), 1);
      const text = await row.innerText();
      assert.ok(text.includes(INJECTION), `the row shows the name as text: ${text}`);
      assert.ok(text.includes('x.example:443'));
      assert.equal(await page.locator('main img').count(), 0, 'no element was made of the name');
      await page.locator('details.tree > summary').first().click();
      assert.deepEqual(dialogs, []);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it('answers an unknown run with a 404 page that says so', async () => {
    const { page, close } = await newPage(browser);
    try {
      const response = await page.goto(`${server.base}/github/nobody/nothing/actions/runs/42?jobId=1&tab=network-events`);
      assert.equal(response!.status(), 404);
      assert.equal(response!.headers()['content-security-policy'], CONTENT_SECURITY_POLICY);
      assert.equal(response!.headers()['x-content-type-options'], 'nosniff');
      assert.equal(response!.headers()['referrer-policy'], 'same-origin');
      assert.equal(await page.locator('h1').innerText(), 'Run not found');
      assert.match(await page.locator('main').innerText(), /No run 42 of nobody\/nothing with GitHub job id 1/);
      assert.deepEqual(await axeViolations(page), []);
    } finally {
      await close();
    }
  });

  it('shows the overview: chart drawn by the bundle, top processes, newest detections linking to their run', async () => {
    const { page, errors, close } = await newPage(browser);
    try {
      const response = await page.goto(`${server.base}/`);
      assert.equal(response!.status(), 200);
      await page.locator('figure.chart .uplot canvas').first().waitFor({ timeout: 10_000 });
      const top = await page.locator('section[aria-labelledby="top-processes"] tbody tr').first().innerText();
      assert.match(top, /^tailscaled\s+\d+/);
      const link = page.locator('section[aria-labelledby="newest"] tbody a[href*="/actions/runs/"]').first();
      await link.click();
      await page.waitForURL(/\/actions\/runs\//);
      assert.ok((await page.locator('tr.detected').count()) > 0);
      await page.goto(`${server.base}/`);
      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it('dark mode and a narrow screen: no serious axe violation, and the page itself never scrolls sideways', async () => {
    const i = demo.injection;
    const run = `/github/${i.owner}/${i.repo}/actions/runs/${i.runId}?tab=network-events`;
    // a rule (the suggested openvpn one: 3 detections), so the Rules pages have a row, a history and the forms
    const analysis = JSON.parse((await cliResult(['analyze', '--json', '--db', demo.db])).stdout) as { processes: { process: string; suggested_rule: { conditions: Record<string, string> } | null }[] };
    const openvpn = analysis.processes.find((p) => p.process === 'openvpn')!.suggested_rule!.conditions;
    const made = await cliResult(['rules', 'create', ...Object.entries(openvpn).flatMap(([k, v]) => ['--condition', `${k}=${v}`]), '--yes', '--json', '--db', demo.db]);
    assert.equal(made.status, 0, made.stderr);
    const rule = `/rules/${(JSON.parse(made.stdout) as { rule: { rule_id: string } }).rule.rule_id}`;
    for (const opts of [{ colorScheme: 'dark' as const }, { width: 390, height: 844 }]) {
      const { page, close } = await newPage(browser, opts);
      try {
        for (const path of ['/', run, '/rules', rule]) {
          await page.goto(server.base + path);
          assert.deepEqual(await axeViolations(page), [], `${path} ${JSON.stringify(opts)}`);
          const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
          assert.ok(overflow <= 0, `${path} ${JSON.stringify(opts)} overflows by ${overflow}px`);
        }
        if (opts.colorScheme === 'dark') {
          const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
          assert.equal(bg, 'rgb(18, 21, 27)', 'the dark palette follows prefers-color-scheme');
        }
      } finally {
        await close();
      }
    }
  });

  it('serves the bundle with hashed, long-cached names; pages are not cached', async () => {
    const html = await fetch(`${server.base}/`);
    assert.equal(html.headers.get('cache-control'), 'no-store');
    const script = /<script type="module" src="(\/assets\/main-[\w-]+\.js)"/.exec(await html.text())?.[1];
    assert.ok(script);
    const js = await fetch(server.base + script);
    assert.equal(js.status, 200);
    assert.equal(js.headers.get('cache-control'), 'public, max-age=31536000, immutable');
    assert.match(js.headers.get('content-type')!, /^text\/javascript/);
    assert.equal((await fetch(`${server.base}/assets/../package.json`)).status, 404);
    // MCP stays on /mcp of the same listener
    assert.equal((await fetch(`${server.base}/healthz`)).status, 200);
  });

  it('applies the Host/Origin check to the dashboard too (DNS rebinding)', async () => {
    const status = (headers: Record<string, string>) =>
      new Promise<number>((resolve, reject) => {
        const r = httpGet(`${server.base}/`, { headers }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        r.on('error', reject);
      });
    assert.equal(await status({ host: 'evil.example' }), 403);
    assert.equal(await status({ origin: 'http://evil.example' }), 403);
    assert.equal(await status({ origin: 'null' }), 403);
    assert.equal(await status({}), 200);
  });
});
