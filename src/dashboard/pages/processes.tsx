import type { ProcessGroup } from '../../analysis/types.js';
import type { RuleChangeResult, RuleConditions, RuleInput, RulePreview, SuppressionRule } from '../../rules/types.js';
import type { ProcessesData, PreviewData } from '../processes-data.js';
import { binaryRows, nameOnlyRule, narrowingConditions, pagerPages, previewHref, processesHref, ruleParams, sampleRuns, vpnVerdict } from '../processes-view.js';
import { CsrfField, Layout } from './layout.js';
import { permissionNote, type PageContext } from './context.js';
import { formatCount, Sha, Time } from './format.js';
import { DetectionTable } from './detection-table.js';
import { ruleHref } from '../links.js';
import { ConditionInputs } from './condition-inputs.js';

/**
 * The processes page (the analysis, drawn), a rule's preview, and the outcomes of creating a rule.
 * Every number comes from the analysis or the rules service; nothing here decides a guard.
 */

export const canWrite = (ctx: PageContext) => ctx.permissions.includes('write');

/** A rule's conditions as `key=value` codes; "*" wildcards are left out. */
export function Conditions({ c }: { c: RuleConditions }) {
  const parts = narrowingConditions(c);
  if (parts.length === 0) return <span class="muted">(no condition)</span>;
  return (
    <ul class="plain conditions">
      {parts.map(([k, v]) => (
        <li>
          <code>
            {k}={k === 'process_sha256' ? v.split('|').map((h) => `${h.slice(0, 12)}…`).join('|') : v}
          </code>
        </li>
      ))}
    </ul>
  );
}

/** The form whose first post asks for confirmation (POST /processes/rules, confirm.ts). */
function CreateRuleForm({ ctx, input, label }: { ctx: PageContext; input: RuleInput; label: string }) {
  if (!canWrite(ctx)) return <p class="muted">{permissionNote(ctx, 'Creating rules needs the dashboard permission "write".')}</p>;
  return (
    <form method="post" action="/processes/rules" class="inline">
      <CsrfField ctx={ctx} />
      {ruleParams(input).map(([k, v]) => (
        <input type="hidden" name={k} value={v} />
      ))}
      <button type="submit" class="primary">
        {label}
      </button>
    </form>
  );
}

function Pager({ page, last, href, label }: { page: number; last: number | null; href: (p: number) => string; label: string }) {
  const pages = pagerPages(page, last);
  if (pages.length <= 1) return null;
  return (
    <nav class="pager" aria-label={label}>
      <ul class="plain">
        {pages.map((p) => (
          <li>
            {p === page ? (
              <span aria-current="page">{p}</span>
            ) : (
              <a href={href(p)} rel={p === page + 1 ? 'next' : p === page - 1 ? 'prev' : undefined}>
                {p === page + 1 && last === null ? 'Next' : p}
              </a>
            )}
          </li>
        ))}
      </ul>
    </nav>
  );
}

