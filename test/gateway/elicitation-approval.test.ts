import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cli, stdioGatewayClient, text, tmpDir, waitFor } from './helpers.js';

// The client that asked for a held call is the client that answers an elicitation: an agent whose
// client answers automatically would approve its own call. So elicitation approval is opt-in per tool.
test('an auto-answering client cannot approve its own held call unless the policy opts that tool in', async () => {
  const t = tmpDir();
  const policy = t.file(
    'p.yaml',
    `version: 1
tools:
  write_thing: { action: require_approval, approval_timeout: 60 }
  add:
    action: allow
    when:
      - { path: args.a, op: gt, value: 100, action: require_approval, approval_elicitation: true }
`,
  );
  const asked: string[] = [];
  const g = await stdioGatewayClient(policy, t.db, { capabilities: { elicitation: { form: {} } } });
  g.client.setRequestHandler('elicitation/create', async (req) => {
    asked.push(req.params.message);
    return { action: 'accept', content: { approve: true } };
  });
  try {
    // Not opted in: the self-answering client is never asked; the call waits for a human outside it.
    const held = g.client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } }, { timeout: 60_000 });
    const row = await waitFor(async () => {
      const r = await cli(['approvals', 'list', '--db', t.db, '--json']);
      return (JSON.parse(r.stdout) as { id: string; tool: string }[]).find((x) => x.tool === 'write_thing');
    });
    assert.deepEqual(asked, [], 'no elicitation for a tool that did not opt in');
    // a reason too long to show decides nothing: the call is still held for the deny below
    const tooLong = await cli(['approvals', 'deny', row.id, '--db', t.db, '--reason', 'n'.repeat(2_001)]);
    assert.equal(tooLong.code, 2, tooLong.stderr);
    assert.match(tooLong.stderr, /--reason: reason is 2001 characters long; at most 2000/);
    const denied = await cli(['approvals', 'deny', row.id, '--db', t.db, '--reason', 'human said no']);
    assert.equal(denied.code, 0, denied.stderr);
    const r = await held;
    assert.equal(r.isError, true);
    assert.match(text(r), /denied by cli:\S+: human said no/);
    assert.deepEqual(asked, []);

    // Opted in (on the condition): the client's answer decides, as the policy asked.
    assert.equal(text(await g.client.callTool({ name: 'add', arguments: { a: 101, b: 1 } })), '102');
    assert.equal(asked.length, 1);
    assert.match(asked[0]!, /Policy requires approval for tool "add"/);
    const rows = JSON.parse((await cli(['approvals', 'list', '--db', t.db, '--json', '--all'])).stdout) as { tool: string; decided_by: string }[];
    assert.equal(rows.find((x) => x.tool === 'add')?.decided_by, 'elicitation', 'the audit trail says who approved');
  } finally {
    await g.client.close();
    t.cleanup();
  }
});

// 2026-07-28: the held call comes back as `input_required`; the SDK client asks its user (its
// elicitation handler) and retries with the answer and the gateway's signed requestState.
test('2026-07-28: approval over a multi-round-trip request; the upstream\'s own question is relayed inside the gateway\'s state', async () => {
  const t = tmpDir();
  const policy = t.file(
    'p.yaml',
    `version: 1
tools:
  write_thing: { action: require_approval, approval_timeout: 60, approval_elicitation: true }
  ask: { action: require_approval, approval_timeout: 60, approval_elicitation: true }
`,
  );
  const asked: string[] = [];
  const g = await stdioGatewayClient(policy, t.db, { era: 'modern', capabilities: { elicitation: { form: {} } } });
  g.client.setRequestHandler('elicitation/create', async (req): Promise<{ action: 'accept'; content: Record<string, string | boolean> }> => {
    asked.push(req.params.message);
    if (req.params.message.includes('Policy requires approval')) {
      const approve = !req.params.message.includes('"owner":"no"');
      return { action: 'accept', content: { approve, reason: approve ? 'fine' : 'nope' } };
    }
    return { action: 'accept', content: { value: 'v42' } };
  });
  try {
    assert.equal(g.client.getNegotiatedProtocolVersion(), '2026-07-28');
    assert.equal(text(await g.client.callTool({ name: 'write_thing', arguments: { owner: 'yes' } })), 'write_thing ok {"owner":"yes"}');
    assert.equal(asked.length, 1);
    assert.match(asked[0]!, /Policy requires approval for tool "write_thing"/);
    const no = await g.client.callTool({ name: 'write_thing', arguments: { owner: 'no' } });
    assert.match(text(no), /^\[POLICY DENIED\] approval apr_\w+ was denied by elicitation: nope/);
    // Approval first, then the upstream asks its own question: its requestState comes back to it intact.
    assert.equal(text(await g.client.callTool({ name: 'ask', arguments: {} })), 'got accept:v42 state=fixture-state-1');
    assert.deepEqual(asked.slice(2).map((m) => m.slice(0, 30)), ['Policy requires approval for t', 'Say something']);
    const rows = JSON.parse((await cli(['approvals', 'list', '--db', t.db, '--json', '--all'])).stdout) as { tool: string; status: string; decided_by: string }[];
    assert.deepEqual(rows.map((r) => `${r.tool}:${r.status}:${r.decided_by}`).sort(), ['ask:consumed:elicitation', 'ask:consumed:gateway', 'write_thing:consumed:elicitation', 'write_thing:denied:elicitation']);
    const audit = (await cli(['audit', '--db', t.db, '--jsonl'])).stdout.trim().split('\n').map((l) => JSON.parse(l) as { tool: string; decision: string; upstream: string });
    assert.deepEqual(audit.map((r) => `${r.tool}:${r.decision}:${r.upstream}`), [
      'write_thing:approval_requested:not_forwarded', 'write_thing:approved:ok',
      'write_thing:approval_requested:not_forwarded', 'write_thing:approval_denied:not_forwarded',
      'ask:approval_requested:not_forwarded', 'ask:approved:ok', 'ask:approved:ok',
    ]);
  } finally {
    await g.client.close();
    t.cleanup();
  }
});

test('2026-07-28 client without the elicitation capability: not asked (never -32021); the call waits for a human elsewhere', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\ntools:\n  write_thing: { action: require_approval, approval_timeout: 60, approval_elicitation: true }\n');
  const g = await stdioGatewayClient(policy, t.db, { era: 'modern' });
  try {
    const held = g.client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } }, { timeout: 60_000 });
    const row = await waitFor(async () => {
      const r = await cli(['approvals', 'list', '--db', t.db, '--json']);
      return (JSON.parse(r.stdout) as { id: string; tool: string }[]).find((x) => x.tool === 'write_thing');
    });
    const ok = await cli(['approvals', 'approve', row.id, '--db', t.db]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(text(await held), 'write_thing ok {"owner":"acme"}');
  } finally {
    await g.client.close();
    t.cleanup();
  }
});
