import { ARGS_PREVIEW_MAX, argsPreviewIsCut, type ApprovalRow } from '../../storage/policy-state.js';
import { CsrfField, Layout } from './layout.js';
import { permissionNote, type PageContext } from './context.js';
import { formatCount, Time } from './format.js';

/**
 * The tool calls the policy holds for a human (require_approval), and the latest decisions. Approve and
 * Deny post to the confirm step; the confirmed decision goes through the policy state's decide(), the
 * path the CLI and the HTTP approvals API take, which wakes the waiting call at once.
 */

export interface ApprovalsData {
  /** false when no policy holds calls in this server (`dashboard` alone, or `serve` without a policy) */
  enabled: boolean;
  pending: ApprovalRow[];
  /** decided, expired and used approvals, newest first */
  recent: ApprovalRow[];
  /** ms, the moment the page was read: time left is counted from it */
  now: number;
  canDecide: boolean;
  /** the outcome of a decision just made here */
  notice?: string;
}

/** "4m 05s left": whole seconds, the largest two units. */
export function timeLeft(ms: number): string {
  if (ms <= 0) return 'expired';
  const s = Math.ceil(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  if (h > 0) return `${h}h ${two(m)}m`;
  if (m > 0) return `${m}m ${two(sec)}s`;
  return `${sec}s`;
}

/**
 * The arguments as the gateway recorded them for the human (JSON, cut at 4,000 characters), indented
 * when they parse. The audit log never holds them unless the policy says `audit_args: plain`; the
 * approval is the one place a person must see what they let through.
 */
export function argumentsText(preview: string): string {
  try {
    return JSON.stringify(JSON.parse(preview), null, 2);
  } catch {
    return preview;
  }
}

/**
 * The arguments of a held call, and, when the gateway cut them, that the rest is not shown: the agent
 * orders the keys, so what matters can sit past the cut, and approving runs all of it.
 */
function Arguments({ preview }: { preview: string }) {
  return (
    <>
      <pre class="args">{argumentsText(preview)}</pre>
      {argsPreviewIsCut(preview) ? (
        <p class="field-error" role="note">
          The arguments were cut at {formatCount(ARGS_PREVIEW_MAX)} characters: the rest is not shown here, and approving runs the call
          with all of them. Deny it unless you know what the rest holds.
        </p>
      ) : null}
    </>
  );
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const STATUS_TONE: Record<ApprovalRow['status'], string> = { pending: 'warn', approved: 'ok', consumed: 'ok', denied: 'danger', expired: 'neutral' };

function Decide({ ctx, row }: { ctx: PageContext; row: ApprovalRow }) {
  return (
    <div class="decide">
      {(['approve', 'deny'] as const).map((verb) => (
        <form method="post" action={`/approvals/${encodeURIComponent(row.id)}/${verb}`}>
          <CsrfField ctx={ctx} />
          <button type="submit" class={verb === 'approve' ? 'primary' : 'danger'} aria-label={`${verb === 'approve' ? 'Approve' : 'Deny'} ${row.tool} (${row.id})`}>
            {verb === 'approve' ? 'Approve' : 'Deny'}
          </button>
        </form>
      ))}
    </div>
  );
}

export function ApprovalsPage({ ctx, d }: { ctx: PageContext; d: ApprovalsData }) {
  return (
    <Layout ctx={ctx} title="Approvals">
      <h1>Approvals</h1>
      {d.notice ? (
        <p class="notice" role="status">
          {d.notice}
        </p>
      ) : null}
      {!d.enabled ? (
        <p class="notice">
          No policy holds calls in this server. Approvals appear here when <code>serve --policy FILE</code> (or a grant with its own
          policy) runs with a tool set to <code>action: require_approval</code>.
        </p>
      ) : null}
      <section aria-labelledby="pending">
        <h2 id="pending">Waiting for a decision ({d.pending.length})</h2>
        {d.pending.length === 0 ? (
          <p class="muted">No tool call is waiting.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Tool</th>
                  <th scope="col">Arguments</th>
                  <th scope="col">Identity</th>
                  <th scope="col">Rule</th>
                  <th scope="col">Filed</th>
                  <th scope="col">Time left</th>
                  {d.canDecide ? <th scope="col">Decision</th> : null}
                </tr>
              </thead>
              <tbody>
                {d.pending.map((r) => (
                  <tr data-approval={r.id}>
                    <td>
                      <code>{r.tool}</code>
                      {r.upstream_name ? <span class="muted"> on upstream {r.upstream_name}</span> : null}
                      <br />
                      <span class="muted">{r.id}</span>
                    </td>
                    <td>
                      <Arguments preview={r.args_preview} />
                    </td>
                    <td>
                      {r.identity}
                      <br />
                      <span class="muted">session {r.session.slice(0, 16)}</span>
                    </td>
                    <td>
                      <code>{r.rule}</code>
                    </td>
                    <td>
                      <Time iso={iso(r.created_at)!} />
                    </td>
                    <td>
                      <span class="time-left">{timeLeft(r.expires_at - d.now)}</span>
                      <br />
                      <span class="muted">
                        denied at <Time iso={iso(r.expires_at)!} />
                      </span>
                    </td>
                    {d.canDecide ? (
                      <td>
                        <Decide ctx={ctx} row={r} />
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {!d.canDecide && d.pending.length > 0 ? (
          <p class="muted">{permissionNote(ctx, 'Your grant may read approvals but not decide them (it needs the dashboard permission "approve").')}</p>
        ) : null}
      </section>
      <section aria-labelledby="recent">
        <h2 id="recent">Recent decisions</h2>
        {d.recent.length === 0 ? (
          <p class="muted">None yet.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Tool</th>
                  <th scope="col">Identity</th>
                  <th scope="col">Status</th>
                  <th scope="col">Decided by</th>
                  <th scope="col">Decided</th>
                  <th scope="col">Reason</th>
                </tr>
              </thead>
              <tbody>
                {d.recent.map((r) => (
                  <tr data-approval={r.id}>
                    <td>
                      <code>{r.tool}</code>
                      <br />
                      <span class="muted">{r.id}</span>
                    </td>
                    <td>{r.identity}</td>
                    <td>
                      <span class={`badge ${STATUS_TONE[r.status]}`}>{r.status === 'consumed' ? 'approved, used' : r.status}</span>
                    </td>
                    <td>{r.decided_by ?? <span class="muted">nobody (timed out)</span>}</td>
                    <td>{r.decided_at !== null ? <Time iso={iso(r.decided_at)!} /> : null}</td>
                    <td>{r.reason ?? ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
    </Layout>
  );
}

/** What the confirm step states before a decision: the exact call that will run (or be refused). */
export function DecisionSummary({ row, verb, now }: { row: ApprovalRow; verb: 'approve' | 'deny'; now: number }) {
  return (
    <>
      <p>
        {verb === 'approve'
          ? `The waiting call runs once, now, exactly as below. Nothing else is let through.`
          : `The waiting call is refused now; the agent is told it was denied by you.`}
      </p>
      <dl class="facts">
        <dt>Tool</dt>
        <dd>
          <code>{row.tool}</code>
        </dd>
        <dt>Arguments</dt>
        <dd>
          <Arguments preview={row.args_preview} />
        </dd>
        {row.upstream_name ? (
          <>
            <dt>Upstream</dt>
            <dd>{row.upstream_name}</dd>
          </>
        ) : null}
        <dt>Identity</dt>
        <dd>{row.identity}</dd>
        <dt>Rule</dt>
        <dd>
          <code>{row.rule}</code>
        </dd>
        <dt>Time left</dt>
        <dd>{timeLeft(row.expires_at - now)}</dd>
        <dt>Approval</dt>
        <dd>{row.id}</dd>
      </dl>
    </>
  );
}
