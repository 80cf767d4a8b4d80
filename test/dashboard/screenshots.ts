/**
 * `npm run screenshots`: writes docs/screenshots/*.png of the dashboard on the demo tenant, with the
 * same browser helper and server fixture as the e2e tests (headless Debian Chromium, the built CLI).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { cliResult } from '../helpers.js';
import { waitFor } from '../helpers/wait.js';
import { launchBrowser, newPage, type PageOptions } from './browser.js';
import { demoTenant, startServer } from './server.js';

const OUT = resolve('docs/screenshots');

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const demo = await demoTenant({ runs: 20, events: 40_000 });
  // A policy that holds one tool for a human, so the Approvals and Audit pages have something to show.
  const policy = demo.file(
    'policy.yaml',
    [
      'version: 1',
      'default: allow',
      'hide: [delete_suppression_rule]',
      'tools:',
      '  ping: { rate_limit: { max: 60, window: 60 } }',
      '  find_repos_using_endpoint: { action: require_approval, approval_timeout: 900 }',
      '  create_suppression_rule: { action: require_approval, approval_timeout: 300, rate_limit: { max: 10, window: 3600, scope: global } }',
      '  list_tenant_github_orgs: { action: deny, reason: org lists are for people }',
      '  analyze_anomalous_calls_by_process: { audit_args: plain }',
      '',
    ].join('\n'),
  );
  const server = await startServer('serve', ['--db', demo.db, '--policy', policy]);
  const browser = await launchBrowser();
  const agent = new Client({ name: 'screenshot-agent', version: '1.0.0' }, { capabilities: {}, supportedProtocolVersions: ['2025-11-25'] });
  try {
    await agent.connect(new StreamableHTTPClientTransport(new URL(`${server.base}/mcp`)));
    for (let i = 0; i < 3; i++) await agent.callTool({ name: 'ping', arguments: {} });
    await agent.callTool({ name: 'list_tenant_github_orgs', arguments: {} });
    const held = agent.callTool({ name: 'find_repos_using_endpoint', arguments: { owner: 'acme-corp', endpoint: 'tailscale.com:443' } }, { timeout: 900_000 });
    held.catch(() => undefined);
    await waitFor(
      async () => (JSON.parse((await cliResult(['approvals', 'list', '--json', '--db', demo.db])).stdout) as unknown[]).length > 0 || undefined,
      30_000,
      100,
      'the held call to be pending',
    );
    const analysis = JSON.parse((await cliResult(['analyze', '--json', '--db', demo.db])).stdout) as {
      processes: { process: string; sample_detections: { dashboard_url: string }[]; suggested_rule: { conditions: Record<string, string> } | null }[];
    };
    const sample = new URL(analysis.processes.find((p) => p.process === 'tailscaled')!.sample_detections[0]!.dashboard_url);
    // a rule with a history for the Rules pages: created narrow, then widened, by two people
    const suggested = analysis.processes.find((p) => p.process === 'zerotier-one')!.suggested_rule!.conditions;
    const made = await cliResult(['rules', 'create', '--condition', `process=${suggested.process}`, '--condition', `process_sha256=${suggested.process_sha256}`, '--condition', 'owner=acme-corp', '--name', 'zerotier-one at acme-corp', '--actor', 'cli:alice', '--yes', '--json', '--db', demo.db]);
    if (made.status !== 0) throw new Error(`rules create failed: ${made.stderr}`);
    const ruleId = (JSON.parse(made.stdout) as { rule: { rule_id: string } }).rule.rule_id;
    const widened = await cliResult(['rules', 'update', ruleId, '--condition', `process=${suggested.process}`, '--condition', `process_sha256=${suggested.process_sha256}`, '--name', 'zerotier-one, genuine binary', '--actor', 'cli:bob', '--yes', '--json', '--db', demo.db]);
    if (widened.status !== 0) throw new Error(`rules update failed: ${widened.stderr}`);
    const shots: { name: string; path: string; opts?: PageOptions; fullPage?: boolean }[] = [
      { name: 'overview', path: '/' },
      { name: 'overview-dark', path: '/', opts: { colorScheme: 'dark' } },
      { name: 'overview-narrow', path: '/', opts: { width: 390, height: 844 } },
      { name: 'run', path: sample.pathname + sample.search },
      { name: 'processes', path: '/processes' },
      { name: 'detections', path: '/detections?process=tailscaled' },
      { name: 'destinations', path: '/destinations' },
      { name: 'rules', path: '/rules' },
      { name: 'rule', path: `/rules/${ruleId}` },
      { name: 'baselines', path: '/baselines?owner=acme-corp&repo=mobile-app&workflow=.github%2Fworkflows%2Fci.yml&job=test' },
      { name: 'approvals', path: '/approvals' },
      { name: 'audit', path: '/audit' },
      { name: 'policy', path: '/policy' },
    ];
    for (const s of shots) {
      const { page, close } = await newPage(browser, s.opts);
      try {
        await page.goto(server.base + s.path);
        if (s.path === '/') await page.locator('figure.chart .uplot canvas').first().waitFor({ timeout: 10_000 });
        if (s.name === 'run') {
          // open the first highlighted call's parent chain two levels deep, then show that call
          const row = page.locator('tr.detected').first();
          await row.locator('details.tree > summary').first().click();
          await row.locator('details.tree details.tree > summary').first().click();
          await row.scrollIntoViewIfNeeded();
        }
        if (s.name === 'destinations') {
          // endpoint order puts the mesh IPs first: page on to the risky webhook.site (bounded)
          const risky = page.locator('tbody[data-endpoint="webhook.site:443"]');
          for (let i = 0; i < 100 && (await risky.count()) === 0; i++) await page.locator('nav.pager a', { hasText: 'Next page' }).click();
          await risky.scrollIntoViewIfNeeded();
        }
        const file = join(OUT, `${s.name}.png`);
        await page.screenshot({ path: file, fullPage: s.fullPage ?? false });
        process.stdout.write(`${file}\n`);
      } finally {
        await close();
      }
    }
  } finally {
    await agent.close().catch(() => undefined);
    await browser.close();
    await server.stop();
    demo.cleanup();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`screenshots: ${e.message}\n`);
  process.exit(1);
});
