import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ERAS, FIXTURE, REVISION, cli, stdioGatewayClient, text, tmpDir, waitFor } from './helpers.js';

const DENIED = /^\[POLICY DENIED\] /;

for (const era of ERAS) test(`stdio gateway (${REVISION[era]}): deny, hide on paged tools/list, rate limit with retry time, conditions, audit without argument values`, async () => {
  const t = tmpDir();
  const policy = t.file(
    'p.yaml',
    `version: 1
default: allow
hide: [delete_thing, "bulk_1*"]
tools:
  echo:
    rate_limit: { max: 3, window: 60 }
    audit_args: plain
  write_thing: { action: deny, reason: "no writes here" }
  add:
    when:
      - { path: args.a, op: gt, value: 100, action: deny, reason: "too big" }
`,
  );
  const { client, transport } = await stdioGatewayClient(policy, t.db, { era });
  try {
    assert.equal(client.getNegotiatedProtocolVersion(), REVISION[era]);
    // Paged listing through the gateway (the client walks the fixture's pages of 10): hidden tools vanish
    // from every page, the rest are untouched.
    const names = (await client.listTools()).tools.map((x) => x.name);
    assert.ok(!names.includes('delete_thing'));
    assert.ok(!names.some((n) => /^bulk_1\d$/.test(n)));
    assert.ok(names.includes('bulk_09') && names.includes('bulk_20') && names.includes('echo'));
    assert.equal(names.length, 42 - 1 - 10);

    for (let i = 0; i < 3; i++) assert.equal(text(await client.callTool({ name: 'echo', arguments: { text: `hi${i}` } })), `hi${i}`);
    const limited = await client.callTool({ name: 'echo', arguments: { text: 'again' } });
    assert.equal(limited.isError, true);
    assert.match(text(limited), DENIED);
    assert.match(text(limited), /retry after \d+s/);

    const hidden = await client.callTool({ name: 'delete_thing', arguments: { id: 'x' } });
    assert.equal(hidden.isError, true);
    assert.match(text(hidden), /\[POLICY DENIED\] .*hidden/);
    const denied = await client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } });
    assert.equal(text(denied), '[POLICY DENIED] no writes here');
    assert.match(text(await client.callTool({ name: 'add', arguments: { a: 101, b: 1 } })), /\[POLICY DENIED\] too big/);
    assert.equal(text(await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })), '3');
    assert.equal(text(await client.callTool({ name: 'secret_tool', arguments: { password: 'hunter2-very-secret' } })), 'secret_tool ok {"password":"hunter2-very-secret"}');

    // Nothing denied reached the server.
    const stats = JSON.parse(text(await client.callTool({ name: 'stats', arguments: {} })));
    assert.equal(stats.echo, 3);
    assert.equal(stats.delete_thing, undefined);
    assert.equal(stats.write_thing, undefined);
    assert.equal(stats.add, 1);
  } finally {
    await client.close();
  }
  await waitFor(() => transport.pid === null || undefined, 5000).catch(() => undefined);
  const audit = await cli(['audit', '--db', t.db, '--jsonl']);
  assert.equal(audit.code, 0, audit.stderr);
  const recs = audit.stdout.trim().split('\n').map((l) => JSON.parse(l));
  const byTool = (n: string) => recs.filter((r) => r.tool === n);
  assert.deepEqual(byTool('echo').map((r) => r.decision), ['allow', 'allow', 'allow', 'rate_limited']);
  assert.equal(byTool('echo')[0].upstream, 'ok');
  assert.deepEqual(byTool('echo')[0].args, { text: 'hi0' }, 'audit_args: plain opts in');
  assert.equal(byTool('write_thing')[0].decision, 'deny');
  assert.match(byTool('write_thing')[0].rule, /tools\.write_thing \(line 8\)/);
  assert.equal(byTool('delete_thing')[0].rule, 'hide');
  const secret = byTool('secret_tool')[0];
  assert.equal(secret.decision, 'allow');
  assert.match(secret.args_hash, /^[0-9a-f]{32}$/);
  assert.equal(secret.args, undefined);
  for (const r of recs) {
    assert.ok(r.ts && r.session && r.identity && typeof r.latency_ms === 'number' && r.upstream, JSON.stringify(r));
  }
  const jsonl = readFileSync(join(t.dir, 'policy-audit.jsonl'), 'utf8');
  assert.ok(jsonl.includes('"secret_tool"'));
  assert.ok(!jsonl.includes('hunter2'), 'argument values never reach the JSONL audit');
  assert.ok(!audit.stdout.includes('hunter2'));
  const filtered = await cli(['audit', '--db', t.db, '--jsonl', '--decision', 'rate_limited', '--since', '1h']);
  assert.equal(filtered.stdout.trim().split('\n').length, 1);
  // --json is one document, as every command's: the same records as an array, [] when none matches
  const doc = await cli(['audit', '--db', t.db, '--json']);
  assert.deepEqual(JSON.parse(doc.stdout), recs);
  const none = await cli(['audit', '--db', t.db, '--json', '--tool', 'no_such_tool']);
  assert.deepEqual([none.code, JSON.parse(none.stdout)], [0, []]);
  assert.equal((await cli(['audit', '--db', t.db, '--json', '--jsonl'])).code, 2);
  t.cleanup();
});

