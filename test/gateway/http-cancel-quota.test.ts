import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { CLI, FIXTURE, kill, spawnUntil, text, tmpDir } from './helpers.js';

test('HTTP gateway: calls aborted at 0 ms never let the upstream run a tool more than its limit', async () => {
  const t = tmpDir();
  const policy = t.file('p.yaml', 'version: 1\ntools:\n  slow: { rate_limit: { max: 3, window: 600 } }\n');
  const up = await spawnUntil(process.execPath, [FIXTURE, '--http'], /LISTENING (\d+)/);
  const gw = await spawnUntil(
    process.execPath,
    [CLI, 'gateway', '--policy', policy, '--db', t.db, '--upstream', `http://127.0.0.1:${up.match[1]}/mcp`, '--listen', '127.0.0.1:0'],
    /listening on (http:\/\/\S+)/,
  );
  const client = new Client({ name: 'aborter', version: '1' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.match[1]!)));
    const aborted = Array.from({ length: 10 }, () => {
      const ac = new AbortController();
      const p = client.callTool({ name: 'slow', arguments: { ms: 100 } }, { signal: ac.signal });
      setTimeout(() => ac.abort(), 0);
      return p.then(
        () => 'answered',
        () => 'aborted',
      );
    });
    await Promise.all(aborted);
    // Keep calling until the gateway refuses: whatever the aborts used stays used.
    let admitted = 0;
    for (let i = 0; i < 10; i++) {
      const r = await client.callTool({ name: 'slow', arguments: { ms: 1 } });
      if (r.isError) {
        assert.match(text(r), /^\[POLICY DENIED\] rate limit/);
        break;
      }
      admitted++;
    }
    const stats = JSON.parse(text(await client.callTool({ name: 'stats', arguments: {} }))) as Record<string, number>;
    assert.ok((stats.slow ?? 0) <= 3, `the upstream ran slow ${stats.slow} times against a limit of 3 (${admitted} admitted after the aborts)`);
  } finally {
    await client.close().catch(() => undefined);
    await kill(gw.child);
    await kill(up.child);
    t.cleanup();
  }
});
