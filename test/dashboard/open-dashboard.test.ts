import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { foreignRead } from '../../src/dashboard/fetch-metadata.js';
import { cliResult } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { demoTenant, startServer, type DemoTenant, type RunningServer } from './server.js';

/**
 * An open dashboard (loopback, no --grants), served by `serve --policy` here.
 *
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

/** A GET with the Fetch Metadata headers a browser sets (Node's fetch would send its own). */
function getWith(path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  const u = new URL(path, server.base);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname + u.search, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('an open dashboard and other sites (Fetch Metadata)', () => {
  it("another site's page cannot load or start an export; a link from it still opens the page", async () => {
    const img = await getWith('/detections.csv', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'image' });
    assert.equal(img.status, 403);
    assert.match(img.body, /Fetch Metadata/);
    const sameSite = await getWith('/processes', { 'sec-fetch-site': 'same-site', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' });
    assert.equal(sameSite.status, 403, 'another port of 127.0.0.1 is another program');
    const frame = await getWith('/', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'iframe' });
    assert.equal(frame.status, 403);
    const link = await getWith('/detections', { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document', 'sec-fetch-user': '?1' });
    assert.equal(link.status, 200);
    assert.equal((await getWith('/detections.csv', { 'sec-fetch-site': 'same-origin', 'sec-fetch-mode': 'cors', 'sec-fetch-dest': 'empty' })).status, 200);
    assert.equal((await getWith('/detections.csv', {})).status, 200, 'no headers (curl, an older browser): the other checks alone');
  });

  it('reads only: a foreign post is left to the Origin and CSRF checks, which explain their refusal', () => {
    const nav = { 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'navigate', 'sec-fetch-dest': 'document' };
    assert.equal(foreignRead('GET', nav), false);
    assert.equal(foreignRead('HEAD', { ...nav, 'sec-fetch-dest': 'iframe' }), true);
    assert.equal(foreignRead('POST', { ...nav, 'sec-fetch-mode': 'no-cors', 'sec-fetch-dest': 'empty' }), false);
    assert.equal(foreignRead('GET', { ...nav, 'sec-fetch-site': 'none', 'sec-fetch-mode': 'cors' }), false, 'typed into the address bar');
  });

  it('an address that is not valid percent-encoding is a bad request (400), not an unknown method', async () => {
    for (const path of ['/rules/%E0%A4%A', '/rules/%ZZ', '/rules/%ED%A0%80']) {
      const r = await getWith(path, {});
      assert.equal(r.status, 400, path);
      assert.match(r.body, /not valid percent-encoding/);
    }
    assert.equal((await getWith('/rules/no-such-rule', {})).status, 404);
  });
});
