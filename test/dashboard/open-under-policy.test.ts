import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { cliResult } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { demoTenant, startServer, type DemoTenant, type RunningServer } from './server.js';

/**
 * `serve --policy` without --grants: the open dashboard cannot tell a person from the agent the policy
 * governs (both are "local" on loopback), so it must not let that agent approve its own held call,
 * nor write what the policy holds back. It is read-only there; the terminal decides approvals.
 */

let demo: DemoTenant;
let server: RunningServer;

before(async () => {
  demo = await demoTenant({ runs: 6, events: 1000 });
  const policy = demo.file(
    'policy.yaml',
    `version: 1\ndefault: allow\ntools:\n  list_tenant_github_orgs: { action: require_approval, approval_timeout: 600 }\n  create_suppression_rule: { action: deny, reason: "rules are made by people" }\n`,
  );
  server = await startServer('serve', ['--db', demo.db, '--policy', policy]);
});

after(async () => {
  await server?.stop();
  demo?.cleanup();
});

/** What a local agent can do with plain HTTP: take the open session and its CSRF token, then post as a browser would. */
async function openSession(path: string): Promise<{ cookie: string; csrf: string; html: string }> {
  const r = await fetch(`${server.base}${path}`);
  const cookie = r.headers.get('set-cookie')!.split(';')[0]!;
  const html = await r.text();
  return { cookie, csrf: /<meta name="csrf-token" content="([^"]+)"/.exec(html)![1]!, html };
}

async function post(s: { cookie: string; csrf: string }, path: string, fields: Record<string, string>): Promise<{ status: number; body: string }> {
  const r = await fetch(`${server.base}${path}`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: s.cookie, origin: server.base, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ _csrf: s.csrf, ...fields }),
  });
  return { status: r.status, body: await r.text() };
}

describe('serve --policy without --grants', () => {
  it('says at start that its dashboard is read-only', async () => {
    // written right after the listening line the server was waited for
    await waitFor(() => (/dashboard is read-only/.test(server.stderr()) ? true : undefined), 10_000, 25, 'the read-only warning');
  });

  it('the agent cannot approve its own held call on the dashboard, nor create a rule the policy denies it; the terminal still decides', async () => {
    const client = new Client({ name: 'local-agent', version: '1.0.0' }, { capabilities: {}, supportedProtocolVersions: ['2025-11-25'] });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`)));
    try {
      const held = client.callTool({ name: 'list_tenant_github_orgs', arguments: {} }, { timeout: 300_000 });
      const id = await waitFor(
        async () => {
          const r = await cliResult(['approvals', 'list', '--json', '--db', demo.db]);
          return (JSON.parse(r.stdout) as { id: string; tool: string }[]).find((a) => a.tool === 'list_tenant_github_orgs')?.id;
        },
        30_000,
        100,
        'the held call in approvals list',
      );

      const s = await openSession('/approvals');
      assert.match(s.html, /read-only/);
      assert.doesNotMatch(s.html, new RegExp(`/approvals/${id}/approve`));
      const approve = await post(s, `/approvals/${id}/approve`, { confirm: 'yes' });
      assert.equal(approve.status, 403);
      assert.match(approve.body, /approvals approve ID/);
      const rule = await post(s, '/processes/rules', { process: 'tailscaled', name: 'agent wrote this', confirm: 'yes' });
      assert.equal(rule.status, 403);
      const rules = await cliResult(['rules', 'list', '--json', '--db', demo.db]);
      assert.deepEqual((JSON.parse(rules.stdout) as { rules: unknown[] }).rules, []);
      const pending = await cliResult(['approvals', 'list', '--json', '--db', demo.db]);
      assert.deepEqual((JSON.parse(pending.stdout) as { id: string }[]).map((a) => a.id), [id]);

      // a person at the terminal decides it, and the held call gets its answer
      const decided = await cliResult(['approvals', 'approve', id, '--db', demo.db]);
      assert.equal(decided.status, 0, decided.stderr);
      const result = (await held) as { isError?: boolean };
      assert.notEqual(result.isError, true);
    } finally {
      await client.close();
    }
  });
});
