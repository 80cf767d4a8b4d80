import type { ComponentChildren } from 'preact';
import { CONFIRM_FIELD } from '../confirm.js';
import { CsrfField, Layout } from './layout.js';
import type { PageContext } from './context.js';

export interface ConfirmData {
  title: string;
  /** where the confirmed form posts (the same handler as the first post) */
  action: string;
  /** the fields of the first post, re-posted unchanged (carriedFields) */
  fields: [string, string][];
  /** the button's words, e.g. "Create rule and suppress 1,204 detections" */
  confirmLabel: string;
  /** where Cancel goes */
  cancelHref: string;
  danger?: boolean;
}

/** "Are you sure?": states the exact effect (children) and asks for one more explicit click. */
export function ConfirmPage({ ctx, d, children }: { ctx: PageContext; d: ConfirmData; children: ComponentChildren }) {
  return (
    <Layout ctx={ctx} title={d.title}>
      <h1>{d.title}</h1>
      <section class="confirm" aria-labelledby="confirm-heading">
        <h2 id="confirm-heading">Please confirm</h2>
        {children}
        <form method="post" action={d.action}>
          <CsrfField ctx={ctx} />
          {d.fields.map(([k, v]) => (
            <input type="hidden" name={k} value={v} />
          ))}
          <input type="hidden" name={CONFIRM_FIELD} value="yes" />
          <div class="actions">
            <button type="submit" class={d.danger ? 'danger' : 'primary'}>
              {d.confirmLabel}
            </button>
            <a class="button" href={d.cancelHref}>
              Cancel
            </a>
          </div>
        </form>
      </section>
    </Layout>
  );
}
