/**
 * Malformed and deceptive JSON-RPC over HTTP, against the gateway at both revisions: one attack
 * table, each attack sent as a 2025-11-25 client on its session and as a 2026-07-28 client (envelope
 * in `params._meta`, standard headers, no session). Whatever the revision, an attack never makes the
 * upstream run a denied tool or run anything it did not ask for; the recording upstream's counts and
 * the audit log are the proof.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { tempDir } from '../helpers.js';
import {
  ERAS, answer, call, eraHeaders, eventually, frame, open, policyAudit, runCli, send, socketPost, startGateway, startUpstream, stop, toolCall, upstreamCounts,
  type Conn, type Era, type Proc, type RawReply,
} from './http-helpers.js';

const tmp = tempDir('egress-adv-msg-');
after(() => tmp.cleanup());

const POLICY = `version: 1
default: allow
tools:
  delete_thing: { action: deny, reason: no deleting }
  write_thing: { action: require_approval, approval_timeout: 60 }
`;

/** The gateway's body limit (src/gateway/http.ts). */
const LIMIT = 4 * 1024 * 1024;

interface Attack {
  label: string;
  send(port: number, conn: Conn): Promise<RawReply>;
  /** Asserts the reply of one revision. */
  expect(r: RawReply, era: Era): void;
  /** The reason of this refusal's audit record, waited for (a notification gets no answer to wait on). */
  audited?: RegExp;
}

const refused = (status: number, code?: number) => (r: RawReply) => {
  assert.equal(r.status, status, r.text.slice(0, 300));
  const a = answer(r);
  assert.equal(a?.result, undefined, 'no result');
  if (code !== undefined) assert.equal(a?.error?.code, code, r.text.slice(0, 300));
};

/** Refused before the policy (400), or denied by it: either way, nothing ran. */
const refusedOrDenied = (r: RawReply) => {
  const a = answer(r);
  if (r.status === 400) return assert.ok(a?.error, r.text);
  assert.equal(r.status, 200, r.text);
  assert.equal(a?.result?.isError, true, r.text);
  assert.match(a?.result?.content?.[0]?.text ?? '', /^\[POLICY DENIED\] no deleting/);
};

/**
 * 413 with the error shape, or, when the kernel reset the connection on the server's close before
 * the answer could be read, nothing at all; never anything else (the table then checks that nothing
 * ran, and the end of the test that the gateway still serves).
 */
const tooLarge = (r: RawReply) => {
  if (r.status === 0) return assert.equal(r.text, '', 'a reset connection, with nothing read');
  refused(413, -32600)(r);
  assert.match(answer(r)?.error?.message ?? '', /^Request body too large: limit is 4194304 bytes/);
};

/** One tools/call of `echo` whose body is over the limit, framed for the revision. */
function oversize(port: number, conn: Conn, id: number, chunked: boolean): Promise<RawReply> {
  const body = frame(conn.era, toolCall(id, 'echo', { text: 'x'.repeat(LIMIT) }));
  return socketPost(port, body, eraHeaders(conn, body), chunked);
}

/** Where 6,000 nested arrays go in the body: a small body, far deeper than any policy reads. */
const DEEP = (): unknown => '\u0000deep';

/** Posts `msg` with its DEEP() placeholder written out as text (the test's own JSON.stringify would overflow too). */
function deep(port: number, conn: Conn, msg: unknown): Promise<RawReply> {
  const shallow = frame(conn.era, msg);
  const text = JSON.stringify(shallow).replace(JSON.stringify(DEEP()), `${'['.repeat(6000)}${']'.repeat(6000)}`);
  return socketPost(port, Buffer.from(text), eraHeaders(conn, shallow));
}

/** Refused as an invalid request, whatever the status the revision answers it with. */
const refusedDeep = (r: RawReply) => {
  const a = answer(r);
  assert.equal(a?.result, undefined, r.text.slice(0, 300));
  assert.equal(a?.error?.code, -32600, r.text.slice(0, 300));
  assert.match(a?.error?.message ?? '', /nests deeper than 256 levels/);
};

/** An id MCP does not allow: the gateway's refusal on a 2025-11-25 session, the SDK classifier's on 2026-07-28. */
const BAD_ID = /^Invalid Request: "id" must be a string or an integer$|^Bad Request: the request body is not a valid JSON-RPC message$/;

