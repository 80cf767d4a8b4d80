import type { VNode } from 'preact';
import type { PageContext } from './pages/context.js';
import type { Reply } from './routes.js';
import { MessagePage } from './pages/message.js';

/**
 * The replies every route builds. They live apart from routes.tsx, which imports every route module:
 * a route module importing values from there would read them before they exist (an import cycle).
 */

export const page = (page: VNode, status = 200): Reply => ({ kind: 'page', status, page });

/** A page that says one thing: an error, a refusal or a notice, with its HTTP status. */
export function message(ctx: PageContext, status: number, title: string, text: string): Reply {
  return page(
    <MessagePage ctx={ctx} title={title}>
      <p>{text}</p>
    </MessagePage>,
    status,
  );
}

export const notFound = (ctx: PageContext, title: string, text: string): Reply => message(ctx, 404, title, text);
