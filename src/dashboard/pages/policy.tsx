import { COLUMN_LABEL, POLICY_COLUMNS, type PolicyView } from '../policy-view.js';
import { IssueList, ToolEditForms } from './policy-edit.js';
import { Layout } from './layout.js';
import type { PageContext } from './context.js';

/** The policy file the server runs, its tools in columns by what the policy does, problems where they are. */

export interface PolicyPageData {
  /** undefined when the server runs no policy file */
  view?: PolicyView;
  /** the edit forms are offered (the file's hash at this read); undefined: read-only, and why in editNote */
  edit?: { hash: string };
  editNote?: string;
  /** a saved change, said once after the save */
  notice?: string;
}

export function PolicyPage({ ctx, d }: { ctx: PageContext; d: PolicyPageData }) {
  const v = d.view;
  return (
    <Layout ctx={ctx} title="Policy">
      <h1>Policy</h1>
      {d.notice ? (
        <p class="notice" role="status">
          {d.notice} <a href="/audit?decision=policy_change">Policy changes in the audit</a>
        </p>
      ) : null}
      {!v ? (
        <p class="notice">
          This server runs no policy file. Start it with <code>serve --policy FILE</code> to see the policy here.
        </p>
      ) : (
        <>
          <dl class="facts">
            <dt>File</dt>
            <dd>
              <code>{v.path}</code>
            </dd>
            <dt>Tools not named</dt>
            <dd>{v.defaultAction === 'deny' ? 'denied (default: deny)' : 'allowed (default: allow)'}</dd>
            <dt>Validation</dt>
            <dd>
              {v.valid ? (
                <span class="badge ok">valid</span>
              ) : (
                <>
                  <span class="badge danger">invalid</span> the running server keeps the last valid version until the file is fixed
                </>
              )}
            </dd>
          </dl>
          {d.edit ? (
            <p class="muted">
              Each tool's <strong>Change</strong> moves it to another column or edits its limit. You see the change as a diff of the file, checked by the
              gateway's own parser, before anything is saved; the running server enforces it as soon as it is saved, and the audit records who changed
              what (<a href="/audit?decision=policy_change">policy changes</a>).
            </p>
          ) : d.editNote ? (
            <p class="muted">{d.editNote}</p>
          ) : null}
          {v.fileIssues.length ? (
            <section class="notice error" aria-labelledby="file-issues">
              <h2 id="file-issues">Problems in the file</h2>
              <IssueList issues={v.fileIssues} />
            </section>
          ) : null}
          <div class="policy-columns">
            {POLICY_COLUMNS.map((c) => (
              <section aria-labelledby={`col-${c}`} data-column={c}>
                <h2 id={`col-${c}`}>
                  {COLUMN_LABEL[c]} ({v.columns[c].length})
                </h2>
                {v.columns[c].length === 0 ? (
                  <p class="muted">none</p>
                ) : (
                  <ul class="plain">
                    {v.columns[c].map((t) => (
                      <li class={t.issues.length ? 'tool has-issues' : 'tool'} data-tool={t.name}>
                        <code>{t.name}</code>
                        {t.details.length ? (
                          <ul class="details">
                            {t.details.map((x) => (
                              <li>{x}</li>
                            ))}
                          </ul>
                        ) : null}
                        <IssueList issues={t.issues} />
                        {d.edit ? <ToolEditForms ctx={ctx} tool={t} column={c} hash={d.edit.hash} /> : null}
                      </li>
                    ))}
                  </ul>
                )}
              </section>
            ))}
          </div>
          <details>
            <summary>The file, line by line</summary>
            <ol class="source">
              {v.lines.map((line, n) => {
                const here = [...v.fileIssues, ...POLICY_COLUMNS.flatMap((c) => v.columns[c].flatMap((t) => t.issues))].filter((i) => i.line === n + 1);
                return (
                  <li class={here.length ? 'issue' : undefined}>
                    <code>{line || ' '}</code>
                    {here.map((i) => (
                      <span class="field-error"> {i.message}</span>
                    ))}
                  </li>
                );
              })}
            </ol>
          </details>
        </>
      )}
    </Layout>
  );
}
