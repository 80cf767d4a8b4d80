import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { CLI, ERAS, REVISION, cli, newClient, text, tmpDir, waitFor, type Era } from './helpers.js';

/**
 * The stdio gateway in front of an upstream that speaks ONE revision, for each revision of the client: the
 * gateway finds out on its one child which revision that is and translates, and the policy still holds.
 */

const ONE_REVISION = fileURLToPath(new URL('./fixtures/one-revision-server.js', import.meta.url));
const DENIED = /^\[POLICY DENIED\] /;
const env = () => Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));

async function through(policy: string, db: string, client: Era, upstream: Era, capabilities: Record<string, unknown> = {}, extraArgs: string[] = []) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'gateway', '--policy', policy, '--db', db, ...extraArgs, '--', process.execPath, ONE_REVISION, upstream],
    env: env(),
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => void (stderr += d.toString()));
  const c = newClient(client, capabilities);
  try {
    await c.connect(transport);
  } catch (e) {
    throw new Error(`connect failed: ${(e as Error).message}\ngateway stderr:\n${stderr}`);
  }
  return { client: c, stderr: () => stderr };
}

const POLICY = `version: 1
default: allow
hide: [delete_thing]
tools:
  write_thing: { action: deny, reason: "no writes here" }
`;

for (const down of ERAS) {
  for (const up of ERAS) {
    test(`stdio gateway: a ${REVISION[down]} client through a ${REVISION[up]}-only upstream, policy enforced`, async () => {
      const t = tmpDir('gw-era-');
      const policy = t.file('p.yaml', POLICY);
      const { client, stderr } = await through(policy, t.db, down, up);
      try {
        assert.equal(client.getNegotiatedProtocolVersion(), REVISION[down]);
        // What the client learnt at connect (initialize or server/discover) is the upstream's own.
        assert.equal(client.getServerVersion()?.name, `${up}-only-upstream`);
        const names = (await client.listTools()).tools.map((x) => x.name).sort();
        assert.deepEqual(names, ['ask', 'echo', 'grow', 'methods', 'stats', 'work', 'write_thing'], 'the hidden tool is not listed');
        assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } })), `${up}-only-upstream: hi`);
        const denied = await client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } });
        assert.equal(denied.isError, true);
        assert.equal(text(denied), '[POLICY DENIED] no writes here');
        const hidden = await client.callTool({ name: 'delete_thing', arguments: { id: 'x' } });
        assert.equal(hidden.isError, true);
        assert.match(text(hidden), DENIED);
        // Nothing denied reached the upstream.
        assert.deepEqual(JSON.parse(text(await client.callTool({ name: 'stats', arguments: {} }))), { echo: 1 });
        // The gateway says when it translates (stderr is another pipe: polled, not assumed to be there yet).
        if (down !== up) await waitFor(() => /translating/.test(stderr()) || undefined, 10_000, 25, 'the translating line on stderr');
        else assert.doesNotMatch(stderr(), /translating/);
      } finally {
        await client.close();
      }
      const audit = await cli(['audit', '--db', t.db, '--jsonl']);
      assert.equal(audit.code, 0, audit.stderr);
      const recs = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
      assert.deepEqual(recs.filter((r) => r.tool === 'write_thing').map((r) => [r.decision, r.upstream]), [['deny', 'not_forwarded']]);
      assert.deepEqual(recs.filter((r) => r.tool === 'echo').map((r) => [r.decision, r.upstream]), [['allow', 'ok']]);
      t.cleanup();
    });
  }
}

test('stdio gateway: a 2026-07-28 client approves a held call over MRTR, then answers the 2025-only upstream\'s own elicitation through the translation', async () => {
  const t = tmpDir('gw-era-');
  const policy = t.file(
    'p.yaml',
    `version: 1
default: allow
tools:
  write_thing: { action: require_approval, approval_timeout: 60, approval_elicitation: true }
`,
  );
  const { client } = await through(policy, t.db, 'modern', 'legacy', { elicitation: { form: {} } });
  const asked: string[] = [];
  client.setRequestHandler('elicitation/create', async (req) => {
    const message = (req.params as { message: string }).message;
    asked.push(message);
    if (message.startsWith('Policy requires approval')) return { action: 'accept', content: { approve: true } } as never;
    return { action: 'accept', content: { colour: 'blue' } } as never;
  });
  try {
    // The gateway's own question (approval) over input_required, then the call reaches the translated upstream.
    assert.equal(text(await client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } })), 'wrote for acme');
    assert.equal(asked.length, 1);
    assert.match(asked[0]!, /^Policy requires approval for tool "write_thing"/);
    // The 2025 upstream pushes elicitation/create mid-call: the 2026 client gets it as input_required and
    // its retry's answer goes up as the answer to the push.
    assert.equal(text(await client.callTool({ name: 'ask', arguments: {} })), 'accept: blue');
    assert.deepEqual(asked.slice(1), ['Which colour?']);
    assert.deepEqual(JSON.parse(text(await client.callTool({ name: 'stats', arguments: {} }))), { write_thing: 1, ask: 1 });
  } finally {
    await client.close();
  }
  const audit = await cli(['audit', '--db', t.db, '--jsonl']);
  const recs = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  // the round that asked is audited, and so is the retry that answered
  assert.deepEqual(recs.filter((r) => r.tool === 'write_thing').map((r) => [r.decision, r.upstream]), [['approval_requested', 'not_forwarded'], ['approved', 'ok']]);
  const [question, approved] = recs.filter((r) => r.tool === 'write_thing');
  assert.equal(question!.approval_id, approved!.approval_id, 'both records name the one approval');
  assert.match(String(question!.reason), /^asked the client to approve apr_\w+; the retry that answers is audited with its outcome$/);
  t.cleanup();
});

