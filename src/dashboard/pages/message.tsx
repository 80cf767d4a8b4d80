import type { ComponentChildren } from 'preact';
import { Layout } from './layout.js';
import type { PageContext } from './context.js';

/** A page that only says something: not found (404), forbidden (403), refused writes. */
export function MessagePage({ ctx, title, children }: { ctx: PageContext; title: string; children: ComponentChildren }) {
  return (
    <Layout ctx={ctx} title={title}>
      <h1>{title}</h1>
      <div class="notice error">{children}</div>
      <p>
        <a href="/">Back to the overview</a>
      </p>
    </Layout>
  );
}
