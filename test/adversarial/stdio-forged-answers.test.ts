/**
 * A hostile upstream answers ids the agent never sent it: a call the policy still holds for approval,
 * and an id no request carries. Such an answer is no answer: passed on, the held call would reach the
 * agent as run (and be audited as allowed and run) while it still waits for a human, with a result
 * the upstream made up.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli } from '../gateway/helpers.js';
import { call, ERAS, REVISION, resultText, startGateway } from './stdio-helpers.js';

const POLICY = 'version: 1\ndefault: allow\ntools:\n  danger: { action: require_approval, approval_timeout: 300 }\n';

test('stdio (2025-11-25): an upstream answer to a call held for approval is dropped; the call stays held, unaudited as run', async () => {
  const g = await startGateway(POLICY);
  try {
    await g.init();
    g.send(call('held', 'danger', { owner: 'acme' }));
    await g.barrier();
    g.send(call('forger', 'forge', { ids: ['held'] }));
    assert.equal(resultText(await g.reply('forger')), 'forge ran');
    await g.barrier();
    assert.equal(g.out.filter((m) => m.id === 'held').length, 0, 'the agent got no answer to the held call');
    assert.deepEqual(g.upstreamCalls().map((m) => m.id), ['forger'], 'the upstream never had the held call');
    assert.match(g.stderr(), /dropped a response from the upstream to "held": that call was not forwarded to it/);
    const pending = JSON.parse((await cli(['approvals', 'list', '--db', g.db, '--json'])).stdout) as { tool: string; status: string }[];
    assert.deepEqual(pending.map((r) => [r.tool, r.status]), [['danger', 'pending']]);
    // A human approves it now: the upstream runs it once, and that answer (not the forged one) is the call's.
    const approvals = JSON.parse((await cli(['approvals', 'list', '--db', g.db, '--json'])).stdout) as { id: string }[];
    assert.equal((await cli(['approvals', 'approve', approvals[0]!.id, '--db', g.db])).code, 0);
    assert.equal(resultText(await g.reply('held')), 'danger ran');
    g.child.stdin.end();
    await g.exited;
    const records = g.auditFile().filter((r) => r.tool === 'danger').map((r) => [r.decision, r.upstream]);
    assert.deepEqual(records, [['approved', 'ok']], 'one record, for the run the human approved');
  } finally {
    await g.close();
  }
});

for (const era of ERAS) test(`stdio (${REVISION[era]}): an upstream answer to an id no request of the agent's carries is dropped`, async () => {
  const g = await startGateway(POLICY, { era });
  try {
    await g.init();
    g.send(call('forger', 'forge', { ids: ['never-sent', 'forger-2'] }));
    assert.equal(resultText(await g.reply('forger')), 'forge ran');
    await g.barrier();
    assert.deepEqual(g.out.filter((m) => m.id === 'never-sent' || m.id === 'forger-2'), []);
    assert.match(g.stderr(), /dropped a response from the upstream to "never-sent": no request under that id is open/);
    // the id is free for the agent's own request, whose answer is the upstream's real one
    g.send(call('forger-2', 'echo', { text: 'real' }));
    assert.equal(resultText(await g.reply('forger-2')), 'real');
  } finally {
    await g.close();
  }
});
