/**
 * Cancellation racing admission over HTTP, at both revisions. Calls against a rate limit are
 * cancelled the moment they are sent: on 2025-11-25 by `notifications/cancelled` on the session, on
 * 2026-07-28 by closing the request's stream (the revision's way), with a stray
 * `notifications/cancelled` POST as well. Whatever the interleaving, the upstream never runs more
 * calls than the limit, a call cancelled before it was forwarded gives its quota back, and one that
 * was forwarded keeps its charge: the charges in the audit log and the calls admitted afterwards add
 * up to the limit exactly.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { tempDir } from '../helpers.js';
import { ERAS, answer, call, eventually, open, policyAudit, send, startGateway, startUpstream, stop, toolCall, upstreamCounts, type Proc } from './http-helpers.js';

const tmp = tempDir('egress-adv-cancel-');
after(() => tmp.cleanup());

const MAX = 3;
const STORM = 12;

for (const era of ERAS) {
  test(`HTTP gateway (${era}): calls cancelled as they are admitted never let the upstream run more than the limit, and lose no quota`, async () => {
    const policy = join(tmp.dir, `gw-${era}.yaml`);
    writeFileSync(policy, `version: 1\ndefault: allow\ntools:\n  slow:\n    rate_limit: { max: ${MAX}, window: 3600, scope: global }\n`);
    const db = join(tmp.dir, `gw-${era}.db`);
    const upstream = await startUpstream();
    let gw: Proc | undefined;
    try {
      gw = await startGateway(policy, db, upstream.port);
      const { conn } = await open(era, gw.port);
      assert.ok(conn);
      const cancel = (id: number) => send(gw!.port, conn, { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'racing' } });
      await Promise.all(
        Array.from({ length: STORM }, async (_, i) => {
          const id = 100 + i;
          const ac = new AbortController();
          const sent = send(gw!.port, conn, toolCall(id, 'slow', { ms: 200 }), {}, {}, '/mcp', ac.signal).catch(() => undefined);
          if (era === 'modern') {
            // 2026-07-28 cancels by closing the stream; the notification is a stray one.
            setImmediate(() => ac.abort());
            await Promise.all([sent, cancel(id)]);
          } else {
            // 2025-11-25: the notification cancels; a cancelled request gets no answer, so the
            // client then stops listening on its POST.
            await cancel(id);
            ac.abort();
            await sent;
          }
        }),
      );
      // Whatever the storm was charged stays charged; what it was refunded comes back.
      const charged = async () =>
        (await policyAudit(db)).filter((r) => r.tool === 'slow' && r.decision === 'allow' && r.upstream !== 'not_forwarded').length;
      let admitted = 0;
      for (let i = 0; i <= MAX; i++) {
        const r = answer(await call(gw.port, conn, 500 + i, 'slow', { ms: 0 }));
        assert.ok(r?.result, JSON.stringify(r));
        if (r.result.isError) {
          assert.match(r.result.content[0].text, /^\[POLICY DENIED\] rate limit exceeded/);
          break;
        }
        admitted++;
      }
      const runs = (await upstreamCounts(upstream.port)).slow ?? 0;
      assert.ok(runs <= MAX, `the upstream ran slow ${runs} times against a limit of ${MAX}`);
      await eventually(async () => ((await charged()) === MAX ? true : undefined), `the audit to show ${MAX} charged calls (${admitted} admitted after the storm)`);
      assert.equal(await charged(), MAX);
    } finally {
      await stop(gw);
      await stop(upstream);
    }
  });
}

