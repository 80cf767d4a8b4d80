import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { cliResult } from '../helpers.js';
import { axeViolations, grantsDashboard, newPage, postFromPage, signIn } from './browser.js';
import { INJECTION, READER_TOKEN, WRITER_TOKEN } from './server.js';

/**
 * The processes page in headless Chromium, against `dashboard --grants` on the demo tenant: the
 * analysis drawn, the exact preview, creating the suggested tailscaled rule through the confirm
 * step, the rules service's refusals shown as they are, and the write permission.
 */


const dash = grantsDashboard();

/** What the store holds, read by the real CLI: the active rules and the open detections. */
async function storeState(): Promise<{ rules: { name: string; created_by: string; conditions: Record<string, string> }[]; open: number }> {
  const rules = await cliResult(['rules', 'list', '--json', '--db', dash.demo.db]);
  const stats = await cliResult(['stats', '--json', '--db', dash.demo.db]);
  assert.equal(rules.status, 0, rules.stderr);
  const s = JSON.parse(stats.stdout) as { detections: { type: string; status: string; count: number }[] };
  return {
    rules: (JSON.parse(rules.stdout) as { rules: { name: string; created_by: string; conditions: Record<string, string> }[] }).rules,
    open: s.detections.filter((d) => d.status === 'new').reduce((a, d) => a + d.count, 0),
  };
}

const section = (page: Page, process: string) => page.locator('section.process').filter({ has: page.locator('h2 code', { hasText: new RegExp(`^${process}$`) }) });

