import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { cliResult } from '../helpers.js';
import { axeViolations, grantsDashboard, newPage, postFromPage, signIn } from './browser.js';
import { INJECTION, READER_TOKEN, WRITER_TOKEN } from './server.js';

/**
 * The Destinations and Baselines pages in headless Chromium, against `dashboard --grants` on the demo
 * tenant: risky destinations marked, a job's baseline, expect / un-expect through the confirm step,
 * the risky guard (checked in the store through the real CLI), and the write permission.
 */

// the fixture's injection job: five clean runs, then a run calling x.example:443 (pending)
const XSS_JOB = '/baselines?owner=xss-org&repo=xss-repo&workflow=.github%2Fworkflows%2Fci.yml&job=build';

const dash = grantsDashboard();

/** A repository's baselines as the real CLI reads them. */
async function baselineOf(owner: string, repo: string): Promise<unknown> {
  const r = await cliResult(['baseline', 'show', '--owner', owner, '--repo', repo, '--all', '--json', '--db', dash.demo.db]);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

describe('destinations page', () => {
  it('lists every endpoint with its jobs, webhook.site marked risky, names as text', async () => {
    const { page, dialogs, errors, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, READER_TOKEN, '/destinations');
      const webhook = page.locator('tbody[data-endpoint="webhook.site:443"]');
      // endpoint order, 50 a page: the demo's mesh IPs come first; follow Next (bounded)
      for (let i = 0; i < 40 && (await webhook.count()) === 0; i++) {
        await page.locator('nav.pager a', { hasText: 'Next page' }).click();
        await page.waitForURL(/cursor=/);
      }
      assert.equal(await webhook.count(), 1);
      assert.equal(await webhook.getAttribute('data-risky'), 'yes');
      assert.match(await webhook.innerText(), /RISKY[\s\S]*webhook\.site[\s\S]*acme-corp\/mobile-app[\s\S]*not in baseline/);
      const npm = page.locator('tbody[data-endpoint="registry.npmjs.org:443"]');
      assert.equal(await npm.getAttribute('data-risky'), 'no');
      assert.match(await npm.innerText(), /baseline \(learned\)/);
      // each job links to its baseline
      const link = npm.locator('a[href^="/baselines?"]').first();
      assert.match((await link.getAttribute('href'))!, /owner=.+&repo=.+&workflow=.+&job=.+/);
      assert.equal(await page.locator('ul.nav a[href="/destinations"]').getAttribute('aria-current'), 'page');
      assert.deepEqual(await axeViolations(page), []);
      await link.click();
      await page.waitForURL(/\/baselines\?/);
      assert.equal(await page.locator('section.baseline-job').count(), 1);
      assert.deepEqual(dialogs, []);
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it('pages by cursor, and refuses a bad cursor with 400', async () => {
    const { page, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, READER_TOKEN, '/destinations');
      const first = await page.locator('tbody[data-endpoint]').evaluateAll((els) => els.map((e) => e.getAttribute('data-endpoint')));
      assert.equal(first.length, 50);
      await page.locator('nav.pager a', { hasText: 'Next page' }).click();
      await page.waitForURL(/cursor=/);
      const second = await page.locator('tbody[data-endpoint]').evaluateAll((els) => els.map((e) => e.getAttribute('data-endpoint')));
      assert.ok(second.length > 0);
      assert.deepEqual(second.filter((e) => first.includes(e)), []);
      assert.equal((await page.goto(`${dash.server.base}/destinations?cursor=nonsense`))!.status(), 400);
      assert.match(await page.locator('main').innerText(), /cursor:/);
    } finally {
      await close();
    }
  });
});

describe('baselines page', () => {
  it("shows the run page's job: its state and endpoints with runs seen; the injection name as text", async () => {
    const { page, errors, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, READER_TOKEN, XSS_JOB);
      const job = page.locator('section.baseline-job');
      assert.equal(await job.count(), 1);
      assert.match(await job.locator('h2').innerText(), /xss-org\/xss-repo[\s\S]*build[\s\S]*stable/);
      const npm = job.locator('tr[data-endpoint="registry.npmjs.org:443"]');
      assert.equal(await npm.getAttribute('data-state'), 'learned');
      assert.match(await npm.innerText(), /registry\.npmjs\.org:443\s+6\b/);
      // run 7 is still open: its new endpoint is in no completed run yet
      assert.equal(await job.locator('tr[data-endpoint="x.example:443"]').count(), 0);
      // a reader gets no edit forms
      assert.equal(await page.locator('form[action^="/baselines/"]').count(), 0);
      assert.deepEqual(await axeViolations(page), []);
      assert.deepEqual(errors, []);
      // an unknown job: 404 with the form still there
      assert.equal((await page.goto(`${dash.server.base}/baselines?owner=nobody&repo=none&job=x`))!.status(), 404);
      // the injection-named endpoint's job, listed on the paged view, shows names as text
      await page.goto(`${dash.server.base}/baselines?owner=xss-org&repo=xss-repo`);
      assert.equal(await page.locator('main img').count(), 0);
    } finally {
      await close();
    }
  });

  it('expects a benign endpoint after confirmation, shows it expected, and un-expects it again', async () => {
    const { page, errors, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, WRITER_TOKEN, XSS_JOB);
      const row = () => page.locator('tr[data-endpoint="x.example:443"]');
      assert.equal(await row().count(), 0);
      await page.getByLabel('Expect endpoint (host:port)').fill('x.example:443');
      await page.getByRole('button', { name: 'Expect…' }).click();
      // the confirm step: nothing written yet
      await page.waitForURL(/\/baselines\/expect$/);
      assert.match(await page.locator('section.confirm').innerText(), /x\.example:443 joins the baseline/);
      assert.equal(JSON.stringify(await baselineOf('xss-org', 'xss-repo')).includes('"source":"expected"'), false);
      assert.deepEqual(await axeViolations(page), []);
      await page.getByRole('button', { name: 'Expect x.example:443' }).click();
      assert.match(await page.locator('[role=status]').innerText(), /x\.example:443 is now expected in 1 job/);
      await page.getByRole('link', { name: 'Back to the baseline' }).click();
      await page.waitForURL(/\/baselines\?/);
      assert.equal(await row().getAttribute('data-state'), 'expected');
      const stored = (await baselineOf('xss-org', 'xss-repo')) as { jobs: { endpoints: { endpoint: string; source: string; inBaseline: boolean }[] }[] };
      assert.deepEqual(
        stored.jobs[0]!.endpoints.filter((e) => e.endpoint === 'x.example:443').map((e) => [e.source, e.inBaseline]),
        [['expected', true]],
      );
      // un-expect, through the same confirm step
      await row().getByRole('button', { name: 'Un-expect x.example:443' }).click();
      await page.getByRole('button', { name: 'Un-expect x.example:443' }).click();
      assert.match(await page.locator('[role=status]').innerText(), /no longer expected in 1 job/);
      await page.goto(`${dash.server.base}${XSS_JOB}`);
      assert.equal(await row().getAttribute('data-state'), 'pending', 'un-expected: back to pending, its run count restarted');
      assert.deepEqual(errors, []);
    } finally {
      await close();
    }
  });

  it('refuses to expect webhook.site plainly, before and after a forged confirmation; the store is unchanged', async () => {
    const before = await baselineOf('acme-corp', 'mobile-app');
    const { page, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, WRITER_TOKEN, '/baselines?owner=acme-corp&repo=mobile-app');
      const fields: [string, string][] = [
        ['owner', 'acme-corp'],
        ['repo', 'mobile-app'],
        ['endpoint', 'webhook.site:443'],
      ];
      const first = await postFromPage(page, dash.server.base, '/baselines/expect', fields);
      assert.equal(first.status, 422);
      assert.match(first.text, /webhook\.site:443 is the risky destination webhook\.site[^<]*: it can never be expected/);
      assert.doesNotMatch(first.text, /Please confirm/);
      // skipping the confirm step reaches the service's own guard
      const forged = await postFromPage(page, dash.server.base, '/baselines/expect', [...fields, ['confirm', 'yes']]);
      assert.equal(forged.status, 422);
      assert.match(forged.text, /webhook\.site:443 is the risky destination webhook\.site \(payload staging \/ exfiltration\): it can never be expected/);
      const gist = await postFromPage(page, dash.server.base, '/baselines/expect', [['owner', 'acme-corp'], ['repo', 'mobile-app'], ['endpoint', 'gist.githubusercontent.com:443'], ['confirm', 'yes']]);
      assert.equal(gist.status, 422);
      await page.setContent(forged.text);
      assert.deepEqual(await axeViolations(page), []);
    } finally {
      await close();
    }
    assert.deepEqual(await baselineOf('acme-corp', 'mobile-app'), before, 'nothing changed in the store');
  });

  it('a read-only grant gets 403 on the edit posts; bad input is 400', async () => {
    const before = await baselineOf('xss-org', 'xss-repo');
    const { page, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, READER_TOKEN, XSS_JOB);
      const fields: [string, string][] = [['owner', 'xss-org'], ['repo', 'xss-repo'], ['endpoint', 'x.example:443'], ['confirm', 'yes']];
      for (const path of ['/baselines/expect', '/baselines/unexpect']) {
        const res = await postFromPage(page, dash.server.base, path, fields);
        assert.equal(res.status, 403, path);
        assert.match(res.text, /does not include the dashboard permission (&quot;|")write(&quot;|")/);
      }
    } finally {
      await close();
    }
    assert.deepEqual(await baselineOf('xss-org', 'xss-repo'), before);
    const writer = await newPage(dash.browser);
    try {
      await signIn(writer.page, dash.server.base, WRITER_TOKEN, XSS_JOB);
      const bad = await postFromPage(writer.page, dash.server.base, '/baselines/expect', [['owner', 'xss-org'], ['repo', 'xss-repo'], ['endpoint', INJECTION]]);
      assert.equal(bad.status, 400);
      assert.match(bad.text, /endpoint: expected one exact endpoint, host:port/);
      assert.match(bad.text, /got &quot;&lt;img src=x onerror=alert\(1\)(&gt;|>)&quot;/, 'the bad value is escaped');
      assert.doesNotMatch(bad.text, /<img/);
    } finally {
      await writer.close();
    }
  });
});

