import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { LineStdioServerTransport } from '../../src/gateway/stdio-transport.js';
import { InMemoryTransport } from '@modelcontextprotocol/server';
import { createPolicyGatewayForServer } from '../../src/gateway/in-process.js';
import { openStore } from '../../src/storage/open-store.js';
import { resolveStoreLocation } from '../../src/storage/location.js';
import { createEgressTriageServer } from '../../src/mcp/server.js';
import { ERAS, REVISION, newClient, text, tmpDir } from './helpers.js';

for (const era of ERAS) test(`policy in front of egress-triage's own MCP server (built-in mode, shared state DB, ${REVISION[era]})`, async () => {
  const t = tmpDir();
  const store = await openStore(resolveStoreLocation(t.db), 'create');
  const policy = t.file(
    'p.yaml',
    `version: 1
default: allow
hide: [delete_suppression_rule]
tools:
  ping: { rate_limit: { max: 1, window: 60 } }
  create_suppression_rule:
    action: require_approval
    approval_timeout: 30
    when:
      - { path: args.conditions.owner, op: eq, value: "*", action: deny, reason: "Tenant-wide rules need a human in the dashboard" }
`,
  );
  const [clientSide, serverFacing] = InMemoryTransport.createLinkedPair();
  const gw = await createPolicyGatewayForServer({ policyPath: policy, dbPath: t.db, serverFactory: () => createEgressTriageServer({ store, tenant: 'default', dashboardUrl: 'http://dash.local' }), clientTransport: serverFacing, identity: 'agent-1' });
  const client = newClient(era, {}, 'own');
  await client.connect(clientSide);
  try {
    assert.equal(client.getNegotiatedProtocolVersion(), REVISION[era]);
    const names = (await client.listTools()).tools.map((x) => x.name);
    assert.ok(names.includes('ping') && names.includes('create_suppression_rule'));
    assert.ok(!names.includes('delete_suppression_rule'));
    const first = await client.callTool({ name: 'ping', arguments: {} });
    assert.notEqual(first.isError, true, text(first));
    assert.match(text(await client.callTool({ name: 'ping', arguments: {} })), /^\[POLICY DENIED\] rate limit exceeded .*retry after/);
    const wide = await client.callTool({
      name: 'create_suppression_rule',
      arguments: { detection_id: 'New-Outbound-Network-Call', conditions: { owner: '*', process: 'tailscaled' } },
    });
    assert.equal(text(wide), '[POLICY DENIED] Tenant-wide rules need a human in the dashboard');
    assert.match(text(await client.callTool({ name: 'delete_suppression_rule', arguments: { rule_id: 'x' } })), /hidden by policy/);
  } finally {
    await client.close().catch(() => undefined);
    await gw.close();
    await store.close();
    t.cleanup();
  }
});

// `egress-triage mcp --policy` reads stdin with the gateway's own line reader, which answers a batch
// itself: the proxy in front of the built-in server audits that refusal too.
test('built-in mode on the stdio reader: a batch it refuses is audited', async () => {
  const t = tmpDir();
  const store = await openStore(resolveStoreLocation(t.db), 'create');
  const policy = t.file('p.yaml', 'version: 1\ndefault: allow\n');
  const input = new PassThrough();
  const output = new PassThrough();
  const gw = await createPolicyGatewayForServer({
    policyPath: policy, dbPath: t.db, serverFactory: () => createEgressTriageServer({ store, tenant: 'default', dashboardUrl: 'http://dash.local' }),
    clientTransport: new LineStdioServerTransport(input, output), identity: 'agent-1',
  });
  try {
    input.write('[{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"ping","arguments":{}}}]\n');
    const [line] = (await once(output, 'data')) as [Buffer];
    assert.equal(JSON.parse(line.toString()).error.code, -32600);
    const recs = readFileSync(join(t.dir, 'policy-audit.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
    assert.deepEqual(recs.map((r) => [r.identity, r.tool, r.decision, r.rule]), [['agent-1', '<batch>', 'deny', 'protocol']]);
    assert.match(recs[0].reason, /batches are not supported by this gateway \(1 message: tools\/call "ping"\)$/);
  } finally {
    await gw.close();
    await store.close();
    t.cleanup();
  }
});
