import { FilterError } from '../domain/filter.js';
import { DETECTION_COUNT_BOUND, detectionFilterParams, PAGE_PARAMS, pageParams } from '../dashboard-data/params.js';
import { CursorError } from '../storage/detection-cursor.js';
import { detectionsCsv } from '../dashboard-data/detections-export.js';
import { DetectionsPage } from './pages/detections.js';
import { csvFilename, formValues, splitTypes } from './detections-view.js';
import type { Route } from './routes.js';
import { page } from './replies.js';

/**
 * The Detections page (GET /detections) and its CSV export (GET /detections.csv), both read-only.
 * The query string goes through the CLI's filter parser (dashboard-data/params.ts); a bad field is a
 * 400 naming it, for the page and the export alike.
 */

export const detectionsRoute: Route = {
  method: 'GET',
  path: /^\/detections\/?$/,
  permission: 'read',
  async handle({ store, tenant, ctx, url }) {
    const q = splitTypes(url.searchParams);
    const values = formValues(q);
    try {
      const filter = detectionFilterParams(q, Date.now(), PAGE_PARAMS);
      const p = pageParams(q);
      const w = await store.dashboard.detectionWindow(tenant, { filter, limit: p.limit, after: p.after, before: p.before, countUpTo: DETECTION_COUNT_BOUND });
      return page(<DetectionsPage ctx={ctx} d={{ tenant, values, filter, page: p, window: w, error: null }} />);
    } catch (e) {
      // a cursor that is not one this page wrote (edited, or from another filter) is the request's fault
      const error =
        e instanceof FilterError ? { field: e.argument, reason: e.reason } : e instanceof CursorError ? { field: q.get('after') ? 'after' : 'before', reason: e.message } : null;
      if (!error) throw e;
      return page(<DetectionsPage ctx={ctx} d={{ tenant, values, filter: null, page: null, window: null, error }} />, 400);
    }
  },
};

export const detectionsCsvRoute: Route = {
  method: 'GET',
  path: /^\/detections\.csv$/,
  permission: 'read',
  async handle({ store, tenant, ctx, url }) {
    const q = splitTypes(url.searchParams);
    try {
      const filter = detectionFilterParams(q, Date.now());
      // no dashboard_url column: the only base at hand is the request's Host header, which the client chose
      const body = detectionsCsv(store.dashboard, tenant, filter);
      return {
        kind: 'stream',
        status: 200,
        contentType: 'text/csv; charset=utf-8',
        body,
        headers: { 'content-disposition': `attachment; filename="${csvFilename(tenant, new Date())}"` },
      };
    } catch (e) {
      if (!(e instanceof FilterError)) throw e;
      return page(<DetectionsPage ctx={ctx} d={{ tenant, values: formValues(q), filter: null, page: null, window: null, error: { field: e.argument, reason: e.reason } }} />, 400);
    }
  },
};

export const DETECTIONS_ROUTES: readonly Route[] = [detectionsRoute, detectionsCsvRoute];
