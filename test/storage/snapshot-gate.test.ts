import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapshotGate } from '../../src/storage/postgres/snapshot-gate.js';

/** A task that stays open until released, recording how many ran at once. */
function tasks(gate: SnapshotGate, n: number) {
  let open = 0;
  let peak = 0;
  const started: number[] = [];
  const release: (() => void)[] = [];
  const done = Array.from({ length: n }, (_, i) =>
    gate.run(async () => {
      open++;
      peak = Math.max(peak, open);
      started.push(i);
      await new Promise<void>((r) => (release[i] = r));
      open--;
      if (i === 1) throw new Error('task 1 fails');
      return i;
    }),
  );
  return { done, started, release, peak: () => peak };
}

const settle = () => new Promise((r) => setImmediate(r));

test('a snapshot gate keeps at most its limit open, starts waiters in order, and frees a slot when a task throws', async () => {
  const gate = new SnapshotGate(2);
  const t = tasks(gate, 5);
  await settle();
  assert.deepEqual(t.started, [0, 1]);
  t.release[1]!(); // the failing one: its slot must still be handed on
  await assert.rejects(t.done[1]!, /task 1 fails/);
  await settle();
  assert.deepEqual(t.started, [0, 1, 2]);
  t.release[0]!();
  await settle();
  assert.deepEqual(t.started, [0, 1, 2, 3]);
  for (const i of [2, 3]) t.release[i]!();
  await settle();
  t.release[4]!();
  assert.deepEqual(await Promise.all([t.done[0], t.done[2], t.done[3], t.done[4]]), [0, 2, 3, 4]);
  assert.equal(t.peak(), 2);
  // every slot came back: two new tasks start at once
  const again = tasks(gate, 2);
  await settle();
  assert.deepEqual(again.started, [0, 1]);
  again.release[0]!();
  again.release[1]!();
  await Promise.allSettled(again.done);
});

test('a pool of n connections lets n/2 snapshots open, at least one', () => {
  assert.equal(SnapshotGate.forPool(10).limit, 5);
  assert.equal(SnapshotGate.forPool(3).limit, 1);
  assert.equal(SnapshotGate.forPool(1).limit, 1);
  assert.throws(() => new SnapshotGate(0), /whole number >= 1/);
});
