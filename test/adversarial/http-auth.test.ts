/**
 * Unauthenticated and wrongly authenticated writes over HTTP. `serve` beyond loopback needs bearer
 * grants like `gateway`; a request without a known token reaches no tool, and the grant identity is
 * what the rule audit records. The sockets only ever go to 127.0.0.1 (the server listens on 0.0.0.0).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { tempDir } from '../helpers.js';
import { CLI, callTool, eventually, openSession, policyAudit, rawPost, runCli, startGateway, startServe, startUpstream, stop, upstreamCounts, type Proc } from './http-helpers.js';

const tmp = tempDir('egress-adv-auth-');
after(() => tmp.cleanup());

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdef';
const grantsFile = () => {
  const p = join(tmp.dir, 'grants.yaml');
  writeFileSync(p, 'grants:\n  - { identity: alice, token_env: ALICE_TOKEN }\n  - { identity: bob, token_env: BOB_TOKEN }\n');
  return p;
};
const ENV = { ALICE_TOKEN: ALICE, BOB_TOKEN: BOB };
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

function emptyStore(name: string): string {
  const db = join(tmp.dir, name);
  SqliteStore.open(db).close();
  return db;
}

/** Runs a command that must exit by itself; kills it (and fails) if it is still running after 20 s. */
function exitOf(args: string[]): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', (code, signal) => {
      clearTimeout(t);
      resolve({ code: signal ? -1 : code, stderr });
    });
  });
}

test('serve refuses a non-loopback address without grants: exit 4 (refused), a clear message, no stack', async () => {
  const db = emptyStore('refuse.db');
  for (const listen of ['0.0.0.0:0', '[::]:0']) {
    const r = await exitOf(['serve', '--db', db, '--tenant', 'demo', '--listen', listen]);
    assert.equal(r.code, 4, `${listen}: ${r.stderr}`);
    assert.match(r.stderr, /refusing to listen on non-loopback address .* without bearer tokens: give --grants FILE/);
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
});

test('serve with grants on 0.0.0.0: no token or a wrong one gets 401 and changes nothing; the rule audit names the grant identity', async () => {
  const db = emptyStore('serve.db');
  let serve: Proc | undefined;
  try {
    serve = await startServe(db, ['--listen', '0.0.0.0:0', '--grants', grantsFile()], ENV);
    assert.match(serve.output(), /every request needs a bearer token/);
    // No session without a valid token.
    for (const h of [{}, bearer('wrong-token-0123456789abcdef'), { authorization: `Basic ${Buffer.from(`alice:${ALICE}`).toString('base64')}` }]) {
      const r = await openSession(serve.port, h);
      assert.equal(r.reply.status, 401, JSON.stringify(h));
      assert.equal(r.reply.headers['www-authenticate'], 'Bearer');
    }
    const alice = await openSession(serve.port, bearer(ALICE));
    assert.ok(alice.sessionId, alice.reply.text.slice(0, 200));
    const create = (id: number, name: string, h: Record<string, string>) =>
      callTool(serve!.port, alice.sessionId!, id, 'create_suppression_rule', { name, conditions: { process: 'vendor-agent', process_sha256: 'c'.repeat(64) }, confirm: true }, h);
    // Alice's session, without or with a wrong token, or with Bob's: nothing is written.
    assert.equal((await create(1, 'anonymous', {})).status, 401);
    assert.equal((await create(2, 'wrong', bearer('wrong-token-0123456789abcdef'))).status, 401);
    assert.equal((await create(3, 'bob', bearer(BOB))).status, 403, "Bob cannot use Alice's session");
    const ok = await create(4, 'alice', bearer(ALICE));
    assert.equal(ok.status, 200);
    const result = ok.messages.at(-1)!.result;
    assert.notEqual(result.isError, true, JSON.stringify(result));
    const ruleId = result.structuredContent.rule.rule_id as string;
    // An unauthenticated delete (the reported attack) does nothing.
    const del = (id: number, h: Record<string, string>) => callTool(serve!.port, alice.sessionId!, id, 'delete_suppression_rule', { ruleId, confirm: true }, h);
    assert.equal((await del(5, {})).status, 401);
    const rules = await runCli(['rules', 'list', '--db', db, '--tenant', 'demo', '--json']);
    assert.equal(JSON.parse(rules.stdout).rules.length, 1, rules.stdout);
    assert.equal((await del(6, bearer(ALICE))).messages.at(-1)?.result?.isError, undefined);
    const audit = JSON.parse((await runCli(['rules', 'audit', '--db', db, '--tenant', 'demo', '--json'])).stdout).audit as { action: string; actor: string; after: { name?: string } | null }[];
    assert.deepEqual(
      audit.map((a) => [a.action, a.actor]).sort(),
      [
        ['create', 'mcp:alice'],
        ['delete', 'mcp:alice'],
      ],
    );
  } finally {
    await stop(serve);
  }
});

test('serve: --actor or --identity with --grants is refused (the token names who acts)', async () => {
  const db = emptyStore('conflict.db');
  const r = await runCli(['serve', '--db', db, '--listen', '127.0.0.1:0', '--grants', grantsFile(), '--actor', 'someone-else'], ENV);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--actor cannot be combined with --grants/);
});