test('stdio gateway, raw protocol: batches get -32600, bad tools/call params are denied, ids are preserved', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\ndefault: allow\n');
  const child = spawn(process.execPath, [CLI, 'gateway', '--policy', policy, '--db', t.db, '--', process.execPath, FIXTURE], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  const send = (m: unknown) => child.stdin.write(JSON.stringify(m) + '\n');
  try {
    send({ jsonrpc: '2.0', id: 'init-1', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    await waitFor(() => lines.find((l) => l.id === 'init-1'));
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    // A batch hiding a call must not reach the server.
    send([{ jsonrpc: '2.0', id: 'b1', method: 'tools/call', params: { name: 'echo', arguments: { text: 'smuggled' } } }]);
    const batchErr = await waitFor(() => lines.find((l) => l.id === null && (l.error as { code: number })?.code === -32600));
    assert.match((batchErr.error as { message: string }).message, /batch/i);
    send({ jsonrpc: '2.0', id: 'bad-1', method: 'tools/call', params: { name: 42 } });
    send({ jsonrpc: '2.0', id: 'bad-2', method: 'tools/call', params: { name: 'echo', arguments: 'not-an-object' } });
    send({ jsonrpc: '2.0', id: 'bad-3', method: 'tools/call' });
    send({ jsonrpc: '2.0', id: 'ok-1', method: 'tools/call', params: { name: 'stats', arguments: {} } });
    for (const id of ['bad-1', 'bad-2', 'bad-3']) {
      const r = await waitFor(() => lines.find((l) => l.id === id));
      const res = r.result as { isError: boolean; content: { text: string }[] };
      assert.equal(res.isError, true);
      assert.match(res.content[0]!.text, /^\[POLICY DENIED\] tools\/call params are invalid/);
    }
    const stats = await waitFor(() => lines.find((l) => l.id === 'ok-1'));
    assert.deepEqual(JSON.parse((stats.result as { content: { text: string }[] }).content[0]!.text), { stats: 1 });
    send({ jsonrpc: '2.0', id: 7, method: 'ping' });
    assert.deepEqual(await waitFor(() => lines.find((l) => l.id === 7)), { jsonrpc: '2.0', id: 7, result: {} });
    assert.ok(!lines.some((l) => l.id === 'b1'), 'no answer for a batch member: it was never processed');
  } finally {
    child.stdin.end();
    await new Promise((r) => child.once('exit', r));
    t.cleanup();
  }
});

for (const era of ERAS) test(`stdio gateway (${REVISION[era]}): concurrency, no over-admission; quota kept after an upstream error, a timeout and a cancellation; crash`, async () => {
  const t = tmpDir();
  const tools = `tools:
  add: { rate_limit: { max: 5, window: 60 } }
  fail_rpc: { rate_limit: { max: 1, window: 60 } }
  slow: { rate_limit: { max: 1, window: 60 } }
`;
  // Only the timeout check uses a short call_timeout: elsewhere a loaded machine may take longer than
  // that to run a 700 ms call, and the test must not depend on the machine's speed.
  const policy = t.file('p.yaml', `version: 1\ncall_timeout: 120\n${tools}`);
  const timeoutPolicy = t.file('timeout.yaml', `version: 1\ncall_timeout: 1.5\n${tools}`);
  const { client } = await stdioGatewayClient(policy, t.db, { era });
  try {
    // A slow call does not hold up a fast one behind it: the slow one is answered only after the fast one.
    const order: string[] = [];
    const slowP = client.callTool({ name: 'slow', arguments: { ms: 700 } }).then(() => order.push('slow'));
    await client.callTool({ name: 'echo', arguments: { text: 'fast' } }).then(() => order.push('fast'));
    await slowP;
    assert.deepEqual(order, ['fast', 'slow']);

    // 20 calls at once against max 5: exactly 5 get through.
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => client.callTool({ name: 'add', arguments: { a: i, b: 0 } })));
    assert.equal(results.filter((r) => !r.isError).length, 5);
    assert.equal(results.filter((r) => DENIED.test(text(r))).length, 15);

    // An internal error (-32603) may come after the tool ran: the single slot stays used.
    await assert.rejects(client.callTool({ name: 'fail_rpc', arguments: {} }), /fixture failure/);
    assert.match(text(await client.callTool({ name: 'fail_rpc', arguments: {} })), /^\[POLICY DENIED\] rate limit exceeded/);
  } finally {
    await client.close();
  }
  // slow (max 1) was used above: a fresh gateway for each of timeout and cancellation.
  const c2 = await stdioGatewayClient(timeoutPolicy, t.db, { era });
  try {
    // Timeout: gateway answers -32001 after call_timeout and cancels upstream; the upstream had the call,
    // so the slot stays used.
    await assert.rejects(client2Call(c2.client, { ms: 5000 }), /did not answer tools\/call within 1.5s.*counts against its rate limit/);
    assert.match(text(await client2Call(c2.client, { ms: 10 })), DENIED, 'a timed-out call keeps its slot');
  } finally {
    await c2.client.close().catch(() => undefined);
  }
  const c3 = await stdioGatewayClient(policy, t.db, { era });
  try {
    // Cancellation after forwarding keeps the slot too.
    const ac = new AbortController();
    const p = c3.client.callTool({ name: 'slow', arguments: { ms: 5000 } }, { signal: ac.signal });
    // The gateway handles messages in order: once a later call is answered, the slow one was forwarded.
    await c3.client.callTool({ name: 'echo', arguments: { text: 'barrier' } });
    ac.abort();
    await assert.rejects(p);
    assert.match(text(await client2Call(c3.client, { ms: 10 })), DENIED, 'a cancelled call keeps its slot');

    // Crash: the pending call gets an error instead of hanging.
    await assert.rejects(c3.client.callTool({ name: 'crash', arguments: {} }), /upstream closed or crashed|Connection closed/);
  } finally {
    await c3.client.close().catch(() => undefined);
  }
  const want = ['fail_rpc:rpc_error', 'slow:timeout', 'slow:cancelled', 'slow:ok', 'crash:crashed'];
  const outcomes = await waitFor(async () => {
    const audit = (await cli(['audit', '--db', t.db, '--jsonl'])).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const o = audit.filter((a) => a.tool === 'slow' || a.tool === 'fail_rpc' || a.tool === 'crash').map((a) => `${a.tool}:${a.upstream}`);
    return want.every((w) => o.includes(w)) ? o : undefined;
  }).catch(() => [] as string[]);
  for (const w of want) assert.ok(outcomes.includes(w), `${w} in ${outcomes.join(',')}`);
  t.cleanup();
});

