/**
 * A POST's media headers on the 2026-07-28 (stateless) path: its body must be declared
 * `application/json` (else 415) and the client must accept both `application/json` and
 * `text/event-stream` (else 406), as Streamable HTTP asks of every client and as the SDK's session
 * transport already enforces on 2025-11-25. The stateless path has no SDK transport in front of it, so
 * before this check a `text/plain` body (one a browser form may send without a CORS preflight) or a
 * client that cannot read the SSE answer reached the policy and the upstream. Each refusal is a
 * JSON-RPC error, never forwarded, and audited like the listener's other refusals, by the gateway and
 * by `serve --policy` alike.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { tempDir } from '../helpers.js';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { answer, policyAudit, send, startGateway, startServe, startUpstream, stop, toolCall, upstreamCounts, type Proc } from './http-helpers.js';

const tmp = tempDir('egress-adv-media-');
after(() => tmp.cleanup());

const JSON_BOTH = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

/** Each refused media combination: the headers sent, the HTTP status and the reason's start. */
const REFUSED: { label: string; headers: Record<string, string | null>; status: number; reason: RegExp }[] = [
  { label: 'Content-Type text/plain', headers: { ...JSON_BOTH, 'content-type': 'text/plain' }, status: 415, reason: /^Unsupported Media Type/ },
  { label: 'no Content-Type', headers: { ...JSON_BOTH, 'content-type': null }, status: 415, reason: /^Unsupported Media Type/ },
  { label: 'Content-Type application/jsonx', headers: { ...JSON_BOTH, 'content-type': 'application/jsonx' }, status: 415, reason: /^Unsupported Media Type/ },
  { label: 'Accept application/json only', headers: { ...JSON_BOTH, accept: 'application/json' }, status: 406, reason: /^Not Acceptable/ },
  { label: 'Accept text/event-stream only', headers: { ...JSON_BOTH, accept: 'text/event-stream' }, status: 406, reason: /^Not Acceptable/ },
  { label: 'no Accept', headers: { ...JSON_BOTH, accept: null }, status: 406, reason: /^Not Acceptable/ },
  { label: 'Accept with application/json at q=0', headers: { ...JSON_BOTH, accept: 'application/json;q=0, text/event-stream' }, status: 406, reason: /^Not Acceptable/ },
];

/** Sends every refused case as a 2026-07-28 tools/call of `tool`, then one well-formed call that must pass. */
async function attack(p: Proc, tool: string, args: Record<string, unknown>): Promise<void> {
  for (const [i, c] of REFUSED.entries()) {
    const r = await send(p.port, { era: 'modern' }, toolCall(i + 1, tool, args), c.headers);
    assert.equal(r.status, c.status, `${c.label}: ${r.text}`);
    const a = answer(r);
    assert.equal(a?.error?.code, -32000, `${c.label}: ${r.text}`);
    assert.equal(a?.id, i + 1, `${c.label}: the refusal answers the request's id`);
    assert.match(a?.error?.message ?? '', c.reason, c.label);
    assert.doesNotMatch(r.text, /\n\s+at /, `${c.label}: no stack trace`);
  }
  // Parameters on the media types are fine: this one is served.
  const ok = await send(p.port, { era: 'modern' }, toolCall(99, tool, args), { 'content-type': 'application/json; charset=utf-8', accept: 'text/event-stream;q=0.9, application/json' });
  assert.equal(ok.status, 200, ok.text);
  assert.ok(answer(ok)?.result, ok.text);
}

/** One `deny` / `protocol` record per refused case, under the 2026-07-28 session of `identity`. */
async function assertAudited(db: string, tool: string, identity: string): Promise<void> {
  const recs = (await policyAudit(db)).filter((r) => r.rule === 'protocol');
  assert.equal(recs.length, REFUSED.length, JSON.stringify(recs));
  for (const [i, c] of REFUSED.entries()) {
    const rec = recs[i]!;
    assert.deepEqual([rec.identity, rec.tool, rec.decision, rec.upstream, rec.session], [identity, tool, 'deny', 'not_forwarded', `modern:${identity}`], c.label);
    assert.match(rec.reason, c.reason, c.label);
  }
}

test('HTTP gateway (2026-07-28): a POST that is not application/json, or whose client cannot take JSON and SSE, is refused, audited and never forwarded', async () => {
  const policy = join(tmp.dir, 'gw.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const db = join(tmp.dir, 'gw.db');
  const upstream = await startUpstream();
  let gw: Proc | undefined;
  try {
    gw = await startGateway(policy, db, upstream.port);
    await attack(gw, 'echo', { text: 'x' });
    assert.deepEqual(await upstreamCounts(upstream.port), { echo: 1 }, 'only the well-formed call reached the upstream');
    await assertAudited(db, 'echo', 'anonymous');
  } finally {
    await stop(gw);
    await stop(upstream);
  }
});

test('serve --policy (2026-07-28): the same media refusals, audited, and no tool runs', async () => {
  const policy = join(tmp.dir, 'serve.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const db = join(tmp.dir, 'serve.db');
  SqliteStore.open(db).close();
  let serve: Proc | undefined;
  try {
    serve = await startServe(db, ['--policy', policy, '--identity', 'ops']);
    await attack(serve, 'ping', {});
    const calls = (await policyAudit(db)).filter((r) => r.tool === 'ping' && r.decision === 'allow');
    assert.equal(calls.length, 1, 'only the well-formed call ran');
    await assertAudited(db, 'ping', 'ops');
  } finally {
    await stop(serve);
  }
});
