import { test } from 'node:test';
import assert from 'node:assert/strict';
import { httpClient, textOf } from '../mcp/helpers.js';
import { startGatewayTarget } from '../conformance/gateway-target.js';

/**
 * SEP-1699 through the HTTP gateway: the upstream (the conformance fixture's `test_reconnection`) closes
 * the call's SSE stream after its priming event and before the answer. The gateway resumes the stream
 * upstream with Last-Event-ID and hands the agent the answer; without that the call hangs.
 */
test('HTTP gateway: an upstream that closes a call\'s SSE stream mid-call is resumed with Last-Event-ID, and the answer reaches the agent', { timeout: 120_000 }, async () => {
  const gw = await startGatewayTarget();
  try {
    const { client } = await httpClient(new URL(gw.url));
    try {
      const r = await client.callTool({ name: 'test_reconnection', arguments: {} }, { timeout: 30_000 });
      assert.match(textOf(r as Parameters<typeof textOf>[0]), /Reconnection test completed successfully/);
    } finally {
      await client.close().catch(() => undefined);
    }
  } finally {
    await gw.stop();
  }
});