const ATTACKS: Attack[] = [
  { label: 'id null, a denied tool', send: (p, c) => call(p, c, null, 'delete_thing', { id: 'x' }), expect: refused(400, -32600), audited: BAD_ID },
  { label: 'id null, an allowed tool', send: (p, c) => call(p, c, null, 'echo', { text: 'null id' }), expect: refused(400, -32600), audited: BAD_ID },
  { label: 'id an object', send: (p, c) => call(p, c, { nested: 1 }, 'echo', { text: 'object id' }), expect: refused(400, -32600), audited: BAD_ID },
  { label: 'id a boolean', send: (p, c) => call(p, c, true, 'echo', { text: 'boolean id' }), expect: refused(400, -32600), audited: BAD_ID },
  {
    label: 'id a fraction',
    // It once got no answer at all on a 2025-11-25 session: bounded, so a regression fails instead of hanging.
    send: (p, c) => send(p, c, toolCall(1.5, 'echo', { text: 'fraction id' }), {}, {}, '/mcp', AbortSignal.timeout(10_000)),
    expect: refused(400, -32600),
    audited: BAD_ID,
  },
  {
    label: 'id missing (tools/call as a notification), a denied tool',
    send: (p, c) => call(p, c, undefined, 'delete_thing', { id: 'x' }),
    expect: (r) => assert.equal(r.status, 202, r.text),
    audited: /^tools\/call sent as a notification \(no id\) is never forwarded/,
  },
  {
    label: 'id missing (tools/call as a notification), an allowed tool',
    send: (p, c) => call(p, c, undefined, 'echo', { text: 'no id' }),
    expect: (r) => assert.equal(r.status, 202, r.text),
    audited: /^tools\/call sent as a notification \(no id\) is never forwarded/,
  },
  {
    label: 'Mcp-Name names an allowed tool, the body calls a denied one',
    send: (p, c) => call(p, c, 11, 'delete_thing', { id: 'x' }, { 'mcp-method': 'tools/call', 'mcp-name': 'echo' }),
    expect: (r, era) => (era === 'modern' ? refused(400, -32020)(r) : refusedOrDenied(r)),
  },
  {
    label: 'Mcp-Name in Base64 names an allowed tool, the body calls a denied one',
    send: (p, c) => call(p, c, 12, 'delete_thing', { id: 'x' }, { 'mcp-method': 'tools/call', 'mcp-name': `=?base64?${Buffer.from('echo').toString('base64')}?=` }),
    expect: (r, era) => (era === 'modern' ? refused(400, -32020)(r) : refusedOrDenied(r)),
  },
  {
    label: 'Mcp-Method names tools/list, the body calls a denied tool',
    send: (p, c) => call(p, c, 13, 'delete_thing', { id: 'x' }, { 'mcp-method': 'tools/list' }),
    expect: (r, era) => (era === 'modern' ? refused(400, -32020)(r) : refusedOrDenied(r)),
  },
  {
    label: 'no Mcp-Name at all, the body calls a denied tool',
    send: (p, c) => call(p, c, 14, 'delete_thing', { id: 'x' }, { 'mcp-name': null }),
    expect: (r, era) => (era === 'modern' ? refused(400, -32020)(r) : refusedOrDenied(r)),
  },
  { label: 'a batch of one denied call', send: (p, c) => send(p, c, [toolCall(15, 'delete_thing', { id: 'x' })]), expect: refused(400, -32600), audited: /batch/i },
  {
    label: 'a batch of an allowed and a denied call',
    send: (p, c) => send(p, c, [toolCall(16, 'echo', { text: 'batched' }), toolCall(17, 'delete_thing', { id: 'x' })]),
    expect: refused(400, -32600),
    audited: /batch/i,
  },
  {
    // a 12 KB body: serialising it for the upstream overflowed the stack and took the gateway down
    label: 'a tools/list with a field nested 6,000 levels deep',
    send: (p, c) => deep(p, c, { jsonrpc: '2.0', id: 21, method: 'tools/list', params: { x: DEEP() } }),
    expect: refusedDeep,
    audited: /^Invalid Request: the message nests deeper than 256 levels/,
  },
  {
    label: 'an allowed tools/call with flat arguments and a field nested 6,000 levels deep beside them',
    send: (p, c) => deep(p, c, { ...toolCall(22, 'echo', { text: 'flat' }), params: { name: 'echo', arguments: { text: 'flat' }, x: DEEP() } }),
    expect: refusedDeep,
    audited: /^Invalid Request: the message nests deeper than 256 levels/,
  },
  { label: 'a body over the limit, with its length declared', send: (p, c) => oversize(p, c, 18, false), expect: tooLarge, audited: /^Request body too large/ },
  { label: 'a body over the limit, chunked without a length', send: (p, c) => oversize(p, c, 19, true), expect: tooLarge, audited: /^Request body too large/ },
];

