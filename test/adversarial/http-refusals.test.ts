/**
 * Every POST the HTTP gateway refuses before a policy decides it is answered, and leaves one
 * `deny` / `protocol` record under the identity that sent it (docs/policy.md), whichever layer
 * answered: the listener (not JSON, a header that contradicts the body), the gateway before a
 * session's proxy (a batch, an id MCP does not allow, no or another identity's session), or the SDK's
 * session transport (Content-Type, Accept, protocol version, not JSON-RPC 2.0). A refusal on a live
 * session is recorded under that session; any other under `no-session`, or `modern:<identity>` for a
 * request that claims 2026-07-28.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { tempDir } from '../helpers.js';
import { assertRefusalsAudited, frame, openSession, rawPost, send, startGateway, startUpstream, stop, toolCall, upstreamCounts, type Proc, type RawReply, type RefusalCase } from './http-helpers.js';

const tmp = tempDir('egress-adv-refusals-');
after(() => tmp.cleanup());

const TOKENS = { alice: 'alice-token-0123456789abcdef', bob: 'bob-token-0123456789abcdef' };
const bearer = (who: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[who]}` });
const POLICY = 'version: 1\ndefault: allow\ntools:\n  delete_thing: { action: deny, reason: no deleting }\n';
const ID_REASON = /^Invalid Request: "id" must be a string or an integer$/;

async function gateway(era: string): Promise<{ gw: Proc; upstream: Proc; db: string }> {
  const policy = join(tmp.dir, `${era}.yaml`);
  writeFileSync(policy, POLICY);
  const grants = join(tmp.dir, 'grants.yaml');
  writeFileSync(grants, 'grants:\n  - { identity: alice, token_env: ALICE_TOKEN }\n  - { identity: bob, token_env: BOB_TOKEN }\n');
  const db = join(tmp.dir, `${era}.db`);
  const upstream = await startUpstream();
  const gw = await startGateway(policy, db, upstream.port, ['--grants', grants], { ALICE_TOKEN: TOKENS.alice, BOB_TOKEN: TOKENS.bob });
  return { gw, upstream, db };
}

/** Each refusal audited (assertRefusalsAudited), and none reached the upstream. */
async function check(db: string, upstreamPort: number, cases: RefusalCase[]): Promise<void> {
  await assertRefusalsAudited(db, cases);
  assert.deepEqual(await upstreamCounts(upstreamPort), {}, 'nothing reached the upstream');
}

