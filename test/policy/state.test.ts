import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqlitePolicyState as PolicyState } from '../../src/storage/sqlite/policy-state.js';
import type { ApprovalBinding } from '../../src/storage/policy-state.js';
import { hashArgs } from '../../src/policy/canonical.js';

function tmp() {
  const dir = mkdtempSync(join(tmpdir(), 'policy-state-'));
  return { dir, db: join(dir, 'state.db'), done: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Starts well after the real clock so stores on the real clock never see its rows as stale. */
function fakeClock(start = Date.now() + 10 * 86_400_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const binding = (over: Partial<ApprovalBinding> = {}) => ({
  session: 's1', identity: 'alice', tool: 'write', argsHash: 'h1', argsPreview: '{"a":1}', rule: 'tools.write', timeoutMs: 60_000, ...over,
});

test('approvals bind session + tool + args, are single-use, and survive reopening the DB', async () => {
  const t = tmp();
  try {
    let st = new PolicyState({ dbPath: t.db });
    const a = await st.approvals.request(binding());
    assert.equal(a.state, 'new');
    // The identical call attaches to the same pending approval; a different session or args do not.
    assert.equal((await st.approvals.request(binding())).row.id, a.row.id);
    assert.notEqual((await st.approvals.request(binding({ session: 's2' }))).row.id, a.row.id);
    assert.notEqual((await st.approvals.request(binding({ argsHash: 'h2' }))).row.id, a.row.id);
    const key = st.hashKey;
    st.close();

    st = new PolicyState({ dbPath: t.db }); // "restart"
    assert.deepEqual(st.hashKey, key, 'the argument-hash key persists');
    assert.ok((await st.approvals.list()).some((r) => r.id === a.row.id && r.status === 'pending'));
    await st.approvals.decide(a.row.id, 'approved', 'cli:test');
    await assert.rejects(st.approvals.decide(a.row.id, 'denied', 'cli:test'), /approved, not pending/);
    const again = await st.approvals.request(binding());
    assert.equal(again.state, 'approved');
    assert.ok(await st.approvals.consume(again.row.id));
    assert.ok(!(await st.approvals.consume(again.row.id)), 'an approval lets exactly one call through');
    assert.equal((await st.approvals.request(binding())).state, 'new');
    st.close();
  } finally {
    t.done();
  }
});

test('approval wait resolves on a decision from another connection, and expires', async () => {
  const t = tmp();
  try {
    const st = new PolicyState({ dbPath: t.db });
    const other = new PolicyState({ dbPath: t.db }); // stands in for the CLI process
    const clock = fakeClock();
    const clocked = new PolicyState({ dbPath: t.db, clock: clock.now });
    const a = await st.approvals.request(binding());
    const w = st.approvals.wait(a.row.id);
    await other.approvals.decide(a.row.id, 'denied', 'cli:bob', 'not today');
    const o = await w;
    assert.equal(o.status, 'denied');
    assert.equal(o.reason, 'not today');

    const b = await clocked.approvals.request(binding({ argsHash: 'h3', timeoutMs: 60_000 }));
    const wb = clocked.approvals.wait(b.row.id);
    let settled = false;
    void wb.then(() => (settled = true));
    clock.advance(59_999);
    await clocked.approvals.list(); // runs the expiry sweep at the injected time
    assert.equal((await clocked.approvals.get(b.row.id))!.status, 'pending', 'still pending 1 ms before its deadline');
    assert.equal(settled, false);
    clock.advance(1);
    assert.equal((await wb).status, 'expired');
    assert.equal((await st.approvals.get(b.row.id))!.status, 'expired');
    await assert.rejects(other.approvals.decide(b.row.id, 'approved', 'late'), /expired/);

    const c = await st.approvals.request(binding({ argsHash: 'h4' }));
    const ac = new AbortController();
    const wc = st.approvals.wait(c.row.id, ac.signal);
    ac.abort();
    assert.equal((await wc).status, 'cancelled');
    st.close();
    other.close();
    clocked.close();
  } finally {
    t.done();
  }
});

test('audit goes to the table and the JSONL file; argument values are keyed hashes', async () => {
  const t = tmp();
  try {
    const st = new PolicyState({ dbPath: t.db });
    const h = hashArgs(st.hashKey, { password: 'hunter2' });
    assert.equal(h, hashArgs(st.hashKey, { password: 'hunter2' }));
    assert.notEqual(h, hashArgs(Buffer.alloc(32), { password: 'hunter2' }), 'hash depends on the install key');
    st.audit.append({ ts: new Date().toISOString(), session: 's', identity: 'i', tool: 'secret_tool', args_hash: h, decision: 'deny', rule: 'r', latency_ms: 0.1, upstream: 'not_forwarded' });
    st.audit.append({ ts: new Date().toISOString(), session: 's', identity: 'i', tool: 'echo', args_hash: 'x', args: { text: 'shown' }, decision: 'allow', rule: 'r', latency_ms: 0.1, upstream: 'ok' });
    st.audit.flush();
    const rows = st.audit.query({ decision: 'deny' });
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.tool, 'secret_tool');
    assert.equal(st.audit.query({ tool: 'echo' })[0]!.args!.toString(), { text: 'shown' }.toString());
    const file = readFileSync(join(t.dir, 'policy-audit.jsonl'), 'utf8');
    assert.equal(file.trim().split('\n').length, 2);
    assert.ok(!file.includes('hunter2'));
    st.close();
  } finally {
    t.done();
  }
});
