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
