/**
 * 2026-07-28: an approval question ends its call at once and gives its rate-limit unit back, so an
 * agent that never answers could leave any number of approvals pending (600 in a review), past what
 * `approvals list` shows. One identity may leave MAX_PENDING_QUESTIONS pending; past that its calls
 * are denied, and audited, until a person decides some or they expire.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli } from '../gateway/helpers.js';
import { MAX_PENDING_QUESTIONS } from '../../src/gateway/proxy.js';
import { resultText, startGateway, type Msg } from './stdio-helpers.js';

const POLICY = `version: 1
default: allow
tools:
  write_thing:
    action: require_approval
    approval_timeout: 600
    approval_elicitation: true
    rate_limit: { max: 3, window: 3600, scope: client }
`;

test('stdio (2026-07-28): approval questions nobody answers stop at the per-identity cap; the calls past it are denied and audited', async () => {
  const g = await startGateway(POLICY, { era: 'modern', capabilities: { elicitation: { form: {} } } });
  try {
    await g.init();
    const n = MAX_PENDING_QUESTIONS + 2;
    for (let i = 0; i < n; i++) {
      g.send({ jsonrpc: '2.0', id: `q${i}`, method: 'tools/call', params: { name: 'write_thing', arguments: { owner: `o${i}` } } });
      const reply = await g.reply(`q${i}`);
      const r = reply.result as Msg & { resultType?: string };
      if (i < MAX_PENDING_QUESTIONS) assert.equal(r.resultType, 'input_required', `call ${i}: ${JSON.stringify(r)}`);
      else assert.match(resultText(reply), new RegExp(`^\\[POLICY DENIED\\] ${MAX_PENDING_QUESTIONS} approvals of \\S+ are already pending \\(at most ${MAX_PENDING_QUESTIONS}\\)`), `call ${i}`);
    }
    const pending = JSON.parse((await cli(['approvals', 'list', '--db', g.db, '--json'])).stdout) as unknown[];
    assert.equal(pending.length, MAX_PENDING_QUESTIONS);
    const audit = (await cli(['audit', '--db', g.db, '--jsonl'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { decision: string; reason: string });
    assert.equal(audit.filter((a) => a.decision === 'deny' && /already pending/.test(a.reason)).length, 2);
    assert.equal(g.upstreamCalls().filter((m) => m.params?.name === 'write_thing').length, 0, 'nothing ran');
  } finally {
    await g.close();
  }
});

test('stdio (2025-11-25): held calls stop at the same per-identity cap of pending approvals; the calls past it are denied at once, not held', async () => {
  // no rate limit: a held call stays held, each one waited on until a person decides or it expires
  const g = await startGateway(POLICY.replace('    rate_limit: { max: 3, window: 3600, scope: client }\n', ''), { era: 'legacy' });
  try {
    await g.init();
    for (let i = 0; i < MAX_PENDING_QUESTIONS; i++) {
      g.send({ jsonrpc: '2.0', id: `h${i}`, method: 'tools/call', params: { name: 'write_thing', arguments: { owner: `o${i}` } } });
    }
    await g.barrier();
    // held calls file their approvals as they come: all of them are pending before the next is decided
    const { waitFor } = await import('../helpers/wait.js');
    await waitFor(async () => ((JSON.parse((await cli(['approvals', 'list', '--db', g.db, '--json'])).stdout) as unknown[]).length === MAX_PENDING_QUESTIONS ? true : undefined), 20_000, 50, 'the approvals to be filed');
    g.send({ jsonrpc: '2.0', id: 'past', method: 'tools/call', params: { name: 'write_thing', arguments: { owner: 'one-more' } } });
    assert.match(resultText(await g.reply('past')), new RegExp(`^\\[POLICY DENIED\\] ${MAX_PENDING_QUESTIONS} approvals of \\S+ are already pending \\(at most ${MAX_PENDING_QUESTIONS}\\)`));
    assert.equal(g.upstreamCalls().filter((m) => m.params?.name === 'write_thing').length, 0, 'nothing ran');
  } finally {
    await g.close();
  }
});
