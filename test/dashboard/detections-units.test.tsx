import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { renderToString } from 'preact-render-to-string';
import { detectionFilterParams, PAGE_PARAMS } from '../../src/dashboard-data/params.js';
import { csvFilename, csvHref, formValues, newerHref, olderHref, splitTypes } from '../../src/dashboard/detections-view.js';
import { DetectionsPage, type DetectionsData } from '../../src/dashboard/pages/detections.js';
import { processHref } from '../../src/dashboard/links.js';
import type { PageContext } from '../../src/dashboard/pages/context.js';
import type { Detection } from '../../src/domain/types.js';

const ctx: PageContext = {
  identity: 'alice', permissions: ['read'], signedIn: true, csrf: 'tok-123', theme: 'auto', path: '/detections', location: '/detections',
  assets: { script: '/assets/main.js', styles: ['/assets/main.css'] },
};
const NOW = Date.parse('2026-12-02T12:00:00Z');
const parse = (href: string) => new URL(href, 'http://x').searchParams;

describe('detections page pure parts', () => {
  it('older, newer and CSV links carry the same filter, which the parser reads back unchanged', () => {
    const q = new URLSearchParams({ owner: 'a&b=c #d', process: 'tail scaled', endpoint: '[2001:db8::1]:443', since: '2026-12-01', status: 'new' });
    q.append('type', 'New-Outbound-Network-Call');
    const f = detectionFilterParams(q, NOW);
    for (const href of [olderHref(f, { limit: 50 }, 'CUR1'), newerHref(f, { limit: 50 }, 'CUR2'), csvHref(f)]) {
      assert.deepEqual(detectionFilterParams(parse(href), NOW, PAGE_PARAMS), f, href);
    }
    assert.equal(parse(olderHref(f, { limit: 50 }, 'CUR1')).get('after'), 'CUR1');
    assert.equal(parse(newerHref(f, { limit: 20 }, 'CUR2')).get('before'), 'CUR2');
    assert.equal(parse(newerHref(f, { limit: 20 }, 'CUR2')).get('limit'), '20');
    assert.equal(parse(olderHref(f, { limit: 50 }, 'CUR1')).get('limit'), null, 'the default page size is left out');
    const csv = parse(csvHref(f));
    assert.deepEqual(detectionFilterParams(csv, NOW), f, 'the export link carries nothing the export does not read');
    assert.ok(csv.get('after') === null && csv.get('before') === null && csv.get('limit') === null, 'the export walks every page');
    assert.ok(csvHref(f).startsWith('/detections.csv?'));
    assert.equal(csvHref(detectionFilterParams(new URLSearchParams(), NOW)), '/detections.csv');
  });

  it('a comma list typed in the type field is several types, as the CLI takes them', () => {
    const q = splitTypes(new URLSearchParams('type=New-Outbound-Network-Call, Domain-Blocked&owner=a,b'));
    assert.deepEqual(q.getAll('type'), ['New-Outbound-Network-Call', 'Domain-Blocked']);
    assert.equal(q.get('owner'), 'a,b', 'only the type field is split');
    assert.equal(formValues(q).type, 'New-Outbound-Network-Call,Domain-Blocked');
    assert.equal(formValues(q).since, '');
    assert.deepEqual(detectionFilterParams(q, NOW).types, ['New-Outbound-Network-Call', 'Domain-Blocked']);
  });

  it('the CSV file name is tenant and time, with nothing a header could break on', () => {
    assert.equal(csvFilename('acme', new Date('2026-12-02T07:00:01.250Z')), 'detections-acme-2026-12-02T07-00-01-250Z.csv');
    assert.equal(csvFilename('a"b\r\n;c', new Date(0)), 'detections-a_b_c-1970-01-01T00-00-00-000Z.csv');
  });

  it('a process links to the detections page filtered to it', () => {
    assert.equal(processHref('a b&c'), '/detections?process=a+b%26c');
  });

  it('renders the bounded count, escapes names, and marks the refused field', () => {
    const x = {
      id: 'd1', timestamp: '2026-12-01T10:00:00.000Z', detection_id: 'New-Outbound-Network-Call', status: 'new', owner: 'o', repo: 'r', job: 'build',
      run_id: '7', job_id: '70', endpoint: '<b>e</b>:443', tool: { name: '<img src=x onerror=alert(1)>', path: null, sha256: null },
    } as unknown as Detection;
    const values = formValues(new URLSearchParams('since=soon'));
    const ok: DetectionsData = {
      tenant: 't', values, filter: {}, page: { limit: 50, after: null, before: null },
      window: { detections: [x], count: { value: 10_000, exact: false }, nextCursor: 'N', prevCursor: null }, error: null,
    };
    const html = renderToString(<DetectionsPage ctx={ctx} d={ok} />);
    assert.match(html, /10,000\+/);
    assert.ok(html.includes('&lt;img src=x onerror=alert(1)>') && !html.includes('<img'), 'the name is text');
    assert.ok(html.includes('href="/github/o/r/actions/runs/7?jobId=70&amp;tab=network-events"'));
    assert.ok(html.includes('rel="next"') && !html.includes('rel="prev"'));
    const bad = renderToString(<DetectionsPage ctx={ctx} d={{ ...ok, filter: null, page: null, window: null, error: { field: 'since', reason: 'not a time' } }} />);
    assert.match(bad, /<input name="since" value="soon"[^>]*aria-invalid="true"/);
    assert.match(bad, /role="alert"[^>]*>The filter was not applied: <code>since<\/code>: not a time/);
    assert.ok(!bad.includes('<table'));
    const two = formValues(splitTypes(new URLSearchParams('type=New-Outbound-Network-Call&type=Domain-Blocked')));
    const kept = renderToString(<DetectionsPage ctx={ctx} d={{ ...ok, values: two }} />);
    assert.match(kept, /<option value="New-Outbound-Network-Call,Domain-Blocked" selected>/, 'a resubmitted form keeps both types');
  });
});