test('HTTP gateway (2025-11-25): every refused POST is answered and audited under its identity', async () => {
  const { gw, upstream, db } = await gateway('legacy');
  try {
    const { sessionId } = await openSession(gw.port, bearer('alice'));
    assert.ok(sessionId);
    const on = { ...bearer('alice'), 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' };
    const post = (body: unknown, headers: Record<string, string> = {}) => () => rawPost(gw.port, body, { ...on, ...headers });
    const deleting = (id: unknown) => toolCall(id, 'delete_thing', {});
    const onSession = (c: Omit<RefusalCase, 'session' | 'tool'> & { tool?: string }): RefusalCase => ({ tool: 'delete_thing', session: sessionId, ...c });
    await check(db, upstream.port, [
      onSession({ label: 'id null', post: post(deleting(null)), status: 400, code: -32600, reason: ID_REASON }),
      // Refused by the proxy with id null before, which no POST could be answered with: it hung.
      onSession({ label: 'id 1.5', post: () => rawPost(gw.port, toolCall(1.5, 'echo', {}), on, '/mcp', AbortSignal.timeout(10_000)), status: 400, code: -32600, tool: 'echo', reason: ID_REASON }),
      onSession({ label: 'an id past 2^53', post: post(JSON.stringify(deleting(0)).replace('"id":0', '"id":12345678901234567890')), status: 400, code: -32600, reason: ID_REASON }),
      onSession({ label: 'a batch', post: post([deleting(3)]), status: 400, code: -32600, tool: '<batch>', reason: /batches are not supported by this gateway \(1 message: tools\/call "delete_thing"\)$/ }),
      onSession({ label: 'Content-Type text/plain', post: post(deleting(4), { 'content-type': 'text/plain' }), status: 415, code: -32000, reason: /^Unsupported Media Type/ }),
      onSession({ label: 'Accept without text/event-stream', post: post(deleting(5), { accept: 'application/json' }), status: 406, code: -32000, reason: /^Not Acceptable/ }),
      onSession({ label: 'an unsupported MCP-Protocol-Version', post: post(deleting(6), { 'mcp-protocol-version': '2099-01-01' }), status: 400, code: -32000, reason: /Unsupported protocol version/ }),
      onSession({ label: 'jsonrpc 1.0', post: post({ ...deleting(7), jsonrpc: '1.0' }), status: 400, code: -32700, reason: /^Parse error: Invalid JSON-RPC message$/ }),
      onSession({ label: 'a 2026-07-28 header without the envelope', post: post(deleting(8), { 'mcp-protocol-version': '2026-07-28' }), status: 400, code: -32602, reason: /^Invalid params: the MCP-Protocol-Version header names protocol revision 2026-07-28/ }),
      onSession({ label: 'not JSON', post: post('{"jsonrpc":'), status: 400, code: -32700, tool: '<invalid message>', reason: /^Parse error: the body is not valid JSON$/ }),
      { label: 'no session', post: () => rawPost(gw.port, deleting(10), bearer('alice')), status: 400, code: -32000, tool: 'delete_thing', reason: /No valid session ID/, session: 'no-session' },
      { label: 'an unknown session', post: post(deleting(11), { 'mcp-session-id': 'no-such-session' }), status: 404, code: -32001, tool: 'delete_thing', reason: /^Session not found$/, session: 'no-session' },
      // Bob's record is his own, never written into Alice's session.
      { label: "another identity's session", post: post(deleting(12), bearer('bob')), status: 403, code: -32600, identity: 'bob', tool: 'delete_thing', reason: /another token/, session: 'no-session' },
    ]);
  } finally {
    await stop(gw);
    await stop(upstream);
  }
});

test('HTTP gateway (2026-07-28): every refused POST is answered and audited under its identity', async () => {
  const { gw, upstream, db } = await gateway('modern');
  try {
    const conn = { era: 'modern' as const };
    const modern = (label: string, body: unknown, reason: RegExp, tool = 'delete_thing'): RefusalCase => ({
      label, post: () => send(gw.port, conn, body, bearer('alice')), status: 400, code: -32600, tool, reason, session: 'modern:alice',
    });
    const invalid = /^Bad Request: the request body is not a valid JSON-RPC message$/;
    await check(db, upstream.port, [
      modern('id null', toolCall(null, 'delete_thing', {}), invalid),
      modern('id 1.5', toolCall(1.5, 'echo', {}), invalid, 'echo'),
      modern('jsonrpc 1.0', { ...toolCall(3, 'delete_thing', {}), jsonrpc: '1.0' }, invalid),
      modern('a batch', [toolCall(4, 'delete_thing', {})], /batch/i, '<batch>'),
      {
        label: 'a 2026-07-28 header without the envelope', post: () => rawPost(gw.port, toolCall(5, 'delete_thing', {}), { ...bearer('alice'), 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'delete_thing' }),
        status: 400, code: -32602, tool: 'delete_thing', reason: /^Invalid params: the MCP-Protocol-Version header names protocol revision 2026-07-28/, session: 'modern:alice',
      },
      {
        label: 'not JSON', post: () => rawPost(gw.port, JSON.stringify(frame('modern', toolCall(6, 'delete_thing', {}))).slice(0, -1), { ...bearer('alice'), 'mcp-protocol-version': '2026-07-28' }),
        status: 400, code: -32700, tool: '<invalid message>', reason: /^Parse error: the body is not valid JSON$/, session: 'modern:alice',
      },
    ]);
  } finally {
    await stop(gw);
    await stop(upstream);
  }
});