describe('processes page', () => {
  it('draws the analysis: counts, verdict with evidence, the impostor marked, risky destinations, suggestion with its impact; names as text', async () => {
    const { page, dialogs, errors, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, WRITER_TOKEN, '/processes');
      const ts = section(page, 'tailscaled');
      assert.equal(await ts.count(), 1);
      assert.equal(await ts.locator('h2 .badge').innerText(), 'Impostor present');
      assert.equal(await ts.locator('[data-field=count]').innerText(), '205');
      const impostor = ts.locator('tr[data-verdict=impostor]');
      assert.equal(await impostor.count(), 1);
      assert.match(await impostor.innerText(), /IMPOSTOR[\s\S]*\/tmp\/\.cache\/tailscaled[\s\S]*Against: runs from \/tmp\/, a temporary directory no installer puts tailscale in: \/tmp\/\.cache\/tailscaled \(6\); started through node/);
      assert.match(await ts.locator('tr[data-verdict=genuine]').innerText(), /Genuine[\s\S]*\/usr\/sbin\/tailscaled\s[\s\S]*199/);
      assert.match(await ts.locator('[data-field=risky]').innerText(), /gist\.githubusercontent\.com:443/);
      assert.equal(await ts.locator('[data-field=suggestion] [data-field=would-suppress]').innerText(), '199');
      assert.match(await ts.locator('[data-field=suggestion]').innerText(), /process=tailscaled[\s\S]*process_sha256=4b8f6cda5626…/);
      // a non-VPN process with a risky destination: no suggestion, the reason and the risky calls shown
      const node = section(page, 'node');
      assert.match(await node.locator('[data-field=risky]').innerText(), /webhook\.site:443/);
      assert.match(await node.locator('[data-field=no-suggestion]').innerText(), /not a VPN\/mesh daemon/);
      // each process links to its runs (run page URL shape)
      const run = ts.locator('a[href^="/github/"]').first();
      assert.match((await run.getAttribute('href'))!, /^\/github\/[^/]+\/[^/]+\/actions\/runs\/\d+\?jobId=\d+&tab=network-events$/);
      // the HTML-injection process name is text
      const main = await page.locator('main').innerText();
      assert.ok(main.includes(INJECTION), 'the injection-named process is listed by its name, as text');
      assert.equal(await page.locator('main img').count(), 0);
      assert.deepEqual(await axeViolations(page), []);
      await run.click();
      await page.waitForURL(/\/actions\/runs\//);
      assert.ok((await page.locator('tr.detected').count()) > 0);
      assert.deepEqual(dialogs, []);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it('refuses the name-only tailscaled rule and a rule covering webhook.site, with their reasons, and changes nothing', async () => {
    const before = await storeState();
    const { page, errors, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, WRITER_TOKEN, '/processes');
      await section(page, 'tailscaled').locator('a', { hasText: 'Preview the name-only rule' }).click();
      await page.waitForURL(/\/processes\/preview\?/);
      const refusal = await page.locator('[data-field=refusal]').innerText();
      assert.match(refusal, /^Refused: the rule would also suppress 3 detection\(s\) to risky destinations \(gist\.githubusercontent\.com:443\)/);
      assert.match(refusal, /Also: the rule would suppress 6 detection\(s\) of suspected impostor binaries \(tailscaled sha256 4b09bf1f4dd4: 6/);
      assert.match(refusal, /Nothing was changed/);
      assert.equal(await page.locator('form[action="/processes/rules"]').count(), 0, 'no create button for a refused rule');
      // the matches are listed, impostor ones among them
      assert.equal(await page.locator('[data-field=would-suppress]').innerText(), '205');
      assert.equal(await page.locator('tbody tr').count(), 50);
      assert.deepEqual(await axeViolations(page), []);

      // posting it anyway, confirmed: the rules service refuses it (422), with the same reason
      const forced = await postFromPage(page, dash.server.base, '/processes/rules', [['detection_id', 'New-Outbound-Network-Call'], ['c.process', 'tailscaled'], ['confirm', 'yes']]);
      assert.equal(forced.status, 422);
      assert.match(forced.text, /Refused:.*suspected impostor binaries/s);

      // a rule naming webhook.site is refused whatever it matches
      await page.locator('summary', { hasText: 'Change the conditions' }).click();
      await page.locator('#cond-process').fill('');
      await page.locator('#cond-endpoint').fill('webhook.site:443');
      await page.locator('form[action="/processes/preview"] button').click();
      await page.waitForURL(/c\.endpoint=webhook\.site/);
      assert.match(await page.locator('[data-field=refusal]').innerText(), /endpoint="webhook\.site:443" covers the never-suppress destination webhook\.site/);
      const risky = await postFromPage(page, dash.server.base, '/processes/rules', [['detection_id', 'New-Outbound-Network-Call'], ['c.endpoint', 'webhook.site:443'], ['confirm', 'yes']]);
      assert.equal(risky.status, 422);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
    assert.deepEqual(await storeState(), before, 'nothing changed in the store');
  });

  it('a read-only grant sees the page but cannot create a rule (403)', async () => {
    const before = await storeState();
    const { page, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, READER_TOKEN, '/processes');
      const ts = section(page, 'tailscaled');
      assert.equal(await ts.locator('form[action="/processes/rules"]').count(), 0);
      assert.match(await ts.locator('[data-field=suggestion]').innerText(), /needs the dashboard permission "write"/);
      const suggested = await ts.locator('[data-field=suggestion] a', { hasText: 'Preview' }).getAttribute('href');
      const fields = [...new URL(suggested!, dash.server.base).searchParams.entries()];
      const res = await postFromPage(page, dash.server.base, '/processes/rules', [...fields, ['confirm', 'yes']]);
      assert.equal(res.status, 403);
      assert.match(res.text, /does not include the dashboard permission &quot;write&quot;|does not include the dashboard permission "write"/);
      // bad links are answered with what is wrong
      assert.equal((await page.goto(`${dash.server.base}/processes?page=0`))!.status(), 400);
      assert.match(await page.locator('main').innerText(), /page: expected a whole number from 1, got "0"/);
      assert.equal((await page.goto(`${dash.server.base}/processes/preview?c.bogus=1`))!.status(), 400);
      assert.match(await page.locator('main').innerText(), /unknown rule condition "bogus"/);
      assert.equal((await page.goto(`${dash.server.base}/processes?page=99`))!.status(), 404);
      assert.match(await page.locator('main').innerText(), /page 99 is past the end/);
    } finally {
      await close();
    }
    assert.deepEqual(await storeState(), before);
  });

  it('previews the suggested tailscaled rule, creates it through the confirmation, and the page updates', async () => {
    const before = await storeState();
    const { page, errors, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, WRITER_TOKEN, '/processes');
      await section(page, 'tailscaled').locator('[data-field=suggestion] a', { hasText: 'Preview' }).click();
      await page.waitForURL(/\/processes\/preview\?/);
      assert.equal(await page.locator('[data-field=refusal]').count(), 0);
      assert.equal(await page.locator('[data-field=would-suppress]').innerText(), '199');
      // exactly what it would suppress, paged: 50 + 50 + 50 + 49, every one the genuine binary
      const seen = new Set<string>();
      for (let p = 1; p <= 4; p++) {
        if (p > 1) {
          await page.locator('nav[aria-label="Preview pages"] a', { hasText: new RegExp(`^${p}$`) }).click();
          await page.waitForURL(new RegExp(`page=${p}`));
        }
        const rows = page.locator('tbody tr');
        assert.equal(await rows.count(), p < 4 ? 50 : 49);
        for (const id of await rows.evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-id')!))) seen.add(id);
        for (const t of await rows.allInnerTexts()) assert.match(t, /tailscaled sha256:4b8f6cda5626/);
      }
      assert.equal(seen.size, 199, 'the pages list 199 distinct detections');
      assert.deepEqual(await axeViolations(page), []);

      await page.locator('form[action="/processes/rules"] button').click();
      await page.waitForURL(/\/processes\/rules$/);
      assert.match(await page.locator('h1').innerText(), /Create suppression rule/);
      assert.deepEqual(await storeState(), before, 'the first post only asks');
      assert.deepEqual(await axeViolations(page), []);
      await page.locator('button', { hasText: 'Create rule and suppress 199 detection(s)' }).click();
      await page.waitForLoadState();
      assert.equal(await page.locator('h1').innerText(), 'Rule created');
      assert.equal(await page.locator('[data-field=suppressed]').innerText(), '199');
      // the new rule's id links to its page on the Rules page
      const ruleLink = page.locator('dd a[href^="/rules/"]');
      assert.equal(await ruleLink.getAttribute('href'), `/rules/${await ruleLink.innerText()}`);

      const after = await storeState();
      assert.equal(after.rules.length, before.rules.length + 1);
      assert.equal(after.rules.at(-1)!.created_by, 'dashboard:writer');
      assert.equal(after.open, before.open - 199);

      await page.locator('a', { hasText: 'Back to the processes' }).click();
      await page.waitForURL(/\/processes$/);
      const ts = section(page, 'tailscaled');
      assert.equal(await ts.locator('[data-field=count]').innerText(), '6', 'only the impostor detections stay open');
      assert.match(await ts.locator('[data-field=rules]').innerText(), /suppress process=tailscaled.*by dashboard:writer/s);
      assert.match((await ts.locator('[data-field=rules] a').first().getAttribute('href'))!, /^\/rules\/[0-9a-f-]{36}$/);
      assert.equal(await ts.locator('tr[data-verdict=impostor]').count(), 1);
      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });
});
