/**
 * Both MCP protocol revisions, end to end, with real SDK v2 clients against the built CLI:
 * 2026-07-28 (stateless: `_meta` envelope per request, confirmation by multi-round-trip input) and
 * 2025-11-25 (initialize, sessions, confirmation by a pushed elicitation/create), over stdio
 * (`egress-triage mcp`) and Streamable HTTP (`egress-triage serve`, one /mcp endpoint for both).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { Client, StreamableHTTPClientTransport, type CallToolResult, type Transport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import { LIST_TTL_MS } from '../../src/mcp/server.js';
import { CLI, runCli, tempDir } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { TENANT, buildDemoDb, cleanEnv, killChild, rawPost, startServe, textOf } from './helpers.js';

type Any = Record<string, any>;
type Revision = '2026-07-28' | '2025-11-25';
const REVISIONS: Revision[] = ['2026-07-28', '2025-11-25'];

/** An SDK v2 client that speaks exactly `revision`; `answer` answers every confirmation dialog. */
function clientAt(revision: Revision, answer: () => 'accept' | 'decline', asked: string[]): Client {
  const client = new Client(
    { name: `egress-triage-test-${revision}`, version: '1.0.0' },
    {
      capabilities: { elicitation: { form: {} } },
      ...(revision === '2026-07-28' ? { versionNegotiation: { mode: { pin: '2026-07-28' } } } : { supportedProtocolVersions: ['2025-11-25'] }),
    },
  );
  // One handler for both: a 2025-11-25 server pushes elicitation/create, a 2026-07-28 server returns
  // input_required and the client answers it here before it retries the call.
  client.setRequestHandler('elicitation/create', async (req) => {
    asked.push((req.params as { message: string }).message);
    return answer() === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
  });
  return client;
}

async function callTool(client: Client, name: string, args: Record<string, unknown> = {}): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

async function ok(client: Client, name: string, args: Record<string, unknown> = {}): Promise<Any> {
  const r = await callTool(client, name, args);
  if (r.isError) throw new Error(`${name} returned isError: ${textOf(r)}`);
  return r.structuredContent as Any;
}

/**
 * The triage workflow of the README: analyse by process, preview the suggested rule of a genuine VPN
 * daemon, create it (the user declines once, then accepts), list the rules. The rule created is exactly
 * the one previewed and the one the user was shown; the declined call changed nothing.
 */
async function triageWorkflow(client: Client, revision: Revision, asked: string[], setAnswer: (a: 'accept' | 'decline') => void): Promise<void> {
  assert.equal(client.getNegotiatedProtocolVersion(), revision);
  const listed = (await client.listTools()) as Any;
  assert.ok(listed.tools.some((t: Any) => t.name === 'analyze_anomalous_calls_by_process'));
  // tools/list is cacheable on 2026-07-28 only
  assert.equal(listed.ttlMs, revision === '2026-07-28' ? LIST_TTL_MS : undefined);

  const an = await ok(client, 'analyze_anomalous_calls_by_process', { limit: 50 });
  const vpn = an.processes.find((p: Any) => p.is_vpn_process_candidate && !p.name_impersonation_suspected && p.suggested_rule?.blocked_reason === null);
  assert.ok(vpn, 'a genuine VPN daemon to suppress');
  const rule = { detectionId: vpn.suggested_rule.detection_id, conditions: vpn.suggested_rule.conditions };
  const preview = await ok(client, 'preview_suppression_rule', rule);
  assert.equal(preview.can_create, true);
  assert.ok(preview.would_suppress > 0);
  assert.equal(preview.would_suppress, vpn.suggested_rule.impact.would_suppress, 'the preview matches the analysis');

  const name = `${vpn.process} (${revision})`;
  const args = { ...rule, name, confirm: true };
  setAnswer('decline');
  const declined = await callTool(client, 'create_suppression_rule', args);
  assert.equal(declined.isError, true);
  assert.match(textOf(declined), /declined.*Nothing was changed/s);
  assert.equal((await ok(client, 'list_suppression_rules')).count, 0);
  // nothing was suppressed either: the same preview, detection for detection
  assert.deepEqual(await ok(client, 'preview_suppression_rule', rule), preview);

  setAnswer('accept');
  const created = await ok(client, 'create_suppression_rule', args);
  assert.equal(created.confirmed_via, 'elicitation');
  assert.equal(asked.length, 2, 'the user was asked once per create call');
  // the question names this very rule and its previewed impact
  assert.ok(asked[1]!.includes(`"${name}"`), asked[1]);
  for (const [key, value] of Object.entries(preview.conditions as Record<string, string>)) assert.ok(asked[1]!.includes(`${key}=${value}`), asked[1]);
  assert.ok(asked[1]!.includes(`${preview.would_suppress} open detection(s) would be suppressed`), asked[1]);
  // the rule created is exactly the one previewed, and suppressed exactly what the preview said
  assert.equal(created.rule.id, preview.detection_id);
  assert.deepEqual(created.rule.conditions, preview.conditions);
  assert.equal(created.rule.name, name);
  assert.equal(created.suppressed, preview.would_suppress);
  assert.equal((await ok(client, 'preview_suppression_rule', rule)).would_suppress, 0, 'every previewed detection is suppressed now');

  const rules = await ok(client, 'list_suppression_rules');
  assert.equal(rules.count, 1);
  assert.deepEqual(rules.rules[0], created.rule);
}