test('HTTP gateway: unauthenticated and wrongly authenticated writes reach no upstream and no audit record', async () => {
  const policy = join(tmp.dir, 'gw.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const db = join(tmp.dir, 'gw.db');
  const upstream = await startUpstream();
  let gw: Proc | undefined;
  try {
    gw = await startGateway(policy, db, upstream.port, ['--listen', '0.0.0.0:0', '--grants', grantsFile()], ENV);
    assert.equal((await openSession(gw.port)).reply.status, 401);
    const alice = await openSession(gw.port, bearer(ALICE));
    assert.ok(alice.sessionId);
    const write = (id: number, h: Record<string, string>) => callTool(gw!.port, alice.sessionId!, id, 'write_thing', { owner: 'x' }, h);
    assert.equal((await write(1, {})).status, 401);
    assert.equal((await write(2, bearer('wrong-token-0123456789abcdef'))).status, 401);
    assert.equal((await write(3, bearer(BOB))).status, 403);
    // A refused request is not a JSON-RPC batch smuggling route either.
    assert.equal((await rawPost(gw.port, [{ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'write_thing', arguments: {} } }], { 'mcp-session-id': alice.sessionId! })).status, 401);
    assert.equal((await write(4, bearer(ALICE))).status, 200);
    assert.deepEqual(await upstreamCounts(upstream.port), { write_thing: 1 });
    const rows = await eventually(async () => {
      const r = (await policyAudit(db)).filter((x) => x.tool === 'write_thing');
      return r.length >= 1 ? r : undefined;
    }, 'the audit record');
    assert.deepEqual(rows.map((r) => [r.identity, r.decision, r.upstream]), [['alice', 'allow', 'ok']]);
  } finally {
    await stop(gw);
    await stop(upstream);
  }
});

test("serve without --policy: a grant's own policy polices that identity only, in one shared runtime", async () => {
  const db = emptyStore('grant-policy.db');
  const bobPolicy = join(tmp.dir, 'bob-policy.yaml');
  writeFileSync(bobPolicy, 'version: 1\ndefault: allow\ntools:\n  create_suppression_rule:\n    action: deny\n    reason: "bob only reads"\n');
  const grants = join(tmp.dir, 'grants-with-policy.yaml');
  writeFileSync(grants, 'grants:\n  - { identity: alice, token_env: ALICE_TOKEN }\n  - { identity: bob, token_env: BOB_TOKEN, policy: ./bob-policy.yaml }\n');
  let serve: Proc | undefined;
  try {
    serve = await startServe(db, ['--grants', grants], ENV);
    const create = async (token: string, name: string) => {
      const s = await openSession(serve!.port, bearer(token));
      assert.ok(s.sessionId);
      const r = await callTool(serve!.port, s.sessionId!, 1, 'create_suppression_rule', { name, conditions: { process: 'vendor-agent', repo: `acme/${name}` }, confirm: true }, bearer(token));
      return r.messages.at(-1)!.result;
    };
    const bob = await create(BOB, 'bob');
    assert.equal(bob.isError, true);
    assert.equal(bob.content[0].text, '[POLICY DENIED] bob only reads');
    assert.notEqual((await create(ALICE, 'alice')).isError, true);
    const audit = JSON.parse((await runCli(['rules', 'audit', '--db', db, '--tenant', 'demo', '--json'])).stdout).audit as { actor: string }[];
    assert.deepEqual(audit.map((a) => a.actor), ['mcp:alice']);
    const rows = await eventually(async () => {
      const r = await policyAudit(db);
      return r.length >= 1 ? r : undefined;
    }, 'the policy audit record');
    assert.deepEqual(rows.map((r) => [r.identity, r.tool, r.decision]), [['bob', 'create_suppression_rule', 'deny']]);
  } finally {
    await stop(serve);
  }
});
