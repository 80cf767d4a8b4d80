import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ERAS, REVISION, call, resultText, startGateway, type Era } from './stdio-helpers.js';

const N = 40;

async function answeredThenSignalled(policy: string, signal: NodeJS.Signals, era: Era) {
  const g = await startGateway(policy, { era });
  try {
    await g.init();
    // Signal in the same tick as the last answer arrives (this listener runs after the helper's parser).
    const last = N + 1;
    g.child.stdout.on('data', () => {
      if (g.out.filter((m) => m.method === undefined && m.id !== 'init').length === last && g.child.signalCode === null) g.child.kill(signal);
    });
    for (let i = 0; i < N; i++) g.send(call(i, 'echo', { text: `n${i}` }));
    g.send(call('denied', 'danger', {}));
    const exit = await g.exited;
    for (let i = 0; i < N; i++) assert.equal(resultText(await g.reply(i)), `n${i}`);
    assert.match(resultText(await g.reply('denied')), /^\[POLICY DENIED\]/);
    const file = g.auditFile();
    const table = await g.auditTable();
    return { exit, file, table };
  } finally {
    await g.close();
  }
}

const BASE = `version: 1
tools:
  danger: { action: deny, reason: "no" }
`;

for (const era of ERAS) for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  test(`stdio signals (${REVISION[era]}): ${signal} right after the answers: every answered call is in the JSONL file and the table`, async () => {
    const { exit, file, table } = await answeredThenSignalled(BASE, signal, era);
    assert.deepEqual(exit, { code: 0, signal: null }, 'the gateway ends cleanly instead of dying on the signal');
    for (const recs of [file, table]) {
      assert.equal(recs.filter((r) => r.tool === 'echo' && r.decision === 'allow' && r.upstream === 'ok').length, N);
      assert.equal(recs.filter((r) => r.tool === 'danger' && r.decision === 'deny').length, 1);
    }
  });
}

for (const era of ERAS) test(`stdio signals (${REVISION[era]}): with audit.sync false, records are batched but a SIGTERM still flushes them`, async () => {
  const { exit, file, table } = await answeredThenSignalled(`${BASE}audit: { sync: false }\n`, 'SIGTERM', era);
  assert.equal(exit.code, 0);
  assert.equal(file.filter((r) => r.tool === 'echo').length, N);
  assert.equal(table.filter((r) => r.tool === 'echo').length, N);
});

for (const era of ERAS) test(`stdio audit.sync (the default, ${REVISION[era]}): the record is written before the answer, so even SIGKILL loses nothing answered`, async () => {
  const { exit, file, table } = await answeredThenSignalled(BASE, 'SIGKILL', era);
  assert.equal(exit.signal, 'SIGKILL');
  assert.equal(file.filter((r) => r.tool === 'echo').length, N);
  assert.equal(table.filter((r) => r.tool === 'echo').length, N);
});
