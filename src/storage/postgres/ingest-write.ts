import type { PgClient } from './pool.js';
import type { PgDictionaries } from './dictionaries.js';
import { fenceIngestLease, type PgLeaseClock } from './ingest-leases.js';
import { findJobs, readVersions } from './ingest-read.js';
import {
  IngestStateChangedError,
  processVariantKey,
  type DetectionWrite,
  type IngestWriteBatch,
  type IngestWriteResult,
  type JobKey,
  type NewRunWrite,
} from '../ingest-port.js';
import { STATUS_CODE } from '../store.js';

const DAY_MS = 86_400_000;

export interface WriteContext {
  tenant: string;
  tenantId: number;
  dict: PgDictionaries;
  clock: PgLeaseClock;
}

/** Refs in a batch: positive = stored, negative = created by this batch (resolved here). */
function resolver(map: Map<number, number>, what: string) {
  return (ref: number): number => {
    if (ref > 0) return ref;
    const id = map.get(ref);
    if (id === undefined) throw new Error(`write batch names ${what} ${ref}, which the batch does not create`);
    return id;
  };
}

/** Jobs by natural key, created when missing; returns their ids in order. */
async function ensureJobs(c: PgClient, tenantId: number, keys: JobKey[]): Promise<number[]> {
  if (keys.length === 0) return [];
  await c.query(
    `INSERT INTO jobs (tenant_id, owner, repo, workflow, job) SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
     ON CONFLICT DO NOTHING`,
    [tenantId, keys.map((k) => k.owner), keys.map((k) => k.repo), keys.map((k) => k.workflow), keys.map((k) => k.job)],
  );
  return (await findJobs(c, tenantId, keys)).map((j) => j!.id);
}

/** A run leg to insert: a new run of the batch with its real job ref. */
type RunInsert = Omit<NewRunWrite, 'tempRef'>;

/** Run legs, created when missing (a leg is job, run id, attempt and GitHub job id); returns ids in order. */
async function ensureRuns(c: PgClient, tenantId: number, runs: RunInsert[]): Promise<{ ids: number[]; created: boolean[] }> {
  if (runs.length === 0) return { ids: [], created: [] };
  const inserted = await c.query<{ id: number; job_ref: number; run_id: string; run_attempt: number; gh_job_id: string | null }>(
    `INSERT INTO runs (tenant_id, job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, learning, completed, expected_sample)
     SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::int[], $5::text[], $6::bigint[], $7::bigint[], $8::boolean[], $9::boolean[], $10::text[])
     ON CONFLICT DO NOTHING RETURNING id, job_ref, run_id, run_attempt, gh_job_id`,
    [
      tenantId, runs.map((r) => r.jobRef), runs.map((r) => r.runId), runs.map((r) => r.runAttempt), runs.map((r) => r.ghJobId),
      runs.map((r) => r.firstTs), runs.map((r) => r.lastTs), runs.map((r) => r.learning), runs.map((r) => r.completed),
      runs.map((r) => JSON.stringify(r.expected)),
    ],
  );
  const legKey = (jobRef: number, runId: string, attempt: number, gh: string | null) => JSON.stringify([jobRef, runId, attempt, gh ?? '']);
  const createdKeys = new Set(inserted.rows.map((r) => legKey(r.job_ref, r.run_id, r.run_attempt, r.gh_job_id)));
  const all = await c.query<{ id: number; job_ref: number; run_id: string; run_attempt: number; gh_job_id: string | null }>(
    `SELECT r.id, r.job_ref, r.run_id, r.run_attempt, r.gh_job_id FROM runs r
     JOIN unnest($2::bigint[], $3::text[], $4::int[], $5::text[]) AS k (job_ref, run_id, run_attempt, gh)
       ON r.job_ref = k.job_ref AND r.run_id = k.run_id AND r.run_attempt = k.run_attempt AND coalesce(r.gh_job_id, '') = k.gh
     WHERE r.tenant_id = $1`,
    [tenantId, runs.map((r) => r.jobRef), runs.map((r) => r.runId), runs.map((r) => r.runAttempt), runs.map((r) => r.ghJobId ?? '')],
  );
  const byKey = new Map(all.rows.map((r) => [legKey(r.job_ref, r.run_id, r.run_attempt, r.gh_job_id), r.id]));
  const seen = new Set<string>();
  const created: boolean[] = [];
  const ids = runs.map((r) => {
    const k = legKey(r.jobRef, r.runId, r.runAttempt, r.ghJobId);
    created.push(createdKeys.has(k) && !seen.has(k));
    seen.add(k);
    return byKey.get(k)!;
  });
  return { ids, created };
}

