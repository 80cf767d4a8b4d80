import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/client';
import { admitted, startReplicas, text } from './replicas.js';
import { waitFor } from '../gateway/helpers.js';

const POLICY = `version: 1
default: allow
tools:
  echo:
    rate_limit:
      - { max: 3, window: 3600, scope: client }
      - { max: 100, window: 3600, scope: global }
  secret_tool: { rate_limit: { max: 2, window: 3600, scope: client } }
  write_thing: { action: require_approval, approval_timeout: 120 }
`;

const IDENTITIES = 50;

test('three gateway replicas on one Redis: a global max of 100 admits exactly 100, per-client limits are exact, and an approval on one replica releases the call held on another', async () => {
  const r = await startReplicas(POLICY, IDENTITIES);
  try {
    // 50 clients, each with a session on two different replicas: 100 sessions over 3 processes.
    const sessions: Client[][] = await Promise.all(
      r.tokens.map(async (tok, i) => Promise.all([r.connect(i % 3, tok), r.connect((i + 1) % 3, tok)])),
    );

    // Per client only: 3 calls on each of its two sessions at once, max 2 per client across replicas.
    const perClient = await Promise.all(
      sessions.map(async (ss, i) => (await Promise.all(ss.flatMap((c, j) => [0, 1, 2].map((k) => admitted(c, 'secret_tool', { password: `${i}-${j}-${k}` }))))).filter(Boolean).length),
    );
    assert.deepEqual(perClient, Array(IDENTITIES).fill(2), 'every client gets exactly its 2 calls, whichever replicas they went through');

    // Client max 3 and global max 100: 4 calls per client (200) at once, 150 client slots, 100 global ones.
    const reasons: string[] = [];
    const perClientEcho = await Promise.all(
      sessions.map(async (ss, i) => (await Promise.all(ss.flatMap((c, j) => [0, 1].map((k) => admitted(c, 'echo', { text: `${i}-${j}-${k}` }, reasons))))).filter(Boolean).length),
    );
    assert.equal(perClientEcho.reduce((a, b) => a + b, 0), 100, 'the global limit admits exactly 100 across the three replicas');
    assert.ok(perClientEcho.every((n) => n <= 3), `no client over its limit of 3: ${perClientEcho.join(',')}`);
    assert.equal(reasons.length, 100);
    assert.ok(reasons.every((s) => /^\[POLICY DENIED\] rate limit exceeded for "echo"/.test(s)), reasons.find((s) => !/rate limit/.test(s)));

    // The upstream saw exactly what was admitted.
    const stats = JSON.parse(text(await sessions[0]![0]!.callTool({ name: 'stats', arguments: {} })));
    assert.equal(stats.echo, 100);
    assert.equal(stats.secret_tool, 100);

    // Approval: the call is held on replica B, an admin approves through replica A's API.
    const agent = sessions[1]![0]!; // client-1's session on replica 1
    const held = agent.callTool({ name: 'write_thing', arguments: { owner: 'team-a' } }, { timeout: 60_000 });
    const api = r.urls[0]!.replace(/\/mcp$/, '/policy/approvals');
    const auth = { authorization: `Bearer ${r.admin}` };
    const pending = await waitFor(async () => {
      const list = (await (await fetch(api, { headers: auth })).json()) as { approvals: { id: string; tool: string; identity: string; args_preview: string }[] };
      return list.approvals.find((a) => a.tool === 'write_thing');
    });
    assert.equal(pending.identity, 'client-1');
    assert.equal(pending.args_preview, '{"owner":"team-a"}');
    const ok = await fetch(`${api}/${pending.id}/approve`, { method: 'POST', headers: auth, body: '{}' });
    assert.equal(ok.status, 200);
    assert.equal(text(await held), 'write_thing ok {"owner":"team-a"}');
    // Single use: the same call again waits for a new approval (denied here through replica C).
    const again = agent.callTool({ name: 'write_thing', arguments: { owner: 'team-a' } }, { timeout: 60_000 });
    const api2 = r.urls[2]!.replace(/\/mcp$/, '/policy/approvals');
    const second = await waitFor(async () => {
      const list = (await (await fetch(api2, { headers: auth })).json()) as { approvals: { id: string }[] };
      return list.approvals.find((a) => a.id !== pending.id);
    });
    assert.equal((await fetch(`${api2}/${second.id}/deny`, { method: 'POST', headers: auth, body: '{"reason":"not now"}' })).status, 200);
    assert.match(text(await again), /^\[POLICY DENIED\] approval apr_\w+ was denied by http:ops: not now/);
  } finally {
    await r.close();
  }
});
