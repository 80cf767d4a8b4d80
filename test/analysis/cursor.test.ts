import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { decodeCursor, encodeCursor, queryFingerprint } from '../../src/analysis/cursor.js';
import { AnalysisError, normalizeInput, pageNumber } from '../../src/analysis/input.js';
import { choosePage, groupByName } from '../../src/analysis/paging.js';

/** The paging cursor, paging and input validation, without a store. */

const req = normalizeInput({ tenant: 'acme', now: Date.parse('2026-11-20T00:00:00Z'), since: '2026-11-01', owner: 'Acme' });
const fp = queryFingerprint(req);

test('a cursor round-trips and is bound to the query that issued it', () => {
  const c = { c: 12, p: 'tailscaled', f: fp };
  const raw = encodeCursor(c);
  assert.match(raw, /^pg1\.[A-Za-z0-9_-]+$/);
  assert.deepEqual(decodeCursor(raw, fp), c);
  for (const other of [
    { ...req, minCount: 3 },
    { ...req, tenant: 'globex' },
    { ...req, status: 'all' },
    { ...req, since: req.since! + 1 },
    { ...req, filter: { ...req.filter, owner: 'globex' } },
    { ...req, filter: { ...req.filter, job: 'build' } },
    { ...req, types: ['Domain-Blocked'] },
  ]) {
    assert.throws(() => decodeCursor(raw, queryFingerprint(other)), (e: unknown) => e instanceof AnalysisError && e.code === 'invalid_cursor' && /different query/.test(e.message));
  }
});

test('tampered cursors are refused with a reason, never a crash', () => {
  const raw = encodeCursor({ c: 3, p: 'curl', f: fp });
  const body = (o: unknown) => 'pg1.' + Buffer.from(JSON.stringify(o)).toString('base64url');
  const cases: [string, RegExp][] = [
    ['garbage', /unrecognised format/],
    [raw.replace('pg1.', 'pg2.'), /unrecognised format/],
    ['pg1.%%%', /not decodable/],
    ['pg1.' + Buffer.from('{"c":').toString('base64url'), /not decodable/],
    [body(null), /malformed/],
    [body([1, 2]), /malformed/],
    [body({ c: '3', p: 'curl', f: fp }), /malformed/],
    [body({ c: 3, p: 7, f: fp }), /malformed/],
    [body({ c: 3, p: 'curl' }), /malformed/],
    [body({ c: 3, p: 'curl', f: fp.slice(1) + 'x' }), /different query/],
  ];
  for (const [c, why] of cases) {
    assert.throws(() => decodeCursor(c, fp), (e: unknown) => e instanceof AnalysisError && e.code === 'invalid_cursor' && why.test(e.message) && /pass the next_cursor/.test(e.message), c);
  }
  fc.assert(
    fc.property(fc.string(), (s) => {
      try {
        decodeCursor(s, fp);
      } catch (e) {
        return e instanceof AnalysisError && e.code === 'invalid_cursor';
      }
      return s.startsWith('pg1.');
    }),
  );
});

test('an edited position inside a valid cursor only moves within the query\'s own groups, in order', () => {
  const { groups } = groupByName([[1, 5], [2, 5], [3, 9], [4, 1], [5, 2]], (v) => ['', 'curl', 'node', 'tailscaled', 'dockerd', 'node'][v]!);
  assert.deepEqual(groups.map((g) => [g.name, g.count, g.variants]), [['tailscaled', 9, [3]], ['node', 7, [2, 5]], ['curl', 5, [1]], ['dockerd', 1, [4]]]);
  fc.assert(
    fc.property(fc.integer({ min: -5, max: 20 }), fc.string({ maxLength: 12 }), fc.integer({ min: 1, max: 5 }), (c, p, limit) => {
      const { page, next } = choosePage(groups, limit, fp, { cursor: { c, p, f: fp } });
      const start = page.length ? groups.indexOf(page[0]!) : groups.length;
      assert.deepEqual(page, groups.slice(start, start + limit));
      assert.equal(next === null, start + limit >= groups.length);
    }),
  );
});

test('paging by cursor visits every group once; page numbers past the end are refused', () => {
  const { groups } = groupByName(Array.from({ length: 11 }, (_, i) => [i, (i * 7) % 5 + 1] as [number, number]), (v) => `p${v}`);
  const seen: string[] = [];
  let cursor = null;
  for (;;) {
    const { page, next } = choosePage(groups, 3, fp, { cursor });
    seen.push(...page.map((g) => g.name));
    if (!next) break;
    cursor = decodeCursor(encodeCursor(next), fp);
  }
  assert.deepEqual(seen, groups.map((g) => g.name));
  assert.deepEqual(choosePage(groups, 3, fp, { page: 4 }).page.map((g) => g.name), groups.slice(9).map((g) => g.name));
  assert.throws(() => choosePage(groups, 3, fp, { page: 5 }), /page 5 is past the end: 11 process group\(s\) make 4 page\(s\) of 3/);
});

test('input: defaults, bounds and the filters the analysis cannot apply', () => {
  assert.deepEqual([req.minCount, req.limit, req.samples, req.types, req.status], [2, 50, 5, ['New-Outbound-Network-Call'], 'new']);
  const bad: [Record<string, unknown>, RegExp][] = [
    [{}, /tenant is required/],
    [{ tenant: '' }, /tenant is required/],
    [{ tenant: 't', limit: 0 }, /limit: expected an integer between 1 and 1000, got 0/],
    [{ tenant: 't', samples: 101 }, /samples: expected an integer between 0 and 100/],
    [{ tenant: 't', minCount: 1.5 }, /minCount: expected an integer/],
    [{ tenant: 't', since: 'yesterday' }, /since/],
    [{ tenant: 't', detectionTypes: ['Nope'] }, /unknown detection type/],
    [{ tenant: 't', filter: { process: 'curl' } }, /cannot filter by process/],
    [{ tenant: 't', filter: { sha256: 'ab' } }, /cannot filter by sha256/],
    [{ tenant: 't', filter: {}, owner: 'x' }, /pass either filter or owner, not both/],
  ];
  for (const [input, why] of bad) assert.throws(() => normalizeInput(input as never), (e: unknown) => e instanceof AnalysisError && why.test(e.message), JSON.stringify(input));
  assert.throws(() => pageNumber({ tenant: 't', page: 2 }, true), /pass only one of them/);
  assert.throws(() => pageNumber({ tenant: 't', page: 0 }, false), /page: expected an integer/);
  assert.equal(pageNumber({ tenant: 't' }, true), undefined);
});
