/**
 * An upstream the HTTP gateway cannot reach: every call that meets it leaves an audit record saying so.
 * - Before any proxy: a 2026-07-28 request whose upstream's revision cannot be asked, or a 2025-11-25
 *   initialize whose upstream command cannot start, is answered 502; it is recorded as `deny`, rule
 *   `upstream`, outcome `unreachable`. Before, the 502 was written and nothing was recorded.
 * - Through the proxy: a call the policy allowed whose upstream went away is recorded with its own
 *   decision and the outcome `unreachable`, and its quota comes back, on both revisions (the outcome had
 *   no test).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { tempDir } from '../helpers.js';
import { CLI, kill, spawnUntil } from '../gateway/helpers.js';
import { answer, call, deadPort, ERAS, INIT, open, policyAudit, rawPost, send, startGateway, startUpstream, stop, toolCall, type Proc } from './http-helpers.js';

const tmp = tempDir('egress-adv-unreachable-');
after(() => tmp.cleanup());


const fields = (r: Record<string, any>) => [r.identity, r.tool, r.decision, r.rule, r.upstream, r.session];

test('HTTP gateway: a 502 for an upstream it cannot reach is audited as unreachable (2026-07-28 request, 2025-11-25 initialize)', async () => {
  const policy = join(tmp.dir, 'policy.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const db = join(tmp.dir, 'down.db');
  const gw = await startGateway(policy, db, await deadPort());
  try {
    const r = await send(gw.port, { era: 'modern' }, toolCall(1, 'echo', { text: 'x' }));
    assert.equal(r.status, 502, r.text);
    assert.equal(answer(r)?.error?.code, -32603, r.text);
    const recs = await policyAudit(db);
    assert.equal(recs.length, 1, JSON.stringify(recs));
    assert.deepEqual(fields(recs[0]!), ['anonymous', 'echo', 'deny', 'upstream', 'unreachable', 'modern:anonymous']);
    assert.match(recs[0]!.reason, /^upstream unreachable: /);
  } finally {
    await stop(gw);
  }

  // A registered command that cannot start: the initialize that would have started it.
  const config = join(tmp.dir, 'gateway.yaml');
  writeFileSync(config, `upstreams:\n  - name: gone\n    command: [${JSON.stringify(join(tmp.dir, 'no-such-binary'))}]\n    policy: ${JSON.stringify(policy)}\n`);
  const multiDb = join(tmp.dir, 'multi.db');
  const multi = await spawnUntil(process.execPath, [CLI, 'gateway', '--config', config, '--db', multiDb, '--listen', '127.0.0.1:0'], /listening on http:\/\/\S+?:(\d+)\//);
  try {
    const r = await rawPost(Number(multi.match[1]), INIT, {}, '/s/gone/mcp');
    assert.equal(r.status, 502, r.text);
    assert.match(answer(r)?.error?.message ?? '', /could not start/, r.text);
    const recs = await policyAudit(multiDb);
    assert.equal(recs.length, 1, JSON.stringify(recs));
    assert.deepEqual(fields(recs[0]!), ['anonymous', 'method:initialize', 'deny', 'upstream', 'unreachable', 'gone/no-session']);
    assert.equal(recs[0]!.upstreamName, 'gone');
  } finally {
    await kill(multi.child);
  }
});

for (const era of ERAS) {
  test(`HTTP gateway (${era}): an allowed call whose upstream went away is audited as unreachable, and its quota comes back`, async () => {
    const policy = join(tmp.dir, `limit-${era}.yaml`);
    // Two calls an hour: the two failed calls after the first would exceed it unless their quota came back.
    writeFileSync(policy, 'version: 1\ndefault: allow\ntools:\n  echo:\n    rate_limit: { max: 2, window: 3600, scope: global }\n');
    const db = join(tmp.dir, `gone-${era}.db`);
    let upstream: Proc | undefined = await startUpstream();
    let gw: Proc | undefined;
    try {
      gw = await startGateway(policy, db, upstream.port);
      const { conn } = await open(era, gw.port);
      assert.ok(conn);
      assert.equal(answer(await call(gw.port, conn, 1, 'echo', { text: 'up' }))?.result?.content?.[0]?.text, 'up');
      await stop(upstream);
      upstream = undefined;
      for (const id of [2, 3]) {
        const r = await call(gw.port, conn, id, 'echo', { text: 'down' });
        assert.equal(answer(r)?.error?.code, -32603, r.text);
        assert.match(answer(r)?.error?.message ?? '', /unreachable/, r.text);
      }
      const recs = (await policyAudit(db)).filter((r) => r.tool === 'echo');
      assert.deepEqual(
        recs.map((r) => [r.decision, r.upstream]),
        [['allow', 'ok'], ['allow', 'unreachable'], ['allow', 'unreachable']],
        JSON.stringify(recs),
      );
    } finally {
      await stop(gw);
      await stop(upstream);
    }
  });
}
