import type { DestinationRow } from '../../dashboard-data/views.js';
import { baselineHref } from '../links.js';
import { Layout } from './layout.js';
import type { PageContext } from './context.js';
import { formatCount, Time } from './format.js';

/** Every endpoint the tenant's jobs called, a page at a time, with the jobs that call it; risky ones plainly marked. */

export interface DestinationsData {
  rows: DestinationRow[];
  /** the link to the next page, null on the last */
  nextHref: string | null;
  /** this page is not the first */
  paged: boolean;
}

function DestinationCells({ d }: { d: DestinationRow }) {
  return (
    <th scope="row" rowSpan={Math.max(d.jobs.length, 1)}>
      <code>{d.endpoint}</code>
      {d.risky ? (
        <div>
          <span class="badge danger">RISKY</span>{' '}
          {d.riskyAt ? (
            <span class="muted">
              reached at {d.riskyAt}, in the risky range {d.risky}: its calls there are always raised, never suppressed
            </span>
          ) : (
            <span class="muted">matches {d.risky}: never expected, never suppressed</span>
          )}
        </div>
      ) : null}
      <div class="muted">
        {formatCount(d.jobsTotal)} job(s){d.jobsTotal > d.jobs.length ? `, ${formatCount(d.jobs.length)} most recent shown` : ''}
      </div>
    </th>
  );
}

function JobCells({ j }: { j: DestinationRow['jobs'][number] }) {
  return (
    <>
      <td>
        <a href={baselineHref(j)}>
          {j.owner}/{j.repo} <span class="muted">{j.workflow}</span> job {j.job}
        </a>
      </td>
      <td class="num">{formatCount(j.runs)}</td>
      <td>{j.blocked ? <span class="badge danger">blocked</span> : <span class="badge ok">allowed</span>}</td>
      <td>
        <Time iso={j.lastSeen} />
      </td>
      <td>{j.inBaseline ? <span class="badge ok">baseline ({j.baselineSource})</span> : <span class="badge warn">not in baseline</span>}</td>
    </>
  );
}

export function DestinationsPage({ ctx, d }: { ctx: PageContext; d: DestinationsData }) {
  return (
    <Layout ctx={ctx} title="Destinations">
      <h1>Destinations</h1>
      <p class="muted">Every endpoint seen in this tenant, in endpoint order, with the jobs that call it.</p>
      {d.rows.length === 0 ? (
        <p>No calls have been ingested{d.paged ? ' past this point' : ''}.</p>
      ) : (
        <div class="table-wrap">
          <table class="destinations" aria-label="Destinations and the jobs that call them">
            <thead>
              <tr>
                <th scope="col">Endpoint</th>
                <th scope="col">Job</th>
                <th scope="col">Runs</th>
                <th scope="col">Blocked</th>
                <th scope="col">Last seen</th>
                <th scope="col">Baseline</th>
              </tr>
            </thead>
            {d.rows.map((row) => (
              <tbody data-endpoint={row.endpoint} data-risky={row.risky ? 'yes' : 'no'}>
                {row.jobs.length === 0 ? (
                  <tr>
                    <DestinationCells d={row} />
                    <td colSpan={5} class="muted">
                      no job listed
                    </td>
                  </tr>
                ) : (
                  row.jobs.map((j, i) => (
                    <tr data-job={`${j.owner}/${j.repo} ${j.workflow} ${j.job}`}>
                      {i === 0 ? <DestinationCells d={row} /> : null}
                      <JobCells j={j} />
                    </tr>
                  ))
                )}
              </tbody>
            ))}
          </table>
        </div>
      )}
      <nav class="pager" aria-label="Pages">
        {d.paged ? <a href="/destinations">First page</a> : null} {d.nextHref ? <a href={d.nextHref}>Next page</a> : null}
      </nav>
    </Layout>
  );
}
