import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { after, before } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { demoTenant, startWithGrants, type DemoTenant, type RunningServer } from './server.js';

/**
 * Headless Debian Chromium driven by playwright-core, for the dashboard's e2e tests and screenshots.
 * One browser per test file (launchBrowser), a fresh context per page (newPage), and an axe-core
 * check (axeViolations) injected from the installed package, never from a CDN.
 */

export const CHROMIUM = process.env.EGRESS_TRIAGE_CHROMIUM ?? '/usr/bin/chromium';

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install it with "apt-get install chromium" (Debian), or set EGRESS_TRIAGE_CHROMIUM to its path`);
  }
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
}

export interface PageOptions {
  width?: number;
  height?: number;
  colorScheme?: 'light' | 'dark';
}

/** A page in its own context (own cookies); every dialog it opens is recorded (and dismissed). */
export async function newPage(browser: Browser, o: PageOptions = {}): Promise<{ page: Page; dialogs: string[]; errors: string[]; close: () => Promise<void> }> {
  const context = await browser.newContext({ viewport: { width: o.width ?? 1280, height: o.height ?? 800 }, colorScheme: o.colorScheme ?? 'light' });
  const page = await context.newPage();
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('dialog', (d) => {
    dialogs.push(d.message());
    void d.dismiss();
  });
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  return { page, dialogs, errors, close: () => context.close() };
}

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: string[];
}

/** Runs axe-core in the page; returns the serious and critical violations (the bar the dashboard keeps). */
export async function axeViolations(page: Page): Promise<AxeViolation[]> {
  // Injected through the DevTools protocol (addScriptTag would be an inline script the CSP refuses).
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    const axe = (globalThis as unknown as { axe: { run: (ctx: unknown, o: unknown) => Promise<{ violations: { id: string; impact: string | null; help: string; nodes: { target: unknown[] }[] }[] }> } }).axe;
    const r = await axe.run(document, { resultTypes: ['violations'] });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => JSON.stringify(n.target)) }));
  });
  return result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/** A test file's demo tenant, `dashboard --grants` on it (WRITER_TOKEN, READER_TOKEN) and its browser. */
export interface GrantsDashboard {
  demo: DemoTenant;
  server: RunningServer;
  browser: Browser;
}

/**
 * Registers the test file's before() that makes a demo tenant, serves it with `dashboard --grants` and
 * launches the browser, and its after() that undoes what was made. The fields are set once before() ran.
 */
export function grantsDashboard(): GrantsDashboard {
  const d: Partial<GrantsDashboard> = {};
  before(async () => {
    d.demo = await demoTenant();
    d.server = await startWithGrants(d.demo);
    d.browser = await launchBrowser();
  });
  after(async () => {
    await d.browser?.close();
    await d.server?.stop();
    d.demo?.cleanup();
  });
  return d as GrantsDashboard;
}

/**
 * Signs in at the sign-in page the server redirects `next` to, with a grants token, and waits until
 * the browser is back on `next` (path and query).
 */
export async function signIn(page: Page, base: string, token: string, next = '/'): Promise<void> {
  await page.goto(`${base}${next}`);
  await page.locator('#token').fill(token);
  await page.locator('button[type=submit]').click();
  await page.waitForURL((u) => u.pathname + u.search === next);
}

/** A form post from inside the signed-in page (its cookie, its CSRF token, its Origin), as a forged or scripted post would be. */
export async function postFromPage(page: Page, base: string, path: string, fields: [string, string][]): Promise<{ status: number; text: string }> {
  const token = await page.locator('meta[name="csrf-token"]').getAttribute('content');
  const res = await page.request.post(`${base}${path}`, { headers: { origin: base }, form: Object.fromEntries([['_csrf', token!], ...fields]), maxRedirects: 0 });
  return { status: res.status(), text: await res.text() };
}
