/**
 * Unauthenticated and wrongly authenticated writes over HTTP. `serve` beyond loopback needs bearer
 * grants like `gateway`; a request without a known token reaches no tool, and the grant identity is
 * what the rule audit records. The sockets only ever go to 127.0.0.1 (the server listens on 0.0.0.0).
 * The token attacks run at both revisions: on 2025-11-25 a session belongs to the token that opened
 * it; on 2026-07-28 there is no session, every request is checked alone, and a session handle
 * (`_meta["egress-triage/session"]`) is only ever a name within the caller's own identity.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { tempDir } from '../helpers.js';
import { CLI, ERAS, HANDLE_KEY, INIT, answer, call, eventually, open, policyAudit, rawPost, runCli, send, startGateway, startServe, startUpstream, stop, upstreamCounts, type Conn, type Era, type Proc } from './http-helpers.js';

const tmp = tempDir('egress-adv-auth-');
after(() => tmp.cleanup());

const ALICE = 'alice-token-0123456789abcdef';
const BOB = 'bob-token-0123456789abcdef';
/** A second token of Alice's identity (one being rotated in): a 2025-11-25 session is the other token's all the same. */
const ALICE_NEXT = 'alice-next-token-0123456789ab';
const grantsFile = () => {
  const p = join(tmp.dir, 'grants.yaml');
  writeFileSync(p, 'grants:\n  - { identity: alice, token_env: ALICE_TOKEN }\n  - { identity: bob, token_env: BOB_TOKEN }\n  - { identity: alice, token_env: ALICE_NEXT_TOKEN }\n');
  return p;
};
const ENV = { ALICE_TOKEN: ALICE, BOB_TOKEN: BOB, ALICE_NEXT_TOKEN: ALICE_NEXT };
const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

/**
 * Requests that carry no usable token, and Bob's token on what Alice opened: her session on
 * 2025-11-25 (refused: a session belongs to its token), her session handle on 2026-07-28 (runs, as
 * Bob: a handle names a bucket within the caller's identity, never another identity's).
 */
const WRONG_TOKENS: [label: string, headers: Record<string, string>][] = [
  ['no token', {}],
  ['a wrong token', bearer('wrong-token-0123456789abcdef')],
  ["Alice's secret as Basic credentials", { authorization: `Basic ${Buffer.from(`alice:${ALICE}`).toString('base64')}` }],
];
const BOB_ON_ALICE: Record<Era, number> = { legacy: 403, modern: 200 };
/** The handle Alice uses on 2026-07-28, and Bob tries. */
const ALICE_HANDLE = { [HANDLE_KEY]: 'alice-thread-1' };

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

