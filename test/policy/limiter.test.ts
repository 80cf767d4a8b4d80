import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SlidingWindowLimiter } from '../../src/policy/rate-limiter.js';

function fakeClock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

test('sliding window: admits max, refuses the next, frees slots one by one as they age out', () => {
  const c = fakeClock();
  const l = new SlidingWindowLimiter(c.now);
  const req = [{ key: 'k', max: 3, windowMs: 60_000, cost: 1 }];
  assert.ok(l.reserve(req).ok);
  c.advance(10_000);
  assert.ok(l.reserve(req).ok);
  c.advance(10_000);
  assert.ok(l.reserve(req).ok);
  const r = l.reserve(req);
  assert.ok(!r.ok);
  // the oldest call (t=0) leaves the window at t=60s; we are at t=20s
  assert.equal(r.retryAfterMs, 40_000);
  c.advance(39_999);
  assert.ok(!l.reserve(req).ok);
  c.advance(1);
  assert.ok(l.reserve(req).ok, 'not calendar aligned: one slot frees exactly one window after it was used');
  assert.ok(!l.reserve(req).ok);
  c.advance(10_000);
  assert.ok(l.reserve(req).ok);
});

test('windows reset on their own after a full window of silence', () => {
  const c = fakeClock();
  const l = new SlidingWindowLimiter(c.now);
  const req = [{ key: 'k', max: 2, windowMs: 1000, cost: 1 }];
  l.reserve(req);
  l.reserve(req);
  assert.ok(!l.reserve(req).ok);
  c.advance(1000);
  assert.equal(l.used('k', 1000), 0);
  assert.ok(l.reserve(req).ok);
});

test('refund gives quota back, once', () => {
  const c = fakeClock();
  const l = new SlidingWindowLimiter(c.now);
  const req = [{ key: 'k', max: 1, windowMs: 60_000, cost: 1 }];
  const r = l.reserve(req);
  assert.ok(r.ok);
  assert.ok(!l.reserve(req).ok);
  l.refund(r.reservation);
  l.refund(r.reservation);
  assert.equal(l.used('k', 60_000), 0);
  assert.ok(l.reserve(req).ok);
  assert.ok(!l.reserve(req).ok, 'a double refund must not create extra quota');
});

test('multi-limit reservation is all-or-nothing', () => {
  const l = new SlidingWindowLimiter(fakeClock().now);
  const a = { key: 'a', max: 5, windowMs: 1000, cost: 1 };
  const b = { key: 'b', max: 1, windowMs: 1000, cost: 1 };
  assert.ok(l.reserve([a, b]).ok);
  const r = l.reserve([a, b]);
  assert.ok(!r.ok);
  assert.equal(r.key, 'b');
  assert.equal(l.used('a', 1000), 1, 'a must not be charged when b refuses');
});

test('cost counts a numeric amount; a cost above max can never pass', () => {
  const l = new SlidingWindowLimiter(fakeClock().now);
  assert.ok(l.reserve([{ key: 'k', max: 10, windowMs: 1000, cost: 7 }]).ok);
  assert.ok(!l.reserve([{ key: 'k', max: 10, windowMs: 1000, cost: 4 }]).ok);
  assert.ok(l.reserve([{ key: 'k', max: 10, windowMs: 1000, cost: 3 }]).ok);
  const huge = l.reserve([{ key: 'z', max: 10, windowMs: 1000, cost: 11 }]);
  assert.ok(!huge.ok && huge.retryAfterMs === Infinity);
});

test('keys are independent (session A never affects session B)', () => {
  const l = new SlidingWindowLimiter(fakeClock().now);
  for (let i = 0; i < 3; i++) assert.ok(l.reserve([{ key: 'r|s:A', max: 3, windowMs: 1000, cost: 1 }]).ok);
  assert.ok(!l.reserve([{ key: 'r|s:A', max: 3, windowMs: 1000, cost: 1 }]).ok);
  assert.ok(l.reserve([{ key: 'r|s:B', max: 3, windowMs: 1000, cost: 1 }]).ok);
});

test('N interleaved reservations never over-admit', async () => {
  const l = new SlidingWindowLimiter(fakeClock().now);
  const req = [{ key: 'k', max: 7, windowMs: 60_000, cost: 1 }];
  const results = await Promise.all(
    Array.from({ length: 100 }, (_, i) => new Promise<boolean>((res) => setTimeout(() => res(l.reserve(req).ok), i % 3))),
  );
  assert.equal(results.filter(Boolean).length, 7);
});

test('a weekly window holds for the whole week: housekeeping never forgets a window younger than itself', () => {
  const c = fakeClock();
  const l = new SlidingWindowLimiter(c.now);
  const week = 604_800_000;
  const weekly = [{ key: 'weekly', max: 2, windowMs: week, cost: 1 }];
  assert.ok(l.reserve(weekly).ok);
  assert.ok(l.reserve(weekly).ok);
  c.advance(25 * 3_600_000);
  // Enough traffic on short-lived keys to run the periodic cleanup several times.
  for (let i = 0; i < 10_000; i++) l.reserve([{ key: `s${i}`, max: 1, windowMs: 1000, cost: 1 }]);
  assert.ok(!l.reserve(weekly).ok, 'a weekly limit must not reset after 25 h');
  assert.equal(l.used('weekly', week), 2);
  c.advance(week - 25 * 3_600_000);
  assert.ok(l.reserve(weekly).ok, 'a slot frees exactly one week after it was used');
});

test('cleanup forgets a key once its own window has passed', () => {
  const c = fakeClock();
  const l = new SlidingWindowLimiter(c.now);
  l.reserve([{ key: 'short', max: 1, windowMs: 1000, cost: 1 }]);
  l.reserve([{ key: 'long', max: 1, windowMs: 3_600_000, cost: 1 }]);
  c.advance(1000);
  l.forgetExpired();
  assert.equal(l.size, 1, 'the expired short window is dropped, the long one is kept');
  c.advance(3_600_000);
  l.forgetExpired();
  assert.equal(l.size, 0);
});

test('commit makes a reservation final: a later refund gives nothing back', () => {
  const c = fakeClock();
  const l = new SlidingWindowLimiter(c.now);
  const req = [{ key: 'k', max: 1, windowMs: 60_000, cost: 1 }];
  const r = l.reserve(req);
  assert.ok(r.ok);
  l.commit(r.reservation);
  l.refund(r.reservation);
  assert.equal(l.used('k', 60_000), 1);
  assert.ok(!l.reserve(req).ok);
});

test('rolling back a reservation that has already left its window gives nothing extra back', () => {
  const c = fakeClock();
  const l = new SlidingWindowLimiter(c.now);
  const req = [{ key: 'k', max: 1, windowMs: 1000, cost: 1 }];
  const old = l.reserve(req);
  assert.ok(old.ok);
  c.advance(1000);
  assert.ok(l.reserve(req).ok);
  l.refund(old.reservation); // e.g. the upstream's late error for a call from the previous window
  assert.equal(l.used('k', 1000), 1);
  assert.ok(!l.reserve(req).ok, 'the current window is still full');
});
