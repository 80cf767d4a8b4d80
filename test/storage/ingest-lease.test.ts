import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { SqliteIngestLeases, type LeaseClock } from '../../src/storage/sqlite/ingest-leases.js';
import { describeLeaseEvent, leaseDecision, nextPollMs, waitCycle } from '../../src/storage/ingest-lease.js';
import { IngestLeaseDeadlockError, IngestLeaseLostError, type IngestLeaseEvent } from '../../src/storage/store.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/** Time that only moves when a waiter sleeps: expiry is tested without waiting for it. */
class FakeClock implements LeaseClock {
  t = Date.UTC(2026, 11, 1, 12);
  onSleep: (() => void) | null = null;
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.t += ms;
    this.onSleep?.();
  }
}

let n = 0;
/** Two writers (two connections, as two processes would have) on one fresh store file. */
function twoWriters(clock: LeaseClock) {
  const path = join(tmp.dir, `leases-${n++}.db`);
  const a = SqliteStore.open(path);
  const b = SqliteStore.open(path);
  return { a: new SqliteIngestLeases(a.db, clock, 100), b: new SqliteIngestLeases(b.db, clock, 100), dbA: a.db, dbB: b.db, close: () => (a.close(), b.close()) };
}

const HOLDER_A = { source: 'a.ndjson', pid: 101, host: 'ci-1' };
const HOLDER_B = { source: 'b.ndjson', pid: 202, host: 'ci-2' };

test('lease decisions are pure: free, held until expiresAt, expired from then on', () => {
  assert.equal(leaseDecision(null, 5), 'free');
  assert.equal(leaseDecision({ token: 't', expiresAt: 10 }, 9), 'held');
  assert.equal(leaseDecision({ token: 't', expiresAt: 10 }, 10), 'expired');
  assert.equal(nextPollMs({ token: 't', expiresAt: 1_000 }, 0, 100), 100);
  assert.equal(nextPollMs({ token: 't', expiresAt: 1_000 }, 970, 100), 30);
  assert.equal(nextPollMs({ token: 't', expiresAt: 1_000 }, 2_000, 100), 1);
});

test('the waiting message names the source, process, host, start time and time to takeover', () => {
  const since = Date.UTC(2026, 11, 1, 12, 0, 0);
  const current = { tenant: 'acme', holder: HOLDER_A, since, expiresAt: since + 30_000 };
  assert.equal(
    describeLeaseEvent({ kind: 'waiting', current, now: since + 10_000 }),
    'tenant "acme": waiting for the ingest of a.ndjson (pid 101 on ci-1), writing since 2026-12-01T12:00:00.000Z; ' +
      'if that process is dead its lease expires in 20 s and this ingest takes over',
  );
  assert.match(describeLeaseEvent({ kind: 'takeover', previous: current, now: since + 31_000 }), /took over from the ingest of a\.ndjson \(pid 101 on ci-1\).*expired at 2026-12-01T12:00:30\.000Z/);
});

test('exclusive per tenant: a second writer waits, says for whom, and gets the lease once it is released', async () => {
  const clock = new FakeClock();
  const w = twoWriters(clock);
  const la = await w.a.acquireIngestLease('acme', HOLDER_A, { ttlMs: 10_000 });
  const other = await w.b.acquireIngestLease('globex', HOLDER_B, { ttlMs: 10_000 });
  assert.ok(other, 'another tenant is not blocked');
  const events: IngestLeaseEvent[] = [];
  let polls = 0;
  clock.onSleep = () => {
    // The holder keeps renewing while it works, then releases after a few polls.
    if (++polls < 5) la.renew();
    else if (polls === 5) la.release();
  };
  const lb = await w.b.acquireIngestLease('acme', HOLDER_B, { ttlMs: 10_000, onWait: (e) => events.push(e) });
  assert.equal(events.length, 1, 'announced once');
  assert.equal(events[0].kind, 'waiting');
  assert.deepEqual(events[0].kind === 'waiting' && events[0].current.holder, HOLDER_A);
  assert.equal(polls, 5);
  assert.notEqual(lb.token, la.token);
  assert.throws(() => la.renew(), IngestLeaseLostError);
  w.close();
});

