import type { DetectionFilter } from '../../domain/filter.js';
import { DETECTION_STATUSES, DETECTION_TYPES } from '../../domain/types.js';
import type { DetectionWindow } from '../../storage/dashboard-port.js';
import type { PageParams } from '../../dashboard-data/params.js';
import { countLabel } from '../../dashboard-data/views.js';
import { csvHref, DETECTION_FILTER_FIELDS, newerHref, olderHref, type DetectionFilterField } from '../detections-view.js';
import { Layout } from './layout.js';
import type { PageContext } from './context.js';
import { DetectionTable } from './detection-table.js';

/** Every detection of the tenant, filtered as `detections list` filters, newest first, by keyset pages. */

export interface DetectionsData {
  tenant: string;
  /** the form's values as typed */
  values: Record<DetectionFilterField, string>;
  /** null when the filter was refused (then `error` says why) */
  filter: DetectionFilter | null;
  page: PageParams | null;
  window: DetectionWindow | null;
  /** the refused field (as the query string names it) and why */
  error: { field: string; reason: string } | null;
}

const LABELS: Record<DetectionFilterField, string> = {
  type: 'Type',
  status: 'Status',
  owner: 'Owner',
  repo: 'Repo',
  workflow: 'Workflow',
  job: 'Job',
  process: 'Process',
  sha256: 'SHA-256',
  endpoint: 'Endpoint',
  since: 'Since',
  until: 'Until',
};

const PLACEHOLDER: Partial<Record<DetectionFilterField, string>> = { since: '7d or 2026-12-01', until: '2026-12-02T10:00Z', endpoint: 'host or host:port' };

function Filters({ d }: { d: DetectionsData }) {
  const err = d.error;
  const invalid = (k: string) => (err?.field === k ? { 'aria-invalid': 'true' as const, 'aria-describedby': 'filter-error' } : {});
  return (
    <form method="get" action="/detections" class="filters" aria-label="Filter the detections">
      {DETECTION_FILTER_FIELDS.map((k) =>
        k === 'type' || k === 'status' ? (
          <label>
            {LABELS[k]}
            <select name={k} {...invalid(k)}>
              <option value="">any</option>
              {/* several types from a link stay selected as one option: splitTypes splits it again */}
              {k === 'type' && d.values.type.includes(',') ? (
                <option value={d.values.type} selected>
                  {d.values.type.split(',').join(' or ')}
                </option>
              ) : null}
              {(k === 'type' ? DETECTION_TYPES : DETECTION_STATUSES).map((x) => (
                <option value={x} selected={x.toLowerCase() === d.values[k].toLowerCase()}>
                  {x}
                </option>
              ))}
            </select>
          </label>
        ) : (
          <label>
            {LABELS[k]}
            <input name={k} value={d.values[k]} placeholder={PLACEHOLDER[k]} {...invalid(k)} />
          </label>
        ),
      )}
      <button type="submit" class="primary">
        Filter
      </button>
      <a class="button" href="/detections">
        Clear
      </a>
    </form>
  );
}

export function DetectionsPage({ ctx, d }: { ctx: PageContext; d: DetectionsData }) {
  const w = d.window;
  return (
    <Layout ctx={ctx} title="Detections">
      <h1>
        Detections <span class="muted">· tenant {d.tenant}</span>
      </h1>
      <Filters d={d} />
      {d.error ? (
        <p id="filter-error" class="notice error" role="alert" data-field="filter-error">
          The filter was not applied: <code>{d.error.field}</code>: {d.error.reason}
        </p>
      ) : null}
      {w && d.filter && d.page ? (
        <>
          <p>
            <strong data-field="count">{w.count ? countLabel(w.count) : '?'}</strong> matching detection(s), newest first.{' '}
            <a href={csvHref(d.filter)} download>
              Export all as CSV
            </a>
          </p>
          {w.detections.length === 0 ? (
            <p class="muted">No detection matches.</p>
          ) : (
            <DetectionTable rows={w.detections} label="Detections" />
          )}
          <nav class="pager" aria-label="Detection pages">
            {w.prevCursor ? (
              <a href={newerHref(d.filter, d.page, w.prevCursor)} rel="prev">
                Newer
              </a>
            ) : null}{' '}
            {w.nextCursor ? (
              <a href={olderHref(d.filter, d.page, w.nextCursor)} rel="next">
                Older
              </a>
            ) : null}
          </nav>
        </>
      ) : null}
    </Layout>
  );
}