function ProcessCard({ ctx, g, rules, index }: { ctx: PageContext; g: ProcessGroup; rules: SuppressionRule[]; index: number }) {
  const verdict = vpnVerdict(g);
  const binaries = binaryRows(g);
  const headingId = `process-${index}`;
  const suggestion = g.suggested_rule;
  const nameOnly = nameOnlyRule(g);
  const ownRules = rules.filter((r) => r.conditions.process !== undefined && r.conditions.process.toLowerCase() === g.process.toLowerCase());
  return (
    <section class="process" aria-labelledby={headingId} data-process={g.process}>
      <h2 id={headingId}>
        <code>{g.process}</code> <span class={`badge ${verdict.tone}`}>{verdict.label}</span>
      </h2>
      <dl class="facts counts">
        <dt>Open detections</dt>
        <dd data-field="count">{formatCount(g.count)}</dd>
        <dt>Endpoints / direct IPs</dt>
        <dd>
          {formatCount(g.distinct_endpoints)} / {formatCount(g.distinct_direct_ips)}
        </dd>
        <dt>Repos / owners</dt>
        <dd>
          {formatCount(g.distinct_repos)} / {formatCount(g.distinct_owners)}
        </dd>
        <dt>Seen</dt>
        <dd>
          <Time iso={g.first_seen} /> to <Time iso={g.last_seen} />
        </dd>
        <dt>Its detections</dt>
        <dd>
          <a href={previewHref(nameOnly)}>all {formatCount(g.count)}, paged</a>
          {sampleRuns(g.sample_detections).map((s, i) => (
            <>
              {i === 0 ? ' · runs: ' : ', '}
              <a href={s.href}>{s.label}</a>
            </>
          ))}
        </dd>
      </dl>

      <h3>VPN verdict</h3>
      <p>{verdict.summary}</p>
      {g.vpn_evidence.supporting.length + g.vpn_evidence.contradicting.length > 0 ? (
        <div class="grid-2">
          <div>
            <h4>Evidence for</h4>
            {g.vpn_evidence.supporting.length ? (
              <ul>
                {g.vpn_evidence.supporting.map((e) => (
                  <li>{e}</li>
                ))}
              </ul>
            ) : (
              <p class="muted">none</p>
            )}
          </div>
          <div>
            <h4>Evidence against</h4>
            {g.vpn_evidence.contradicting.length ? (
              <ul>
                {g.vpn_evidence.contradicting.map((e) => (
                  <li>{e}</li>
                ))}
              </ul>
            ) : (
              <p class="muted">none</p>
            )}
          </div>
        </div>
      ) : null}

      <h3>Binary variants</h3>
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th scope="col">Verdict</th>
              <th scope="col">Binary</th>
              <th scope="col" class="num">
                Detections
              </th>
              <th scope="col">Why</th>
            </tr>
          </thead>
          <tbody>
            {binaries.map((b) => (
              <tr class={b.verdict === 'impostor' ? 'detected impostor' : undefined} data-verdict={b.verdict}>
                <td>
                  <span class={`badge ${b.tone}`}>{b.label}</span>
                </td>
                <td>
                  {b.path ? <code>{b.path}</code> : <span class="muted">no path</span>}
                  <div>
                    <Sha sha256={b.sha256} />
                  </div>
                </td>
                <td class="num">{formatCount(b.count)}</td>
                <td>
                  {b.contradicting.length ? <div>Against: {b.contradicting.join('; ')}</div> : null}
                  {b.supporting.length ? <div class="muted">For: {b.supporting.join('; ')}</div> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>

      <h3>Risky destinations</h3>
      {g.risky_destination_samples.length ? (
        <div class="notice error" data-field="risky">
          {formatCount(g.risky_destinations_suppressed_by_process_rule)} detection(s) to risky destinations, never suppressed:{' '}
          {g.risky_destination_samples.map((e, i) => (
            <>
              {i > 0 ? ', ' : ''}
              <code>{e}</code>
            </>
          ))}
        </div>
      ) : (
        <p class="muted">None.</p>
      )}
      {g.warnings.length ? (
        <ul>
          {g.warnings.map((w) => (
            <li>{w}</li>
          ))}
        </ul>
      ) : null}

      <h3>Suggested rule</h3>
      {suggestion && !suggestion.blocked_reason ? (
        <div class="suggestion" data-field="suggestion">
          <Conditions c={suggestion.conditions} />
          <p>
            Impact: suppresses exactly <strong data-field="would-suppress">{formatCount(suggestion.impact.would_suppress)}</strong> open detection(s)
            {suggestion.impact.risky ? `, ${formatCount(suggestion.impact.risky)} to risky destinations` : ', none to a risky destination'}.
          </p>
          <p class="muted">{suggestion.rationale}</p>
          <div class="actions">
            <a class="button" href={previewHref(suggestion)}>
              Preview
            </a>
            <CreateRuleForm ctx={ctx} input={suggestion} label="Create rule…" />
          </div>
        </div>
      ) : (
        <div class="notice" data-field="no-suggestion">
          {suggestion?.blocked_reason ? <p>Refused: {suggestion.blocked_reason}</p> : <p>{g.no_suggestion_reason ?? 'No rule is suggested.'}</p>}
        </div>
      )}
      <p>
        <a href={previewHref(nameOnly)}>Preview the name-only rule (process={g.process})</a>
      </p>
      {ownRules.length ? (
        <>
          <h3>Active rules naming this process</h3>
          <ul data-field="rules">
            {ownRules.map((r) => (
              <li>
                <a href={ruleHref(r.rule_id)}>
                  <strong>{r.name}</strong>
                </a>{' '}
                <span class="muted">by {r.created_by}, </span>
                <Time iso={r.created_on} />
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

export function ProcessesPage({ ctx, d }: { ctx: PageContext; d: ProcessesData }) {
  const r = d.result;
  const last = r.next_cursor ? null : d.page;
  return (
    <Layout ctx={ctx} title="Processes">
      <h1>
        Processes <span class="muted">· tenant {r.tenant}</span>
      </h1>
      <p>
        {formatCount(r.total_anomalies_scanned)} open {r.detection_id} detection(s), grouped by calling process, largest first
        {r.next_cursor || d.page > 1 ? `; page ${d.page}` : ''}. Exact counts, not a sample. {formatCount(d.rules.length)} active suppression rule(s).
      </p>
      {r.processes.length === 0 ? <p class="muted">{r.note || 'No open detections.'}</p> : null}
      {r.processes.map((g, i) => (
        <ProcessCard ctx={ctx} g={g} rules={d.rules} index={i} />
      ))}
      <Pager page={d.page} last={last} href={processesHref} label="Process pages" />
    </Layout>
  );
}

const CONDITION_FIELDS = ['process', 'process_sha256', 'endpoint', 'host', 'ip_address', 'owner', 'repo', 'workflow', 'job'] as const;

/** The rule's conditions as a GET form: change them and preview again. */
function EditRuleForm({ input }: { input: RuleInput }) {
  return (
    <details class="edit-rule">
      <summary>Change the conditions</summary>
      <form method="get" action="/processes/preview">
        <input type="hidden" name="detection_id" value={input.detection_id} />
        <dl class="facts">
          <ConditionInputs keys={CONDITION_FIELDS} values={input.conditions} />
        </dl>
        <button type="submit">Preview</button>
      </form>
    </details>
  );
}

/** A preview's counts and breakdowns, shared by the preview page and the confirmation. */
export function PreviewSummary({ p }: { p: RulePreview }) {
  return (
    <div class="preview-summary">
      <p>
        {p.refused_reason ? 'It matches' : 'It would suppress exactly'} <strong data-field="would-suppress">{formatCount(p.would_suppress)}</strong> open{' '}
        {p.detection_id} detection(s){p.by_repo.length ? ` in ${formatCount(p.by_repo.length)} repo(s)` : ''}
        {p.by_process.length ? `; processes: ${p.by_process.map((x) => `${x.process} (${formatCount(x.count)})`).join(', ')}` : ''}.
      </p>
      {p.warnings.length ? (
        <ul>
          {p.warnings.map((w) => (
            <li>{w}</li>
          ))}
        </ul>
      ) : null}
    </div>
  );
}

/** A refusal, plainly: the service's own reason, and that nothing changed. */
export function Refusal({ reason }: { reason: string }) {
  return (
    <div class="notice error" role="alert" data-field="refusal">
      <p>
        <strong>Refused:</strong> {reason}
      </p>
      <p>Nothing was changed.</p>
    </div>
  );
}

export function RulePreviewPage({ ctx, d }: { ctx: PageContext; d: PreviewData }) {
  const p = d.preview;
  return (
    <Layout ctx={ctx} title="Rule preview">
      <h1>Rule preview</h1>
      <p>
        <a href="/processes">Back to the processes</a>
      </p>
      <h2>Conditions</h2>
      <Conditions c={p.conditions} />
      <EditRuleForm input={d.input} />
      {p.refused_reason ? <Refusal reason={p.refused_reason} /> : null}
      <PreviewSummary p={p} />
      {!p.refused_reason && p.would_suppress > 0 ? <CreateRuleForm ctx={ctx} input={d.input} label="Create rule…" /> : null}
      <h2 id="matches">{p.refused_reason ? 'The detections it matches' : 'The detections it would suppress'}</h2>
      {d.detections.length === 0 ? (
        <p class="muted">None.</p>
      ) : (
        <DetectionTable rows={d.detections} label={p.refused_reason ? 'The detections it matches' : 'The detections it would suppress'} />
      )}
      <Pager page={d.page} last={d.lastPage} href={(n) => previewHref(d.input, n)} label="Preview pages" />
    </Layout>
  );
}

export function RuleRefusedPage({ ctx, input, reason }: { ctx: PageContext; input: RuleInput | null; reason: string }) {
  return (
    <Layout ctx={ctx} title="Rule refused">
      <h1>Rule refused</h1>
      {input ? <Conditions c={input.conditions} /> : null}
      <Refusal reason={reason} />
      <p>
        {input ? (
          <>
            <a href={previewHref(input)}>Preview it</a> ·{' '}
          </>
        ) : null}
        <a href="/processes">Back to the processes</a>
      </p>
    </Layout>
  );
}

export function RuleCreatedPage({ ctx, r }: { ctx: PageContext; r: RuleChangeResult }) {
  return (
    <Layout ctx={ctx} title="Rule created">
      <h1>Rule created</h1>
      <div class="notice" role="status">
        <p>
          <strong>{r.rule.name}</strong> was created and suppressed <strong data-field="suppressed">{formatCount(r.suppressed)}</strong> detection(s).
        </p>
      </div>
      <dl class="facts">
        <dt>Rule id</dt>
        <dd>
          <a href={ruleHref(r.rule.rule_id)}>
            <code>{r.rule.rule_id}</code>
          </a>
        </dd>
        <dt>Detection type</dt>
        <dd>{r.rule.id}</dd>
        <dt>Conditions</dt>
        <dd>
          <Conditions c={r.rule.conditions} />
        </dd>
        <dt>Created by</dt>
        <dd>{r.rule.created_by}</dd>
      </dl>
      <p>
        <a href="/processes">Back to the processes</a>
      </p>
    </Layout>
  );
}
