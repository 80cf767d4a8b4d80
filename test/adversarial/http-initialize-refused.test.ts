/**
 * A 2025-11-25 `initialize` that fails leaves nothing open behind the HTTP gateway. The gateway builds a
 * session (its policy proxy, and the upstream child or upstream session) before the SDK's session
 * transport reads the request, so one the transport refuses (params that are not an initialize, a body
 * that is not JSON-RPC 2.0) used to keep its child running, unreachable by anyone, until the gateway
 * stopped: a client could start one process per POST. One answered with an error (the upstream
 * unreachable) kept a session whose id its client was given but that can do nothing. Both must be closed
 * once the initialize is answered.
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { tempDir } from '../helpers.js';
import { CLI, FIXTURE, kill, spawnUntil } from '../gateway/helpers.js';
import { deadPort, eventually, INIT, rawPost } from './http-helpers.js';

const tmp = tempDir('egress-adv-init-refused-');
after(() => tmp.cleanup());

/** The gateway's child processes (its stdio upstreams), by pid. */
async function children(pid: number): Promise<number[]> {
  try {
    const { stdout } = await promisify(execFile)('pgrep', ['-P', String(pid)]);
    return stdout.split('\n').filter(Boolean).map(Number);
  } catch {
    return []; // pgrep exits 1 when there are none
  }
}


test('HTTP gateway: an initialize that is refused or answered with an error leaves no upstream child and no session open', async () => {
  const policy = join(tmp.dir, 'policy.yaml');
  writeFileSync(policy, 'version: 1\ndefault: allow\n');
  const config = join(tmp.dir, 'gateway.yaml');
  writeFileSync(
    config,
    `upstreams:\n  - name: child\n    command: [${JSON.stringify(process.execPath)}, ${JSON.stringify(FIXTURE)}]\n    policy: ${JSON.stringify(policy)}\n` +
      `  - name: down\n    url: http://127.0.0.1:${await deadPort()}/mcp\n    policy: ${JSON.stringify(policy)}\n`,
  );
  const gw = await spawnUntil(process.execPath, [CLI, 'gateway', '--config', config, '--db', join(tmp.dir, 'state.db'), '--listen', '127.0.0.1:0'], /listening on http:\/\/\S+?:(\d+)\//);
  const port = Number(gw.match[1]);
  const pid = gw.child.pid!;
  try {
    // Refused by the SDK's session transport, after the gateway had built the session: each one started a child.
    const refused: [string, unknown][] = [
      ['params that are not an initialize', { ...INIT, params: { capabilities: {} } }],
      ['jsonrpc 1.0', { ...INIT, jsonrpc: '1.0' }],
      ['an id that is an object', { ...INIT, id: { x: 1 } }],
    ];
    for (const [label, body] of refused) {
      const r = await rawPost(port, body, {}, '/s/child/mcp');
      assert.ok(r.status >= 400 && r.status < 500, `${label}: ${r.status} ${r.text}`);
      assert.equal(r.headers['mcp-session-id'], undefined, `${label}: no session is handed out`);
    }
    await eventually(async () => ((await children(pid)).length === 0 ? true : undefined), 'no upstream child left running', 5_000).catch(async () => {
      assert.fail(`${(await children(pid)).length} upstream children still run after ${refused.length} refused initialize requests`);
    });

    // Answered with an error: the upstream cannot be reached. The session id the client saw leads nowhere.
    const down = await rawPost(port, INIT, {}, '/s/down/mcp');
    const answer = down.messages.at(-1);
    assert.match(answer?.error?.message ?? '', /could not be asked/, down.text);
    const sid = down.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const again = await rawPost(port, { jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }, { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, '/s/down/mcp');
      assert.equal(again.status, 404, `the failed session is closed: ${again.text}`);
    }

    // A good initialize still opens its session, with its child.
    const ok = await rawPost(port, INIT, {}, '/s/child/mcp');
    assert.equal(ok.status, 200, ok.text);
    const okSid = ok.headers['mcp-session-id'] as string;
    assert.ok(okSid);
    assert.equal((await children(pid)).length, 1, 'the open session has its child');
  } finally {
    // Bounded: a leaked child keeps the gateway's event loop alive after SIGTERM, so the old code never exited.
    const left = await children(pid);
    await Promise.race([kill(gw.child), new Promise((resolve) => setTimeout(resolve, 5_000))]);
    gw.child.kill('SIGKILL');
    for (const p of left) {
      try {
        process.kill(p, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
});
