import type { BaselineJobRow } from '../../dashboard-data/views.js';
import { baselineHref } from '../links.js';
import { CsrfField, Layout } from './layout.js';
import type { PageContext } from './context.js';
import { formatCount, Time } from './format.js';

/**
 * Per job its state (learning or stable) and its endpoints with runs seen. Expect / un-expect post to
 * /baselines/expect and /baselines/unexpect, which answer with the confirm step first. A risky
 * endpoint gets no expect button: the edit service refuses it whatever a form posts.
 */

export interface BaselinesData {
  rows: BaselineJobRow[];
  /** the owner / repo / workflow / job the page is narrowed to (from the run page's link) */
  filter: { owner: string; repo: string; workflow: string; job: string };
  nextHref: string | null;
  paged: boolean;
  canWrite: boolean;
}

function EditForm({ ctx, row, endpoint, action, label }: { ctx: PageContext; row: BaselineJobRow; endpoint: string; action: 'expect' | 'unexpect'; label: string }) {
  const j = row.job;
  return (
    <form method="post" action={`/baselines/${action}`} class="inline">
      <CsrfField ctx={ctx} />
      <input type="hidden" name="owner" value={j.owner} />
      <input type="hidden" name="repo" value={j.repo} />
      <input type="hidden" name="workflow" value={j.workflow} />
      <input type="hidden" name="job" value={j.job} />
      <input type="hidden" name="endpoint" value={endpoint} />
      <button type="submit" aria-label={`${label} ${endpoint}`}>
        {label}
      </button>
    </form>
  );
}

