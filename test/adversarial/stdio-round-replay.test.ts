/**
 * 2026-07-28: a call a human approved whose tool then asks the client a question. The gateway's
 * state for the retry lets exactly one retry run: sent again, with the same or other answers, it
 * is denied, so one approval never runs the tool twice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli } from '../gateway/helpers.js';
import { resultText, startGateway, type Msg } from './stdio-helpers.js';

const POLICY = 'version: 1\ndefault: allow\ntools:\n  ask_round: { action: require_approval, approval_timeout: 120 }\n';

const retry = (id: string, state: unknown, value: string) => ({
  jsonrpc: '2.0', id, method: 'tools/call',
  params: { name: 'ask_round', arguments: { q: 1 }, requestState: state, inputResponses: { value: { action: 'accept', content: { value } } } },
});

test('stdio (2026-07-28): the state relayed for an approved call\'s next round is spent by its first retry; a replay is denied and never runs', async () => {
  const g = await startGateway(POLICY, { era: 'modern', capabilities: { elicitation: { form: {} } } });
  try {
    await g.init();
    g.send({ jsonrpc: '2.0', id: 'first', method: 'tools/call', params: { name: 'ask_round', arguments: { q: 1 } } });
    await g.barrier();
    const held = JSON.parse((await cli(['approvals', 'list', '--db', g.db, '--json'])).stdout) as { id: string; tool: string }[];
    assert.deepEqual(held.map((r) => r.tool), ['ask_round']);
    assert.equal((await cli(['approvals', 'approve', held[0]!.id, '--db', g.db])).code, 0);
    const asked = (await g.reply('first')).result as Msg & { resultType?: string; requestState?: string };
    assert.equal(asked.resultType, 'input_required', JSON.stringify(asked));
    assert.notEqual(asked.requestState, 'recorder-state', 'the upstream\'s state travels inside the gateway\'s');

    g.send(retry('once', asked.requestState, 'one'));
    assert.equal(resultText(await g.reply('once')), 'ran with {"value":"one"}');
    for (const [id, value] of [['again', 'one'], ['other', 'rm -rf']] as const) {
      g.send(retry(id, asked.requestState, value));
      const replay = await g.reply(id);
      assert.match(JSON.stringify(replay), /already used/, `${id}: ${JSON.stringify(replay)}`);
    }
    assert.equal(g.upstreamCalls().filter((m) => m.params?.name === 'ask_round').length, 2, 'the first round and its one retry, nothing more');
    const rows = JSON.parse((await cli(['approvals', 'list', '--all', '--db', g.db, '--json'])).stdout) as { status: string; decided_by: string; session: string }[];
    assert.deepEqual(rows.map((r) => `${r.status}:${r.decided_by.replace(/^cli:.*/, 'cli')}`).sort(), ['consumed:cli', 'consumed:gateway']);
    assert.match(rows.find((r) => r.decided_by === 'gateway')!.session, new RegExp(`^round of ${held[0]!.id} `));
  } finally {
    await g.close();
  }
});
