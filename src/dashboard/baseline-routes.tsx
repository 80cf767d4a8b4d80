import type { Reply, Route, RouteRequest } from './routes.js';
import { message, page } from './replies.js';
import { ConfirmPage } from './pages/confirm.js';
import { DestinationsPage } from './pages/destinations.js';
import { BaselineEditedPage, BaselineRefusedPage, BaselinesPage } from './pages/baselines.js';
import { baselineJobRows, destinationRows } from '../dashboard-data/views.js';
import { DEFAULT_PAGE_SIZE } from '../dashboard-data/params.js';
import { CursorError } from '../storage/detection-cursor.js';
import { riskyDestinations, type RiskyDestinations } from '../analysis/risky-destinations.js';
import { BaselineEditError, checkExpectEndpoint, expectEndpoint, unexpectEndpoint } from '../detection/baseline-edits.js';
import { baselineHref } from './links.js';
import { carriedFields, isConfirmed } from './confirm.js';
import { isIpLiteral, splitEndpoint } from '../domain/endpoint.js';
import type { BaselineView } from '../storage/store.js';
import type { CallAddress } from '../storage/dashboard-port.js';

/**
 * The Destinations and Baselines pages, read through the DashboardQueries port, and expect /
 * un-expect through the baseline-edits service the CLI uses: the risky guard sits in every backend's
 * write, so a refusal here is the same refusal `baseline expect` gives.
 */

const JOBS_PER_DESTINATION = 20;


// without the configured list the built-in one still guards (fail closed: never no list)
const riskyOf = async (r: RouteRequest): Promise<RiskyDestinations> => (r.store.risky ? await r.store.risky() : riskyDestinations());

const param = (q: URLSearchParams, k: string) => (q.get(k) ?? '').trim();

/**
 * A job name as the form carries it: exactly, blanks and all, or undefined when the form leaves it
 * out (every workflow or job). Trimmed, the hidden fields of a job named " " or "build " named
 * every job of the repo, or the job "build" next to it (found by review).
 */
const exact = (q: URLSearchParams, k: string) => (q.has(k) ? q.get(k)! : undefined);

/**
 * The addresses these jobs' calls to their named baseline entries reached, when the risky list has
 * ranges to judge them by (views.ts baselineJobRows). A server without the dashboard queries has none
 * to read, and the page then judges entries by name only.
 */
async function addressesOf(r: RouteRequest, views: readonly BaselineView[], risky: RiskyDestinations): Promise<CallAddress[]> {
  if (!risky.hasRanges || !r.store.dashboard || views.length === 0) return [];
  const endpoints = [...new Set(views.flatMap((v) => v.endpoints.map((e) => e.endpoint)).filter((e) => !isIpLiteral(splitEndpoint(e).host)))];
  if (endpoints.length === 0) return [];
  return r.store.dashboard.callAddresses(r.tenant, { endpoints, jobs: views.map((v) => ({ owner: v.owner, repo: v.repo, workflow: v.workflow, job: v.job })) });
}

export const destinationsRoute: Route = {
  method: 'GET',
  path: /^\/destinations\/?$/,
  permission: 'read',
  async handle(r) {
    if (!r.store.dashboard) return message(r.ctx, 503, 'Destinations unavailable', 'This server was started without the dashboard queries.');
    const cursor = r.url.searchParams.get('cursor') || null;
    try {
      const p = await r.store.dashboard.destinations(r.tenant, { limit: DEFAULT_PAGE_SIZE, cursor, jobsPerDestination: JOBS_PER_DESTINATION });
      const nextHref = p.nextCursor ? `/destinations?${new URLSearchParams({ cursor: p.nextCursor })}` : null;
      const risky = await riskyOf(r);
      // a named destination is risky too when its calls reached a risky range (views.ts)
      const named = p.destinations.filter((d) => !d.isIp).map((d) => d.endpoint);
      const addresses = risky.hasRanges && named.length ? await r.store.dashboard.callAddresses(r.tenant, { endpoints: named }) : [];
      return page(<DestinationsPage ctx={r.ctx} d={{ rows: destinationRows(p.destinations, risky, addresses), nextHref, paged: cursor !== null }} />);
    } catch (e) {
      if (e instanceof CursorError) return message(r.ctx, 400, 'Bad request', `cursor: ${e.message}`);
      throw e;
    }
  },
};