describe('baseline edits name the job exactly', () => {
  it('a job named " " or "build " gets the endpoint, not every job of the repo or the job "build"; an empty name is refused', async () => {
    // three jobs of one repo whose names differ only by blanks, as a producer may send them
    const lines = [
      ['ci.yml', 'build'],
      ['ci.yml', 'build '],
      [' ', ' '],
    ].flatMap(([workflow, job], i) =>
      [0, 1].map((r) =>
        JSON.stringify({
          owner: 'blank-org', repo: 'api', workflow, job, run_id: String(900 + i * 10 + r), run_attempt: 1,
          timestamp: `2026-11-0${r + 1}T00:00:0${i}Z`, domain: 'registry.npmjs.org', port: 443, process: { name: 'npm' },
        }),
      ),
    );
    const file = dash.demo.file('blank-jobs.ndjson', lines.join('\n') + '\n');
    const ingest = await cliResult(['ingest', file, '--db', dash.demo.db]);
    assert.equal(ingest.status, 0, ingest.stderr);
    const expectedIn = async (endpoint: string) => {
      const b = (await baselineOf('blank-org', 'api')) as { jobs: { workflow: string; job: string; endpoints: { endpoint: string; source: string }[] }[] };
      return b.jobs.filter((j) => j.endpoints.some((e) => e.endpoint === endpoint && e.source === 'expected')).map((j) => `${j.workflow}|${j.job}`);
    };
    const { page, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, WRITER_TOKEN, '/baselines?owner=blank-org&repo=api');
      // the hidden fields of each job's form, as the page writes them
      const forms = await page.locator('form[action="/baselines/expect"]').evaluateAll((fs) =>
        fs.map((f) => Object.fromEntries(['owner', 'repo', 'workflow', 'job'].map((k) => [k, (f.querySelector(`input[name=${k}]`) as HTMLInputElement).value]))),
      );
      const blank = forms.find((f) => f.workflow === ' ' && f.job === ' ');
      const spaced = forms.find((f) => f.workflow === 'ci.yml' && f.job === 'build ');
      assert.ok(blank && spaced, JSON.stringify(forms));
      const post = (f: Record<string, string>, endpoint: string) => postFromPage(page, dash.server.base, '/baselines/expect', [...Object.entries(f), ['endpoint', endpoint], ['confirm', 'yes']]);
      assert.equal((await post(blank, 'blank.example:443')).status, 200);
      assert.deepEqual(await expectedIn('blank.example:443'), [' | ']);
      assert.equal((await post(spaced, 'spaced.example:443')).status, 200);
      assert.deepEqual(await expectedIn('spaced.example:443'), ['ci.yml|build ']);
      // the confirm page names the job as it is, blanks shown
      const ask = await postFromPage(page, dash.server.base, '/baselines/expect', [...Object.entries(spaced), ['endpoint', 'ask.example:443']]);
      assert.match(ask.text, /job (&quot;|")build (&quot;|")/);
      const empty = await post({ ...spaced, job: '' }, 'empty.example:443');
      assert.equal(empty.status, 400);
      assert.match(empty.text, /job is empty: leave it out to mean every job/);
      assert.deepEqual(await expectedIn('empty.example:443'), []);
    } finally {
      await close();
    }
  });
});

