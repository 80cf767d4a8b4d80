import type { OverviewData } from '../overview-data.js';
import { Layout } from './layout.js';
import type { PageContext } from './context.js';
import { formatCount, StatusBadge } from './format.js';
import { DetectionTable } from './detection-table.js';

/** The tenant at a glance: detections over time, where the open ones come from, what is newest. */

const dayIso = (day: number) => new Date(day * 86_400_000).toISOString().slice(0, 10);

function Card({ value, label }: { value: string; label: string }) {
  return (
    <div class="card">
      <span class="value">{value}</span>
      <span class="label">{label}</span>
    </div>
  );
}

function Chart({ d }: { d: OverviewData }) {
  const { chart } = d;
  if (chart.days.length === 0) return <p class="muted">No detections yet.</p>;
  return (
    <figure class="chart" data-chart={JSON.stringify(chart)}>
      <figcaption>
        Detections per day by type and status, {dayIso(chart.days[0]!)} to {dayIso(chart.days[chart.days.length - 1]!)} (UTC).
      </figcaption>
      <details>
        <summary>Chart data as a table</summary>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Day</th>
                {chart.series.map((s) => (
                  <th scope="col" class="num">
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {chart.days.map((day, i) => (
                <tr>
                  <th scope="row">{dayIso(day)}</th>
                  {chart.series.map((s) => (
                    <td class="num">{formatCount(s.values[i]!)}</td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

export function OverviewPage({ ctx, d }: { ctx: PageContext; d: OverviewData }) {
  const { stats } = d;
  const open = stats.detections.filter((x) => x.status === 'new').reduce((a, x) => a + x.count, 0);
  const all = stats.detections.reduce((a, x) => a + x.count, 0);
  return (
    <Layout ctx={ctx} title="Overview">
      <h1>
        Overview <span class="muted">· tenant {d.tenant}</span>
      </h1>
      <div class="cards">
        <Card value={formatCount(open)} label={`open detections (of ${formatCount(all)})`} />
        <Card value={formatCount(stats.learningJobs)} label="jobs still learning" />
        <Card value={formatCount(stats.jobs - stats.learningJobs)} label="jobs with a baseline" />
        <Card value={d.pendingApprovals === null ? '—' : formatCount(d.pendingApprovals)} label={d.pendingApprovals === null ? 'approvals (no policy loaded)' : 'pending approvals'} />
        <Card value={formatCount(stats.runs)} label="job runs" />
        <Card value={formatCount(stats.rules)} label="suppression rules" />
      </div>
      <h2>Detections over time</h2>
      <Chart d={d} />
      <div class="grid-2">
        <section aria-labelledby="top-processes">
          <h2 id="top-processes">Top processes by open detections</h2>
          {d.topProcesses.length === 0 ? (
            <p class="muted">No open detections.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Process</th>
                    <th scope="col" class="num">
                      Open
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {d.topProcesses.map((p) => (
                    <tr>
                      <td>
                        <code>{p.process}</code>
                      </td>
                      <td class="num">{formatCount(p.n)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section aria-labelledby="by-type">
          <h2 id="by-type">Detections by type and status</h2>
          {stats.detections.length === 0 ? (
            <p class="muted">No detections.</p>
          ) : (
            <div class="table-wrap">
              <table>
                <thead>
                  <tr>
                    <th scope="col">Type</th>
                    <th scope="col">Status</th>
                    <th scope="col" class="num">
                      Count
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {stats.detections.map((x) => (
                    <tr>
                      <td class="mono">{x.type}</td>
                      <td>
                        <StatusBadge status={x.status} />
                      </td>
                      <td class="num">{formatCount(x.count)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
      </div>
      <section aria-labelledby="newest">
        <h2 id="newest">Newest detections</h2>
        <p>
          <a href="/detections">All detections, filtered and exported</a>
        </p>
        {d.newest.length === 0 ? (
          <p class="muted">No detections.</p>
        ) : (
          <DetectionTable rows={d.newest} label="Newest detections" />
        )}
      </section>
    </Layout>
  );
}
