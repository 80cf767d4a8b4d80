import type { AuditRecord } from '../../storage/policy-state.js';
import { AUDIT_DECISIONS, AUDIT_PAGE_SIZE, auditHref, type AuditFilter } from '../audit-filter.js';
import { Layout } from './layout.js';
import type { PageContext } from './context.js';
import { Time } from './format.js';

/** The policy's decisions, newest first, filterable and paged; argument values only where the policy wrote them. */

export interface AuditData {
  /** false when no policy runs in this server */
  enabled: boolean;
  filter: AuditFilter;
  errors: Partial<Record<keyof AuditFilter, string>>;
  /** newest first, at most one page */
  records: AuditRecord[];
  hasNext: boolean;
  /** who decided each approval on this page (approval id -> decided_by) */
  decidedBy: Record<string, string>;
  /** on a store that holds other tenants (how many), only this tenant's records are shown */
  scope?: { tenant: string; others: number };
}

const DECISION_TONE: Record<string, string> = {
  allow: 'ok',
  approved: 'ok',
  deny: 'danger',
  approval_denied: 'danger',
  rate_limited: 'warn',
  approval_expired: 'neutral',
  approval_cancelled: 'neutral',
  policy_change: 'warn',
};

function Field({ name, label, value, error, placeholder }: { name: keyof AuditFilter; label: string; value: string; error?: string; placeholder?: string }) {
  return (
    <label>
      {label}
      <input name={name} value={value} placeholder={placeholder} aria-invalid={error ? 'true' : undefined} aria-describedby={error ? `${name}-error` : undefined} />
      {error ? (
        <span id={`${name}-error`} class="field-error">
          {error}
        </span>
      ) : null}
    </label>
  );
}

function Filters({ d }: { d: AuditData }) {
  const f = d.filter;
  return (
    <form method="get" action="/audit" class="filters" aria-label="Filter the audit">
      <Field name="tool" label="Tool" value={f.tool} />
      <label>
        Decision
        <select name="decision" aria-invalid={d.errors.decision ? 'true' : undefined}>
          <option value="">any</option>
          {AUDIT_DECISIONS.map((x) => (
            <option value={x} selected={x === f.decision}>
              {x}
            </option>
          ))}
        </select>
        {d.errors.decision ? <span class="field-error">{d.errors.decision}</span> : null}
      </label>
      <Field name="identity" label="Identity" value={f.identity} />
      <Field name="upstream" label="Upstream" value={f.upstream} />
      <Field name="since" label="Since" value={f.since} error={d.errors.since} placeholder="2h or 2026-12-01" />
      <Field name="until" label="Until" value={f.until} error={d.errors.until} placeholder="2026-12-02T10:00Z" />
      <button type="submit" class="primary">
        Filter
      </button>
      <a class="button" href="/audit">
        Clear
      </a>
    </form>
  );
}

function Args({ r }: { r: AuditRecord }) {
  if (r.decision === 'policy_change') return null;
  if (r.args !== undefined) return <pre class="args">{JSON.stringify(r.args, null, 2)}</pre>;
  return (
    <span class="muted" title={`HMAC ${r.args_hash}`}>
      hashed <code>{r.args_hash.slice(0, 12)}</code>
    </span>
  );
}

export function AuditPage({ ctx, d }: { ctx: PageContext; d: AuditData }) {
  const f = d.filter;
  const first = (f.page - 1) * AUDIT_PAGE_SIZE + 1;
  return (
    <Layout ctx={ctx} title="Audit">
      <h1>Audit</h1>
      <p class="muted">
        Every tool call the policy decided, and every change of the policy in force (decision <code>policy_change</code>: who, the file, what changed,
        and the hashes before and after), newest first. Argument values appear only for tools whose policy says <code>audit_args: plain</code>; otherwise
        the audit keeps their HMAC.
      </p>
      {!d.enabled ? (
        <p class="notice">
          No policy runs in this server. Its decisions appear here when <code>serve --policy FILE</code> runs.
        </p>
      ) : null}
      {d.enabled && d.scope ? (
        <p class="notice" data-scope="tenant">
          This store holds {d.scope.others === 1 ? 'one other tenant' : `${d.scope.others} other tenants`}: only the decisions of <code>{d.scope.tenant}</code>'s servers are shown. Those of a
          stand-alone gateway, and those recorded before decisions named their tenant, are read with <code>egress-triage audit</code> on the store.
        </p>
      ) : null}
      <Filters d={d} />
      {Object.keys(d.errors).length ? (
        <p class="notice error" role="alert">
          The filter was not applied: {Object.values(d.errors).join('; ')}.
        </p>
      ) : d.records.length === 0 ? (
        <p class="muted">No decision matches.</p>
      ) : (
        <>
          <p class="muted">
            Records {first} to {first + d.records.length - 1}.
          </p>
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Decision</th>
                  <th scope="col">Tool</th>
                  <th scope="col">Identity</th>
                  <th scope="col">Upstream</th>
                  <th scope="col">Rule and reason</th>
                  <th scope="col">Approval</th>
                  <th scope="col">Arguments</th>
                  <th scope="col" class="num">
                    Latency
                  </th>
                </tr>
              </thead>
              <tbody>
                {d.records.map((r) => (
                  <tr data-decision={r.decision}>
                    <td>
                      <Time iso={r.ts} />
                    </td>
                    <td>
                      <span class={`badge ${DECISION_TONE[r.decision] ?? 'neutral'}`}>{r.decision}</span>
                    </td>
                    <td>
                      <code>{r.tool}</code>
                    </td>
                    <td>
                      {r.identity}
                      {r.session ? (
                        <>
                          <br />
                          <span class="muted">session {r.session.slice(0, 16)}</span>
                        </>
                      ) : null}
                    </td>
                    <td>
                      {r.upstreamName ? <code>{r.upstreamName}</code> : null} <span class="muted">{r.upstream}</span>
                    </td>
                    <td>
                      <code>{r.rule}</code>
                      {r.reason ? (
                        <>
                          <br />
                          {r.reason}
                        </>
                      ) : null}
                      {r.decision === 'policy_change' ? (
                        <>
                          <br />
                          <span class="muted" title={`sha256 ${r.previous_policy_hash ?? '?'} → ${r.policy_hash ?? '?'}`}>
                            policy <code>{(r.previous_policy_hash ?? '?').slice(0, 12)}</code> → <code>{(r.policy_hash ?? '?').slice(0, 12)}</code>
                          </span>
                        </>
                      ) : null}
                    </td>
                    <td>
                      {r.approval_id ? (
                        <>
                          {r.approval_id}
                          {d.decidedBy[r.approval_id] ? (
                            <>
                              <br />
                              <span class="muted">by {d.decidedBy[r.approval_id]}</span>
                            </>
                          ) : null}
                        </>
                      ) : null}
                    </td>
                    <td>
                      <Args r={r} />
                    </td>
                    <td class="num">{r.latency_ms} ms</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
      <nav class="pager" aria-label="Audit pages">
        {f.page > 1 ? <a href={auditHref(f, f.page - 1)}>Newer</a> : null}
        {d.hasNext ? <a href={auditHref(f, f.page + 1)}>Older</a> : null}
      </nav>
    </Layout>
  );
}
