import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { tempDir } from '../helpers.js';
import { SqlitePolicyState } from '../../src/storage/sqlite/policy-state.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * A waiter whose clock has passed an approval's deadline reads it pending, and another process,
 * whose clock has not, approves it before this one marks it expired. The waiter must be told what
 * the row says (approved), not "expired" beside an approved row. The other process's decision is
 * made between the read and the update by wrapping the waiter's read.
 */
test('an approval decided between the waiter reading it past its deadline and marking it expired: the waiter is told the decision', async () => {
  const dbPath = join(tmp.dir, 'race.db');
  let waiterNow = 1_000_000;
  const waiter = new SqlitePolicyState({ dbPath, auditFile: false, clock: () => waiterNow });
  const approver = new SqlitePolicyState({ dbPath, auditFile: false, clock: () => 1_000_000 });
  try {
    const { row } = await waiter.approvals.request({ session: 's', identity: 'local', tool: 't', argsHash: 'h', argsPreview: '{}', rule: 'r', timeoutMs: 60_000 });
    const approvals = waiter.approvals as unknown as { getNow(id: string): unknown };
    const read = approvals.getNow.bind(approvals);
    let decided: Promise<unknown> | undefined;
    let reads = 0;
    approvals.getNow = (id: string) => {
      const r = read(id);
      // wait() reads the row once to arm its timer, then checks it: the decision lands right after
      // the check's read, which found the row pending past its deadline
      if (++reads === 2) decided = approver.approvals.decide(id, 'approved', 'alice', 'ok');
      return r;
    };
    waiterNow = row.expires_at + 1;
    const outcome = await waiter.approvals.wait(row.id);
    await decided;
    assert.ok(decided, 'the race was staged');
    assert.equal((await waiter.approvals.get(row.id))?.status, 'approved');
    assert.deepEqual(outcome, { status: 'approved', decidedBy: 'alice' });
  } finally {
    waiter.close();
    approver.close();
  }
});