/** Expect an endpoint the job has not (yet) completed a run with, as `baseline expect` allows. */
function ExpectAnyForm({ ctx, row }: { ctx: PageContext; row: BaselineJobRow }) {
  const j = row.job;
  const id = `expect-${[j.owner, j.repo, j.workflow, j.job].join('-').replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return (
    <form method="post" action="/baselines/expect" class="filters" aria-label={`Expect an endpoint in ${j.owner}/${j.repo} job ${j.job}`}>
      <CsrfField ctx={ctx} />
      <input type="hidden" name="owner" value={j.owner} />
      <input type="hidden" name="repo" value={j.repo} />
      <input type="hidden" name="workflow" value={j.workflow} />
      <input type="hidden" name="job" value={j.job} />
      <label for={id}>Expect endpoint (host:port)</label>
      <input id={id} name="endpoint" placeholder="api.example.com:443" required />
      <button type="submit">Expect…</button>
    </form>
  );
}

function EntryState({ e }: { e: BaselineJobRow['endpoints'][number] }) {
  if (!e.inBaseline) return <span class="badge warn">pending</span>;
  return e.source === 'expected' ? <span class="badge ok">expected</span> : <span class="badge ok">learned</span>;
}

function JobSection({ ctx, row, canWrite }: { ctx: PageContext; row: BaselineJobRow; canWrite: boolean }) {
  const j = row.job;
  const name = `${j.owner}/${j.repo} ${j.workflow} job ${j.job}`;
  return (
    <section class="baseline-job" data-job={name} aria-label={name}>
      <h2>
        <a href={baselineHref(j)}>
          {j.owner}/{j.repo}
        </a>{' '}
        <span class="muted">{j.workflow}</span> job <code>{j.job}</code>{' '}
        {row.state === 'learning' ? <span class="badge neutral">learning</span> : <span class="badge ok">stable</span>}
      </h2>
      <p class="muted">
        {formatCount(j.completedRuns)} completed run(s); {formatCount(row.inBaseline)} endpoint(s) in the baseline ({formatCount(row.expected)} expected),{' '}
        {formatCount(row.pending)} pending.
      </p>
      {canWrite ? <ExpectAnyForm ctx={ctx} row={row} /> : null}
      {j.endpoints.length === 0 ? (
        <p class="muted">No endpoints seen yet.</p>
      ) : (
        <div class="table-wrap">
          <table aria-label={`Endpoints of ${name}`}>
            <thead>
              <tr>
                <th scope="col">Endpoint</th>
                <th scope="col">Runs seen</th>
                <th scope="col">State</th>
                <th scope="col">Last seen</th>
                {canWrite ? <th scope="col">Change</th> : null}
              </tr>
            </thead>
            <tbody>
              {row.endpoints.map((e) => (
                <tr data-endpoint={e.endpoint} data-state={e.inBaseline ? e.source : 'pending'}>
                  <th scope="row">
                    <code>{e.endpoint}</code>
                    {e.risky ? (
                      <div>
                        <span class="badge danger">RISKY</span> <span class="muted">matches {e.risky}: can never be expected</span>
                      </div>
                    ) : e.riskyAt ? (
                      <div data-risky-at={e.riskyAt}>
                        <span class="badge danger">RISKY</span>{' '}
                        <span class="muted">
                          reached at {e.riskyAt}, in the risky range {e.riskyRange}: its calls there are always raised, whatever this baseline says
                        </span>
                      </div>
                    ) : null}
                  </th>
                  <td class="num">{formatCount(e.runsSeen)}</td>
                  <td>
                    <EntryState e={e} />
                  </td>
                  <td>
                    <Time iso={e.lastSeen} />
                  </td>
                  {canWrite ? (
                    <td>
                      {e.source === 'expected' && e.inBaseline ? (
                        <EditForm ctx={ctx} row={row} endpoint={e.endpoint} action="unexpect" label="Un-expect" />
                      ) : e.risky ? (
                        <span class="muted">refused: risky</span>
                      ) : e.inBaseline ? null : (
                        <EditForm ctx={ctx} row={row} endpoint={e.endpoint} action="expect" label="Expect" />
                      )}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

export function BaselinesPage({ ctx, d }: { ctx: PageContext; d: BaselinesData }) {
  const f = d.filter;
  return (
    <Layout ctx={ctx} title="Baselines">
      <h1>Baselines</h1>
      <form method="get" action="/baselines" class="filters" aria-label="Narrow the baselines">
        <label>
          Owner <input name="owner" value={f.owner} />
        </label>
        <label>
          Repo <input name="repo" value={f.repo} />
        </label>
        <label>
          Workflow <input name="workflow" value={f.workflow} />
        </label>
        <label>
          Job <input name="job" value={f.job} />
        </label>
        <button type="submit">Show</button>
      </form>
      {d.rows.length === 0 ? <p>No jobs match.</p> : d.rows.map((row) => <JobSection ctx={ctx} row={row} canWrite={d.canWrite} />)}
      <nav class="pager" aria-label="Pages">
        {d.paged ? <a href="/baselines">First page</a> : null} {d.nextHref ? <a href={d.nextHref}>Next page</a> : null}
      </nav>
    </Layout>
  );
}

export interface BaselineEditedData {
  action: 'expect' | 'unexpect';
  endpoint: string;
  jobs: { workflow: string; job: string }[];
  /** expect: the jobs whose runs had already put it in their baseline, left as learned */
  learned?: { workflow: string; job: string }[];
  backHref: string;
}

export function BaselineEditedPage({ ctx, d }: { ctx: PageContext; d: BaselineEditedData }) {
  const verb = d.action === 'expect' ? 'now expected' : 'no longer expected';
  return (
    <Layout ctx={ctx} title="Baseline changed">
      <h1>Baseline changed</h1>
      <p class="notice" role="status">
        <code>{d.endpoint}</code> is {verb} in {formatCount(d.jobs.length)} job(s).
      </p>
      {d.learned?.length ? (
        <p>
          {formatCount(d.learned.length)} other job(s) had already learned it from their runs: left as learned, so undoing the expect will not take it
          from them.
        </p>
      ) : null}
      <p>
        <a href={d.backHref}>Back to the baseline</a>
      </p>
    </Layout>
  );
}

export function BaselineRefusedPage({ ctx, endpoint, reason, backHref }: { ctx: PageContext; endpoint: string; reason: string; backHref: string }) {
  return (
    <Layout ctx={ctx} title="Refused">
      <h1>Refused</h1>
      <p class="notice error" role="alert">
        <code>{endpoint}</code> was not changed: {reason}
      </p>
      <p>
        <a href={backHref}>Back to the baseline</a>
      </p>
    </Layout>
  );
}
