import { test } from 'node:test';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { freePort } from '../helpers/free-port.js';
import { CLI, FIXTURE, cli, kill, spawnUntil, text, tmpDir, waitFor } from './helpers.js';

async function connect(url: string, modern = false): Promise<Client> {
  const c = new Client({ name: 'multi-test', version: '1' }, modern ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : {});
  await c.connect(new StreamableHTTPClientTransport(new URL(url)));
  return c;
}

test('one gateway process serves three registered upstreams (two stdio, one HTTP) with separate policies, to 2025-11-25 and 2026-07-28 clients; a dead upstream fails only its own calls', async () => {
  const t = tmpDir('gw-multi-');
  mkdirSync(join(t.dir, 'policies'));
  const serveDb = t.file('serve.db', '');
  SqliteStore.open(serveDb).close();
  t.file('policies/stdio.yaml', 'version: 1\ndefault: allow\ntools:\n  add: { action: deny, reason: no sums here }\n');
  t.file('policies/http.yaml', 'version: 1\ndefault: allow\ntools:\n  echo: { action: deny, reason: no echoes here }\n');
  t.file('policies/triage.yaml', 'version: 1\ndefault: allow\ntools:\n  list_suppression_rules: { action: deny, reason: not for agents }\n');
  const upHttp = await spawnUntil(process.execPath, [FIXTURE, '--http'], /LISTENING (\d+)/);
  const config = t.file(
    'gateway.yaml',
    `upstreams:
  - name: echo-stdio
    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(FIXTURE)}]
    policy: policies/stdio.yaml
  - name: echo-http
    url: http://127.0.0.1:${upHttp.match[1]}/mcp
    policy: policies/http.yaml
  - name: triage
    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(CLI)}, mcp, --db, ${JSON.stringify(serveDb)}, --tenant, demo]
    policy: policies/triage.yaml
`,
  );
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--config', config, '--db', t.db, '--listen', '127.0.0.1:0'], /listening on (http:\/\/\S+)\/s\/triage\/mcp/);
  const base = gw.match[1]!;
  const clients: Client[] = [];
  try {
    const [stdio, http, triage, triageModern] = await Promise.all([
      connect(`${base}/s/echo-stdio/mcp`),
      connect(`${base}/s/echo-http/mcp`),
      connect(`${base}/s/triage/mcp`),
      connect(`${base}/s/triage/mcp`, true),
    ]);
    clients.push(stdio!, http!, triage!, triageModern!);
    // One policy denies what another allows.
    assert.match(text(await stdio!.callTool({ name: 'add', arguments: { a: 1, b: 1 } })), /^\[POLICY DENIED\] no sums here/);
    assert.equal(text(await http!.callTool({ name: 'add', arguments: { a: 1, b: 1 } })), '2');
    assert.equal(text(await stdio!.callTool({ name: 'echo', arguments: { text: 'hi' } })), 'hi');
    assert.match(text(await http!.callTool({ name: 'echo', arguments: { text: 'hi' } })), /^\[POLICY DENIED\] no echoes here/);
    assert.match(text(await triage!.callTool({ name: 'list_suppression_rules', arguments: {} })), /^\[POLICY DENIED\] not for agents/);
    // 2026-07-28 to a stdio upstream: one shared child, ids remapped; concurrent calls each get their answer.
    assert.equal(triageModern!.getNegotiatedProtocolVersion(), '2026-07-28');
    assert.match(text(await triageModern!.callTool({ name: 'get_my_tenant', arguments: {} })), /demo/);
    assert.match(text(await triageModern!.callTool({ name: 'list_suppression_rules', arguments: {} })), /^\[POLICY DENIED\] not for agents/);
    const pings = await Promise.all(Array.from({ length: 10 }, () => triageModern!.callTool({ name: 'ping', arguments: {} })));
    assert.ok(pings.every((r) => !r.isError), JSON.stringify(pings.find((r) => r.isError)));
    // A path that names no registered upstream.
    const nope = await fetch(`${base}/s/nope/mcp`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(nope.status, 404);

    // The HTTP upstream dies: its own calls fail naming it; the other two keep serving.
    await kill(upHttp.child);
    const dead = await http!.callTool({ name: 'add', arguments: { a: 2, b: 2 } }).then(
      (r) => text(r),
      (e: Error) => e.message,
    );
    assert.match(dead, /upstream "echo-http"/);
    await assert.rejects(connect(`${base}/s/echo-http/mcp`), /upstream "echo-http"/);
    assert.equal(text(await stdio!.callTool({ name: 'echo', arguments: { text: 'still here' } })), 'still here');
    assert.match(text(await triage!.callTool({ name: 'get_my_tenant', arguments: {} })), /demo/);
    assert.match(text(await triageModern!.callTool({ name: 'get_my_tenant', arguments: {} })), /demo/);
  } finally {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    await kill(gw.child);
    await kill(upHttp.child);
  }
  // The audit says which upstream each call was for.
  const audit = (await cli(['audit', '--db', t.db, '--jsonl', '--limit', '1000'])).stdout.trim().split('\n').map((l) => JSON.parse(l));
  const upstreamOf = (r: { session: string }) => r.session.split('/')[0];
  const add = audit.filter((r) => r.tool === 'add');
  assert.deepEqual(add.map((r) => [upstreamOf(r), r.decision]).sort(), [['echo-http', 'allow'], ['echo-http', 'allow'], ['echo-stdio', 'deny']]);
  // 2025-11-25 sessions: the session key starts with the upstream's name.
  assert.deepEqual([...new Set(audit.filter((r) => r.tool === 'list_suppression_rules' && /\/.+-/.test(r.session)).map(upstreamOf))], ['triage']);
  // The audit file keeps the whole record, `upstreamName` included (2025-11-25 and 2026-07-28 calls alike).
  const lines = readFileSync(join(t.dir, 'policy-audit.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.deepEqual(lines.filter((r) => r.tool === 'add').map((r) => r.upstreamName).sort(), ['echo-http', 'echo-http', 'echo-stdio']);
  assert.deepEqual([...new Set(lines.filter((r) => r.tool === 'get_my_tenant').map((r) => r.upstreamName))], ['triage']);
  assert.equal(lines.filter((r) => r.tool === 'list_suppression_rules' && r.upstreamName === 'triage').length, 2, 'the 2025-11-25 and the 2026-07-28 denial');
  t.cleanup();
});

test('gateway --config: a bad config file is refused with its file and line, exit 1 as any invalid file', async () => {
  const t = tmpDir('gw-multi-cfg-');
  const cases: [string, RegExp][] = [
    ['upstreams:\n  - name: Triage\n    url: http://127.0.0.1:9/mcp\n    policy: p.yaml\n', /gateway\.yaml:2: upstreams\[0\]\.name: use lower-case letters/],
    ['upstreams:\n  - name: a\n    url: http://127.0.0.1:9/mcp\n    command: [x]\n    policy: p.yaml\n', /gateway\.yaml:2: upstreams\[0\]: give exactly one of command \(stdio\) or url/],
    ['upstreams:\n  - name: a\n    url: http://127.0.0.1:9/mcp\n    policy: p.yaml\n  - name: a\n    command: [x]\n    policy: p.yaml\n', /gateway\.yaml:5: upstreams\[1\]\.name: "a" is registered twice/],
    ['upstreams:\n  - name: a\n    url: ftp://x/mcp\n    policy: p.yaml\n', /gateway\.yaml:3: upstreams\[0\]\.url: must be an http/],
    // not a URL at all: the protocol check must not throw past the schema ("egress-triage: Invalid URL", no file or field)
    ['upstreams:\n  - name: a\n    url: x\n    policy: p.yaml\n', /gateway\.yaml:3: upstreams\[0\]\.url: /],
    // its place once, as file:line:col, not again as the YAML parser's " at line 2, column 1:"
    ['upstreams: [\n', /gateway\.yaml:\d+:\d+: Flow sequence[^\n]*end with a \]\n/],
  ];
  for (const [yaml, re] of cases) {
    const file = t.file('gateway.yaml', yaml);
    const r = await cli(['gateway', '--config', file, '--db', t.db, '--listen', '127.0.0.1:0']);
    assert.equal(r.code, 1, `${yaml}\n${r.stderr}`);
    assert.match(r.stderr, re);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  t.cleanup();
});

test('policy init --config learns every registered upstream at once: one policy file each, a dead one reported without stopping the others', async () => {
  const t = tmpDir('gw-multi-init-');
  const upHttp = await spawnUntil(process.execPath, [FIXTURE, '--http'], /LISTENING (\d+)/);
  const deadPort = await freePort();
  try {
    const config = t.file(
      'gateway.yaml',
      `upstreams:
  - name: echo-stdio
    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(FIXTURE)}]
    policy: policies/stdio.yaml
  - name: gone
    url: http://127.0.0.1:${deadPort}/mcp
    policy: policies/gone.yaml
  - name: echo-http
    url: http://127.0.0.1:${upHttp.match[1]}/mcp
    policy: policies/http.yaml
`,
    );
    const r = await cli(['policy', 'init', '--config', config]);
    assert.equal(r.code, 5, `an upstream that cannot be reached is I/O: ${r.stderr}`);
    assert.match(r.stderr, /gone: cannot list tools/);
    assert.match(r.stderr, /could not learn 1 of 3 upstream\(s\): gone/);
    for (const name of ['stdio', 'http']) {
      const file = join(t.dir, 'policies', `${name}.yaml`);
      const policy = readFileSync(file, 'utf8');
      // Every page of the fixture's 42 tools, with decisions from their annotations.
      assert.match(policy, /^ {2}bulk_29:$/m);
      assert.match(policy, /^ {2}delete_thing:\n {4}action: deny$/m);
      assert.equal((await cli(['policy', 'validate', file])).code, 0);
    }
    assert.ok(!existsSync(join(t.dir, 'policies', 'gone.yaml')));
    // Written files are not overwritten without --force.
    const again = await cli(['policy', 'init', '--config', config]);
    assert.equal(again.code, 2);
    assert.match(again.stderr, /exist\(s\) \(use --force to overwrite\)/);
  } finally {
    await kill(upHttp.child);
    t.cleanup();
  }
});

test('gateway --config: approvals record which upstream a held call is for (CLI, --json, HTTP API), and an approval won at one upstream is refused at another', { timeout: 60_000 }, async () => {
  const t = tmpDir('gw-multi-apr-');
  // Both upstreams share one policy file, so only the upstream tells their calls apart.
  t.file('p.yaml', 'version: 1\ndefault: allow\ntools:\n  echo: { action: require_approval, approval_timeout: 60, approval_elicitation: true }\n');
  const admin = 'admin-token-0123456789abcdef';
  const agent = 'agent-token-0123456789abcdef';
  const grants = t.file('grants.yaml', `grants:\n  - { identity: agent, token: ${agent} }\n  - { identity: ops, token: ${admin}, admin: true }\n`);
  const fixture = `[${JSON.stringify(process.execPath)}, ${JSON.stringify(FIXTURE)}]`;
  const config = t.file('gateway.yaml', `upstreams:\n  - name: alpha\n    command: ${fixture}\n    policy: p.yaml\n  - name: beta\n    command: ${fixture}\n    policy: p.yaml\n`);
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--config', config, '--db', t.db, '--grants', grants, '--listen', '127.0.0.1:0'], /listening on (http:\/\/[^/\s]+)\/s\/[a-z]+\/mcp/);
  const base = gw.match[1]!;
  const c = new Client({ name: 'multi-apr', version: '1' });
  try {
    // 2025-11-25, no elicitation capability: the call waits for a human.
    await c.connect(new StreamableHTTPClientTransport(new URL(`${base}/s/alpha/mcp`), { requestInit: { headers: { authorization: `Bearer ${agent}` } } }));
    const held = c.callTool({ name: 'echo', arguments: { text: 'held' } });
    const listed = await waitFor(async () => {
      const r = await cli(['approvals', 'list', '--db', t.db, '--json']);
      const rows = JSON.parse(r.stdout || '[]') as { id: string; tool: string; upstream_name: string | null }[];
      return rows.length ? rows : undefined;
    }, 20_000, 50, 'the held call to be filed');
    assert.deepEqual(listed.map((r) => [r.tool, r.upstream_name]), [['echo', 'alpha']]);
    assert.match((await cli(['approvals', 'list', '--db', t.db])).stdout, /echo {2}upstream=alpha identity=agent/);
    const api = await fetch(`${base}/policy/approvals`, { headers: { authorization: `Bearer ${admin}` } });
    assert.deepEqual(((await api.json()) as { approvals: { id: string; upstream_name: string }[] }).approvals.map((r) => [r.id, r.upstream_name]), [[listed[0]!.id, 'alpha']]);
    assert.equal((await cli(['approvals', 'approve', listed[0]!.id, '--db', t.db])).code, 0);
    assert.equal(text(await held), 'held');

    // 2026-07-28 over MRTR: the state (and the approval in it) minted at alpha is refused at beta.
    const ask = (path: string, body: Record<string, unknown>) =>
      fetch(`${base}/s/${path}/mcp`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${agent}`,
          'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'echo',
        },
        body: JSON.stringify(body),
      }).then(async (r) => {
        const raw = await r.text();
        const data = raw.trim().startsWith('{') ? raw : raw.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).pop()!;
        return JSON.parse(data) as { result?: Record<string, unknown>; error?: { code: number; message: string } };
      });
    const meta = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'adversary', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
    };
    const args = { text: 'twice?' };
    const q = await ask('alpha', { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: args, _meta: meta } });
    assert.equal(q.result?.resultType, 'input_required', JSON.stringify(q));
    const answer = { 'egress-triage/policy-approval': { action: 'accept', content: { approve: true } } };
    const retry = (id: number) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: args, _meta: meta, requestState: q.result!.requestState, inputResponses: answer } });
    const elsewhere = await ask('beta', retry(2));
    assert.equal(elsewhere.error?.code, -32602, JSON.stringify(elsewhere));
    assert.match(elsewhere.error!.message, /requestState refused: it was issued for another call/);
    const here = await ask('alpha', retry(3));
    assert.equal(text(here.result), 'twice?');
    const rows = JSON.parse((await cli(['approvals', 'list', '--all', '--db', t.db, '--json'])).stdout) as { upstream_name: string }[];
    assert.deepEqual(rows.map((r) => r.upstream_name), ['alpha', 'alpha']);
  } finally {
    await c.close().catch(() => undefined);
    await kill(gw.child);
    t.cleanup();
  }
});