async function widenSpans(c: PgClient, tenantId: number, spans: { ref: number; firstTs: number; lastTs: number }[]): Promise<void> {
  if (spans.length === 0) return;
  await c.query(
    `UPDATE runs r SET first_ts = least(r.first_ts, s.first_ts), last_ts = greatest(r.last_ts, s.last_ts)
     FROM (SELECT id, min(first_ts) AS first_ts, max(last_ts) AS last_ts FROM unnest($2::bigint[], $3::bigint[], $4::bigint[]) AS u (id, first_ts, last_ts) GROUP BY id) s
     WHERE r.tenant_id = $1 AND r.id = s.id`,
    [tenantId, spans.map((s) => s.ref), spans.map((s) => s.firstTs), spans.map((s) => s.lastTs)],
  );
}

interface ResolvedDetection {
  d: Omit<DetectionWrite, 'jobRef' | 'runRef'>;
  jobRef: number;
  runRef: number;
}

/** Inserts detections unless identical ones are stored; adds the inserted ones to the rollup. */
async function insertDetections(c: PgClient, ctx: WriteContext, list: ResolvedDetection[]): Promise<boolean[]> {
  if (list.length === 0) return [];
  const { tenantId, dict } = ctx;
  const types = await dict.typeIds(c, list.map((x) => x.d.type));
  const endpoints = await dict.endpointIds(c, list.map((x) => x.d.endpoint));
  await dict.ipIds(c, list.map((x) => x.d.ip));
  const processes = await dict.processIds(c, list.map((x) => ({ process: x.d.process })));
  const rows = list.map((x) => ({
    typeId: types.get(x.d.type)!,
    jobRef: x.jobRef,
    runRef: x.runRef,
    endpointId: endpoints.get(x.d.endpoint)!,
    ipId: dict.ipId(x.d.ip),
    directIp: x.d.directIp,
    port: x.d.port,
    protocol: x.d.protocol,
    processId: processes.get(processVariantKey(x.d.process))!,
    ts: x.d.ts,
    status: STATUS_CODE[x.d.status],
    ruleRef: x.d.ruleRef,
    ext: x.d.externalId,
  }));
  // One statement: the detections not stored yet go in, and exactly those are added to the rollup
  // (grouped on the server), so rollup counts stay equal to counts of detections.
  const inserted = await c.query<{ run_ref: number; type_id: number; endpoint_id: number; process_id: number; ext: string }>(
    `WITH ins AS (
       INSERT INTO detections (tenant_id, type_id, job_ref, run_ref, endpoint_id, ip_id, direct_ip, port, protocol, process_id, ts, status, rule_id, ext)
       SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::boolean[], $8::int[], $9::text[],
         $10::bigint[], $11::bigint[], $12::smallint[], $13::bigint[], $14::text[])
       ON CONFLICT DO NOTHING
       RETURNING type_id, status, rule_id, ts, job_ref, process_id, endpoint_id, ip_id, run_ref, ext),
     roll AS (
       INSERT INTO detection_rollup (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts)
       SELECT $1, type_id, status, rule_id, floor(ts / ${DAY_MS}.0)::int, job_ref, process_id, endpoint_id, ip_id, count(*), min(ts), max(ts)
       FROM ins GROUP BY type_id, status, rule_id, floor(ts / ${DAY_MS}.0)::int, job_ref, process_id, endpoint_id, ip_id
       ON CONFLICT (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id) DO UPDATE SET
         n = detection_rollup.n + excluded.n,
         first_ts = least(detection_rollup.first_ts, excluded.first_ts),
         last_ts = greatest(detection_rollup.last_ts, excluded.last_ts))
     SELECT run_ref, type_id, endpoint_id, process_id, ext FROM ins`,
    [
      tenantId, rows.map((r) => r.typeId), rows.map((r) => r.jobRef), rows.map((r) => r.runRef), rows.map((r) => r.endpointId),
      rows.map((r) => r.ipId), rows.map((r) => r.directIp), rows.map((r) => r.port), rows.map((r) => r.protocol),
      rows.map((r) => r.processId), rows.map((r) => r.ts), rows.map((r) => r.status), rows.map((r) => r.ruleRef), rows.map((r) => r.ext),
    ],
  );
  const key = (runRef: number, typeId: number, endpointId: number, processId: number, ext: string) => `${runRef}/${typeId}/${endpointId}/${processId}/${ext}`;
  const fresh = new Set(inserted.rows.map((r) => key(r.run_ref, r.type_id, r.endpoint_id, r.process_id, r.ext)));
  // Of identical detections in one batch, the first is the stored one (as row-by-row inserts would do).
  const stored = rows.map((r) => fresh.delete(key(r.runRef, r.typeId, r.endpointId, r.processId, r.ext)));
  return stored;
}

