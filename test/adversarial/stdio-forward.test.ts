/**
 * Requests the policy forwards by name (`forward:`) reach the upstream, so each one gets exactly one
 * audit record however it ends: answered, cancelled by the client, the client gone, the gateway
 * stopped. Before, only an answer wrote one, and a cancelled or abandoned read left no trace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERAS, REVISION, startGateway, type Gateway } from './stdio-helpers.js';

const POLICY = 'version: 1\ndefault: allow\nforward: [resources/read]\n';

const read = (id: string, uri: string) => ({ jsonrpc: '2.0', id, method: 'resources/read', params: { uri } });
const cancel = (requestId: string) => ({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId, reason: 'changed my mind' } });

/** [upstream, reason] of every forward record, in the JSONL file and in the table (they must agree). */
async function forwardRecords(g: Gateway): Promise<unknown[][]> {
  const pick = (recs: Record<string, unknown>[]) =>
    recs.filter((r) => r.tool === 'method:resources/read').map((r) => {
      assert.equal(r.decision, 'allow');
      assert.equal(r.rule, 'forward');
      return [r.upstream, r.reason ?? null];
    });
  const file = pick(g.auditFile());
  assert.deepEqual(pick(await g.auditTable()), file, 'the table holds the same records as the file');
  return file;
}

for (const era of ERAS) test(`stdio forward (${REVISION[era]}): a forwarded request is audited once whether answered, cancelled or abandoned by the client`, async () => {
  const g = await startGateway(POLICY, { era });
  try {
    await g.init();
    g.send(read('cancelled', 'slow://300'));
    g.send(cancel('cancelled'));
    g.send(read('answered', 'file:///answered'));
    assert.ok((await g.reply('answered')).result);
    // The upstream answers the cancelled read anyway; that late answer is passed on as before, and it
    // must not write a second record.
    assert.ok((await g.reply('cancelled')).result);
    g.send(read('abandoned', 'slow://60000'));
    await g.barrier();
    g.child.stdin.end(); // the client goes away with the read in flight
    assert.equal((await g.exited).code, 0);
    assert.deepEqual(
      g.upstream().filter((m) => m.method === 'resources/read').map((m) => m.id),
      ['cancelled', 'answered', 'abandoned'],
      'all three reached the upstream',
    );
    assert.deepEqual(await forwardRecords(g), [
      ['cancelled', 'cancelled by the client'],
      ['ok', null],
      ['cancelled', 'client disconnected'],
    ]);
  } finally {
    await g.close();
  }
});

for (const era of ERAS) test(`stdio forward (${REVISION[era]}): a forwarded request in flight at SIGTERM is answered and audited before the gateway exits`, async () => {
  const g = await startGateway(POLICY, { era });
  try {
    await g.init();
    g.send(read('in-flight', 'slow://60000'));
    await g.barrier();
    g.child.kill('SIGTERM');
    assert.equal((await g.exited).code, 0);
    assert.equal((await g.reply('in-flight')).error?.code, -32603);
    assert.deepEqual(await forwardRecords(g), [['cancelled', 'gateway shutting down']]);
  } finally {
    await g.close();
  }
});

for (const era of ERAS) test(`stdio forward (${REVISION[era]}): a forwarded request in flight when the upstream dies is answered and audited as crashed`, async () => {
  const g = await startGateway(POLICY, { era });
  try {
    await g.init();
    g.send(read('fatal', 'exit://'));
    assert.equal((await g.reply('fatal')).error?.code, -32603);
    assert.equal((await g.exited).code, 1);
    assert.deepEqual(await forwardRecords(g), [['crashed', 'upstream closed or crashed before answering']]);
  } finally {
    await g.close();
  }
});
