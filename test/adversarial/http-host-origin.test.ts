/**
 * DNS rebinding against both HTTP listeners. A page on a foreign name that resolves to 127.0.0.1 sends
 * that name in Host (and, from script, in Origin). Whatever the case, a refused request opens no
 * session, reaches no tool (upstream counts) and leaves no audit record; the allowed spellings of the
 * loopback names still work. Every attack runs at both revisions: 2025-11-25 (a session opened by
 * initialize) and 2026-07-28 (stateless: each request carries its revision and is guarded alone).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { tempDir } from '../helpers.js';
import { ERAS, call, eraHeaders, eventually, frame, open, rawHttp10, policyAudit, startGateway, startServe, startUpstream, stop, toolCall, upstreamCounts, type Era, type Proc } from './http-helpers.js';

const tmp = tempDir('egress-adv-host-');
after(() => tmp.cleanup());

type Headers = Record<string, string | null>;
/** [label, headers] for requests that must be refused with 403; PORT is replaced by the real port. */
const REFUSED: [string, Headers][] = [
  ['foreign Host', { host: 'evil.example:PORT' }],
  ['foreign Host without port', { host: 'evil.example' }],
  ['missing Host (HTTP/1.1: node refuses it before any route, with 400)', { host: null }],
  ['Host with a trailing dot', { host: 'localhost.:PORT' }],
  ['loopback name as a subdomain', { host: 'localhost.evil.example:PORT' }],
  ['127.0.0.1 as a subdomain', { host: '127.0.0.1.evil.example:PORT' }],
  ['userinfo in Host', { host: 'localhost@evil.example:PORT' }],
  ['foreign Origin', { origin: 'http://evil.example' }],
  ['foreign Origin with a loopback Host', { host: '127.0.0.1:PORT', origin: 'http://evil.example:PORT' }],
  ['look-alike Origin', { origin: 'http://localhost.evil.example' }],
  ['Origin null (sandboxed frame)', { origin: 'null' }],
  ['Origin of another scheme', { origin: 'file://' }],
];
/** Spellings of this machine that must keep working. */
const ALLOWED: [string, Headers][] = [
  ['default Host', {}],
  ['IPv6 loopback Host', { host: '[::1]:PORT' }],
  ['upper-case Host', { host: 'LOCALHOST:PORT' }],
  ['loopback Origin', { origin: 'http://localhost:3000' }],
];

const withPort = (h: Headers, port: number): Headers =>
  Object.fromEntries(Object.entries(h).map(([k, v]) => [k, v === null ? null : v.replace('PORT', String(port))]));

/** Drives one listener at one revision; `tool`/`args` is a call that the listener answers by running something. */
async function attack(era: Era, p: Proc, tool: string, argsFor: (label: string) => Record<string, unknown>): Promise<{ allowedLabels: string[] }> {
  const good = await open(era, p.port);
  assert.ok(good.conn, `a plain loopback client opens (${era}): ${good.reply.text}`);
  let id = 10;
  for (const [label, h] of REFUSED) {
    const headers = withPort(h, p.port);
    const first = await open(era, p.port, headers);
    const refusedWith = h.host === null ? 400 : 403;
    assert.equal(first.reply.status, refusedWith, `${label}: the first request is refused (${first.reply.text.slice(0, 200)})`);
    assert.equal(first.conn, undefined, `${label}: nothing opened`);
    assert.equal(first.reply.headers['mcp-session-id'], undefined, `${label}: no session`);
    const r = await call(p.port, good.conn!, id++, tool, argsFor(label), headers);
    assert.equal(r.status, refusedWith, `${label}: a call (on an open session, for 2025-11-25) is refused`);
    if (refusedWith === 403) assert.match(r.messages[0]?.error?.message ?? '', /^Forbidden: /, label);
  }
  // HTTP/1.0 may omit Host, and node then passes the request on: the guard itself must refuse it.
  const body = frame(era, toolCall(id++, tool, argsFor('HTTP/1.0 without Host')));
  const http10 = await rawHttp10(p.port, body, eraHeaders(good.conn!, body));
  assert.match(http10, /^HTTP\/1\.[01] 403 /, `HTTP/1.0 without Host is refused: ${http10}`);
  assert.match(http10, /no Host header/);
  const allowedLabels: string[] = [];
  for (const [label, h] of ALLOWED) {
    const headers = withPort(h, p.port);
    const s = await open(era, p.port, headers);
    assert.ok(s.conn, `${label}: the first request works (${s.reply.status} ${s.reply.text.slice(0, 200)})`);
    const r = await call(p.port, s.conn!, id++, tool, argsFor(label), headers);
    assert.equal(r.status, 200, label);
    assert.equal(r.messages.at(-1)?.result?.isError, undefined, `${label}: ${r.text}`);
    // Served in the revision asked for: a 2026-07-28 result says it is complete, and no session was made.
    assert.equal(r.messages.at(-1)?.result?.resultType, era === 'modern' ? 'complete' : undefined, label);
    if (era === 'modern') assert.equal(s.reply.headers['mcp-session-id'], undefined, label);
    allowedLabels.push(label);
  }
  return { allowedLabels };
}

