import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { cliResult } from '../helpers.js';
import { axeViolations, launchBrowser, newPage, postFromPage, signIn } from './browser.js';
import { demoTenant, READER_TOKEN, startWithGrants, WRITER_TOKEN, type DemoTenant, type RunningServer } from './server.js';

/**
 * The Rules page in headless Chromium, against `dashboard --grants` on the demo tenant: the active
 * rules, one rule with its change history, edit and delete (with and without restore) through the
 * confirm step, the rules service's refusals shown with their reason, the write permission and the
 * CSRF check. What the store holds is read back by the real CLI.
 */

interface StoredRule {
  rule_id: string;
  id: string;
  name: string;
  created_by: string;
  conditions: Record<string, string>;
}

let demo: DemoTenant;
let server: RunningServer;
let browser: Browser;
/** the demo's genuine binaries (the analysis's suggested rules name them) */
const sha: Record<string, string> = {};
/** rules made by the CLI before the pages are opened */
const ids: Record<'tailscaled' | 'zerotier' | 'netbird', string> = { tailscaled: '', zerotier: '', netbird: '' };

async function cli(args: string[]): Promise<string> {
  const r = await cliResult([...args, '--db', demo.db]);
  assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

async function createRule(process: string, extra: string[] = []): Promise<string> {
  const out = await cli(['rules', 'create', '--condition', `process=${process}`, '--condition', `process_sha256=${sha[process]}`, ...extra, '--actor', 'cli:setup', '--yes', '--json']);
  return (JSON.parse(out) as { rule: StoredRule }).rule.rule_id;
}

/** The store as the CLI reads it: the active rules and the open (new) detections. */
async function storeState(): Promise<{ rules: StoredRule[]; open: number }> {
  const rules = (JSON.parse(await cli(['rules', 'list', '--json'])) as { rules: StoredRule[] }).rules;
  const s = JSON.parse(await cli(['stats', '--json'])) as { detections: { status: string; count: number }[] };
  return { rules, open: s.detections.filter((d) => d.status === 'new').reduce((a, d) => a + d.count, 0) };
}

/** Open detections of one process, as `detections list` counts them. */
async function openOf(process: string): Promise<number> {
  const out = JSON.parse(await cli(['detections', 'list', '--process', process, '--status', 'new', '--limit', '500', '--json'])) as { detections: unknown[] };
  return out.detections.length;
}

before(async () => {
  demo = await demoTenant();
  const analysis = JSON.parse((await cliResult(['analyze', '--json', '--db', demo.db])).stdout) as { processes: { process: string; suggested_rule: { conditions: { process_sha256: string } } | null }[] };
  for (const p of analysis.processes) if (p.suggested_rule) sha[p.process] = p.suggested_rule.conditions.process_sha256;
  // tailscaled narrowed to one owner (100 of its 199 genuine detections), to be widened on the page
  ids.tailscaled = await createRule('tailscaled', ['--condition', 'owner=initech', '--name', 'tailscaled at initech']);
  ids.zerotier = await createRule('zerotier-one');
  ids.netbird = await createRule('netbird');
  server = await startWithGrants(demo);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  demo?.cleanup();
});

/** Script errors of a page, without Chromium's note on each 4xx page this file opens on purpose. */
const scriptErrors = (errors: string[]) => errors.filter((e) => !/^Failed to load resource: the server responded with a status of (404|422) /.test(e));

/** Submits a form of the page by clicking `button`; returns the status of the page it posted to. */
async function submit(page: Page, button: ReturnType<Page['locator']>): Promise<number> {
  const [res] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname.startsWith('/rules/')), button.click()]);
  await page.waitForLoadState();
  return res.status();
}

