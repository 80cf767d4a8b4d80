import type { PolicyIssue } from '../../policy/load.js';
import { COLUMN_LABEL, POLICY_COLUMNS, type PolicyColumn } from '../../policy/columns.js';
import { SCOPES } from '../../policy/schema.js';
import type { PolicyTool } from '../policy-view.js';
import { CsrfField, Layout } from './layout.js';
import type { PageContext } from './context.js';

/**
 * The Policy page's edit forms (per tool: move to another column, edit a rate limit), the unified
 * diff the confirm step shows, and the pages of a refused edit (invalid: 422; the file changed
 * meanwhile: 409). Every form posts to /policy/edit with the CSRF token and the file's hash.
 */

export const EDIT_ACTION = '/policy/edit';

const where = (i: PolicyIssue) => `${i.line ? `line ${i.line}${i.col ? `:${i.col}` : ''}` : 'file'}${i.path ? `, ${i.path}` : ''}`;

export function IssueList({ issues }: { issues: PolicyIssue[] }) {
  if (!issues.length) return null;
  return (
    <ul class="issues">
      {issues.map((i) => (
        <li>
          <strong>{where(i)}:</strong> {i.message}
        </li>
      ))}
    </ul>
  );
}

/** The unified diff, one line per line, added and removed lines marked in words as well as colour. */
export function PolicyDiff({ patch }: { patch: string }) {
  const lines = patch.replace(/\n$/, '').split('\n').filter((l) => !/^(Index:|={5,})/.test(l));
  return (
    <pre class="diff" aria-label="Changes to the policy file, as a unified diff">
      {lines.map((l) => {
        const kind = l.startsWith('+++') || l.startsWith('---') ? 'diff-file' : l.startsWith('@@') ? 'diff-hunk' : l.startsWith('+') ? 'diff-add' : l.startsWith('-') ? 'diff-del' : 'diff-ctx';
        return <span class={kind}>{l || ' '}</span>;
      })}
    </pre>
  );
}

/** Per tool, in a closed <details>: move it, and (rate-limited) change each of its limits. */
export function ToolEditForms({ ctx, tool, column, hash }: { ctx: PageContext; tool: PolicyTool; column: PolicyColumn; hash: string }) {
  return (
    <details class="tool-edit">
      <summary>
        Change <span class="visually-hidden">{tool.name}</span>
      </summary>
      <form method="post" action={EDIT_ACTION} class="policy-edit move">
        <CsrfField ctx={ctx} />
        <input type="hidden" name="hash" value={hash} />
        <input type="hidden" name="op" value="move" />
        <input type="hidden" name="tool" value={tool.name} />
        <label>
          Move to
          <select name="to">
            {POLICY_COLUMNS.filter((c) => c !== column).map((c) => (
              <option value={c}>{COLUMN_LABEL[c]}</option>
            ))}
          </select>
        </label>
        <fieldset>
          <legend>Rate-limited: the limit</legend>
          <label>
            Max calls
            <input name="max" inputMode="decimal" />
          </label>
          <label>
            Per seconds
            <input name="window" inputMode="decimal" />
          </label>
          <ScopeSelect value="session" />
        </fieldset>
        <label>
          Approval: timeout in seconds (empty: the file's default)
          <input name="timeout" inputMode="decimal" />
        </label>
        <label>
          Deny: reason shown to the agent
          <input name="reason" />
        </label>
        <button type="submit">Preview the move</button>
      </form>
      {tool.limits.map((l, i) => (
        <form method="post" action={EDIT_ACTION} class="policy-edit limit">
          <CsrfField ctx={ctx} />
          <input type="hidden" name="hash" value={hash} />
          <input type="hidden" name="op" value="limit" />
          <input type="hidden" name="tool" value={tool.name} />
          <input type="hidden" name="index" value={String(i)} />
          <fieldset>
            <legend>{tool.limits.length > 1 ? `Rate limit ${i + 1}` : 'Rate limit'}</legend>
            <label>
              Max calls
              <input name="max" value={l.max} inputMode="decimal" />
            </label>
            <label>
              Per seconds
              <input name="window" value={l.window} inputMode="decimal" />
            </label>
            <ScopeSelect value={l.scope} />
          </fieldset>
          <button type="submit">Preview the limit</button>
        </form>
      ))}
    </details>
  );
}

function ScopeSelect({ value }: { value: string }) {
  return (
    <label>
      Scope
      <select name="scope">
        {SCOPES.map((s) => (
          <option value={s} selected={s === value}>
            {s}
          </option>
        ))}
      </select>
    </label>
  );
}

export interface PolicyEditRefusal {
  /** what was asked, in words */
  asked: string;
  patch?: string;
  issues?: PolicyIssue[];
  message?: string;
}

/** An edit that is not saved: invalid (422, the errors at their paths), or the file changed meanwhile (409). */
export function PolicyEditRefusedPage({ ctx, title, d }: { ctx: PageContext; title: string; d: PolicyEditRefusal }) {
  return (
    <Layout ctx={ctx} title={title}>
      <h1>{title}</h1>
      <section class="notice error" role="alert" aria-labelledby="refused-heading">
        <h2 id="refused-heading">Nothing was saved</h2>
        <p>{d.asked}</p>
        {d.message ? <p>{d.message}</p> : null}
        {d.issues?.length ? (
          <>
            <p>The policy would be invalid:</p>
            <IssueList issues={d.issues} />
          </>
        ) : null}
      </section>
      {d.patch ? (
        <>
          <h2>The change that was refused</h2>
          <PolicyDiff patch={d.patch} />
        </>
      ) : null}
      <p>
        <a href="/policy">Back to the policy</a>
      </p>
    </Layout>
  );
}