export const baselinesRoute: Route = {
  method: 'GET',
  path: /^\/baselines\/?$/,
  permission: 'read',
  async handle(r) {
    const q = r.url.searchParams;
    const filter = { owner: param(q, 'owner'), repo: param(q, 'repo'), workflow: param(q, 'workflow'), job: param(q, 'job') };
    const canWrite = r.session.permissions.includes('write');
    const risky = await riskyOf(r);
    if (filter.workflow || filter.job) {
      // one job (the run page's link): the exact query `baseline show` makes
      if (!filter.owner || !filter.repo) return message(r.ctx, 400, 'Bad request', 'workflow and job need owner and repo too');
      const views = await r.store.detections.baselines(r.tenant, { owner: filter.owner, repo: filter.repo, workflow: filter.workflow || undefined, job: filter.job || undefined });
      const status = views.length === 0 ? 404 : 200;
      return page(<BaselinesPage ctx={r.ctx} d={{ rows: baselineJobRows(views, risky, await addressesOf(r, views, risky)), filter, nextHref: null, paged: false, canWrite }} />, status);
    }
    if (!r.store.dashboard) return message(r.ctx, 503, 'Baselines unavailable', 'This server was started without the dashboard queries.');
    const cursor = q.get('cursor') || null;
    try {
      const p = await r.store.dashboard.baselineJobs(r.tenant, { limit: DEFAULT_PAGE_SIZE, cursor, owner: filter.owner || undefined, repo: filter.repo || undefined });
      const next = new URLSearchParams();
      if (filter.owner) next.set('owner', filter.owner);
      if (filter.repo) next.set('repo', filter.repo);
      if (p.nextCursor) next.set('cursor', p.nextCursor);
      return page(<BaselinesPage ctx={r.ctx} d={{ rows: baselineJobRows(p.jobs, risky, await addressesOf(r, p.jobs, risky)), filter, nextHref: p.nextCursor ? `/baselines?${next}` : null, paged: cursor !== null, canWrite }} />);
    } catch (e) {
      if (e instanceof CursorError) return message(r.ctx, 400, 'Bad request', `cursor: ${e.message}`);
      throw e;
    }
  },
};

function editRoute(action: 'expect' | 'unexpect'): Route {
  return {
    method: 'POST',
    path: new RegExp(`^/baselines/${action}$`),
    permission: 'write',
    async handle(r) {
      if (!r.store.baselines) return message(r.ctx, 503, 'Baselines unavailable', 'This server was started without the baseline editor.');
      const form = r.form ?? new URLSearchParams();
      const req = { owner: exact(form, 'owner') ?? '', repo: exact(form, 'repo') ?? '', workflow: exact(form, 'workflow'), job: exact(form, 'job'), endpoint: param(form, 'endpoint') };
      if (!req.owner || !req.repo) return message(r.ctx, 400, 'Bad request', 'owner and repo are required');
      // an empty name is no job's: leaving the field out is what names every one
      for (const k of ['workflow', 'job'] as const) {
        if (req[k] === '') return message(r.ctx, 400, 'Bad request', `${k} is empty: leave it out to mean every ${k}`);
      }
      const back = baselineHref({ owner: req.owner, repo: req.repo, workflow: req.workflow ?? '', job: req.job ?? '' });
      const risky = await riskyOf(r);
      try {
        // the canonical form from here on: what is confirmed is what is stored
        req.endpoint = checkExpectEndpoint(req.endpoint);
        if (!isConfirmed(form)) {
          // nobody is asked to confirm what cannot happen; the confirmed post meets the service's own guard
          const hit = action === 'expect' ? risky.matchEndpoint(req.endpoint) : null;
          if (hit) return page(<BaselineRefusedPage ctx={r.ctx} endpoint={req.endpoint} reason={`${req.endpoint} is the risky destination ${hit}: it can never be expected or join a baseline`} backHref={back} />, 422);
          const effect =
            action === 'expect'
              ? 'joins the baseline of the job(s) below at once: its calls there stop raising detections.'
              : 'leaves the baseline of the job(s) below where it is expected: its calls raise detections again until it is learned anew.';
          return page(
            <ConfirmPage
              ctx={r.ctx}
              d={{ title: action === 'expect' ? 'Expect an endpoint' : 'Un-expect an endpoint', action: `/baselines/${action}`, fields: carriedFields(form), confirmLabel: action === 'expect' ? `Expect ${req.endpoint}` : `Un-expect ${req.endpoint}`, cancelHref: back, danger: action === 'unexpect' }}
            >
              <p>
                <code>{req.endpoint}</code> {effect}
              </p>
              <p>
                {req.owner}/{req.repo} {req.workflow === undefined ? 'every workflow' : `workflow ${JSON.stringify(req.workflow)}`}{' '}
                {req.job === undefined ? 'every job' : `job ${JSON.stringify(req.job)}`}
              </p>
            </ConfirmPage>,
          );
        }
        const res: { jobs: { workflow: string; job: string }[]; learned?: { workflow: string; job: string }[] } =
          action === 'expect' ? await expectEndpoint(r.store.baselines, r.tenant, req, risky) : await unexpectEndpoint(r.store.baselines, r.tenant, req);
        const learned = res.learned;
        return page(<BaselineEditedPage ctx={r.ctx} d={{ action, endpoint: req.endpoint, jobs: res.jobs, learned, backHref: back }} />);
      } catch (e) {
        if (e instanceof BaselineEditError) {
          if (e.code === 'refused_risky') return page(<BaselineRefusedPage ctx={r.ctx} endpoint={req.endpoint} reason={e.message} backHref={back} />, 422);
          return message(r.ctx, e.code === 'not_found' ? 404 : 400, e.code === 'not_found' ? 'Not found' : 'Bad request', e.field ? `${e.field}: ${e.message}` : e.message);
        }
        throw e;
      }
    },
  };
}

export const BASELINE_ROUTES: readonly Route[] = [destinationsRoute, baselinesRoute, editRoute('expect'), editRoute('unexpect')];
