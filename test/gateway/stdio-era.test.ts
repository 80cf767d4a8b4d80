import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { CLI, ERAS, REVISION, cli, newClient, text, tmpDir, type Era } from './helpers.js';

/**
 * The stdio gateway in front of an upstream that speaks ONE revision, for each revision of the client: the
 * gateway finds out on its one child which revision that is and translates, and the policy still holds.
 */

const ONE_REVISION = fileURLToPath(new URL('./fixtures/one-revision-server.js', import.meta.url));
const DENIED = /^\[POLICY DENIED\] /;
const env = () => Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string'));

async function through(policy: string, db: string, client: Era, upstream: Era, capabilities: Record<string, unknown> = {}) {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [CLI, 'gateway', '--policy', policy, '--db', db, '--', process.execPath, ONE_REVISION, upstream],
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
        assert.deepEqual(names, ['ask', 'echo', 'stats', 'write_thing'], 'the hidden tool is not listed');
        assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: 'hi' } })), `${up}-only-upstream: hi`);
        const denied = await client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } });
        assert.equal(denied.isError, true);
        assert.equal(text(denied), '[POLICY DENIED] no writes here');
        const hidden = await client.callTool({ name: 'delete_thing', arguments: { id: 'x' } });
        assert.equal(hidden.isError, true);
        assert.match(text(hidden), DENIED);
        // Nothing denied reached the upstream.
        assert.deepEqual(JSON.parse(text(await client.callTool({ name: 'stats', arguments: {} }))), { echo: 1 });
        if (down !== up) assert.match(stderr(), /translating/, 'the gateway says it translates');
      } finally {
        await client.close();
      }
      const audit = await cli(['audit', '--db', t.db, '--json']);
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
  const audit = await cli(['audit', '--db', t.db, '--json']);
  const recs = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.deepEqual(recs.filter((r) => r.tool === 'write_thing').map((r) => [r.decision, r.upstream]), [['approved', 'ok']]);
  t.cleanup();
});