describe('the risky list the edits judge by', () => {
  it('an entry another command makes the store remember while the dashboard runs is refused from the next request on', async () => {
    const endpoint = 'drop.later-exfil.example:443';
    const config = dash.demo.file('later-risky.yaml', 'risky_destinations: ["*.later-exfil.example"]\n');
    const remembered = await cliResult(['stats', '--db', dash.demo.db, '--config', config]);
    assert.equal(remembered.status, 0, remembered.stderr);
    assert.match(remembered.stderr, /the store now remembers the risky destination\(s\) \*\.later-exfil\.example/);
    const before = await baselineOf('acme-corp', 'mobile-app');
    const { page, close } = await newPage(dash.browser);
    try {
      await signIn(page, dash.server.base, WRITER_TOKEN, '/baselines?owner=acme-corp&repo=mobile-app');
      const fields: [string, string][] = [['owner', 'acme-corp'], ['repo', 'mobile-app'], ['endpoint', endpoint]];
      const asked = await postFromPage(page, dash.server.base, '/baselines/expect', fields);
      assert.equal(asked.status, 422, asked.text);
      assert.match(asked.text, /drop\.later-exfil\.example:443 is the risky destination later-exfil\.example: it can never be expected/);
      const confirmed = await postFromPage(page, dash.server.base, '/baselines/expect', [...fields, ['confirm', 'yes']]);
      assert.equal(confirmed.status, 422, 'the write itself judges by the same list');
    } finally {
      await close();
      assert.equal((await cliResult(['risky', 'forget', '*.later-exfil.example', '--yes', '--db', dash.demo.db])).status, 0);
    }
    assert.deepEqual(await baselineOf('acme-corp', 'mobile-app'), before, 'nothing changed in the store');
  });
});
