import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { SCENARIO } from '../../src/generate/scenarios.js';
import { tempDir } from '../helpers.js';
import { TENANT, buildDemoDb, call, callOk, httpClient, killChild, rawPost, startServe, textOf } from './helpers.js';
import { eachStore } from '../helpers/each-store.js';

type Any = Record<string, any>;


const { fresh } = eachStore();

for (const backend of ['sqlite', 'postgres'] as const) {
  describe(`MCP over Streamable HTTP (serve, ephemeral port) [${backend}]`, () => {
    const tmp = tempDir('egress-mcp-http-');
    let child: ChildProcessWithoutNullStreams;
    let url: URL;
    let stderr: () => string;
    let a: { client: Client; transport: StreamableHTTPClientTransport };
    let b: { client: Client; transport: StreamableHTTPClientTransport };

    before(async () => {
      const db = await buildDemoDb(tmp.dir, { db: (await fresh(backend, 'mcp')).db });
      ({ child, url, stderr } = await startServe(db));
      a = await httpClient(url);
      b = await httpClient(url, { elicitation: true });
    });

    after(async () => {
      await a?.client.close().catch(() => undefined);
      await b?.client.close().catch(() => undefined);
      if (child) await killChild(child);
      tmp.cleanup();
    });

    it('binds loopback on an ephemeral port and prints the URL to stderr', () => {
      assert.equal(url.hostname, '127.0.0.1');
      assert.notEqual(url.port, '0');
      assert.equal(url.pathname, '/mcp');
      assert.match(stderr(), /listening on http:\/\/127\.0\.0\.1:\d+\/mcp/);
    });

    it('keeps two independent sessions with distinct Mcp-Session-Id', async () => {
      assert.ok(a.transport.sessionId && b.transport.sessionId);
      assert.notEqual(a.transport.sessionId, b.transport.sessionId);
      const [pa, pb] = await Promise.all([callOk(a.client, 'ping'), callOk(b.client, 'ping')]);
      assert.equal(pa.tenant, TENANT);
      assert.equal(pb.ok, true);
    });

    // Thirty calls at once, ten of them analyses: on PostgreSQL each analysis holds a pooled
    // connection for its snapshot and takes more inside it; unbounded, ten of them held the whole
    // pool and every call timed out (storage/postgres/snapshot-gate.ts).
    it('serves concurrent calls from both sessions safely', async () => {
      const jobs: Promise<Any>[] = [];
      for (let i = 0; i < 10; i++) {
        jobs.push(callOk(a.client, 'list_anomalous_network_calls', { limit: 5 }));
        jobs.push(callOk(b.client, 'analyze_anomalous_calls_by_process', { limit: 5, samples: 1 }));
        jobs.push(callOk(i % 2 ? a.client : b.client, 'check_ioc_in_baseline', { indicator: SCENARIO.npmPostinstall.domain }));
      }
      const res = await Promise.all(jobs);
      const totals = new Set(res.filter((r) => 'detections' in r && 'has_more' in r).map((r) => r.total));
      assert.equal(totals.size, 1, 'every session sees the same data');
      const bad = await call(a.client, 'list_detections', { cursor: 'nope' });
      assert.equal(bad.isError, true);
      assert.match(textOf(bad), /invalid cursor/);
    });

    it('elicitation is routed to the session that made the call (accept and decline)', async () => {
      let answer: 'accept' | 'decline' = 'decline';
      let asked = 0;
      b.client.setRequestHandler('elicitation/create', async () => {
        asked++;
        return answer === 'accept' ? { action: 'accept', content: { confirm: true } } : { action: 'decline' };
      });
      const an = await callOk(b.client, 'analyze_anomalous_calls_by_process', { limit: 50 });
      const vpn = an.processes.find((p: Any) => p.is_vpn_process_candidate && !p.name_impersonation_suspected && p.suggested_rule?.blocked_reason === null);
      assert.ok(vpn);
      // the suggestion's own fields pass through as they are
      const args = { name: `${vpn.process} (http)`, conditions: vpn.suggested_rule.conditions, severity_action: vpn.suggested_rule.severity_action, confirm: true };
      const no = await call(b.client, 'create_suppression_rule', args);
      assert.equal(no.isError, true);
      assert.match(textOf(no), /declined/);
      assert.equal((await callOk(a.client, 'list_suppression_rules')).count, 0);
      answer = 'accept';
      const yes = await callOk(b.client, 'create_suppression_rule', args);
      assert.equal(yes.confirmed_via, 'elicitation');
      assert.equal(yes.suppressed, vpn.suggested_rule.impact.would_suppress);
      assert.equal(asked, 2);
      // session a (no elicitation capability) sees the rule through the shared store
      assert.equal((await callOk(a.client, 'list_suppression_rules')).count, 1);
      // and its write without confirm is refused
      const gated = await call(a.client, 'delete_suppression_rule', { ruleId: yes.rule.rule_id });
      assert.equal(gated.isError, true);
      assert.match(textOf(gated), /requires confirm: true/);
    });

    it('rejects oversized bodies with 413, unknown sessions with 404, missing sessions with 400, foreign Host with 403', async () => {
      const big = Buffer.alloc(2 * 1024 * 1024, 0x20);
      const r413 = await rawPost(url, big, { 'mcp-session-id': a.transport.sessionId! });
      assert.ok(r413.status === 413 || r413.status === -1, `status ${r413.status}`);
      const r404 = await rawPost(url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { 'mcp-session-id': 'no-such-session' });
      assert.equal(r404.status, 404);
      const r400 = await rawPost(url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }));
      assert.equal(r400.status, 400);
      const parse = await rawPost(url, '{not json', { 'mcp-session-id': a.transport.sessionId! });
      assert.equal(parse.status, 400);
      const host = await rawPost(url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }), { host: 'evil.example:80' });
      assert.equal(host.status, 403);
      // the sessions survived all of that
      assert.equal((await callOk(a.client, 'ping')).ok, true);
    });

    it('DELETE /mcp ends a session', async () => {
      const c = await httpClient(url);
      const sid = c.transport.sessionId!;
      await callOk(c.client, 'ping');
      await c.transport.terminateSession();
      const after = await rawPost(url, JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }), { 'mcp-session-id': sid });
      assert.equal(after.status, 404);
      await c.client.close();
    });

    it('shuts down gracefully on SIGTERM', async () => {
      await a.client.close();
      await b.client.close();
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
      child.kill('SIGTERM');
      assert.equal(await exited, 0);
      assert.match(stderr(), /SIGTERM, shutting down/);
    });
  });
}
