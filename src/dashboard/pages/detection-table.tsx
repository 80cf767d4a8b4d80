import type { Detection } from '../../domain/types.js';
import { processHref, runHref } from '../links.js';
import { Sha, StatusBadge, Time } from './format.js';

/**
 * The one table of detections: the overview's newest, a rule preview's matches and the Detections
 * page draw the same row, so a detection reads the same wherever it is listed, each row linked to the
 * detections of its process and to its run page.
 */
export function DetectionTable({ rows, label }: { rows: readonly Detection[]; label: string }) {
  return (
    <div class="table-wrap">
      <table aria-label={label}>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Type</th>
            <th scope="col">Status</th>
            <th scope="col">Endpoint</th>
            <th scope="col">Process</th>
            <th scope="col">Run</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((x) => (
            <tr data-id={x.id} data-process={x.tool.name}>
              <td>
                <Time iso={x.timestamp} />
              </td>
              <td>{x.detection_id}</td>
              <td>
                <StatusBadge status={x.status} />
              </td>
              <td>
                <code>{x.endpoint}</code>
              </td>
              <td>
                <a href={processHref(x.tool.name)}>
                  <code>{x.tool.name}</code>
                </a>{' '}
                <Sha sha256={x.tool.sha256 ?? null} />
              </td>
              <td>
                <a href={runHref({ owner: x.owner, repo: x.repo, runId: x.run_id, jobId: x.job_id })}>
                  {x.owner}/{x.repo} · {x.job} · run {x.run_id}
                </a>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
