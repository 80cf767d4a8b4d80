/**
 * `npm run screenshots`: writes docs/screenshots/*.png of the dashboard on the demo tenant, with the
 * same browser helper and server fixture as the e2e tests (headless Debian Chromium, the built CLI).
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { cliResult } from '../helpers.js';
import { launchBrowser, newPage, type PageOptions } from './browser.js';
import { demoTenant, startServer } from './server.js';

const OUT = resolve('docs/screenshots');

async function main(): Promise<void> {
  mkdirSync(OUT, { recursive: true });
  const demo = await demoTenant({ runs: 20, events: 40_000 });
  const server = await startServer('serve', ['--db', demo.db]);
  const browser = await launchBrowser();
  try {
    const analysis = JSON.parse((await cliResult(['analyze', '--json', '--db', demo.db])).stdout) as {
      processes: { process: string; sample_detections: { dashboard_url: string }[] }[];
    };
    const sample = new URL(analysis.processes.find((p) => p.process === 'tailscaled')!.sample_detections[0]!.dashboard_url);
    const shots: { name: string; path: string; opts?: PageOptions; fullPage?: boolean }[] = [
      { name: 'overview', path: '/' },
      { name: 'overview-dark', path: '/', opts: { colorScheme: 'dark' } },
      { name: 'overview-narrow', path: '/', opts: { width: 390, height: 844 } },
      { name: 'run', path: sample.pathname + sample.search },
      { name: 'processes', path: '/processes' },
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
        const file = join(OUT, `${s.name}.png`);
        await page.screenshot({ path: file, fullPage: s.fullPage ?? false });
        process.stdout.write(`${file}\n`);
      } finally {
        await close();
      }
    }
  } finally {
    await browser.close();
    await server.stop();
    demo.cleanup();
  }
}

main().catch((e: Error) => {
  process.stderr.write(`screenshots: ${e.message}\n`);
  process.exit(1);
});
