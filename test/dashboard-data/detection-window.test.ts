import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assembleWindow, chooseDriver, windowScan, withoutDimension } from '../../src/storage/detection-window.js';
import type { DetectionFilter } from '../../src/domain/filter.js';
import { CursorError, decodeDetectionCursor, detectionQueryKey, encodeDetectionCursor } from '../../src/storage/detection-cursor.js';

const rows = (n: number, from = 100) => Array.from({ length: n }, (_, i) => ({ ts: from - i, id: 1000 - i }));
const KEY = detectionQueryKey('t', {});

test('paging older: a next cursor only when a row beyond the page was read; a previous one only below a cursor', () => {
  const first = assembleWindow(rows(4), 3, windowScan('t', { filter: {} }));
  assert.equal(first.page.length, 3);
  assert.deepEqual(decodeDetectionCursor(first.nextCursor!, KEY), { ts: 98, id: 998 });
  assert.equal(first.prevCursor, null);
  const after = windowScan('t', { filter: {}, after: first.nextCursor });
  const second = assembleWindow(rows(2, 97), 3, after);
  assert.equal(second.nextCursor, null);
  assert.deepEqual(decodeDetectionCursor(second.prevCursor!, KEY), { ts: 97, id: 1000 });
});

test('paging newer: rows read ascending come back newest first', () => {
  const scan = windowScan('t', { filter: {}, before: encodeDetectionCursor(50, 1, KEY) });
  assert.equal(scan.dir, 'newer');
  const asc = [{ ts: 51, id: 1 }, { ts: 52, id: 2 }, { ts: 53, id: 3 }];
  const w = assembleWindow(asc, 2, scan);
  assert.deepEqual(w.page.map((r) => r.ts), [52, 51]);
  assert.deepEqual(decodeDetectionCursor(w.prevCursor!, KEY), { ts: 52, id: 2 });
  assert.deepEqual(decodeDetectionCursor(w.nextCursor!, KEY), { ts: 51, id: 1 });
  assert.equal(assembleWindow(asc.slice(0, 2), 2, scan).prevCursor, null, 'nothing newer');
});

test('both cursors at once, or a bad one, are refused', () => {
  const c = encodeDetectionCursor(1, 1, KEY);
  assert.throws(() => windowScan('t', { filter: {}, after: c, before: c }), CursorError);
  assert.throws(() => windowScan('t', { filter: {}, before: 'x' }), CursorError);
});

test('a cursor pages only the query that issued it: another filter or tenant is refused; the time window, the order of types and undefined fields are not part of it', () => {
  const key = detectionQueryKey('t', { process: 'tailscaled', statuses: ['new'] });
  const c = encodeDetectionCursor(7, 3, key);
  assert.deepEqual(windowScan('t', { filter: { statuses: ['new'], process: 'tailscaled', since: 1, until: 9 }, after: c }).cursor, { ts: 7, id: 3 });
  for (const [tenant, filter] of [
    ['t', { host: 'webhook.site', statuses: ['new'] }],
    ['t', { process: 'tailscaled' }],
    ['t', { process: 'tailscaled', statuses: ['new'], sha256: 'a'.repeat(64) }],
    ['u', { process: 'tailscaled', statuses: ['new'] }],
  ] as [string, DetectionFilter][]) {
    assert.throws(() => windowScan(tenant, { filter, after: c }), /was issued for another query \(the tenant or a filter differs\)/, `${tenant} ${JSON.stringify(filter)}`);
  }
  assert.equal(detectionQueryKey('t', { types: ['A', 'B'], owner: undefined }), detectionQueryKey('t', { types: ['B', 'A'] }));
  // a cursor of the format before it carried its query's key is refused as a cursor of no query
  assert.throws(() => decodeDetectionCursor(Buffer.from('d1:7:3').toString('base64url'), key), /invalid cursor/);
});

test('the driving dimension: fewest ids; none when all are too many; empty when one names nothing', () => {
  assert.deepEqual(chooseDriver([{ col: 'job_ref', ids: [1, 2, 3] }, { col: 'process_id', ids: [7] }]), { col: 'process_id', ids: [7] });
  assert.equal(chooseDriver([{ col: 'job_ref', ids: null }]), null);
  assert.equal(chooseDriver([]), null);
  assert.equal(chooseDriver([{ col: 'job_ref', ids: null }, { col: 'endpoint_id', ids: [] }]), 'empty');
});

test('a driven branch drops only the driving dimension\'s own conditions', () => {
  const f = { statuses: ['new' as const], process: 'curl', sha256: 'ab', host: 'github.com', port: 443, owner: 'acme', job: 'build', since: 1 };
  assert.deepEqual(withoutDimension(f, 'process_id'), { statuses: ['new'], host: 'github.com', port: 443, owner: 'acme', job: 'build', since: 1 });
  assert.deepEqual(withoutDimension(f, 'endpoint_id'), { statuses: ['new'], process: 'curl', sha256: 'ab', owner: 'acme', job: 'build', since: 1 });
  assert.deepEqual(withoutDimension(f, 'job_ref'), { statuses: ['new'], process: 'curl', sha256: 'ab', host: 'github.com', port: 443, since: 1 });
});