test('a holder that stops renewing is taken over after expiry, and is fenced off from writing', async () => {
  const clock = new FakeClock();
  const w = twoWriters(clock);
  const la = await w.a.acquireIngestLease('acme', HOLDER_A, { ttlMs: 1_000 });
  clock.t += 600;
  la.renew(); // heartbeat: now valid until +1600
  clock.t += 900;
  assert.equal(await w.b.acquireIngestLease('acme', HOLDER_B, { ttlMs: 1_000, wait: false }), null, 'renewed lease is still held');
  const events: IngestLeaseEvent[] = [];
  const lb = await w.b.acquireIngestLease('acme', HOLDER_B, { ttlMs: 1_000, onWait: (e) => events.push(e) });
  assert.deepEqual(events.map((e) => e.kind), ['waiting', 'takeover']);
  assert.equal(clock.t, Date.UTC(2026, 11, 1, 12) + 1_600, 'taken over exactly at expiry');

  // The old holder wakes up: its next write transaction aborts before writing anything.
  const write = w.dbA.transaction(() => {
    la.fence();
    w.dbA.prepare("INSERT INTO meta (key, value) VALUES ('written-by-old-holder', '1')").run();
  });
  assert.throws(() => write.immediate(), (err: unknown) => err instanceof IngestLeaseLostError && /to the ingest of b\.ndjson \(pid 202 on ci-2\)/.test(err.message));
  assert.equal(w.dbB.prepare("SELECT count(*) FROM meta WHERE key = 'written-by-old-holder'").pluck().get(), 0);
  assert.throws(() => la.renew(), IngestLeaseLostError);
  la.release(); // must not free the new holder's lease
  assert.equal(await w.a.acquireIngestLease('acme', HOLDER_A, { ttlMs: 1_000, wait: false }), null);
  w.dbB.transaction(() => lb.fence()).immediate();
  w.close();
});

test('an expired lease nobody took over is still the holder\'s: fence extends it', async () => {
  const clock = new FakeClock();
  const w = twoWriters(clock);
  const la = await w.a.acquireIngestLease('acme', HOLDER_A, { ttlMs: 1_000 });
  clock.t += 5_000;
  w.dbA.transaction(() => la.fence()).immediate();
  assert.equal(await w.b.acquireIngestLease('acme', HOLDER_B, { ttlMs: 1_000, wait: false }), null);
  assert.throws(() => la.fence(), /must run inside the write transaction/);
  w.close();
});

test('waiting stops when the signal aborts', async () => {
  const clock = new FakeClock();
  const w = twoWriters(clock);
  const la = await w.a.acquireIngestLease('acme', HOLDER_A, { ttlMs: 60_000 });
  const ac = new AbortController();
  clock.onSleep = () => {
    la.renew();
    ac.abort(new Error('gave up'));
  };
  await assert.rejects(w.b.acquireIngestLease('acme', HOLDER_B, { ttlMs: 60_000, signal: ac.signal }), /gave up/);
  w.close();
});

test('waitCycle follows tenant -> holder -> awaited tenant, and finds only cycles through the caller', () => {
  const holders: Record<string, string> = { x: 'h/1', y: 'h/2', z: 'h/3' };
  const waits: Record<string, string> = { 'h/2': 'z', 'h/3': 'x' };
  const holderOf = (t: string) => holders[t] ?? null;
  const waitingFor = (h: string) => waits[h] ?? null;
  assert.deepEqual(waitCycle('y', 'h/1', holderOf, waitingFor), ['h/2', 'h/3']);
  assert.equal(waitCycle('y', 'h/9', holderOf, waitingFor), null, 'the chain never comes back to h/9');
  assert.equal(waitCycle('free', 'h/1', holderOf, waitingFor), null);
  assert.equal(waitCycle('y', 'h/1', holderOf, (h) => (h === 'h/2' ? 'y' : null)), null, 'a loop among others is not ours');
});

test('two writers each holding a tenant the other waits for: the greater gives up with an error, the other gets both', async () => {
  const clock = new FakeClock();
  const w = twoWriters(clock);
  const ttlMs = 1_000_000_000; // nobody expires here: this is about waiting, not takeover
  const ax = await w.a.acquireIngestLease('x', HOLDER_A, { ttlMs });
  const by = await w.b.acquireIngestLease('y', HOLDER_B, { ttlMs });
  const aWantsY = w.a.acquireIngestLease('y', HOLDER_A, { ttlMs });
  const bWantsX = w.b.acquireIngestLease('x', HOLDER_B, { ttlMs });
  // B ("ci-2/202") is the greater holder: it gives up; its source then ends and releases y.
  await assert.rejects(bWantsX, (err: unknown) => err instanceof IngestLeaseDeadlockError && /waiting for a\.ndjson \(pid 101 on ci-1\) would never end/.test(err.message));
  by.release();
  const ay = await aWantsY;
  assert.equal(ay.tenant, 'y');
  assert.equal(w.dbA.prepare('SELECT count(*) FROM ingest_leases WHERE waiting_for IS NOT NULL').pluck().get(), 0);
  ax.release();
  ay.release();
  w.close();
});
