import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { runCli, tempDir } from '../helpers.js';
import { buildDemoDb, stdioClient, TENANT } from '../mcp/helpers.js';

const tmp = tempDir();
after(() => tmp.cleanup());

/**
 * A relative window ("--since 36500d", `since: "36500d"`) is read against the clock. Read again for
 * the next page, it had moved by the time between the calls, and the cursor, bound to the window it
 * was issued for, was refused as "issued for a different query". A next page now reads the window
 * against the first page's clock, which its cursor carries: the same arguments, the same window.
 */
test('analysis pages follow next_cursor under a relative window: the CLI and the MCP tool give every group once, as one page does', async () => {
  const db = await buildDemoDb(tmp.dir, { events: 3000, runs: 6 });
  const args = ['analyze', '--db', db, '--tenant', TENANT, '--json', '--min-count', '1', '--since', '36500d'];
  const all = JSON.parse(runCli([...args, '--limit', '1000']).stdout) as { processes: { process: string }[] };
  assert.ok(all.processes.length >= 3, 'several process groups to page through');
  const paged: string[] = [];
  let cursor: string | null = null;
  do {
    const r = runCli([...args, '--limit', '2', ...(cursor ? ['--cursor', cursor] : [])]);
    assert.equal(r.status, 0, r.stderr);
    const page = JSON.parse(r.stdout) as { processes: { process: string }[]; next_cursor: string | null };
    paged.push(...page.processes.map((p) => p.process));
    cursor = page.next_cursor;
  } while (cursor);
  assert.deepEqual(paged, all.processes.map((p) => p.process));

  const { client, transport } = await stdioClient(db);
  try {
    const tool = async (a: Record<string, unknown>) => {
      const r = await client.callTool({ name: 'analyze_anomalous_calls_by_process', arguments: { minCount: 1, since: '36500d', limit: 2, ...a } });
      assert.ok(!r.isError, JSON.stringify(r.content));
      return r.structuredContent as { processes: { process: string }[]; next_cursor: string | null };
    };
    const viaTool: string[] = [];
    let page = await tool({});
    viaTool.push(...page.processes.map((p) => p.process));
    while (page.next_cursor) {
      page = await tool({ cursor: page.next_cursor });
      viaTool.push(...page.processes.map((p) => p.process));
    }
    assert.deepEqual(viaTool, paged);
  } finally {
    await transport.close();
  }
});