test('stdio gateway --upstream-revision: a known revision is not asked for; a wrong one fails closed with the reason', async () => {
  const t = tmpDir('gw-era-');
  const policy = t.file('p.yaml', POLICY);
  const known = await through(policy, t.db, 'modern', 'legacy', {}, ['--upstream-revision', '2025-11-25']);
  try {
    assert.equal(text(await known.client.callTool({ name: 'echo', arguments: { text: 'hi' } })), 'legacy-only-upstream: hi');
    // The child was opened with initialize straight away: no server/discover was tried on it.
    const methods = JSON.parse(text(await known.client.callTool({ name: 'methods', arguments: {} }))) as string[];
    assert.deepEqual(methods.slice(0, 2), ['initialize', 'tools/call']);
    assert.ok(!methods.includes('server/discover'));
  } finally {
    await known.client.close();
  }
  // auto (the default) asks first: the same pair shows the question.
  const auto = await through(policy, t.db, 'modern', 'legacy', {}, ['--upstream-revision', 'auto']);
  try {
    const methods = JSON.parse(text(await auto.client.callTool({ name: 'methods', arguments: {} }))) as string[];
    assert.deepEqual(methods.slice(0, 2), ['server/discover', 'initialize']);
  } finally {
    await auto.client.close();
  }
  // Set wrong: the translation's initialize is refused by a 2026-only child; the agent's request is answered
  // with the reason, not forwarded.
  const wrong = spawn(process.execPath, [CLI, 'gateway', '--policy', policy, '--db', t.db, '--upstream-revision', '2025-11-25', '--', process.execPath, ONE_REVISION, 'modern'], {
    stdio: ['pipe', 'pipe', 'ignore'],
    env: env(),
  });
  try {
    let out = '';
    wrong.stdout.on('data', (d: Buffer) => void (out += d.toString()));
    const meta = { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientInfo': { name: 'x', version: '1' }, 'io.modelcontextprotocol/clientCapabilities': {} };
    wrong.stdin.write(JSON.stringify({ jsonrpc: '2.0', id: 'w', method: 'tools/call', params: { name: 'echo', arguments: { text: 'hi' }, _meta: meta } }) + '\n');
    const line = await waitFor(() => out.split('\n').find((l) => l.includes('"id":"w"')), 30_000, 25, 'the answer to the call');
    const answer = JSON.parse(line) as { error?: { code: number; message: string } };
    assert.equal(answer.error?.code, -32603);
    assert.match(answer.error!.message, /could not tell which protocol revision the upstream speaks \(the upstream was set to speak 2025-11-25 but the 2025-11-25 upstream refused initialize.*Unsupported protocol version/);
  } finally {
    if (wrong.exitCode === null && wrong.signalCode === null) {
      const exited = new Promise((r) => wrong.once('exit', r));
      wrong.kill('SIGTERM');
      await exited;
    }
  }
  const bad = await cli(['gateway', '--policy', policy, '--db', t.db, '--upstream-revision', '2024-01-01', '--', process.execPath, ONE_REVISION, 'modern']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--upstream-revision "2024-01-01": expected 2025-11-25, 2026-07-28 or auto/);
  assert.ok(!bad.stderr.includes('    at '), 'no stack trace');
  const http = await cli(['gateway', '--policy', policy, '--db', t.db, '--upstream', 'http://127.0.0.1:9/mcp', '--upstream-revision', '2025-11-25']);
  assert.equal(http.code, 2);
  assert.match(http.stderr, /--upstream-revision is for a stdio upstream/);
  t.cleanup();
});