function client2Call(client: import('@modelcontextprotocol/client').Client, args: Record<string, unknown>) {
  return client.callTool({ name: 'slow', arguments: args }, { timeout: 20_000 });
}

test('stdio gateway: approvals by CLI (approve, deny), timeout, elicitation, upstream elicitation passes through, restart survival', async () => {
  const t = tmpDir();
  const policy = t.file(
    'p.yaml',
    `version: 1
tools:
  write_thing: { action: require_approval, approval_timeout: 30, approval_elicitation: true }
  delete_thing: { action: require_approval, approval_timeout: 1 }
  add: { action: require_approval, approval_timeout: 30 }
`,
  );
  const pending = async (tool: string) =>
    waitFor(async () => {
      const r = await cli(['approvals', 'list', '--db', t.db, '--json']);
      return (JSON.parse(r.stdout) as { id: string; tool: string }[]).find((x) => x.tool === tool);
    });

  // Plain client (no elicitation): decided from the CLI.
  const a = await stdioGatewayClient(policy, t.db, { extraArgs: ['--session-id', 'sess-A'] });
  try {
    const p1 = a.client.callTool({ name: 'write_thing', arguments: { owner: 'acme' } }, { timeout: 30_000 });
    const row = await pending('write_thing');
    const ok = await cli(['approvals', 'approve', row.id, '--db', t.db]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(text(await p1), 'write_thing ok {"owner":"acme"}');

    const p2 = a.client.callTool({ name: 'write_thing', arguments: { owner: 'other' } }, { timeout: 30_000 });
    const row2 = await pending('write_thing');
    const denied = await cli(['approvals', 'deny', row2.id, '--db', t.db, '--reason', 'not this owner', '--json']);
    assert.equal(denied.code, 0, denied.stderr);
    assert.deepEqual(
      (({ id, status, tool, reason }) => ({ id, status, tool, reason }))(JSON.parse(denied.stdout) as { id: string; status: string; tool: string; reason: string }),
      { id: row2.id, status: 'denied', tool: 'write_thing', reason: 'not this owner' },
    );
    const r2 = await p2;
    assert.equal(r2.isError, true);
    assert.match(text(r2), /^\[POLICY DENIED\] approval apr_\w+ was denied by cli:\S+: not this owner/);

    const r3 = await a.client.callTool({ name: 'delete_thing', arguments: { id: '1' } });
    assert.match(text(r3), /^\[POLICY DENIED\] approval .* expired/);
    // It expired by the gateway's own clock, no earlier than its approval_timeout (1 s) after it was filed.
    const expired = (JSON.parse((await cli(['approvals', 'list', '--db', t.db, '--json', '--all'])).stdout) as Record<string, unknown>[]).find(
      (x) => x.tool === 'delete_thing',
    )!;
    assert.equal(expired.status, 'expired', JSON.stringify(expired));
    assert.equal((expired.expires_at as number) - (expired.created_at as number), 1000, JSON.stringify(expired));
    assert.ok((expired.decided_at as number) >= (expired.expires_at as number), JSON.stringify(expired));

    // Restart survival: file an approval, kill the gateway, approve while it is down, restart, retry.
    void a.client.callTool({ name: 'add', arguments: { a: 2, b: 2 } }, { timeout: 30_000 }).catch(() => undefined);
    const row4 = await pending('add');
    const gatewayPid = a.transport.pid;
    await a.client.close();
    await waitFor(() => (gatewayPid === null || !isAlive(gatewayPid) ? true : undefined)); // the gateway is gone
    assert.ok((await pending('add')).id === row4.id, 'still pending after the gateway is gone');
    await cli(['approvals', 'approve', row4.id, '--db', t.db]);
  } finally {
    await a.client.close().catch(() => undefined);
  }
  const b = await stdioGatewayClient(policy, t.db, { extraArgs: ['--session-id', 'sess-A'] });
  try {
    assert.equal(text(await b.client.callTool({ name: 'add', arguments: { a: 2, b: 2 } })), '4');
    const all = JSON.parse((await cli(['approvals', 'list', '--db', t.db, '--json', '--all'])).stdout) as { id: string; status: string }[];
    assert.equal(all.find((x) => x.id === row4Id(all, 'add'))?.status, 'consumed');
  } finally {
    await b.client.close();
  }

  // Elicitation-capable client: the human answers in the client; upstream's own elicitation still flows mid-call.
  const seen: string[] = [];
  const c = await stdioGatewayClient(policy, t.db, { capabilities: { elicitation: { form: {} } } });
  c.client.setRequestHandler('elicitation/create', async (req): Promise<{ action: 'accept'; content: Record<string, string | boolean> }> => {
    seen.push(req.params.message);
    if (req.params.message.includes('Policy requires approval')) {
      const approve = req.params.message.includes('"owner":"yes"');
      return { action: 'accept', content: { approve, reason: approve ? 'looks fine' : 'nope' } };
    }
    return { action: 'accept', content: { value: 'v42' } };
  });
  try {
    assert.equal(text(await c.client.callTool({ name: 'write_thing', arguments: { owner: 'yes' } })), 'write_thing ok {"owner":"yes"}');
    const no = await c.client.callTool({ name: 'write_thing', arguments: { owner: 'no' } });
    assert.match(text(no), /^\[POLICY DENIED\] approval .* denied by elicitation: nope/);
    assert.equal(text(await c.client.callTool({ name: 'ask', arguments: {} })), 'got accept:v42');
    assert.equal(seen.length, 3);
  } finally {
    await c.client.close();
  }
  t.cleanup();
});

function row4Id(all: { id: string; status: string; tool?: string }[], tool: string): string | undefined {
  return (all as { id: string; tool: string }[]).find((x) => x.tool === tool)?.id;
}

for (const era of ERAS) test(`stdio gateway (${REVISION[era]}): hot reload applies a good file, keeps the old one on a bad file, and notifies list_changed`, async () => {
  const t = tmpDir();
  const policyPath = t.file('p.yaml', 'version: 1\ndefault: allow\n');
  const write = (s: string) => t.file('p.yaml', s);
  let changed = 0;
  const subscriptionIds: unknown[] = [];
  const g = await stdioGatewayClient(policyPath, t.db, { era });
  g.client.setNotificationHandler('notifications/tools/list_changed', (n) => {
    changed++;
    subscriptionIds.push(n.params?._meta?.['io.modelcontextprotocol/subscriptionId']);
  });
  // 2026-07-28 delivers change notifications only on a listen stream the client opened for them.
  const sub = era === 'modern' ? await g.client.listen({ toolsListChanged: true }) : undefined;
  try {
    if (sub) assert.deepEqual(sub.honoredFilter, { toolsListChanged: true });
    assert.equal(text(await g.client.callTool({ name: 'echo', arguments: { text: 'a' } })), 'a');
    write('version: 1\ndefault: allow\nhide: [echo]\n');
    await waitFor(() => changed === 1 || undefined, 8000);
    assert.match(text(await g.client.callTool({ name: 'echo', arguments: { text: 'b' } })), DENIED);
    assert.ok(!(await g.client.listTools({ cursor: '0' })).tools.some((x) => x.name === 'echo'));

    write('version: 1\ndefault: allow\nhide: [echo\n'); // broken YAML
    // The watcher may read the file between its truncation and its new bytes (writeFileSync is no
    // atomic replace): that empty file is rejected too, without a position. The whole broken file is
    // rejected with its line and column.
    await waitFor(() => /p\.yaml:\d+:\d+: /.test(g.stderr()) || undefined, 8000);
    assert.match(g.stderr(), /reload rejected/);
    assert.match(text(await g.client.callTool({ name: 'echo', arguments: { text: 'c' } })), DENIED, 'old policy stays in force');

    write('version: 1\ndefault: allow\ntools:\n  echo: { action: deny, reason: "now denied by rule" }\n');
    await waitFor(() => changed === 2 || undefined, 8000);
    assert.equal(text(await g.client.callTool({ name: 'echo', arguments: { text: 'd' } })), '[POLICY DENIED] now denied by rule');
    assert.ok((await g.client.listTools({ cursor: '0' })).tools.some((x) => x.name === 'echo'), 'unhidden again, same session');
    // Unsolicited on 2025-11-25; on 2026-07-28 stamped with the listen stream's subscription id.
    assert.equal(subscriptionIds.length, 2);
    for (const sid of subscriptionIds) assert.equal(sid === undefined, era === 'legacy', JSON.stringify(subscriptionIds));
  } finally {
    await sub?.close();
    await g.client.close();
  }
  t.cleanup();
});

test('CLI: policy validate exit codes, explain, init from annotations', async () => {
  const t = tmpDir();
  const bad = t.file('bad.yaml', 'version: 1\ntools:\n  x: { action: deny }\n  y: { action: nope }\n');
  const v = await cli(['policy', 'validate', bad]);
  assert.equal(v.code, 1);
  assert.match(v.stderr, /bad\.yaml:3:\d+: tools\.x\.reason/);
  assert.match(v.stderr, /bad\.yaml:4:\d+: tools\.y\.action/);
  const good = t.file('good.yaml', 'version: 1\ntools:\n  x:\n    action: allow\n    when:\n      - { path: args.n, op: gte, value: 10, action: require_approval, approval_timeout: 60 }\n');
  assert.equal((await cli(['policy', 'validate', good])).code, 0);
  // --json: the verdict as data, an invalid file's errors with path and line, the same exit codes
  const vj = await cli(['policy', 'validate', bad, '--json']);
  assert.equal(vj.code, 1);
  const vd = JSON.parse(vj.stdout) as { valid: boolean; errors: { path: string; line: number; col: number; message: string }[] };
  assert.equal(vd.valid, false);
  assert.deepEqual(vd.errors.map((x) => [x.path, x.line]), [['tools.x.reason', 3], ['tools.y.action', 4]]);
  assert.ok(vd.errors.every((x) => typeof x.col === 'number' && x.message.length > 0));
  const gj = await cli(['policy', 'validate', good, '--json']);
  assert.equal(gj.code, 0);
  assert.deepEqual(JSON.parse(gj.stdout), { file: good, valid: true, default: 'allow', tool_entries: 1, hidden: 0 });
  const missing = await cli(['policy', 'validate', t.file('x.yaml', '') + '.missing', '--json']);
  assert.equal([missing.code, missing.stdout].join(), '3,', 'a file that cannot be read is no verdict: not found, as without --json');
  const e = await cli(['policy', 'explain', good, '--tool', 'x', '--args', '{"n":12}']);
  assert.match(e.stdout, /decision: require_approval/);
  assert.match(e.stdout, /rule: +tools\.x\.when\[0\] \(.*good\.yaml:6\)/);
  assert.match((await cli(['policy', 'explain', good, '--tool', 'x', '--args', '{"n":1}'])).stdout, /decision: allow/);
  assert.equal((await cli(['gateway', '--policy', bad, '--db', t.db, '--', process.execPath, FIXTURE])).code, 1, 'invalid policy refuses to start');

  const out = join(t.dir, 'starter.yaml');
  const init = await cli(['policy', 'init', '--out', out, '--', process.execPath, FIXTURE]);
  assert.equal(init.code, 0, init.stderr);
  const starter = readFileSync(out, 'utf8');
  assert.match(starter, /# read-only \(readOnlyHint: true\).*\n {2}echo:\n {4}action: allow\n {4}rate_limit/);
  assert.match(starter, /# destructive.*\n {2}delete_thing:\n {4}action: deny/);
  assert.match(starter, /# writes without being destructive.*\n {2}write_thing:\n {4}action: require_approval/);
  assert.match(starter, /bulk_29/, 'all pages of tools/list were read');
  assert.equal((await cli(['policy', 'validate', out])).code, 0, 'the starter policy is valid');
  t.cleanup();
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