function runWorkflow(revision: Revision, connect: (client: Client) => Promise<Transport>): () => Promise<void> {
  return async () => {
    let answer: 'accept' | 'decline' = 'decline';
    const asked: string[] = [];
    const client = clientAt(revision, () => answer, asked);
    await connect(client);
    try {
      await triageWorkflow(client, revision, asked, (a) => (answer = a));
    } finally {
      await client.close();
    }
  };
}

const ENVELOPE = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': { elicitation: { form: {} } },
};

async function postJson(url: URL, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: Any; headers: Record<string, unknown> }> {
  const r = await rawPost(url, JSON.stringify(body), headers);
  // a JSON body, or one SSE event carrying it
  const text = r.body.startsWith('{') ? r.body : (/^data: (.*)$/m.exec(r.body)?.[1] ?? '{}');
  return { status: r.status, body: JSON.parse(text) as Any, headers: r.headers };
}

/** A 2026-07-28 tools/call as it goes on the wire: envelope in `_meta`, the three standard headers. */
function modernCall(url: URL, id: number, name: string, args: Any, extra: Any = {}, headers: Record<string, string> = {}) {
  return postJson(
    url,
    { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, _meta: ENVELOPE, ...extra } },
    { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': name, ...headers },
  );
}

describe('MCP protocol revisions 2026-07-28 and 2025-11-25 (SDK v2 clients)', () => {
  const tmp = tempDir('egress-mcp-revisions-');
  let template: string;
  let n = 0;
  /** A fresh copy of the demo store, so every workflow starts without rules. */
  const freshDb = () => {
    const db = join(tmp.dir, `copy-${++n}.db`);
    copyFileSync(template, db);
    return db;
  };

  before(async () => {
    template = await buildDemoDb(tmp.dir);
  });
  after(() => tmp.cleanup());

  describe('over stdio (egress-triage mcp)', () => {
    for (const revision of REVISIONS) {
      it(
        `a client at ${revision} runs analyze, preview, create with confirmation, list`,
        runWorkflow(revision, async (client) => {
          const transport = new StdioClientTransport({
            command: process.execPath,
            args: [CLI, 'mcp', '--db', freshDb(), '--tenant', TENANT, '--dashboard-url', 'https://dash.example'],
            env: cleanEnv(),
            stderr: 'pipe',
          });
          await client.connect(transport);
          return transport;
        }),
      );
    }
  });

  it('a request-state key shorter than 32 bytes refuses to start, exit 2, without a stack trace', () => {
    for (const cmd of [['mcp'], ['serve', '--listen', '127.0.0.1:0']]) {
      const r = runCli([...cmd, '--db', join(tmp.dir, 'never.db')], { env: { EGRESS_TRIAGE_REQUEST_STATE_KEY: 'too-short' } });
      assert.equal(r.status, 2, `${cmd[0]}: ${r.stderr}`);
      assert.match(r.stderr, /EGRESS_TRIAGE_REQUEST_STATE_KEY: the key must be at least 32 bytes long/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
  });

  it('stdio at 2026-07-28: the one message size limit still answers an oversize line with its id, and the connection stays up', async () => {
    const child = spawn(process.execPath, [CLI, 'mcp', '--db', freshDb(), '--tenant', TENANT, '--max-message-bytes', '4KiB'], { env: cleanEnv(), stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    const reply = async (id: number): Promise<Any> =>
      JSON.parse(
        await waitFor(() => out.split('\n').find((l) => l.includes(`"id":${id}`)), 30_000, 25, `the answer to ${id}`).catch((e: Error) => {
          throw new Error(`${e.message}; the server wrote: ${out}`);
        }),
      ) as Any;
    const send = (m: Any) => child.stdin.write(JSON.stringify(m) + '\n');
    const ping = (id: number, pad = '') => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'ping', arguments: {}, _meta: { ...ENVELOPE, pad } } });
    try {
      send(ping(1));
      const first = await reply(1);
      assert.equal(first.result.resultType, 'complete', 'an enveloped request opens a 2026-07-28 connection');
      assert.equal(first.result.structuredContent.ok, true);
      send(ping(2, 'x'.repeat(8192)));
      const big = await reply(2);
      assert.equal(big.error.code, -32600);
      assert.match(big.error.message, /exceeds the limit of 4096 bytes/);
      send(ping(3));
      assert.equal((await reply(3)).result.structuredContent.ok, true);
    } finally {
      child.stdin.end();
      await new Promise((r) => child.once('exit', r));
    }
  });

  describe('over Streamable HTTP (egress-triage serve, one /mcp endpoint)', () => {
    const servers: ChildProcessWithoutNullStreams[] = [];
    after(async () => {
      await Promise.all(servers.map(killChild));
    });
    async function serve(extraArgs: string[] = []): Promise<URL> {
      const s = await startServe(freshDb(), extraArgs);
      servers.push(s.child);
      return s.url;
    }

    for (const revision of REVISIONS) {
      it(`a client at ${revision} runs analyze, preview, create with confirmation, list`, async () => {
        const url = await serve();
        let transport!: StreamableHTTPClientTransport;
        // every JSON-RPC message the client POSTs, to see how each confirmation travelled
        const sent: Any[] = [];
        const recording: typeof fetch = async (input, init) => {
          if (init?.method === 'POST' && typeof init.body === 'string') sent.push(JSON.parse(init.body) as Any);
          return fetch(input, init);
        };
        await runWorkflow(revision, async (client) => {
          transport = new StreamableHTTPClientTransport(url, { fetch: recording });
          await client.connect(transport);
          // 2026-07-28 is stateless: no session; 2025-11-25 keeps today's session
          if (revision === '2026-07-28') assert.equal(transport.sessionId, undefined);
          else assert.match(transport.sessionId ?? '', /^[0-9a-f-]{36}$/);
          return transport;
        })();
        const creates = sent.filter((m) => m.method === 'tools/call' && m.params?.name === 'create_suppression_rule');
        if (revision === '2026-07-28') {
          // multi-round-trip: each create is asked (input_required), then retried with the answer and the sealed state
          assert.equal(creates.length, 4);
          const retries = creates.filter((m) => m.params.inputResponses?.confirm);
          assert.deepEqual(retries.map((m) => m.params.inputResponses.confirm.action), ['decline', 'accept']);
          for (const r of retries) assert.ok(typeof r.params.requestState === 'string' && r.params.requestState.length > 0);
          assert.deepEqual(retries.map((m) => m.params.arguments), creates.filter((m) => !m.params.inputResponses).map((m) => m.params.arguments), 'each retry repeats its call');
        } else {
          // the server pushed elicitation/create on the call's stream; the client answered it with a response
          assert.equal(creates.length, 2);
          const answers = sent.filter((m) => m.method === undefined && m.result?.action);
          assert.deepEqual(answers.map((m) => m.result.action), ['decline', 'accept']);
        }
      });
    }

    it('a 2026-07-28 answer carries no Mcp-Session-Id; a 2025-11-25 initialize answer does', async () => {
      const url = await serve();
      const modern = await modernCall(url, 1, 'ping', {});
      assert.equal(modern.status, 200);
      assert.equal(modern.body.result.structuredContent.ok, true);
      assert.equal(modern.headers['mcp-session-id'], undefined);
      const legacy = await postJson(url, {
        jsonrpc: '2.0', id: 1, method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      });
      assert.equal(legacy.status, 200);
      assert.equal(legacy.body.result.protocolVersion, '2025-11-25');
      assert.match(String(legacy.headers['mcp-session-id']), /^[0-9a-f-]{36}$/);
    });

    it('refuses a request whose Mcp-Name or Mcp-Method header disagrees with the body', async () => {
      const url = await serve();
      const args = { detectionId: 'New-Outbound-Network-Call', conditions: { process: 'tailscaled' }, name: 'x', confirm: true };
      // a policy or router reading the header would see "ping"; the body asks for a write
      const name = await modernCall(url, 1, 'create_suppression_rule', args, {}, { 'mcp-name': 'ping' });
      assert.equal(name.status, 400);
      assert.equal(name.body.error.code, -32020);
      const method = await modernCall(url, 2, 'create_suppression_rule', args, {}, { 'mcp-method': 'tools/list' });
      assert.equal(method.status, 400);
      assert.equal(method.body.error.code, -32020);
      const missing = await postJson(
        url,
        { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'ping', arguments: {}, _meta: ENVELOPE } },
        { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call' },
      );
      assert.equal(missing.status, 400);
      assert.equal(missing.body.error.code, -32020);
      // the matching request is served
      assert.equal((await modernCall(url, 4, 'ping', {})).status, 200);
    });

    it('2026-07-28: a confirmation counts only with the signed state of the very same call', async () => {
      const url = await serve();
      const an = (await modernCall(url, 1, 'analyze_anomalous_calls_by_process', { limit: 50 })).body.result.structuredContent;
      const vpn = an.processes.find((p: Any) => p.is_vpn_process_candidate && !p.name_impersonation_suspected && p.suggested_rule?.blocked_reason === null);
      const args = { detectionId: vpn.suggested_rule.detection_id, conditions: vpn.suggested_rule.conditions, name: 'first', confirm: true };
      const accept = { inputResponses: { confirm: { action: 'accept', content: { confirm: true } } } };
      const rules = async () => (await modernCall(url, 99, 'list_suppression_rules', {})).body.result.structuredContent.count;

      // an answer nobody asked for is not a confirmation: the server asks
      const forged = await modernCall(url, 2, 'create_suppression_rule', args, accept);
      assert.equal(forged.body.result.resultType, 'input_required');
      assert.equal(forged.body.result.inputRequests.confirm.method, 'elicitation/create');
      const state = forged.body.result.requestState as string;
      assert.ok(state.length > 0);
      assert.equal(await rules(), 0);

      // the state of the question about "first" does not confirm a different rule
      const other = await modernCall(url, 3, 'create_suppression_rule', { ...args, name: 'second' }, { ...accept, requestState: state });
      assert.equal(other.body.result?.resultType, 'input_required');
      assert.equal(await rules(), 0);

      // a tampered state is refused outright
      const tampered = await modernCall(url, 4, 'create_suppression_rule', args, { ...accept, requestState: `${state.slice(0, -2)}xx` });
      assert.equal(tampered.body.error?.code, -32602);
      assert.equal(await rules(), 0);

      // the genuine retry: same call, the server's state, the user's answer
      const created = await modernCall(url, 5, 'create_suppression_rule', args, { ...accept, requestState: state });
      assert.equal(created.body.result.resultType, 'complete');
      assert.equal(created.body.result.structuredContent.confirmed_via, 'elicitation');
      assert.equal(await rules(), 1);
    });

    it('2026-07-28: a client without the elicitation capability is not asked; confirm: true alone decides', async () => {
      const url = await serve();
      const noCaps = { ...ENVELOPE, 'io.modelcontextprotocol/clientCapabilities': {} };
      const an = (await modernCall(url, 1, 'analyze_anomalous_calls_by_process', { limit: 50 })).body.result.structuredContent;
      const vpn = an.processes.find((p: Any) => p.is_vpn_process_candidate && !p.name_impersonation_suspected && p.suggested_rule?.blocked_reason === null);
      const args = { detectionId: vpn.suggested_rule.detection_id, conditions: vpn.suggested_rule.conditions, name: 'no dialog', confirm: true };
      const r = await modernCall(url, 2, 'create_suppression_rule', args, { _meta: noCaps });
      assert.equal(r.status, 200);
      assert.equal(r.body.result.structuredContent.confirmed_via, 'confirm-flag');
    });

    it('2026-07-28 with grants: no token gets 401; the token names who wrote the rule', async () => {
      const grants = join(tmp.dir, 'grants.yaml');
      writeFileSync(grants, 'grants:\n  - { identity: alice, token: alice-token-0123456789abcdef }\n');
      const url = await serve(['--grants', grants]);
      const auth = { authorization: 'Bearer alice-token-0123456789abcdef' };
      assert.equal((await modernCall(url, 1, 'ping', {})).status, 401);
      assert.equal((await modernCall(url, 2, 'ping', {}, {}, { authorization: 'Bearer wrong-token-0123456789abcdef' })).status, 401);
      const noCaps = { ...ENVELOPE, 'io.modelcontextprotocol/clientCapabilities': {} };
      const an = (await modernCall(url, 3, 'analyze_anomalous_calls_by_process', { limit: 50 }, {}, auth)).body.result.structuredContent;
      const vpn = an.processes.find((p: Any) => p.is_vpn_process_candidate && !p.name_impersonation_suspected && p.suggested_rule?.blocked_reason === null);
      const args = { detectionId: vpn.suggested_rule.detection_id, conditions: vpn.suggested_rule.conditions, name: 'by alice', confirm: true };
      const created = await modernCall(url, 4, 'create_suppression_rule', args, { _meta: noCaps }, auth);
      assert.equal(created.body.result.structuredContent.rule.created_by, 'mcp:alice');
    });

    it("2026-07-28 across replicas: a confirmation retry on another process counts only with the shared EGRESS_TRIAGE_REQUEST_STATE_KEY, and only in the tenant that asked", async () => {
      const db = freshDb();
      const start = async (key: string, tenant = TENANT): Promise<URL> => {
        const child = spawn(
          process.execPath,
          [CLI, 'serve', '--db', db, '--tenant', tenant, '--listen', '127.0.0.1:0', '--dashboard-url', 'https://dash.example'],
          { env: cleanEnv({ EGRESS_TRIAGE_REQUEST_STATE_KEY: key }), stdio: ['pipe', 'pipe', 'pipe'] },
        );
        servers.push(child);
        let err = '';
        return new Promise<URL>((resolve, reject) => {
          child.stderr.on('data', (c: Buffer) => {
            err += c.toString();
            const m = /listening on (http:\/\/\S+)/.exec(err);
            if (m) resolve(new URL(m[1]!));
          });
          child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${err}`)));
        });
      };
      const shared = 'k'.repeat(40);
      const [a, b, other, otherTenant] = await Promise.all([start(shared), start(shared), start('o'.repeat(40)), start(shared, 'globex')]);
      const an = (await modernCall(a, 1, 'analyze_anomalous_calls_by_process', { limit: 50 })).body.result.structuredContent;
      const vpn = an.processes.find((p: Any) => p.is_vpn_process_candidate && !p.name_impersonation_suspected && p.suggested_rule?.blocked_reason === null);
      const args = { detectionId: vpn.suggested_rule.detection_id, conditions: vpn.suggested_rule.conditions, name: 'across replicas', confirm: true };
      const asked = await modernCall(a, 2, 'create_suppression_rule', args);
      const retry = { inputResponses: { confirm: { action: 'accept', content: { confirm: true } } }, requestState: asked.body.result.requestState };
      const elsewhere = await modernCall(other, 3, 'create_suppression_rule', args, retry);
      assert.equal(elsewhere.body.error?.code, -32602, 'a replica with another key cannot read the state');
      // another tenant's server behind the same key reads the state, and asks its own question
      const inGlobex = await modernCall(otherTenant, 5, 'create_suppression_rule', args, retry);
      assert.equal(inGlobex.body.result?.resultType, 'input_required', JSON.stringify(inGlobex.body));
      const created = await modernCall(b, 4, 'create_suppression_rule', args, retry);
      assert.equal(created.body.result.structuredContent.confirmed_via, 'elicitation');
    });

    it('serve --policy: a 2026-07-28 client is served under the policy, request by request, as a 2025-11-25 session is', async () => {
      const policy = join(tmp.dir, 'policy.yaml');
      writeFileSync(policy, 'version: 1\ndefault: allow\nhide: [delete_suppression_rule]\ntools:\n  ping:\n    action: deny\n    reason: "no pings here"\n');
      const url = await serve(['--policy', policy]);
      const raw = await modernCall(url, 1, 'ping', {});
      assert.equal(raw.status, 200);
      assert.equal(textOf(raw.body.result), '[POLICY DENIED] no pings here');
      for (const client of [
        new Client({ name: 'pinned', version: '1' }, { versionNegotiation: { mode: { pin: '2026-07-28' } } }),
        new Client({ name: 'legacy', version: '1' }, { supportedProtocolVersions: ['2025-11-25'] }),
      ]) {
        await client.connect(new StreamableHTTPClientTransport(url));
        try {
          const tools = (await client.listTools()).tools.map((t) => t.name);
          assert.ok(tools.includes('get_my_tenant') && !tools.includes('delete_suppression_rule'), tools.join(','));
          assert.equal(textOf(await callTool(client, 'ping')), '[POLICY DENIED] no pings here');
          assert.match(textOf(await callTool(client, 'get_my_tenant')), /demo/);
        } finally {
          await client.close();
        }
      }
    });
  });
});
