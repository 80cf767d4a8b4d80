import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderToString } from 'preact-render-to-string';
import { loadOverview, timelineChart } from '../../src/dashboard/overview-data.js';
import { OverviewPage } from '../../src/dashboard/pages/overview.js';
import type { DashboardStore } from '../../src/dashboard/store.js';
import { safeNext } from '../../src/dashboard/app.js';
import { SessionStore } from '../../src/dashboard/session.js';
import { parseCookies } from '../../src/dashboard/cookies.js';
import { carriedFields, isConfirmed } from '../../src/dashboard/confirm.js';
import { ConfirmPage } from '../../src/dashboard/pages/confirm.js';
import type { PageContext } from '../../src/dashboard/pages/context.js';

const ctx: PageContext = {
  identity: 'alice', permissions: ['read', 'write'], signedIn: true, csrf: 'tok-123', theme: 'auto', path: '/rules', location: '/rules',
  assets: { script: '/assets/main.js', styles: ['/assets/main.css'] },
};

describe('dashboard pure parts', () => {
  it('timelineChart fills missing days with 0, one series per type and status, at most maxDays ending with the newest', () => {
    const rows = [
      { day: 10, type: 'B', status: 'new' as const, n: 2 },
      { day: 12, type: 'A', status: 'new' as const, n: 1 },
      { day: 12, type: 'B', status: 'new' as const, n: 5 },
      { day: 13, type: 'A', status: 'suppressed' as const, n: 4 },
    ];
    assert.deepEqual(timelineChart(rows), {
      days: [10, 11, 12, 13],
      series: [
        { label: 'A (new)', values: [0, 0, 1, 0] },
        { label: 'A (suppressed)', values: [0, 0, 0, 4] },
        { label: 'B (new)', values: [2, 0, 5, 0] },
      ],
    });
    assert.deepEqual(timelineChart(rows, 2), {
      days: [12, 13],
      series: [
        { label: 'A (new)', values: [1, 0] },
        { label: 'A (suppressed)', values: [0, 4] },
        { label: 'B (new)', values: [5, 0] },
      ],
    });
    assert.deepEqual(timelineChart([]), { days: [], series: [] });
  });

  it('safeNext keeps local paths and refuses anything that leaves the server', () => {
    assert.equal(safeNext('/github/a/b/actions/runs/1?jobId=2&tab=network-events'), '/github/a/b/actions/runs/1?jobId=2&tab=network-events');
    for (const bad of ['//evil.example/', '/\\evil.example', 'https://evil.example/', 'javascript:alert(1)', '', null, undefined, '/a b']) {
      assert.equal(safeNext(bad), '/', String(bad));
    }
    // a Location header holds visible ASCII only: the rest is percent-encoded (Node answered 500)
    assert.equal(safeNext('/detections?job=\u4e2d'), '/detections?job=%E4%B8%AD');
    assert.equal(safeNext('/a\u0000b'), '/a%00b');
    assert.equal(safeNext('/\ud800'), '/');
  });

  it('sessions end after the idle time and the least recently used is dropped at the cap', () => {
    let now = 0;
    const s = new SessionStore({ idleMs: 1000, max: 2, clock: () => now });
    const a = s.create('a', ['read']);
    assert.notEqual(a.id, a.csrf);
    now = 999;
    assert.equal(s.get(a.id)?.identity, 'a');
    now = 1999;
    assert.equal(s.get(a.id)?.identity, 'a', 'use renews it');
    now = 3000;
    assert.equal(s.get(a.id), undefined);
    const b = s.create('b', ['read']);
    const c = s.create('c', ['read']);
    s.get(b.id);
    s.create('d', ['read']);
    assert.equal(s.get(c.id), undefined, 'c was least recently used');
    assert.equal(s.get(b.id)?.identity, 'b');
    assert.equal(s.get(undefined), undefined);
  });

  it('parseCookies takes the first of a repeated name', () => {
    assert.deepEqual([...parseCookies('a=1; et_session=x; et_session=y; junk')], [['a', '1'], ['et_session', 'x']]);
  });

  it('the confirm page re-posts the first post unchanged, with a fresh token and confirm=yes', () => {
    const first = new URLSearchParams({ _csrf: 'old', name: '<b>mesh</b>', process: 'tailscaled', confirm: 'no' });
    assert.equal(isConfirmed(first), false);
    assert.deepEqual(carriedFields(first), [['name', '<b>mesh</b>'], ['process', 'tailscaled']]);
    const html = renderToString(
      <ConfirmPage ctx={ctx} d={{ title: 'Create rule', action: '/rules', fields: carriedFields(first), confirmLabel: 'Create rule', cancelHref: '/rules' }}>
        <p>Suppresses 12 detections.</p>
      </ConfirmPage>,
    );
    assert.match(html, /<form method="post" action="\/rules">/);
    assert.match(html, /<input type="hidden" name="_csrf" value="tok-123"\/>/);
    assert.match(html, /<input type="hidden" name="name" value="&lt;b>mesh&lt;\/b>"\/>/);
    assert.match(html, /<input type="hidden" name="confirm" value="yes"\/>/);
    assert.doesNotMatch(html, /value="old"/);
    assert.equal(isConfirmed(new URLSearchParams({ confirm: 'yes' })), true);
  });

  it('the overview counts pending approvals only where a policy holds calls', async () => {
    const store = {
      overview: {
        counts: async (tenant: string) => ({ tenant, jobs: 5, runs: 9, learningJobs: 2, detections: [{ type: 'T', status: 'new' as const, count: 4 }], rules: 0 }),
        detectionsByDay: async () => [],
        topOpenProcesses: async () => [],
      },
      dashboard: { detectionWindow: async () => ({ detections: [], count: null, nextCursor: null, prevCursor: null }) },
    } as unknown as DashboardStore;
    const none = await loadOverview(store, 'acme');
    assert.equal(none.pendingApprovals, null);
    assert.match(renderToString(<OverviewPage ctx={ctx} d={none} />), /approvals \(no policy loaded\)/);
    const held = await loadOverview({ ...store, pendingApprovals: async () => 3 }, 'acme');
    assert.equal(held.pendingApprovals, 3);
    const html = renderToString(<OverviewPage ctx={ctx} d={held} />);
    assert.match(html, /<span class="value">3<\/span><span class="label">pending approvals<\/span>/);
    assert.match(html, /<span class="value">2<\/span><span class="label">jobs still learning<\/span>/);
    assert.match(html, /<span class="value">3<\/span><span class="label">jobs with a baseline<\/span>/);
  });
});