describe('rules page', () => {
  it('lists every active rule with its type, conditions as held and who created it; the detail shows the history; an unknown id is a 404', async () => {
    const { page, dialogs, errors, close } = await newPage(browser);
    try {
      await signIn(page, server.base, READER_TOKEN, '/rules');
      assert.equal(await page.locator('ul.nav a[href="/rules"]').getAttribute('aria-current'), 'page');
      const rows = page.locator('tbody tr[data-rule-id]');
      assert.equal(await rows.count(), 3);
      const ts = page.locator(`tr[data-rule-id="${ids.tailscaled}"]`);
      const text = await ts.innerText();
      assert.match(text, /tailscaled at initech/);
      assert.match(text, /New-Outbound-Network-Call/);
      assert.ok(text.includes(`process_sha256=${sha.tailscaled}`), 'the whole hash, as the rule holds it');
      assert.match(text, /process=tailscaled[\s\S]*owner=initech/);
      assert.match(text, /by cli:setup/);
      // the recent changes: the three creates, newest first
      assert.deepEqual(await page.locator('table[aria-label="Recent rule changes"] tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-action'))), ['create', 'create', 'create']);
      assert.deepEqual(await axeViolations(page), []);

      await ts.locator('a', { hasText: 'tailscaled at initech' }).click();
      await page.waitForURL(new RegExp(`/rules/${ids.tailscaled}$`));
      assert.equal(await page.locator('h1').innerText(), 'tailscaled at initech');
      const history = page.locator('table[aria-label="Change history"] tbody tr');
      assert.equal(await history.count(), 1);
      assert.match(await history.innerText(), /cli:setup[\s\S]*created; suppressed 100 detection\(s\)[\s\S]*condition owner: \(none\) → initech/);
      // a reader sees no write form
      assert.equal(await page.locator('form[action$="/edit"], form[action$="/delete"]').count(), 0);
      assert.match(await page.locator('main').innerText(), /needs the dashboard permission "write"/);
      assert.deepEqual(await axeViolations(page), []);

      const missing = await page.goto(`${server.base}/rules/no-such-rule`);
      assert.equal(missing!.status(), 404);
      assert.equal(await page.locator('h1').innerText(), 'Rule not found');
      assert.match(await page.locator('main').innerText(), /No rule no-such-rule in tenant "default"/);
      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(dialogs, []);
      assert.deepEqual(scriptErrors(errors), []);
    } finally {
      await close();
    }
  });

  it('edits a rule through the confirmation: the exact impact first, then the change, recorded with actor and before/after', async () => {
    const before = await storeState();
    const { page, errors, close } = await newPage(browser);
    try {
      await signIn(page, server.base, WRITER_TOKEN, `/rules/${ids.tailscaled}`);
      await page.locator('#cond-owner').fill('');
      await page.locator('#rule-name').fill('tailscaled everywhere');
      assert.equal(await submit(page, page.getByRole('button', { name: 'Review the change…' })), 200);
      assert.equal(await page.locator('h1').innerText(), 'Change suppression rule');
      const confirm = await page.locator('section.confirm').innerText();
      assert.match(confirm, /condition owner: initech → \(none\)/);
      assert.match(confirm, /name: tailscaled at initech → tailscaled everywhere/);
      // the service's preview: the 99 genuine tailscaled detections outside initech are open
      assert.equal(await page.locator('section.confirm [data-field=would-suppress]').innerText(), '99');
      assert.deepEqual(await storeState(), before, 'the first post only asks');
      assert.deepEqual(await axeViolations(page), []);

      assert.equal(await submit(page, page.getByRole('button', { name: 'Change rule and suppress 99 more detection(s)' })), 200);
      assert.equal(await page.locator('h1').innerText(), 'Rule changed');
      assert.equal(await page.locator('[data-field=suppressed]').innerText(), '99');
      assert.equal(await page.locator('[data-field=kept]').innerText(), '100');
      assert.equal(await page.locator('[data-field=restored]').innerText(), '0');
      assert.deepEqual(await axeViolations(page), []);

      const after = await storeState();
      const rule = after.rules.find((r) => r.rule_id === ids.tailscaled)!;
      assert.equal(rule.name, 'tailscaled everywhere');
      assert.deepEqual(rule.conditions, { process: 'tailscaled', process_sha256: sha.tailscaled });
      assert.equal(after.open, before.open - 99);
      assert.equal(await openOf('tailscaled'), 6, 'only the impostor detections stay open');

      await page.getByRole('link', { name: 'Back to the rule' }).click();
      await page.waitForURL(new RegExp(`/rules/${ids.tailscaled}$`));
      const latest = page.locator('table[aria-label="Change history"] tbody tr').first();
      assert.equal(await latest.getAttribute('data-action'), 'update');
      const text = await latest.innerText();
      assert.match(text, /dashboard:writer/);
      assert.match(text, /changed; 99 detection\(s\) moved/);
      assert.match(text, /name: tailscaled at initech → tailscaled everywhere/);
      assert.match(text, /condition owner: initech → \(none\)/);
      assert.equal(await page.locator('table[aria-label="Change history"] tbody tr').count(), 2);
      // the CLI's audit trail holds the same change
      const audit = (JSON.parse(await cli(['rules', 'audit', ids.tailscaled, '--json'])) as { audit: { action: string; actor: string; before: StoredRule; after: StoredRule }[] }).audit;
      assert.equal(audit[0]!.actor, 'dashboard:writer');
      assert.equal(audit[0]!.before.conditions.owner, 'initech');
      assert.equal(audit[0]!.after.conditions.owner, undefined);
      assert.deepEqual(scriptErrors(errors), []);
    } finally {
      await close();
    }
  });

  it('refuses an edit covering webhook.site, an impostor, or a bad value: the reason, 422, and nothing changed', async () => {
    const before = await storeState();
    const audit = await cli(['rules', 'audit', '--json']);
    const { page, errors, close } = await newPage(browser);
    try {
      await signIn(page, server.base, WRITER_TOKEN, `/rules/${ids.tailscaled}`);
      // widened to webhook.site: refused whatever it matches, before the confirm step
      await page.locator('#cond-endpoint').fill('webhook.site:443');
      assert.equal(await submit(page, page.getByRole('button', { name: 'Review the change…' })), 422);
      assert.equal(await page.locator('h1').innerText(), 'Change refused');
      const refusal = await page.locator('[data-field=refusal]').innerText();
      assert.match(refusal, /^Refused: endpoint="webhook\.site:443" covers the never-suppress destination webhook\.site/);
      assert.match(refusal, /Nothing was changed/);
      assert.equal(await page.locator('#cond-endpoint').inputValue(), 'webhook.site:443', 'the form keeps what was typed');
      assert.deepEqual(await axeViolations(page), []);

      // name only: it would cover the impostor tailscaled (and its risky calls)
      await page.locator('#cond-endpoint').fill('');
      await page.locator('#cond-process_sha256').fill('');
      assert.equal(await submit(page, page.getByRole('button', { name: 'Review the change…' })), 422);
      assert.match(await page.locator('[data-field=refusal]').innerText(), /suspected impostor binaries \(tailscaled sha256 4b09bf1f4dd4: 6/);

      // a forged confirmed post meets the service's own guard in its write transaction
      const forged = await postFromPage(page, server.base, `/rules/${ids.tailscaled}/edit`, [['detection_id', 'New-Outbound-Network-Call'], ['name', 'x'], ['c.process', 'tailscaled'], ['confirm', 'yes']]);
      assert.equal(forged.status, 422);
      assert.match(forged.text, /Refused:.*suspected impostor binaries.*Nothing was changed/s);

      // a malformed value: the service's own words
      const bad = await postFromPage(page, server.base, `/rules/${ids.tailscaled}/edit`, [['c.process', 'tailscaled'], ['c.ip_address', '999.1.1.1/99']]);
      assert.equal(bad.status, 422);
      assert.match(bad.text, /malformed CIDR range/);
      const unknown = await postFromPage(page, server.base, `/rules/${ids.tailscaled}/edit`, [['c.process', 'tailscaled'], ['c.bogus', '1']]);
      assert.equal(unknown.status, 422);
      assert.match(unknown.text, /unknown rule condition &quot;bogus&quot;|unknown rule condition "bogus"/);
      // the rule's own match spelt otherwise (.exe on the name, a hash in capitals, a scope of "*") is no twin of itself: to the confirm step
      const held = (JSON.parse(await cli(['rules', 'get', ids.tailscaled, '--json'])) as { conditions: Record<string, string> }).conditions;
      const respelt = await postFromPage(page, server.base, `/rules/${ids.tailscaled}/edit`, [
        ...Object.entries(held).map(([k, v]): [string, string] => [`c.${k}`, k === 'process' ? `${v}.exe` : k === 'process_sha256' ? v.toUpperCase() : v]),
        ['c.repo', '*'],
      ]);
      assert.equal(respelt.status, 200, respelt.text.slice(0, 400));
      assert.doesNotMatch(respelt.text, /same detection type and conditions/);
      assert.deepEqual(scriptErrors(errors), []);
    } finally {
      await close();
    }
    assert.deepEqual(await storeState(), before, 'nothing changed in the store');
    assert.equal(await cli(['rules', 'audit', '--json']), audit, 'and nothing was recorded');
  });

  it('deletes a rule restoring its detections: they are open again and the page counts them', async () => {
    const before = await storeState();
    assert.equal(await openOf('zerotier-one'), 0);
    const { page, errors, close } = await newPage(browser);
    try {
      await signIn(page, server.base, WRITER_TOKEN, `/rules/${ids.zerotier}`);
      await page.getByLabel('restore the detections it suppressed', { exact: false }).check();
      assert.equal(await submit(page, page.getByRole('button', { name: 'Delete…' })), 200);
      assert.equal(await page.locator('h1').innerText(), 'Delete suppression rule');
      assert.match(await page.locator('section.confirm').innerText(), /every detection it suppressed goes back to open/);
      assert.deepEqual(await storeState(), before, 'the first post only asks');
      assert.deepEqual(await axeViolations(page), []);
      assert.equal(await submit(page, page.getByRole('button', { name: 'Delete rule and restore its detections' })), 200);
      assert.equal(await page.locator('h1').innerText(), 'Rule deleted');
      assert.equal(await page.locator('[data-field=restored]').innerText(), '32');
      assert.deepEqual(await axeViolations(page), []);

      const after = await storeState();
      assert.deepEqual(after.rules.map((r) => r.rule_id).sort(), before.rules.map((r) => r.rule_id).filter((id) => id !== ids.zerotier).sort());
      assert.equal(after.open, before.open + 32);
      assert.equal(await openOf('zerotier-one'), 32, 'its detections are open again');

      // its address now answers 404, with its history and who deleted it
      await page.getByRole('link', { name: 'Its history' }).click();
      await page.waitForURL(new RegExp(`/rules/${ids.zerotier}$`));
      assert.match(await page.locator('main .notice').innerText(), /was deleted by dashboard:writer/);
      const latest = page.locator('table[aria-label="Change history"] tbody tr').first();
      assert.equal(await latest.getAttribute('data-action'), 'delete+restore');
      assert.match(await latest.innerText(), /dashboard:writer[\s\S]*deleted; 32 detection\(s\) restored to open/);
      assert.equal((await page.goto(`${server.base}/rules/${ids.zerotier}`))!.status(), 404);
      assert.deepEqual(scriptErrors(errors), []);
    } finally {
      await close();
    }
  });

  it('deletes a rule keeping its detections suppressed', async () => {
    const before = await storeState();
    const { page, close } = await newPage(browser);
    try {
      await signIn(page, server.base, WRITER_TOKEN, `/rules/${ids.netbird}`);
      await page.getByLabel('keep them suppressed').check();
      assert.equal(await submit(page, page.getByRole('button', { name: 'Delete…' })), 200);
      assert.match(await page.locator('section.confirm').innerText(), /the detections it suppressed stay suppressed/);
      assert.equal(await submit(page, page.getByRole('button', { name: 'Delete rule and keep its detections suppressed' })), 200);
      assert.match(await page.locator('[role=status]').innerText(), /was deleted\. The detections it suppressed stay suppressed/);
      const after = await storeState();
      assert.equal(after.rules.some((r) => r.rule_id === ids.netbird), false);
      assert.equal(after.open, before.open);
      assert.equal(await openOf('netbird'), 0);
      const audit = (JSON.parse(await cli(['rules', 'audit', ids.netbird, '--json'])) as { audit: { action: string; actor: string }[] }).audit;
      assert.deepEqual([audit[0]!.action, audit[0]!.actor], ['delete', 'dashboard:writer']);
      // a delete post without the choice is refused
      const noChoice = await postFromPage(page, server.base, `/rules/${ids.tailscaled}/delete`, [['confirm', 'yes']]);
      assert.equal(noChoice.status, 400);
      assert.match(noChoice.text, /restore: choose/);
    } finally {
      await close();
    }
  });

  it('refuses edit and delete posts of a read-only grant (403) and posts without the CSRF token (403); nothing changes', async () => {
    const before = await storeState();
    const reader = await newPage(browser);
    try {
      await signIn(reader.page, server.base, READER_TOKEN, `/rules/${ids.tailscaled}`);
      const edit = await postFromPage(reader.page, server.base, `/rules/${ids.tailscaled}/edit`, [['c.process', 'tailscaled'], ['c.owner', 'globex'], ['confirm', 'yes']]);
      assert.equal(edit.status, 403);
      assert.match(edit.text, /does not include the dashboard permission (&quot;|")write(&quot;|")/);
      const del = await postFromPage(reader.page, server.base, `/rules/${ids.tailscaled}/delete`, [['restore', 'yes'], ['confirm', 'yes']]);
      assert.equal(del.status, 403);
    } finally {
      await reader.close();
    }
    const writer = await newPage(browser);
    try {
      await signIn(writer.page, server.base, WRITER_TOKEN, `/rules/${ids.tailscaled}`);
      // the writer's own cookie and Origin, but no token: what a cross-site form would send
      const res = await writer.page.request.post(`${server.base}/rules/${ids.tailscaled}/delete`, { headers: { origin: server.base }, form: { restore: 'yes', confirm: 'yes' }, maxRedirects: 0 });
      assert.equal(res.status(), 403);
      assert.match(await res.text(), /CSRF token is missing or wrong/);
    } finally {
      await writer.close();
    }
    assert.deepEqual(await storeState(), before);
  });
});
