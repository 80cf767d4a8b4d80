import { after, test } from 'node:test';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { tempDir } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';
import { isBusy, whenUnlocked, untilUnlockedSync, POLICY_BUSY_DEADLINE_MS, type BusyClock } from '../../src/storage/sqlite/busy-retry.js';
import type { AuditRecord } from '../../src/storage/policy-state.js';

/**
 * The SQLite policy state waits for the store's write lock on a timer (busy-retry.ts), never inside
 * SQLite for long: while another connection holds the lock, its writes are pending promises, the
 * event loop runs, and the writes land once the lock is free; past the deadline a decision fails
 * (the caller denies) and an audit row keeps waiting, in order, instead of being dropped.
 */

const tmp = tempDir();
after(() => tmp.cleanup());
let n = 0;

/**
 * A clock whose sleeps pass at once and move time on by at least a second: the deadline is reached
 * in a few attempts (each still waits its short slice inside SQLite) without waiting for it.
 */
function fastClock(): BusyClock & { slept: number } {
  const c = {
    t: 0,
    slept: 0,
    now: () => c.t,
    sleep: (ms: number) => {
      c.t += Math.max(ms, 1000);
      c.slept++;
      return new Promise<void>((r) => setImmediate(r));
    },
  };
  return c;
}

/** A policy state on a fresh store, and a second connection that can hold the file's write lock. */
function store(busyClock?: BusyClock) {
  const dbPath = join(tmp.dir, `busy-${n++}.db`);
  const st = new SqlitePolicyState({ dbPath, auditFile: join(tmp.dir, `audit-${n}.jsonl`), busyClock });
  const holder = new Database(dbPath);
  return { st, holder, dbPath };
}

function record(tool: string): AuditRecord {
  return { ts: new Date(0).toISOString(), session: 's', identity: 'local', tool, args_hash: 'h', decision: 'allow', rule: 'default', latency_ms: 1, upstream: 'ok' };
}

/** Whether `p` has settled after the event loop has had several turns. */
async function settledSoon(p: Promise<unknown>): Promise<boolean> {
  let settled = false;
  p.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  return settled;
}

const busyError = () => Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' });

test('whenUnlocked: retries only "busy", and after the deadline throws the busy error unchanged', { timeout: 60_000 }, async () => {
  const c = fastClock();
  let tries = 0;
  assert.equal(await whenUnlocked(() => (++tries < 5 ? (() => { throw busyError(); })() : 'written'), c), 'written');
  assert.equal(tries, 5);
  const other = new Error('disk I/O error');
  await assert.rejects(whenUnlocked(() => { throw other; }, c), (e) => e === other, 'any other error at once');
  const before = c.now();
  await assert.rejects(whenUnlocked(() => { throw busyError(); }, c), (e) => isBusy(e));
  assert.ok(c.now() - before >= POLICY_BUSY_DEADLINE_MS, 'gave up only after the deadline');
  assert.ok(isBusy({ code: 'SQLITE_BUSY_SNAPSHOT' }) && !isBusy({ code: 'SQLITE_LOCKED' }) && !isBusy(null));
});

test('untilUnlockedSync (opening a store): retries only "busy", pausing each time, and after the deadline throws the busy error unchanged', () => {
  let t = 0;
  const pauses: number[] = [];
  const clock = { now: () => t, sleep: (ms: number) => { pauses.push(ms); t += ms; } };
  let tries = 0;
  assert.equal(untilUnlockedSync(() => (++tries < 4 ? (() => { throw busyError(); })() : 'opened'), clock), 'opened');
  assert.deepEqual([tries, pauses], [4, [2, 4, 8]]);
  const other = new Error('file is not a database');
  assert.throws(() => untilUnlockedSync(() => { throw other; }, clock), (e) => e === other, 'any other error at once');
  const before = t;
  assert.throws(() => untilUnlockedSync(() => { throw busyError(); }, clock), (e) => isBusy(e));
  assert.ok(t - before >= POLICY_BUSY_DEADLINE_MS, 'gave up only after the deadline');
});

test('while another connection holds the write lock, decisions and audit rows wait without stopping the process, then land in order', { timeout: 60_000 }, async () => {
  const { st, holder } = store();
  try {
    holder.exec('BEGIN IMMEDIATE');
    const touched = st.sessionHandles.touch('alice', 'h1', { maxLive: 1, ttlMs: 60_000 });
    const filed = st.approvals.request({ session: 's', identity: 'local', tool: 't', argsHash: 'h', argsPreview: '{}', rule: 'r', timeoutMs: 60_000 });
    const first = st.audit.append(record('first'), true);
    st.audit.append(record('batched'));
    const third = st.audit.append(record('third'), true);
    assert.ok(first instanceof Promise && third instanceof Promise, 'a sync audit row that cannot be written now is a promise');
    // A write that waited inside SQLite would have blocked this turn for 15 s, then thrown.
    assert.equal(await settledSoon(Promise.all([touched, filed, first, third])), false, 'nothing is written while the lock is held');
    holder.exec('COMMIT');
    assert.deepEqual(await touched, { ok: true, fresh: true, live: 1 });
    assert.equal((await filed).state, 'new');
    await Promise.all([first, third]);
    await st.audit.flush();
    const tools = (holder.prepare('SELECT tool FROM policy_audit ORDER BY seq').all() as { tool: string }[]).map((r) => r.tool);
    assert.deepEqual(tools, ['first', 'batched', 'third']);
    assert.equal(st.audit.append(record('after'), true), undefined, 'with the lock free, a sync row is written at once');
  } finally {
    if (holder.inTransaction) holder.exec('ROLLBACK');
    holder.close();
    st.close();
  }
});