/**
 * Applies one write batch inside the caller's open transaction, in the order the contract gives:
 * fence, version check, then newJobs, newRuns, runSpans, completedRuns, jobStates, baseline,
 * observations, detections, imported, source. Every statement is a multi-row one over arrays
 * (unnest), so a batch costs a fixed number of round trips, not one per row.
 */
export async function applyWriteBatch(c: PgClient, ctx: WriteContext, b: IngestWriteBatch): Promise<IngestWriteResult> {
  const { tenantId, dict } = ctx;
  await fenceIngestLease(c, { tenant: ctx.tenant, tenantId, token: b.lease.token, ttlMs: b.lease.ttlMs }, ctx.clock);
  const found = await readVersions(c, tenantId, true);
  if (found.rulesVersion !== b.expect.rulesVersion || found.jobStateVersion !== b.expect.jobStateVersion) {
    throw new IngestStateChangedError(b.expect, found);
  }

  const jobIds = await ensureJobs(c, tenantId, b.newJobs.map((j) => j.key));
  const jobRef = resolver(new Map(b.newJobs.map((j, i) => [j.tempRef, jobIds[i]!])), 'job');
  const { ids: runIds } = await ensureRuns(c, tenantId, b.newRuns.map((r) => ({ ...r, jobRef: jobRef(r.jobRef) })));
  const runRef = resolver(new Map(b.newRuns.map((r, i) => [r.tempRef, runIds[i]!])), 'run');

  await widenSpans(c, tenantId, b.runSpans.map((s) => ({ ...s, ref: runRef(s.ref) })));
  if (b.completedRuns.length) {
    await c.query('UPDATE runs SET completed = true WHERE tenant_id = $1 AND id = ANY($2::bigint[])', [tenantId, b.completedRuns.map(runRef)]);
  }
  if (b.jobStates.length) {
    const last = new Map<number, { completedRuns: number; openRun: number | null }>();
    for (const s of b.jobStates) last.set(jobRef(s.ref), { completedRuns: s.completedRuns, openRun: s.openRun === null ? null : runRef(s.openRun) });
    await c.query(
      `UPDATE jobs j SET completed_runs = s.completed_runs, open_run = s.open_run
       FROM unnest($2::bigint[], $3::int[], $4::bigint[]) AS s (id, completed_runs, open_run) WHERE j.tenant_id = $1 AND j.id = s.id`,
      [tenantId, [...last.keys()], [...last.values()].map((s) => s.completedRuns), [...last.values()].map((s) => s.openRun)],
    );
  }

  if (b.baseline.length) {
    const endpoints = await dict.endpointIds(c, b.baseline.map((w) => w.endpoint));
    // One row per (job, endpoint): the first write's first-seen time, the latest last-seen time, the last entry.
    const merged = new Map<string, { job: number; endpointId: number; entry: (typeof b.baseline)[number]['entry']; first: number; last: number }>();
    for (const w of b.baseline) {
      const job = jobRef(w.jobRef);
      const endpointId = endpoints.get(w.endpoint)!;
      const k = `${job}/${endpointId}`;
      const m = merged.get(k);
      if (m) {
        m.entry = w.entry;
        m.last = Math.max(m.last, w.lastTs);
      } else merged.set(k, { job, endpointId, entry: w.entry, first: w.firstTs, last: w.lastTs });
    }
    const rows = [...merged.values()];
    await c.query(
      `INSERT INTO baseline (tenant_id, job_ref, endpoint_id, runs_seen, first_ts, last_ts, in_baseline, source)
       SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::int[], $5::bigint[], $6::bigint[], $7::boolean[], $8::text[])
       ON CONFLICT (tenant_id, job_ref, endpoint_id) DO UPDATE SET runs_seen = excluded.runs_seen,
         last_ts = greatest(baseline.last_ts, excluded.last_ts), in_baseline = excluded.in_baseline, source = excluded.source`,
      [
        tenantId, rows.map((r) => r.job), rows.map((r) => r.endpointId), rows.map((r) => r.entry.runsSeen), rows.map((r) => r.first),
        rows.map((r) => r.last), rows.map((r) => r.entry.inBaseline), rows.map((r) => r.entry.source),
      ],
    );
  }

  if (b.observations.length) {
    const endpoints = await dict.endpointIds(c, b.observations.map((o) => o.endpoint));
    await dict.ipIds(c, b.observations.map((o) => o.ip));
    const processes = await dict.processIds(c, b.observations);
    const rows = b.observations.map((o) => ({
      run: runRef(o.runRef), endpointId: endpoints.get(o.endpoint)!, processId: processes.get(o.variantKey)!, blocked: o.blocked,
      ipId: o.ip ? dict.ipId(o.ip) : null, protocol: o.protocol, ts: o.ts, verdict: o.verdict,
    }));
    const inserted = await c.query<{ run_ref: number; endpoint_id: number; process_id: number; blocked: boolean }>(
      `INSERT INTO observations (tenant_id, run_ref, endpoint_id, process_id, blocked, ip_id, protocol, first_ts)
       SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::bigint[], $7::text[], $8::bigint[])
       ON CONFLICT DO NOTHING${rows.some((r) => r.verdict) ? ' RETURNING run_ref, endpoint_id, process_id, blocked' : ''}`,
      [
        tenantId, rows.map((r) => r.run), rows.map((r) => r.endpointId), rows.map((r) => r.processId), rows.map((r) => r.blocked),
        rows.map((r) => r.ipId), rows.map((r) => r.protocol), rows.map((r) => r.ts),
      ],
    );
    const fresh = new Set(inserted.rows.map((r) => `${r.run_ref}/${r.endpoint_id}/${r.process_id}/${r.blocked}`));
    const verdicts = rows.filter((r) => r.verdict && fresh.delete(`${r.run}/${r.endpointId}/${r.processId}/${r.blocked}`));
    if (verdicts.length) {
      await c.query(
        `INSERT INTO call_verdicts (tenant_id, run_ref, endpoint_id, process_id, blocked, matched_policy, reason)
         SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::text[], $7::text[]) ON CONFLICT DO NOTHING`,
        [
          tenantId, verdicts.map((r) => r.run), verdicts.map((r) => r.endpointId), verdicts.map((r) => r.processId), verdicts.map((r) => r.blocked),
          verdicts.map((r) => r.verdict!.matchedPolicy ?? null), verdicts.map((r) => r.verdict!.reason ?? null),
        ],
      );
    }
  }

  const detectionsStored = await insertDetections(c, ctx, b.detections.map((d) => ({ d, jobRef: jobRef(d.jobRef), runRef: runRef(d.runRef) })));

  let importedStored: boolean[] = [];
  let importedRunsCreated = 0;
  if (b.imported.length) {
    const importJobs = await ensureJobs(c, tenantId, b.imported.map((x) => x.run));
    const legs = await ensureRuns(
      c,
      tenantId,
      b.imported.map((x, i) => ({
        jobRef: importJobs[i]!, runId: x.run.runId, runAttempt: x.run.runAttempt, ghJobId: x.run.ghJobId,
        firstTs: x.detection.ts, lastTs: x.detection.ts, learning: false, completed: true, expected: x.expected,
      })),
    );
    importedRunsCreated = legs.created.filter(Boolean).length;
    // a found run's span widens to include the detection's time (a created one already spans it)
    await widenSpans(c, tenantId, b.imported.map((x, i) => ({ ref: legs.ids[i]!, firstTs: x.detection.ts, lastTs: x.detection.ts })));
    importedStored = await insertDetections(c, ctx, b.imported.map((x, i) => ({ d: x.detection, jobRef: importJobs[i]!, runRef: legs.ids[i]! })));
  }

  if (b.source) {
    const s = b.source;
    await c.query(
      `INSERT INTO ingest_sources (tenant_id, source, format, started_at, finished_at, lines_read, accepted, rejected, detections)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [tenantId, s.source, s.format, s.startedAt, new Date().toISOString(), s.lines, s.accepted, s.rejected, s.detections],
    );
  }
  return { jobRefs: jobIds, runRefs: runIds, detectionsStored, importedStored, importedRunsCreated };
}

