import type { ComponentChildren } from 'preact';
import { CSRF_FIELD } from '../csrf.js';
import { THEMES } from '../cookies.js';
import type { PageContext } from './context.js';

/**
 * The frame of every page: head with the bundle's script and stylesheet, the navigation, the session
 * and theme controls. Pages are pure functions of plain data; this adds no data of its own.
 */

export interface NavItem {
  href: string;
  label: string;
}

/** The navigation: one line per page (pages not built yet are not listed). */
export const NAV: readonly NavItem[] = [
  { href: '/', label: 'Overview' },
  { href: '/processes', label: 'Processes' },
  { href: '/detections', label: 'Detections' },
  { href: '/destinations', label: 'Destinations' },
  { href: '/baselines', label: 'Baselines' },
  { href: '/rules', label: 'Rules' },
  { href: '/approvals', label: 'Approvals' },
  { href: '/audit', label: 'Audit' },
  { href: '/policy', label: 'Policy' },
];

function isActive(item: NavItem, path: string): boolean {
  return item.href === '/' ? path === '/' : path === item.href || path.startsWith(`${item.href}/`);
}

/** The hidden CSRF field every form of the dashboard carries. */
export function CsrfField({ ctx }: { ctx: Pick<PageContext, 'csrf'> }) {
  return <input type="hidden" name={CSRF_FIELD} value={ctx.csrf} />;
}

const THEME_LABEL = { auto: 'Auto', light: 'Light', dark: 'Dark' } as const;

function ThemeForm({ ctx }: { ctx: PageContext }) {
  return (
    <form method="post" action="/theme">
      <CsrfField ctx={ctx} />
      <input type="hidden" name="return" value={ctx.location} />
      <label for="theme-select">Theme</label>
      <select id="theme-select" name="theme">
        {THEMES.map((t) => (
          <option value={t} selected={t === ctx.theme}>
            {THEME_LABEL[t]}
          </option>
        ))}
      </select>
      <button type="submit">Apply</button>
    </form>
  );
}

export function Layout({ ctx, title, children }: { ctx: PageContext; title: string; children: ComponentChildren }) {
  return (
    <html lang="en" data-theme={ctx.theme === 'auto' ? undefined : ctx.theme}>
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        {/* no favicon request: the browser would ask for /favicon.ico on every page */}
        <link rel="icon" href="data:," />
        <meta name="csrf-token" content={ctx.csrf} />
        <title>{`${title} · egress-triage`}</title>
        {ctx.assets.styles.map((href) => (
          <link rel="stylesheet" href={href} />
        ))}
        <script type="module" src={ctx.assets.script} />
      </head>
      <body>
        <a class="skip" href="#main">
          Skip to content
        </a>
        <header class="topbar">
          <a class="brand" href="/">
            egress-triage
          </a>
          <nav aria-label="Main">
            <ul class="nav">
              {NAV.map((item) => (
                <li>
                  <a href={item.href} aria-current={isActive(item, ctx.path) ? 'page' : undefined}>
                    {item.label}
                  </a>
                </li>
              ))}
            </ul>
          </nav>
          <div class="session">
            <ThemeForm ctx={ctx} />
            {ctx.signedIn ? (
              <form method="post" action="/signout">
                <CsrfField ctx={ctx} />
                <span>{ctx.identity}</span>
                <button type="submit">Sign out</button>
              </form>
            ) : null}
          </div>
        </header>
        <main id="main">{children}</main>
      </body>
    </html>
  );
}
