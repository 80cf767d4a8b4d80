import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { GuardRefusalTally, OTHER_ADDRESSES, type GuardRefusalRecord } from '../../src/http/guard-refusals.js';

const refusal = (remote: string, kind = 'unknown_token') => ({ remote, status: 401 as const, kind, message: `Unauthorized: ${kind}` });

test('the first refusal of a window is written at once; the rest of the window become one summary when it ends', () => {
  let now = 1_000;
  const out: GuardRefusalRecord[] = [];
  const t = new GuardRefusalTally((r) => out.push(r), { windowMs: 60_000, now: () => now });
  t.note(refusal('10.0.0.5'));
  assert.deepEqual(out.map((r) => [r.remote, r.count, r.first]), [['10.0.0.5', 1, true]]);
  for (let i = 0; i < 99; i++) t.note(refusal('10.0.0.5'));
  t.note(refusal('10.0.0.5', 'missing_token'));
  t.note(refusal('10.0.0.6'));
  assert.equal(out.length, 3, 'another kind or another address is written at once');
  t.flush();
  assert.equal(out.length, 3, 'nothing more before the window ends');
  now += 60_000;
  t.flush();
  assert.deepEqual(out.slice(3).map((r) => [r.remote, r.kind, r.count, r.first, r.since]), [['10.0.0.5', 'unknown_token', 99, false, 1_000]]);
  // a new window starts with a record at once again
  t.note(refusal('10.0.0.5'));
  assert.deepEqual([out.length, out.at(-1)!.first], [5, true]);
});

test('an IPv6 client is tallied by its /64: addresses picked from one block write one record and one summary', () => {
  let now = 0;
  const out: GuardRefusalRecord[] = [];
  const t = new GuardRefusalTally((r) => out.push(r), { windowMs: 60_000, maxKeys: 8, now: () => now });
  for (let i = 1; i <= 500; i++) t.note(refusal(`2001:db8:1:2:${i.toString(16)}::${(i * 7).toString(16)}`));
  t.note(refusal('2001:DB8:1:3::1'));
  // an IPv4 client, whether the socket gives it plain or IPv4-mapped, is one address
  t.note(refusal('192.0.2.7'));
  t.note(refusal('::ffff:192.0.2.7'));
  t.note(refusal('::ffff:192.0.2.8'));
  assert.deepEqual(out.map((r) => [r.remote, r.count, r.first]), [
    ['2001:db8:1:2:1::7', 1, true],
    ['2001:DB8:1:3::1', 1, true],
    ['192.0.2.7', 1, true],
    ['::ffff:192.0.2.8', 1, true],
  ], 'the first of a window names the address it came from');
  now += 60_000;
  t.flush();
  assert.deepEqual(out.slice(4).map((r) => [r.remote, r.count, r.first]), [
    ['2001:db8:1:2::/64', 499, false],
    ['192.0.2.7', 1, false],
  ], 'a summary names the block it counted');
});

test('past maxKeys, new addresses share one tally; closing writes every open tally', () => {
  const out: GuardRefusalRecord[] = [];
  const t = new GuardRefusalTally((r) => out.push(r), { windowMs: 60_000, maxKeys: 2, now: () => 0 });
  for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.3']) t.note(refusal(ip));
  assert.deepEqual(out.map((r) => r.remote), ['10.0.0.1', '10.0.0.2', OTHER_ADDRESSES]);
  t.flush(true);
  assert.deepEqual(out.slice(3).map((r) => [r.remote, r.count]), [[OTHER_ADDRESSES, 2]]);
});

test('property: after closing, the records account for every refusal exactly, and a window never writes more than two', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ dt: fc.nat(30_000), ip: fc.constantFrom('10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4'), kind: fc.constantFrom('missing_token', 'unknown_token', 'foreign_host') }), { maxLength: 200 }),
      fc.integer({ min: 1, max: 12 }),
      (events, maxKeys) => {
        let now = 0;
        const out: GuardRefusalRecord[] = [];
        const t = new GuardRefusalTally((r) => out.push(r), { windowMs: 60_000, maxKeys, now: () => now });
        for (const e of events) {
          now += e.dt;
          t.note({ remote: e.ip, status: 401, kind: e.kind, message: e.kind });
        }
        t.flush(true);
        assert.equal(out.reduce((n, r) => n + r.count, 0), events.length);
        const perWindow = new Map<string, number>();
        for (const r of out) perWindow.set(`${r.remote} ${r.kind} ${r.since}`, (perWindow.get(`${r.remote} ${r.kind} ${r.since}`) ?? 0) + 1);
        for (const n of perWindow.values()) assert.ok(n <= 2);
        // the kinds are kept apart, whatever the address
        for (const kind of ['missing_token', 'unknown_token', 'foreign_host']) {
          assert.equal(out.filter((r) => r.kind === kind).reduce((n, r) => n + r.count, 0), events.filter((e) => e.kind === kind).length, kind);
        }
      },
    ),
    { numRuns: 300 },
  );
});