for (const era of ERAS) {
  test(`HTTP gateway (${era}): malformed, mislabelled, batched and oversize JSON-RPC runs nothing at the upstream`, async () => {
    const policy = join(tmp.dir, `gw-${era}.yaml`);
    writeFileSync(policy, POLICY);
    const db = join(tmp.dir, `gw-${era}.db`);
    const upstream = await startUpstream();
    let gw: Proc | undefined;
    try {
      gw = await startGateway(policy, db, upstream.port);
      for (const a of ATTACKS) {
        // A fresh session per attack on 2025-11-25, so one attack's leftovers cannot hide another's.
        const { conn } = await open(era, gw.port);
        assert.ok(conn, a.label);
        const before = (await policyAudit(db)).length;
        const r = await a.send(gw.port, conn);
        a.expect(r, era);
        if (a.audited) {
          await eventually(async () => ((await policyAudit(db)).slice(before).some((x) => a.audited!.test(x.reason ?? '')) ? true : undefined), `${a.label}: the audit record`);
        }
        assert.deepEqual(await upstreamCounts(upstream.port), {}, `${a.label}: the upstream ran nothing`);
      }
      // Still serving, and only the calls it was asked for run.
      const { conn } = await open(era, gw.port);
      assert.equal(answer(await call(gw.port, conn!, 99, 'echo', { text: 'after' }))?.result?.content?.[0]?.text, 'after');
      assert.deepEqual(await upstreamCounts(upstream.port), { echo: 1 });
      const rows = await policyAudit(db);
      assert.deepEqual(rows.filter((x) => x.decision === 'allow').map((x) => x.tool), ['echo']);
      if (era === 'modern') {
        // A header that disagrees with the body is audited as the bypass attempt it is.
        assert.equal(rows.filter((x) => x.tool === 'delete_thing' && x.rule === 'protocol' && /headers and body disagree/.test(x.reason)).length, 4);
      }
    } finally {
      await stop(gw);
      await stop(upstream);
    }
  });

  test(`HTTP gateway (${era}): a duplicate id while a call is held for approval gets no second call through`, async () => {
    const policy = join(tmp.dir, `gw-dup-${era}.yaml`);
    writeFileSync(policy, POLICY);
    const db = join(tmp.dir, `gw-dup-${era}.db`);
    const upstream = await startUpstream();
    let gw: Proc | undefined;
    try {
      gw = await startGateway(policy, db, upstream.port);
      const { conn } = await open(era, gw.port);
      assert.ok(conn);
      const held = call(gw.port, conn, 7, 'write_thing', { owner: 'acme' });
      const pending = await eventually(async () => {
        const rows = JSON.parse((await runCli(['approvals', 'list', '--db', db, '--json'])).stdout || '[]') as { id: string }[];
        return rows.length ? rows : undefined;
      }, 'the held call');
      assert.equal(pending.length, 1);
      // The same id again, for a denied call and for the held one, while id 7 is in flight.
      const denied = await call(gw.port, conn, 7, 'delete_thing', { id: 'x' });
      const again = call(gw.port, conn, 7, 'write_thing', { owner: 'acme' });
      if (era === 'legacy') {
        // One session, one id space: the id is taken.
        assert.match(answer(denied)?.error?.message ?? '', /id 7 is already in use by a request in flight/);
        assert.match(answer(await again)?.error?.message ?? '', /id 7 is already in use by a request in flight/);
      } else {
        // Every 2026-07-28 request stands alone: the ids never meet, and the policy decides each.
        assert.match(answer(denied)?.result?.content?.[0]?.text ?? '', /^\[POLICY DENIED\] no deleting/);
      }
      const decided = await runCli(['approvals', 'approve', pending[0]!.id, '--db', db]);
      assert.equal(decided.code, 0, decided.stderr);
      assert.equal(answer(await held)?.result?.isError, undefined);
      if (era === 'modern') {
        // The second identical call waited on the same approval, which is used once: it does not run.
        const second = answer(await again);
        assert.equal(second?.result?.isError, true, JSON.stringify(second));
      }
      assert.deepEqual(await upstreamCounts(upstream.port), { write_thing: 1 });
    } finally {
      await stop(gw);
      await stop(upstream);
    }
  });
}