const auditedTexts = async (db: string, tool: string, n: number): Promise<string[]> =>
  eventually(async () => {
    const rows = (await policyAudit(db)).filter((r) => r.tool === tool);
    return rows.length >= n ? rows.map((r) => String(argsOf(r).text)).sort() : undefined;
  }, `${n} audit records of ${tool}`);

for (const era of ERAS) test(`HTTP gateway (${era}): foreign Host/Origin never reach the upstream nor the audit log`, async () => {
  const policy = join(tmp.dir, `gw-policy-${era}.yaml`);
  writeFileSync(policy, 'version: 1\ndefault: allow\ntools:\n  echo:\n    audit_args: plain\n');
  const db = join(tmp.dir, `gw-${era}.db`);
  const upstream = await startUpstream();
  let gw: Proc | undefined;
  try {
    gw = await startGateway(policy, db, upstream.port);
    const { allowedLabels } = await attack(era, gw, 'echo', (label) => ({ text: label }));
    assert.deepEqual(await upstreamCounts(upstream.port), { echo: allowedLabels.length }, 'only the allowed calls reached the upstream');
    assert.deepEqual(await auditedTexts(db, 'echo', allowedLabels.length), [...allowedLabels].sort(), 'only the allowed calls were audited');
  } finally {
    await stop(gw);
    await stop(upstream);
  }
});

for (const era of ERAS) test(`serve --policy (${era}): foreign Host/Origin run no tool and leave no audit record`, async () => {
  const policy = join(tmp.dir, `serve-policy-${era}.yaml`);
  writeFileSync(policy, 'version: 1\ndefault: allow\ntools:\n  create_suppression_rule:\n    audit_args: plain\n');
  const db = join(tmp.dir, `serve-${era}.db`);
  SqliteStore.open(db).close();
  let serve: Proc | undefined;
  try {
    serve = await startServe(db, ['--policy', policy]);
    // A write: each allowed case creates one rule named after it, each refused case must create none.
    const { allowedLabels } = await attack(era, serve, 'create_suppression_rule', (label) => ({
      name: label,
      conditions: { process: 'vendor-agent', process_sha256: 'b'.repeat(64), repo: `acme/${allowedLabelsSlug(label)}` },
      confirm: true,
    }));
    const store = SqliteStore.open(db);
    try {
      const names = (store.db.prepare('SELECT name FROM rules ORDER BY name').all() as { name: string }[]).map((r) => r.name);
      assert.deepEqual(names, [...allowedLabels].sort(), 'only the allowed calls wrote rules');
    } finally {
      store.close();
    }
    const audited = await eventually(async () => {
      const rows = (await policyAudit(db)).filter((r) => r.tool === 'create_suppression_rule');
      return rows.length >= allowedLabels.length ? rows.map((r) => String(argsOf(r).name)).sort() : undefined;
    }, 'audit records');
    assert.deepEqual(audited, [...allowedLabels].sort(), 'only the allowed calls were audited');
  } finally {
    await stop(serve);
  }
});

/** A distinct repo per case, so no two rules collide. */
function allowedLabelsSlug(label: string): string {
  return label.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
}

const argsOf = (r: Record<string, any>): Record<string, unknown> => (typeof r.args === 'string' ? JSON.parse(r.args) : r.args);
