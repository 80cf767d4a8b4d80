import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { untilAborted } from '../../src/ingest/pipeline.js';

/**
 * The ingest's abortable read of batches (the CLI aborts it on SIGINT / SIGTERM) must not keep the
 * batches it handed on: an earlier version raced one long-lived abort promise against each read, and
 * every batch stayed reachable from it until the ingest ended (974 MiB peak RSS on 5M events).
 */

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

test('batches already handed on can be collected while the read goes on', async () => {
  const refs: WeakRef<object>[] = [];
  async function* batches(): AsyncGenerator<{ rows: number[] }> {
    for (let i = 0; ; i++) {
      const b = { rows: new Array<number>(10_000).fill(i) };
      refs.push(new WeakRef(b));
      yield b;
    }
  }
  const stop = new AbortController();
  const it = untilAborted(batches(), stop.signal);
  for (let i = 0; i < 20; i++) assert.equal((await it.next()).done, false);
  // let the reads' promise jobs settle, then collect: only the batch in hand may stay
  await new Promise((r) => setImmediate(r));
  gc();
  const alive = refs.slice(0, -2).filter((r) => r.deref() !== undefined).length;
  assert.equal(alive, 0, `${alive} of the batches handed on are still reachable`);
  stop.abort(new Error('stopped'));
  await assert.rejects(it.next(), /stopped/);
});
