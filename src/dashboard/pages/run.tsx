import type { RunCall, RunCalls, RunLeg } from '../../storage/run-calls-port.js';
import type { ParentLink } from '../../domain/types.js';
import { Layout } from './layout.js';
import type { PageContext } from './context.js';
import { formatCount, Sha, StatusBadge, Time } from './format.js';
import { baselineHref } from '../links.js';

/**
 * The run page, where every dashboard_url leads: each outbound call of the run (or of one GitHub job
 * of it), with its process and parent chain, the verdict, baseline or anomalous, and its detections
 * highlighted.
 */

export interface RunPageData {
  run: RunCalls;
  /** the jobId of the URL, when it named one */
  jobId?: string;
}

function ProcessNode({ chain, i }: { chain: ParentLink[]; i: number }) {
  const n = chain[i]!;
  return (
    <details class="tree">
      <summary>
        <code>{n.name}</code> <span class="muted">parent {i + 1}</span>
      </summary>
      <div>
        {n.path ? <code>{n.path}</code> : <span class="muted">no path</span>} <Sha sha256={n.sha256 ?? null} />
      </div>
      {i + 1 < chain.length ? <ProcessNode chain={chain} i={i + 1} /> : null}
    </details>
  );
}

function ProcessCell({ p }: { p: RunCall['process'] }) {
  return (
    <div>
      <code>{p.name}</code>
      <div>{p.path ? <code>{p.path}</code> : <span class="muted">no path</span>}</div>
      <div>
        <Sha sha256={p.sha256} />
      </div>
      {p.parent.length > 0 ? (
        <details class="tree tree-root">
          <summary>parent chain ({p.parent.length})</summary>
          <ProcessNode chain={p.parent} i={0} />
        </details>
      ) : (
        <div class="muted">no parent recorded</div>
      )}
    </div>
  );
}

function Verdict({ c }: { c: RunCall }) {
  return (
    <div>
      {c.blocked ? <span class="badge danger">blocked</span> : <span class="badge ok">allowed</span>}
      {c.matchedPolicy ? <div class="muted">policy: {c.matchedPolicy}</div> : null}
      {c.reason ? <div class="muted">{c.reason}</div> : null}
    </div>
  );
}

function BaselineState({ c, leg }: { c: RunCall; leg: RunLeg }) {
  if (c.inBaseline) return <span class="badge ok">baseline</span>;
  if (leg.learning) return <span class="badge neutral">learning</span>;
  return <span class="badge warn">anomalous</span>;
}

function CallRow({ c, leg }: { c: RunCall; leg: RunLeg }) {
  const detected = c.detections.length > 0;
  return (
    <tr class={detected ? 'detected' : undefined} data-endpoint={c.endpoint}>
      <td>
        <code>{c.endpoint}</code>
        {c.protocol ? <div class="muted">{c.protocol}</div> : null}
      </td>
      <td class="ip">{c.ip ? <code>{c.ip}</code> : <span class="muted">—</span>}</td>
      <td class="num">{c.port ?? '—'}</td>
      <td>
        <ProcessCell p={c.process} />
      </td>
      <td>
        <Verdict c={c} />
      </td>
      <td>
        <BaselineState c={c} leg={leg} />
      </td>
      <td>
        {detected ? (
          <ul class="plain">
            {c.detections.map((d) => (
              <li>
                <strong>Detection</strong> <span class="mono">{d.type}</span> <StatusBadge status={d.status} /> <span class="muted">#{d.id}</span>
              </li>
            ))}
          </ul>
        ) : (
          <span class="muted">none</span>
        )}
      </td>
    </tr>
  );
}

function LegSection({ run, leg, index }: { run: RunCalls; leg: RunLeg; index: number }) {
  const calls = run.calls.filter((c) => c.leg === index);
  const detected = calls.filter((c) => c.detections.length > 0).length;
  const headingId = `leg-${index}`;
  return (
    <section aria-labelledby={headingId}>
      <h2 id={headingId}>
        {leg.workflow} · {leg.job}
      </h2>
      <dl class="facts">
        <dt>Attempt</dt>
        <dd>{leg.runAttempt}</dd>
        <dt>GitHub job id</dt>
        <dd>{leg.jobId ?? <span class="muted">none</span>}</dd>
        <dt>Time</dt>
        <dd>
          <Time iso={leg.startedAt} /> to <Time iso={leg.endedAt} />
        </dd>
        <dt>Run state</dt>
        <dd>
          {leg.learning ? <span class="badge neutral">learning run</span> : <span class="badge ok">checked against the baseline</span>}{' '}
          {leg.completed ? '' : <span class="badge warn">not completed</span>}
        </dd>
        <dt>Baseline</dt>
        <dd>
          <a href={baselineHref({ owner: run.owner, repo: run.repo, workflow: leg.workflow, job: leg.job })}>this job's baseline</a>
        </dd>
      </dl>
      <p>
        {formatCount(calls.length)} outbound call{calls.length === 1 ? '' : 's'}, {formatCount(detected)} with a detection.
      </p>
      {calls.length > 0 ? (
        <div class="table-wrap">
          <table>
            <caption class="skip">Outbound calls of {leg.workflow} · {leg.job}</caption>
            <thead>
              <tr>
                <th scope="col">Endpoint</th>
                <th scope="col">IP</th>
                <th scope="col" class="num">Port</th>
                <th scope="col">Process</th>
                <th scope="col">Verdict</th>
                <th scope="col">Baseline</th>
                <th scope="col">Detections</th>
              </tr>
            </thead>
            <tbody>
              {calls.map((c) => (
                <CallRow c={c} leg={leg} />
              ))}
            </tbody>
          </table>
        </div>
      ) : null}
    </section>
  );
}

export function RunPage({ ctx, d }: { ctx: PageContext; d: RunPageData }) {
  const { run } = d;
  const title = `Run ${run.runId} · ${run.owner}/${run.repo}`;
  return (
    <Layout ctx={ctx} title={title}>
      <h1>
        Run {run.runId} <span class="muted">·</span> {run.owner}/{run.repo}
      </h1>
      <p class="muted">
        Network events{d.jobId ? ` of GitHub job ${d.jobId}` : ` of every job of the run`}: {formatCount(run.calls.length)} calls in {run.legs.length} job run
        {run.legs.length === 1 ? '' : 's'}. Calls with a detection are highlighted.
      </p>
      {run.legs.map((leg, i) => (
        <LegSection run={run} leg={leg} index={i} />
      ))}
      {run.otherDetections.length > 0 ? (
        <section aria-labelledby="other-detections">
          <h2 id="other-detections">Detections without a stored call</h2>
          <ul>
            {run.otherDetections.map((x) => (
              <li>
                <span class="mono">{x.type}</span> <StatusBadge status={x.status} /> <span class="muted">#{x.id}</span>
              </li>
            ))}
          </ul>
        </section>
      ) : null}
    </Layout>
  );
}