describe('invisible characters in what a person reads', () => {
  it('are revealed in text, aria-label and title, and kept exactly in form values and data attributes', async () => {
    const { installVisibleText } = await import('../../src/dashboard/visible-text.js');
    installVisibleText();
    const name = '\u202Edelacsliat';
    const html = renderToString(
      <form aria-label={`Expect an endpoint in ${name}`}>
        <input type="hidden" name="job" value={name} />
        <button type="submit" title={`tail\u200bscaled`} data-process={name} aria-label={`Approve ${name}`}>
          {name}
        </button>
      </form>,
    );
    assert.match(html, /<form aria-label="Expect an endpoint in ⟨U\+202E⟩delacsliat">/);
    assert.match(html, /title="tail⟨U\+200B⟩scaled"/);
    assert.match(html, /aria-label="Approve ⟨U\+202E⟩delacsliat"/);
    assert.match(html, />⟨U\+202E⟩delacsliat<\/button>/);
    // posted and filtered values stay the stored string
    assert.ok(html.includes(`value="${name}"`), html);
    assert.ok(html.includes(`data-process="${name}"`), html);
  });
});

describe('a page that fails', () => {
  it('is the dashboard\'s own 500, with its security headers and no cause on the page (the cause goes to the log)', async () => {
    const { createServer } = await import('node:http');
    const { createDashboard } = await import('../../src/dashboard/app.js');
    // a store whose every read fails, as a damaged or vanished one does
    const failing = (): unknown => new Proxy({}, { get: () => () => { throw new Error('disk on fire at /secret/path'); } });
    const store = new Proxy({}, { get: (_t, k) => (k === 'then' ? undefined : failing()) }) as unknown as DashboardStore;
    const logged: string[] = [];
    const dash = createDashboard({ store, tenant: 'default', grants: [], log: (l) => logged.push(l) });
    const server = createServer((req, res) => void dash.handle(req, res, new URL(req.url ?? '/', 'http://x').pathname));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as { port: number };
      const r = await fetch(`http://127.0.0.1:${port}/`);
      const body = await r.text();
      assert.equal(r.status, 500);
      assert.match(r.headers.get('content-security-policy') ?? '', /default-src 'self'/);
      assert.equal(r.headers.get('x-frame-options'), 'DENY');
      assert.equal(body, 'Internal error: the dashboard could not answer this request; the server log says why.');
      assert.ok(logged.some((l) => l.startsWith('dashboard GET / failed: Error: disk on fire')), logged.join('\n'));
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('baseline changed page', () => {
  it('says which jobs had already learned the endpoint an expect left alone', async () => {
    const { BaselineEditedPage } = await import('../../src/dashboard/pages/baselines.js');
    const html = renderToString(
      <BaselineEditedPage ctx={ctx} d={{ action: 'expect', endpoint: 'api.github.com:443', jobs: [], learned: [{ workflow: 'ci.yml', job: 'a' }, { workflow: 'ci.yml', job: 'b' }], backHref: '/baselines' }} />,
    );
    assert.match(html, /<code>api\.github\.com:443<\/code> is now expected in 0 job\(s\)\./);
    assert.match(html, /2 other job\(s\) had already learned it from their runs: left as learned, so undoing the expect will not take it\s+from them\./);
    const plain = renderToString(<BaselineEditedPage ctx={ctx} d={{ action: 'expect', endpoint: 'x.example:443', jobs: [{ workflow: 'ci.yml', job: 'a' }], learned: [], backHref: '/baselines' }} />);
    assert.doesNotMatch(plain, /already learned/);
  });
});
