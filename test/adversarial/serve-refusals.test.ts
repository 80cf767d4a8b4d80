/**
 * `serve --policy` audits every POST it refuses before its policy decides it, as the HTTP gateway does
 * (test/adversarial/http-refusals.test.ts): one `deny` / `protocol` record under the identity of the
 * token, whichever layer answered. The listener (a body over the limit or not JSON, standard headers
 * that contradict the body), serve's own session routing (no session, an unknown one, another
 * identity's) and the SDK's session transport (an unsupported MCP-Protocol-Version, a body that is not
 * JSON-RPC 2.0). Before, only the gateway wrote these: an agent probing serve's built-in tools left no
 * trace of what it tried. A refusal on a live session is recorded under that session; any other under
 * `no-session`, or `modern:<identity>` for a request that claims 2026-07-28.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { tempDir } from '../helpers.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { assertRefusalsAudited, frame, openSession, policyAudit, rawPost, send, startServe, stop, toolCall, type RawReply, type RefusalCase } from './http-helpers.js';

const tmp = tempDir('egress-adv-serve-refusals-');
after(() => tmp.cleanup());

const TOKENS = { alice: 'alice-token-0123456789abcdef', bob: 'bob-token-0123456789abcdef' };
const bearer = (who: keyof typeof TOKENS) => ({ authorization: `Bearer ${TOKENS[who]}` });

test('serve --policy: every refused POST is answered and audited under its identity, on both revisions', async () => {
  const policy = join(tmp.dir, 'policy.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const grants = join(tmp.dir, 'grants.yaml');
  writeFileSync(grants, 'grants:\n  - { identity: alice, token_env: ALICE_TOKEN }\n  - { identity: bob, token_env: BOB_TOKEN }\n');
  const db = join(tmp.dir, 'serve.db');
  SqliteStore.open(db).close();
  const serve = await startServe(db, ['--policy', policy, '--grants', grants], { ALICE_TOKEN: TOKENS.alice, BOB_TOKEN: TOKENS.bob });
  try {
    const { sessionId } = await openSession(serve.port, bearer('alice'));
    assert.ok(sessionId);
    const on = { ...bearer('alice'), 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-06-18' };
    const post = (body: unknown, headers: Record<string, string> = {}) => () => rawPost(serve.port, body, { ...on, ...headers });
    const ping = (id: unknown) => toolCall(id, 'ping', {});
    const modern = { era: 'modern' as const };
    const cases: RefusalCase[] = [
      // the listener
      { label: 'not JSON', post: post('{"jsonrpc":'), status: 400, code: -32700, tool: '<invalid message>', reason: /^Parse error: the body is not valid JSON$/, session: sessionId },
      { label: 'a body over 1 MiB', post: post(toolCall(1, 'ping', { pad: 'x'.repeat(1024 * 1024) })), status: 413, code: -32600, tool: '<invalid message>', reason: /^Request body too large/, session: sessionId },
      {
        label: 'an Mcp-Name that names another tool', post: () => send(serve.port, modern, ping(2), { ...bearer('alice'), 'mcp-name': 'get_detection' }),
        status: 400, code: -32020, tool: 'ping', reason: /headers and body disagree/, session: 'modern:alice',
      },
      // serve's session routing
      { label: 'no session', post: () => rawPost(serve.port, ping(3), bearer('alice')), status: 400, code: -32000, tool: 'ping', reason: /missing Mcp-Session-Id/, session: 'no-session', id: 3 },
      { label: 'an unknown session', post: post(ping(4), { 'mcp-session-id': 'no-such-session' }), status: 404, code: -32001, tool: 'ping', reason: /^Session not found/, session: 'no-session', id: 4 },
      // Bob's record is his own, never written into Alice's session.
      { label: "another identity's session", post: post(ping(5), bearer('bob')), status: 403, code: -32000, identity: 'bob', tool: 'ping', reason: /another token/, session: 'no-session', id: 5 },
      // the SDK's session transport
      { label: 'an unsupported MCP-Protocol-Version', post: post(ping(6), { 'mcp-protocol-version': '2099-01-01' }), status: 400, code: -32000, tool: 'ping', reason: /Unsupported protocol version/, session: sessionId },
      { label: 'jsonrpc 1.0', post: post({ ...ping(7), jsonrpc: '1.0' }), status: 400, code: -32700, tool: 'ping', reason: /^Parse error: Invalid JSON-RPC message$/, session: sessionId },
      {
        label: 'a 2026-07-28 body that is not JSON', post: () => rawPost(serve.port, JSON.stringify(frame('modern', ping(8))).slice(0, -1), { ...bearer('alice'), 'mcp-protocol-version': '2026-07-28' }),
        status: 400, code: -32700, tool: '<invalid message>', reason: /^Parse error: the body is not valid JSON$/, session: 'modern:alice',
      },
    ];
    await assertRefusalsAudited(db, cases);
    // Nothing refused ran: the only ping the audit allowed is none.
    assert.deepEqual((await policyAudit(db)).filter((r) => r.decision === 'allow'), []);
  } finally {
    await stop(serve);
  }
});