test('a lock held past the deadline: the decision fails as busy (callers deny), the audit answers and keeps the row for later', { timeout: 60_000 }, async () => {
  const c = fastClock();
  const { st, holder } = store(c);
  const errors: string[] = [];
  st.audit.onError = (e) => errors.push(e.message);
  try {
    holder.exec('BEGIN IMMEDIATE');
    await assert.rejects(st.sessionHandles.touch('alice', 'h1', { maxLive: 1, ttlMs: 60_000 }), (e) => isBusy(e));
    await assert.rejects(st.approvals.consume('nope'), (e) => isBusy(e));
    const answered = st.audit.append(record('late'), true);
    await answered; // resolves at the deadline although the row is not in
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /write lock has been held by another process for 15 s: 1 audit records are in .*audit-\d+\.jsonl and wait for the table/);
    assert.equal((holder.prepare('SELECT count(*) AS n FROM policy_audit').get() as { n: number }).n, 0);
    st.audit.append(record('later'));
    holder.exec('COMMIT');
    await waitFor(() => (holder.prepare('SELECT count(*) AS n FROM policy_audit').get() as { n: number }).n === 2, 10_000, 10, 'the waiting rows');
    const tools = (holder.prepare('SELECT tool FROM policy_audit ORDER BY seq').all() as { tool: string }[]).map((r) => r.tool);
    assert.deepEqual(tools, ['late', 'later'], 'the late row was kept, and rows after it went in after it');
  } finally {
    if (holder.inTransaction) holder.exec('ROLLBACK');
    holder.close();
    st.close();
  }
});

const tools = (db: Database.Database) => (db.prepare('SELECT tool FROM policy_audit ORDER BY seq').all() as { tool: string }[]).map((r) => r.tool);

test('a row appended after the lock is freed, before the waiting rows are retried, goes in after them', { timeout: 60_000 }, async () => {
  const { st, holder } = store();
  try {
    holder.exec('BEGIN IMMEDIATE');
    const a = st.audit.append(record('A'), true);
    holder.exec('COMMIT');
    // the lock is free now, but A still waits for its retry: B must not go in before it
    const b = st.audit.append(record('B'), true);
    await Promise.all([a, b]);
    assert.deepEqual(tools(holder), ['A', 'B']);
  } finally {
    holder.close();
    st.close();
  }
});

test('a row the table refuses takes no other waiting row with it', { timeout: 60_000 }, async () => {
  const { st, holder } = store();
  const errors: string[] = [];
  st.audit.onError = (e) => errors.push(e.message);
  try {
    st.audit.append(record('ok-1'), true);
    holder.exec('BEGIN IMMEDIATE');
    const waits = [st.audit.append(record('ok-2'), true), st.audit.append(record('ok-3'), true)];
    // a latency that is not a number is stored as NULL, which the column refuses
    waits.push(st.audit.append({ ...record('bad'), latency_ms: Number.NaN }, true), st.audit.append(record('ok-4'), true));
    holder.exec('COMMIT');
    await Promise.all(waits);
    assert.deepEqual(tools(holder), ['ok-1', 'ok-2', 'ok-3', 'ok-4']);
    assert.equal(errors.length, 1, errors.join('\n'));
    assert.match(errors[0]!, /NOT NULL constraint failed: policy_audit\.latency_ms/);
  } finally {
    if (holder.inTransaction) holder.exec('ROLLBACK');
    holder.close();
    st.close();
  }
});

test('closing with rows waiting for the lock: close waits for it and writes them', { timeout: 60_000 }, async () => {
  const dbPath = join(tmp.dir, `busy-${n++}.db`);
  const st = new SqlitePolicyState({ dbPath, auditFile: false });
  const errors: string[] = [];
  st.audit.onError = (e) => errors.push(e.message);
  // Another process holds the lock, and frees it a moment after this one says it is closing.
  const driver = createRequire(import.meta.url).resolve('better-sqlite3');
  const code = `
    const Database = require(${JSON.stringify(driver)});
    const db = new Database(${JSON.stringify(dbPath)});
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    process.stdin.once('data', () => setTimeout(() => { db.exec('COMMIT'); db.close(); process.exit(0); }, 200));
  `;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['pipe', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    const waiting = st.audit.append(record('last'), true);
    assert.ok(waiting instanceof Promise, 'the row waits for the lock');
    // handed to the other process before this one blocks in close()
    await new Promise<void>((resolve, reject) => child.stdin.write('closing\n', (e) => (e ? reject(e) : resolve())));
    st.close();
    await waiting;
    assert.deepEqual(errors, []);
    const db = new Database(dbPath, { readonly: true });
    assert.deepEqual(tools(db), ['last']);
    db.close();
  } finally {
    child.kill();
  }
});