for (const era of ERAS) test(`serve with grants on 0.0.0.0 (${era}): no token or a wrong one gets 401 and changes nothing; the rule audit names the grant identity`, async () => {
  const db = emptyStore(`serve-${era}.db`);
  let serve: Proc | undefined;
  try {
    serve = await startServe(db, ['--listen', '0.0.0.0:0', '--grants', grantsFile()], ENV);
    assert.match(serve.output(), /every request needs a bearer token/);
    // Nothing opens without a valid token.
    for (const [label, h] of WRONG_TOKENS) {
      const r = await open(era, serve.port, h);
      assert.equal(r.reply.status, 401, label);
      assert.equal(r.reply.headers['www-authenticate'], 'Bearer');
    }
    const alice = await open(era, serve.port, bearer(ALICE));
    assert.ok(alice.conn, alice.reply.text.slice(0, 200));
    let id = 1;
    const create = (name: string, h: Record<string, string>) =>
      call(serve!.port, alice.conn!, id++, 'create_suppression_rule', { name, conditions: { process: 'vendor-agent', process_sha256: 'c'.repeat(64), repo: `acme/${name}` }, confirm: true }, h, era === 'modern' ? ALICE_HANDLE : {});
    // Alice's session (or handle), without or with a wrong token: nothing is written.
    for (const [label, h] of WRONG_TOKENS) assert.equal((await create(label.replace(/\W+/g, '-'), h)).status, 401, label);
    const bob = await create('bob', bearer(BOB));
    assert.equal(bob.status, BOB_ON_ALICE[era], "Bob cannot use Alice's session; her handle is only a name within his own identity");
    // nor can another token of her own identity (it may carry another policy)
    if (era === 'legacy') assert.equal((await create('alice-next', bearer(ALICE_NEXT))).status, 403);
    const ok = await create('alice', bearer(ALICE));
    assert.equal(ok.status, 200);
    const result = answer(ok)!.result;
    assert.notEqual(result.isError, true, JSON.stringify(result));
    const ruleId = result.structuredContent.rule.rule_id as string;
    // An unauthenticated delete (the reported attack) does nothing.
    const del = (h: Record<string, string>) => call(serve!.port, alice.conn!, id++, 'delete_suppression_rule', { ruleId, confirm: true }, h);
    assert.equal((await del({})).status, 401);
    const rules = await runCli(['rules', 'list', '--db', db, '--tenant', 'demo', '--json']);
    assert.deepEqual((JSON.parse(rules.stdout).rules as { name: string }[]).map((r) => r.name).sort(), era === 'modern' ? ['alice', 'bob'] : ['alice'], rules.stdout);
    assert.equal(answer(await del(bearer(ALICE)))?.result?.isError, undefined);
    const audit = JSON.parse((await runCli(['rules', 'audit', '--db', db, '--tenant', 'demo', '--json'])).stdout).audit as { action: string; actor: string; after: { name?: string } | null }[];
    assert.deepEqual(
      audit.map((a) => [a.action, a.actor]).sort(),
      [
        ['create', 'mcp:alice'],
        ...(era === 'modern' ? [['create', 'mcp:bob']] : []),
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

for (const era of ERAS) test(`HTTP gateway (${era}): unauthenticated and wrongly authenticated writes reach no upstream and no call's audit record`, async () => {
  const policy = join(tmp.dir, `gw-${era}.yaml`);
  writeFileSync(policy, 'version: 1\ndefault: allow\ntools:\n  write_thing: { rate_limit: { max: 5, window: 3600, scope: session } }\n');
  const db = join(tmp.dir, `gw-${era}.db`);
  const upstream = await startUpstream();
  let gw: Proc | undefined;
  try {
    gw = await startGateway(policy, db, upstream.port, ['--listen', '0.0.0.0:0', '--grants', grantsFile()], ENV);
    for (const [label, h] of WRONG_TOKENS) assert.equal((await open(era, gw.port, h)).reply.status, 401, label);
    const alice = await open(era, gw.port, bearer(ALICE));
    assert.ok(alice.conn);
    const meta = era === 'modern' ? ALICE_HANDLE : {};
    let id = 1;
    const write = (h: Record<string, string>, conn: Conn = alice.conn!) => call(gw!.port, conn, id++, 'write_thing', { owner: 'x' }, h, meta);
    for (const [label, h] of WRONG_TOKENS) assert.equal((await write(h)).status, 401, label);
    const bob = await write(bearer(BOB));
    assert.equal(bob.status, BOB_ON_ALICE[era]);
    if (era === 'legacy') assert.equal((await write(bearer(ALICE_NEXT))).status, 403, "another token of Alice's identity");
    // A refused request is not a JSON-RPC batch smuggling route either.
    assert.equal((await send(gw.port, alice.conn!, [{ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'write_thing', arguments: {} } }])).status, 401);
    const ok = await write(bearer(ALICE));
    assert.equal(ok.status, 200);
    assert.equal(answer(ok)?.result?.isError, undefined, ok.text);
    assert.deepEqual(await upstreamCounts(upstream.port), { write_thing: era === 'modern' ? 2 : 1 });
    const rows = await eventually(async () => {
      const r = (await policyAudit(db)).filter((x) => x.tool === 'write_thing');
      return r.length >= (era === 'modern' ? 2 : 3) ? r : undefined;
    }, 'the audit records');
    // Bob is authenticated: his write on Alice's 2025-11-25 session is refused (403) and audited as his;
    // so is the write of Alice's other token there, under her identity.
    const refused = era === 'modern' ? [['bob', 'allow', 'ok']] : [['bob', 'deny', 'not_forwarded'], ['alice', 'deny', 'not_forwarded']];
    assert.deepEqual(rows.map((r) => [r.identity, r.decision, r.upstream]).sort(), [...refused, ['alice', 'allow', 'ok']].sort());
    if (era === 'modern') {
      // The same handle under two identities is two sessions: Bob spent none of Alice's quota.
      const [a, b] = [rows.find((r) => r.identity === 'alice')!, rows.find((r) => r.identity === 'bob')!];
      assert.notEqual(a.session, b.session);
    }
  } finally {
    await stop(gw);
    await stop(upstream);
  }
});

for (const era of ERAS) test(`serve without --policy (${era}): a grant's own policy polices that identity only, in one shared runtime`, async () => {
  const db = emptyStore(`grant-policy-${era}.db`);
  const bobPolicy = join(tmp.dir, 'bob-policy.yaml');
  writeFileSync(bobPolicy, 'version: 1\ndefault: allow\ntools:\n  create_suppression_rule:\n    action: deny\n    reason: "bob only reads"\n');
  const grants = join(tmp.dir, 'grants-with-policy.yaml');
  writeFileSync(grants, 'grants:\n  - { identity: alice, token_env: ALICE_TOKEN }\n  - { identity: bob, token_env: BOB_TOKEN, policy: ./bob-policy.yaml }\n');
  let serve: Proc | undefined;
  try {
    serve = await startServe(db, ['--grants', grants], ENV);
    const create = async (token: string, name: string) => {
      const s = await open(era, serve!.port, bearer(token));
      assert.ok(s.conn);
      const r = await call(serve!.port, s.conn!, 1, 'create_suppression_rule', { name, conditions: { process: 'vendor-agent', repo: `acme/${name}` }, confirm: true }, bearer(token));
      return answer(r)!.result;
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

/** The `<unauthenticated>` rows once at least `n` are on record (the first of each kind is written at once). */
function firstRefusalsOnRecord(db: string, n: number): Promise<ReturnType<typeof unauthenticatedRows>> {
  return eventually(async () => {
    const u = unauthenticatedRows(await policyAudit(db));
    return u.rows.length >= n ? u : undefined;
  }, 'the first refusals on record');
}

/** The `<unauthenticated>` audit rows: [rule, reason] of each, and how many requests they account for. */
function unauthenticatedRows(rows: Record<string, any>[]): { rows: [string, string][]; counted: Record<string, number> } {
  const mine = rows.filter((r) => r.tool === '<unauthenticated>');
  for (const r of mine) {
    assert.equal(r.identity, 'unauthenticated');
    assert.equal(r.session, 'remote:127.0.0.1');
    assert.equal(r.decision, 'deny');
    assert.equal(r.upstream, 'not_forwarded');
  }
  const counted: Record<string, number> = {};
  for (const r of mine) {
    const kind = (r.reason as string).replace(/ \(\d+ more .*$/, '');
    const more = /\((\d+) more from 127\.0\.0\.1 in the 60 s after \S+\)$/.exec(r.reason);
    counted[kind] = (counted[kind] ?? 0) + (more ? Number(more[1]) : 1);
  }
  return { rows: mine.map((r) => [r.rule, r.reason]), counted };
}

for (const [name, start] of [
  ['HTTP gateway', async (db: string) => {
    const policy = join(tmp.dir, 'guess-policy.yaml');
    writeFileSync(policy, 'version: 1\ndefault: allow\n');
    const upstream = await startUpstream();
    const gw = await startGateway(policy, db, upstream.port, ['--listen', '0.0.0.0:0', '--grants', grantsFile()], ENV);
    return { proc: gw, stopAll: async () => { await stop(gw); await stop(upstream); } };
  }],
  ['serve --policy', async (db: string) => {
    const policy = join(tmp.dir, 'guess-serve-policy.yaml');
    writeFileSync(policy, 'version: 1\ndefault: allow\n');
    SqliteStore.open(db).close();
    const serve = await startServe(db, ['--listen', '0.0.0.0:0', '--grants', grantsFile(), '--policy', policy], ENV);
    return { proc: serve, stopAll: () => stop(serve) };
  }],
] as const) test(`${name}: requests refused without a valid token or from a foreign Host are audited, the first at once and the rest as one tally per address`, async () => {
  const db = join(tmp.dir, `guess-${name.replace(/\W+/g, '-')}.db`);
  const { proc, stopAll } = await start(db);
  let stopped = false;
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await rawPost(proc.port, INIT, bearer(`guess-${i}-0123456789abcdef`))).status);
    for (let i = 0; i < 3; i++) statuses.push((await rawPost(proc.port, INIT, {})).status);
    for (let i = 0; i < 2; i++) statuses.push((await rawPost(proc.port, INIT, { ...bearer(ALICE), host: `evil${i}.example:80` })).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 401, 401, 401, 403, 403]);
    // the first of each kind is on record before the gateway stops
    const first = await firstRefusalsOnRecord(db, 3);
    assert.deepEqual(first.rows.sort(), [
      ['auth', 'Unauthorized: missing bearer token'],
      ['auth', 'Unauthorized: unknown bearer token'],
      ['host_origin', 'Forbidden: Host "evil0.example" is not one this server answers to (DNS-rebinding protection; see --allowed-host)'],
    ]);
    await stopAll();
    stopped = true;
    // stopping records the tallies: every refused request is accounted for, in six records, not eleven
    const all = unauthenticatedRows(await policyAudit(db));
    assert.equal(all.rows.length, 6, JSON.stringify(all.rows));
    assert.deepEqual(all.counted, {
      'Unauthorized: unknown bearer token': 6,
      'Unauthorized: missing bearer token': 3,
      'Forbidden: Host "evil0.example" is not one this server answers to (DNS-rebinding protection; see --allowed-host)': 2,
    });
  } finally {
    if (!stopped) await stopAll();
  }
});

/** A sign-in form posted to the dashboard of `serve`, as a browser would (Origin of the page, form body). */
function signIn(port: number, token: string | null, origin: string | null = `http://127.0.0.1:${port}`): Promise<number> {
  return new Promise((resolve, reject) => {
    const body = token === null ? 'next=%2F' : `token=${encodeURIComponent(token)}&next=%2F`;
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': String(Buffer.byteLength(body)) };
    if (origin !== null) headers.origin = origin;
    const req = request({ host: '127.0.0.1', port, path: '/signin', method: 'POST', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

test('serve --policy: sign-ins the dashboard refuses are audited with the MCP route\'s refusals, tallied per address; a good one is not', async () => {
  const db = join(tmp.dir, 'guess-signin.db');
  const policy = join(tmp.dir, 'guess-signin-policy.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  SqliteStore.open(db).close();
  const serve = await startServe(db, ['--listen', '0.0.0.0:0', '--grants', grantsFile(), '--policy', policy], ENV);
  let stopped = false;
  try {
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push(await signIn(serve.port, `guess-${i}-0123456789abcdef`));
    for (let i = 0; i < 2; i++) statuses.push(await signIn(serve.port, null));
    statuses.push(await signIn(serve.port, ALICE, 'http://evil.example'));
    statuses.push(await signIn(serve.port, ALICE, null));
    statuses.push(await signIn(serve.port, ALICE));
    assert.deepEqual(statuses, [401, 401, 401, 401, 401, 401, 401, 403, 403, 303]);
    const first = await firstRefusalsOnRecord(db, 4);
    // a foreign Origin is refused by the listener's Host/Origin check before the dashboard sees it; a
    // missing one (no browser leaves it out of a POST) by the dashboard's own
    assert.deepEqual(first.rows.sort(), [
      ['auth', 'Unauthorized: dashboard sign-in with an unknown token'],
      ['auth', 'Unauthorized: dashboard sign-in without a token'],
      ['host_origin', 'Forbidden: Origin "evil.example" is not allowed (DNS-rebinding protection; see --allowed-host)'],
      ['host_origin', 'Forbidden: dashboard sign-in without an Origin, or from another origin'],
    ]);
    await stop(serve);
    stopped = true;
    const all = unauthenticatedRows(await policyAudit(db));
    assert.deepEqual(all.counted, {
      'Unauthorized: dashboard sign-in with an unknown token': 5,
      'Unauthorized: dashboard sign-in without a token': 2,
      'Forbidden: Origin "evil.example" is not allowed (DNS-rebinding protection; see --allowed-host)': 1,
      'Forbidden: dashboard sign-in without an Origin, or from another origin': 1,
    });
    // Alice's sign-in is no refusal: nothing else is on record
    assert.equal((await policyAudit(db)).length, all.rows.length);
  } finally {
    if (!stopped) await stop(serve);
  }
});
