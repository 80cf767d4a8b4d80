import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RulesService } from '../../src/rules/service.js';
import type { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { call, coarseMismatches, ingest, proc, rollupMismatches, tmpStore, TS0 } from '../analysis/helpers.js';
import type { NetworkCallEvent } from '../../src/domain/types.js';
import { DETECTIONS } from '../helpers.js';

const T = 'thin';
const NOC = 'New-Outbound-Network-Call';

/**
 * One "curl" call in five, spread over the whole table, with timestamps shuffled against insertion
 * order: walking detections_by_process (tenant, process, ts) visits the curl rows in an order
 * unrelated to their ids, i.e. to the table pages they live on.
 */
function events(): NetworkCallEvent[] {
  const evs: NetworkCallEvent[] = [];
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (let i = 0; i < 1500; i++) {
    const ts = TS0 + Math.floor(rnd() * 20 * 86_400_000);
    const run = 100 + (i % 60);
    const repo = ['web', 'api', 'lib'][i % 3]!;
    if (i % 5 === 0) evs.push(call(T, repo, run, ts, proc('curl'), { domain: `api${i % 17}.example.com`, port: 443 }));
    else evs.push(call(T, repo, run, ts, proc(`tool${i % 9}`), { domain: `h${i % 211}.example.org`, port: 443 }));
  }
  return evs;
}

/** Records every statement that writes, with its arguments, to check what a move touches and how. */
function recordWrites(store: SqliteStore): { sql: string; args: unknown[] }[] {
  const seen: { sql: string; args: unknown[] }[] = [];
  const db = store.db;
  const prepare = db.prepare.bind(db);
  db.prepare = ((sql: string) => {
    const st = prepare(sql);
    if (/^\s*(UPDATE|INSERT|DELETE)\b/i.test(sql)) {
      const run = st.run.bind(st);
      st.run = ((...args: unknown[]) => {
        seen.push({ sql, args });
        return run(...(args as []));
      }) as typeof st.run;
    }
    return st;
  }) as typeof db.prepare;
  return seen;
}

/** The statements that rewrite wide detection rows or rollup keys: a status move must need none. */
function wideWrites(writes: { sql: string }[]): string[] {
  return writes
    .map((w) => w.sql)
    .filter((sql) => /^\s*(UPDATE\s+(detections|detection_rollup)\b|INSERT\s+(OR\s+\w+\s+)?INTO\s+(detections|detection_rollup)\b|DELETE\s+FROM\s+(detections|detection_rollup)\b)/i.test(sql));
}

function planOf(store: SqliteStore, w: { sql: string; args: unknown[] }): string {
  return (store.db.prepare(`EXPLAIN QUERY PLAN ${w.sql}`).all(...w.args) as { detail: string }[]).map((r) => r.detail).join('\n');
}

/**
 * The statement that gives matched detections their status rows. `readsRows` false: the index
 * alone decided the match (one dimension, one type), so no detection row is read; true: each
 * candidate from the index is read by id (the candidates are sorted, so each table page is read
 * once), never by walking an index into the table.
 */
function assertStatusRows(store: SqliteStore, writes: { sql: string; args: unknown[] }[], readsRows: boolean): void {
  const ins = writes.filter((w) => /INSERT INTO detection_status\b/.test(w.sql));
  assert.equal(ins.length, 1, ins.map((w) => w.sql).join('\n'));
  const plan = planOf(store, ins[0]!);
  if (readsRows) assert.match(plan, /SEARCH d USING INTEGER PRIMARY KEY \(rowid=\?\)/, plan);
  else assert.doesNotMatch(plan, /\b(SCAN|SEARCH) d\b/, plan);
  assert.doesNotMatch(plan, /detections_by_(process|endpoint)/, plan);
  const cand = writes.filter((w) => /INSERT INTO temp\.rm_rows SELECT id FROM detections INDEXED BY/.test(w.sql));
  assert.equal(cand.length, 1);
  assert.match(planOf(store, cand[0]!), /USING COVERING INDEX detections_by_(process|endpoint)/);
}

function state(store: SqliteStore): string[] {
  return (
    store.db
      .prepare(`SELECT d.id, p.norm_name, d.status, d.rule_id FROM ${DETECTIONS} d JOIN processes p ON p.id = d.process_id ORDER BY d.id`)
      .raw()
      .all() as [number, string, number, number][]
  ).map((r) => r.join('|'));
}

test('a thin process rule writes status rows (decided by the index alone) and held rollup rows, never wide rows or the every-status rollup, exactly the matched rows', async () => {
  const { store, cleanup } = tmpStore();
  try {
    await ingest(store, T, events());
    const before = state(store);
    const curl = before.filter((r) => r.split('|')[1] === 'curl').length;
    assert.ok(curl > 200 && curl * 4 < before.length, 'a thin share of the store');
    const writes = recordWrites(store);
    const svc = new RulesService(store);
    const created = await svc.create(T, { detection_id: NOC, conditions: { process: 'curl' } }, 't');
    assert.equal(created.suppressed, curl);
    assert.deepEqual(wideWrites(writes), []);
    assertStatusRows(store, writes, false);
    // exactly the curl rows moved, to this rule; every other row is untouched
    const after = state(store);
    const id = store.db.prepare('SELECT id FROM rules WHERE rule_uid = ?').pluck().get(created.rule.rule_id) as number;
    for (let i = 0; i < before.length; i++) {
      const [rowId, name, status, rule] = before[i]!.split('|');
      const expected = name === 'curl' ? [rowId, name, '1', String(id)] : [rowId, name, status, rule];
      assert.equal(after[i], expected.join('|'));
    }
    assert.equal(rollupMismatches(store), 0);
    assert.equal(coarseMismatches(store), 0);
    writes.length = 0;
    const restored = await svc.delete(T, created.rule.rule_id, { restore: true }, 't');
    assert.equal(restored.restored, curl);
    assert.deepEqual(wideWrites(writes), []);
    assert.deepEqual(state(store), before);
    assert.equal(rollupMismatches(store), 0);
    assert.equal(coarseMismatches(store), 0);
  } finally {
    cleanup();
  }
});

test('a thin endpoint rule takes the same path and moves exactly its rows', async () => {
  const { store, cleanup } = tmpStore();
  try {
    await ingest(store, T, events());
    const before = state(store);
    const writes = recordWrites(store);
    const svc = new RulesService(store);
    const created = await svc.create(T, { detection_id: NOC, conditions: { endpoint: 'api3.example.com:443' } }, 't');
    assert.ok(created.suppressed > 0);
    assert.deepEqual(wideWrites(writes), []);
    assertStatusRows(store, writes, false);
    const moved = state(store).filter((r, i) => r !== before[i]);
    assert.equal(moved.length, created.suppressed);
    assert.equal(rollupMismatches(store), 0);
    assert.equal(coarseMismatches(store), 0);
    await svc.delete(T, created.rule.rule_id, { restore: true }, 't');
    assert.deepEqual(state(store), before);
  } finally {
    cleanup();
  }
});

test('a thin rule on two dimensions reads each candidate row once, by id, and moves exactly its rows', async () => {
  const { store, cleanup } = tmpStore();
  try {
    await ingest(store, T, events());
    const before = state(store);
    const writes = recordWrites(store);
    const svc = new RulesService(store);
    const created = await svc.create(T, { detection_id: NOC, conditions: { process: 'curl', endpoint: 'api3.example.com:443' } }, 't');
    assert.ok(created.suppressed > 0);
    assert.deepEqual(wideWrites(writes), []);
    assertStatusRows(store, writes, true);
    const moved = state(store).filter((r, i) => r !== before[i]);
    assert.equal(moved.length, created.suppressed);
    assert.equal(rollupMismatches(store), 0);
    await svc.delete(T, created.rule.rule_id, { restore: true }, 't');
    assert.deepEqual(state(store), before);
    assert.equal(rollupMismatches(store), 0);
  } finally {
    cleanup();
  }
});
