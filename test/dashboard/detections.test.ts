import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { readFileSync } from 'node:fs';
import { axeViolations, launchBrowser, newPage } from './browser.js';
import { demoTenant, INJECTION, startServer, type DemoTenant, type RunningServer } from './server.js';

/**
 * The Detections page on the demo tenant in Chromium: the CLI's filters narrow the rows, keyset pages
 * go older and back, a bad field is a 400 naming it, the CSV export carries the header and exactly the
 * filtered rows, and an HTML-like process name shows as text.
 */

let demo: DemoTenant;
let server: RunningServer;
let browser: Browser;
let page: Page;
let dialogs: string[];
let closePage: () => Promise<void>;

before(async () => {
  demo = await demoTenant({ runs: 6, events: 1000 });
  server = await startServer('dashboard', ['--db', demo.db]);
  browser = await launchBrowser();
  ({ page, dialogs, close: closePage } = await newPage(browser));
});

after(async () => {
  await closePage?.();
  await browser?.close();
  await server?.stop();
  demo?.cleanup();
});

const rows = () => page.locator('main tbody tr');
const attr = (name: string) => rows().evaluateAll((trs, n) => trs.map((tr) => tr.getAttribute(n)!), name);

describe('detections page', () => {
  it('lists every detection, and process=tailscaled narrows the rows to that process', async () => {
    const all = await page.goto(`${server.base}/detections`);
    assert.equal(all!.status(), 200);
    const allProcs = new Set(await attr('data-process'));
    assert.ok(allProcs.size > 1, `several processes on the first page, got ${[...allProcs].join(',')}`);
    const allCount = await page.locator('[data-field=count]').innerText();
    await page.locator('input[name=process]').fill('tailscaled');
    await Promise.all([page.waitForURL(/process=tailscaled/), page.getByRole('button', { name: 'Filter' }).click()]);
    const procs = await attr('data-process');
    assert.ok(procs.length > 0);
    assert.deepEqual([...new Set(procs)], ['tailscaled']);
    assert.notEqual(await page.locator('[data-field=count]').innerText(), allCount);
    assert.deepEqual(await axeViolations(page), []);
  });

  it('pages older by keyset and back newer, without repeating a row', async () => {
    await page.goto(`${server.base}/detections?process=tailscaled&limit=5`);
    const first = await attr('data-id');
    assert.equal(first.length, 5);
    await Promise.all([page.waitForURL(/after=/), page.locator('a[rel=next]').click()]);
    const second = await attr('data-id');
    assert.ok(second.length > 0);
    assert.deepEqual(first.filter((id) => second.includes(id)), []);
    assert.deepEqual([...new Set(await attr('data-process'))], ['tailscaled']);
    await Promise.all([page.waitForURL(/before=/), page.locator('a[rel=prev]').click()]);
    assert.deepEqual(await attr('data-id'), first);
  });

  it('answers a bad field with 400 naming it, and applies nothing', async () => {
    const res = await page.goto(`${server.base}/detections?since=yesterday-ish&owner=acme`);
    assert.equal(res!.status(), 400);
    assert.match(await page.locator('[data-field=filter-error]').innerText(), /since/);
    assert.equal(await page.locator('input[name=since]').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.locator('input[name=owner]').inputValue(), 'acme');
    assert.equal(await rows().count(), 0);
    const csv = await fetch(`${server.base}/detections.csv?type=Nope`);
    assert.equal(csv.status, 400);
    assert.match(await csv.text(), /unknown detection type/);
  });

  it('answers a misspelt filter and an edited cursor with 400, never the whole tenant or a 500', async () => {
    const res = await page.goto(`${server.base}/detections?proces=tailscaled`);
    assert.equal(res!.status(), 400);
    assert.match(await page.locator('[data-field=filter-error]').innerText(), /proces.*is not a filter here/);
    assert.equal(await rows().count(), 0);
    const csv = await fetch(`${server.base}/detections.csv?proces=tailscaled`);
    assert.equal(csv.status, 400, 'the export does not fall back to every detection');
    for (const cursor of ['after=abc', 'before=abc']) {
      const edited = await page.goto(`${server.base}/detections?${cursor}`);
      assert.equal(edited!.status(), 400, cursor);
      assert.match(await page.locator('[data-field=filter-error]').innerText(), new RegExp(cursor.split('=')[0]!));
    }
  });

  it('exports the filtered rows as a CSV download with its header', async () => {
    await page.goto(`${server.base}/detections?process=tailscaled&limit=500`);
    const shown = (await attr('data-id')).sort();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Export all as CSV' }).click()]);
    assert.match(download.suggestedFilename(), /^detections-.*\.csv$/);
    const text = readFileSync((await download.path())!, 'utf8');
    const lines = text.split('\r\n').filter((l) => l !== '');
    assert.equal(lines[0], 'id,timestamp,type,status,owner,repo,workflow,job,run_id,run_attempt,job_id,endpoint,host,ip_address,port,protocol,process,process_path,process_sha256,suppress_rule_id');
    const body = lines.slice(1).map((l) => l.split(','));
    assert.deepEqual(body.map((c) => c[0]!).sort(), shown);
    assert.ok(body.every((c) => c[16] === 'tailscaled'));
    const res = await fetch(`${server.base}/detections.csv?process=tailscaled`);
    assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="detections-/);
    assert.match(res.headers.get('content-type') ?? '', /^text\/csv/);
  });

  it('shows an HTML-injection process name as text, linked to its run', async () => {
    await page.goto(`${server.base}/detections?owner=xss-org`);
    const row = rows().first();
    assert.equal(await row.getAttribute('data-process'), INJECTION);
    assert.equal(await page.locator('main img').count(), 0);
    assert.ok((await row.innerText()).includes(INJECTION));
    const run = await row.locator('a', { hasText: 'run 1007' }).getAttribute('href');
    assert.match(run!, /^\/github\/xss-org\/xss-repo\/actions\/runs\/1007\?jobId=5007&tab=network-events$/);
    assert.deepEqual(dialogs, []);
    assert.deepEqual(await axeViolations(page), []);
  });
});
