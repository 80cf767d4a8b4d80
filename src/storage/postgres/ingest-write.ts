import type { PgClient } from './pool.js';
import type { PgDictionaries } from './dictionaries.js';
import { fenceIngestLease, type PgLeaseClock } from './ingest-leases.js';
import { findJobs, readVersions } from './ingest-read.js';
import { jobIdentity } from '../../domain/github-name.js';
import {
  IngestStateChangedError,
  processVariantKey,
  type DetectionWrite,
  type IngestWriteBatch,
  type IngestWriteResult,
  type JobKey,
  type NewRunWrite,
} from '../ingest-port.js';
import { STATUS_CODE, type CallVerdict } from '../store.js';
import { copyRows, type CopyValue } from './copy-rows.js';
import { groupIds, type GroupKey } from './detection-groups.js';

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

/**
 * Jobs by natural key, created when missing; returns their ids in order. A job is found without
 * ASCII case in owner and repo (findJobs), so only keys no spelling of which is stored are inserted,
 * each once, as first spelled.
 */
async function ensureJobs(c: PgClient, tenantId: number, keys: JobKey[], created?: Set<number>): Promise<number[]> {
  if (keys.length === 0) return [];
  const found = await findJobs(c, tenantId, keys);
  const missing = new Map<string, JobKey>();
  for (const [i, k] of keys.entries()) {
    const folded = jobIdentity(k.owner, k.repo, k.workflow, k.job);
    if (found[i] === null && !missing.has(folded)) missing.set(folded, k);
  }
  if (missing.size === 0) return found.map((j) => j!.id);
  const add = [...missing.values()];
  const inserted = await c.query<{ id: number }>(
    `INSERT INTO jobs (tenant_id, owner, repo, workflow, job) SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[])
     ON CONFLICT DO NOTHING RETURNING id`,
    [tenantId, add.map((k) => k.owner), add.map((k) => k.repo), add.map((k) => k.workflow), add.map((k) => k.job)],
  );
  for (const r of inserted.rows) created?.add(Number(r.id));
  return (await findJobs(c, tenantId, keys)).map((j) => j!.id);
}

/** A run leg to insert: a new run of the batch with its real job ref. */
type RunInsert = Omit<NewRunWrite, 'tempRef'>;

/**
 * Run legs, created when missing (a leg is job, run id, attempt and GitHub job id); returns ids in
 * order, whether each was created (once per leg), and the ids of every leg this statement created.
 */
async function ensureRuns(c: PgClient, tenantId: number, dict: PgDictionaries, runs: RunInsert[]): Promise<{ ids: number[]; created: boolean[]; fresh: Set<number> }> {
  if (runs.length === 0) return { ids: [], created: [], fresh: new Set() };
  // a run names its expected-endpoint sample by id (migration 13); none (a learning run) is NULL
  const samples = runs.map((r) => (r.expected.length === 0 ? null : JSON.stringify(r.expected)));
  const sampleIds = await dict.sampleIds(c, samples.filter((t): t is string => t !== null));
  const inserted = await c.query<{ id: number; job_ref: number; run_id: string; run_attempt: number; gh_job_id: string | null }>(
    `INSERT INTO runs (tenant_id, job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, learning, completed, expected_id)
     SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::int[], $5::text[], $6::bigint[], $7::bigint[], $8::boolean[], $9::boolean[], $10::bigint[])
     ON CONFLICT DO NOTHING RETURNING id, job_ref, run_id, run_attempt, gh_job_id`,
    [
      tenantId, runs.map((r) => r.jobRef), runs.map((r) => r.runId), runs.map((r) => r.runAttempt), runs.map((r) => r.ghJobId),
      runs.map((r) => r.firstTs), runs.map((r) => r.lastTs), runs.map((r) => r.learning), runs.map((r) => r.completed),
      samples.map((t) => (t === null ? null : sampleIds.get(t)!)),
    ],
  );
  const legKey = (jobRef: number, runId: string, attempt: number, gh: string | null) => JSON.stringify([jobRef, runId, attempt, gh ?? '']);
  const createdKeys = new Set(inserted.rows.map((r) => legKey(r.job_ref, r.run_id, r.run_attempt, r.gh_job_id)));
  const fresh = new Set(inserted.rows.map((r) => r.id));
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
  return { ids, created, fresh };
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

/** A call with every value resolved to the ids it is stored with. */
interface ObservationRow {
  run: number;
  endpointId: number;
  processId: number;
  blocked: boolean;
  ipId: number | null;
  protocol: string | null;
  ts: number;
  verdict: CallVerdict | undefined;
}

interface ResolvedDetection {
  d: Omit<DetectionWrite, 'jobRef' | 'runRef'>;
  jobRef: number;
  runRef: number;
}

/** detection_rows: a detection's status and rule are those of its group (detection-groups.ts) */
const DETECTION_COLUMNS = 'tenant_id, type_id, job_ref, run_ref, endpoint_id, ip_id, direct_ip, port, protocol, process_id, ts, gid, ext';

/** One row of detection_rollup, added to the stored counts. */
interface RollupAdd {
  typeId: number;
  status: number;
  ruleRef: number;
  day: number;
  jobRef: number;
  processId: number;
  endpointId: number;
  ipId: number;
  n: number;
  firstTs: number;
  lastTs: number;
}

/**
 * An array literal of integers, written here: pg's generic array serialiser quotes and escapes every
 * element with two regular expressions, a measurable share of the client's CPU on big batches
 * (baseline upserts and rollup rows, for which COPY cannot be used: they update stored rows).
 */
function intArray(xs: readonly number[]): string {
  for (const x of xs) if (!Number.isSafeInteger(x)) throw new Error(`write batch: ${x} is not an integer`);
  return `{${xs.join(',')}}`;
}

/** An array literal of booleans, written here for the same reason. */
function boolArray(xs: readonly boolean[]): string {
  return `{${xs.map((x) => (x ? 't' : 'f')).join(',')}}`;
}

/** Adds detections that were just inserted to the rollup, grouped by its key (one row per group). */
async function addToRollup(c: PgClient, tenantId: number, rows: DetectionRow[]): Promise<void> {
  const groups = new Map<string, RollupAdd>();
  for (const r of rows) {
    // the day as the SQL side computes it, floor(ts / 86400000.0)
    const day = Math.floor(r.ts / DAY_MS);
    const k = `${r.typeId}/${r.status}/${r.ruleRef}/${day}/${r.jobRef}/${r.processId}/${r.endpointId}/${r.ipId}`;
    const g = groups.get(k);
    if (g) {
      g.n++;
      g.firstTs = Math.min(g.firstTs, r.ts);
      g.lastTs = Math.max(g.lastTs, r.ts);
    } else {
      groups.set(k, { typeId: r.typeId, status: r.status, ruleRef: r.ruleRef, day, jobRef: r.jobRef, processId: r.processId, endpointId: r.endpointId, ipId: r.ipId, n: 1, firstTs: r.ts, lastTs: r.ts });
    }
  }
  const g = [...groups.values()];
  await c.query(
    `INSERT INTO detection_rollup (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts)
     SELECT $1, * FROM unnest($2::int[], $3::smallint[], $4::bigint[], $5::int[], $6::bigint[], $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[])
     ON CONFLICT (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id) DO UPDATE SET
       n = detection_rollup.n + excluded.n,
       first_ts = least(detection_rollup.first_ts, excluded.first_ts),
       last_ts = greatest(detection_rollup.last_ts, excluded.last_ts)`,
    [
      tenantId, ...[
        g.map((x) => x.typeId), g.map((x) => x.status), g.map((x) => x.ruleRef), g.map((x) => x.day), g.map((x) => x.jobRef),
        g.map((x) => x.processId), g.map((x) => x.endpointId), g.map((x) => x.ipId), g.map((x) => x.n), g.map((x) => x.firstTs), g.map((x) => x.lastTs),
      ].map(intArray),
    ],
  );
}

/** A detection with every value resolved to the ids it is stored with. */
interface DetectionRow {
  typeId: number;
  jobRef: number;
  runRef: number;
  endpointId: number;
  ipId: number;
  directIp: boolean;
  port: number | null;
  protocol: string | null;
  processId: number;
  ts: number;
  status: number;
  ruleRef: number;
  ext: string;
  /** its group (key and state), set once the groups are found */
  gid: number;
}

/** Sets each row's group: the key's group in the row's state, found or opened (detection-groups.ts). */
async function assignGroups(c: PgClient, tenantId: number, rows: DetectionRow[], newJobs: ReadonlySet<number>): Promise<void> {
  const at = new Map<string, number>();
  const keys: GroupKey[] = [];
  const rowKey: number[] = new Array(rows.length);
  rows.forEach((r, i) => {
    const k = `${r.typeId}/${r.status}/${r.ruleRef}/${r.jobRef}/${r.processId}/${r.endpointId}/${r.ipId}`;
    let n = at.get(k);
    if (n === undefined) {
      n = keys.push({ typeId: r.typeId, jobRef: r.jobRef, processId: r.processId, endpointId: r.endpointId, ipId: r.ipId, status: r.status, ruleRef: r.ruleRef }) - 1;
      at.set(k, n);
    }
    rowKey[i] = n;
  });
  const ids = await groupIds(c, tenantId, keys, newJobs, intArray);
  rows.forEach((r, i) => (r.gid = ids[rowKey[i]!]!));
}

/**
 * Inserts detections unless identical ones are stored; adds the inserted ones to the rollup.
 *
 * Two paths, by what can already be stored. A detection of a run leg this transaction created
 * (`fresh`) cannot have a stored twin: nothing outside this transaction knows the leg's id. Those
 * are COPYed straight into the table (no conflict check, no array parsing on the server) and the
 * client adds them to the rollup. The others (stored runs: re-ingest, a run that spans batches) go
 * through one INSERT ... ON CONFLICT DO NOTHING that also adds exactly what it inserted to the rollup.
 */
async function insertDetections(c: PgClient, ctx: WriteContext, list: ResolvedDetection[], fresh: ReadonlySet<number>, newJobs: ReadonlySet<number>): Promise<boolean[]> {
  if (list.length === 0) return [];
  const { tenantId, dict } = ctx;
  const types = await dict.typeIds(c, list.map((x) => x.d.type));
  const endpoints = await dict.endpointIds(c, list.map((x) => x.d.endpoint));
  await dict.ipIds(c, list.map((x) => x.d.ip));
  const processes = await dict.processIds(c, list.map((x) => ({ process: x.d.process })));
  const rows: DetectionRow[] = list.map((x) => ({
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
    gid: 0,
  }));
  const key = (runRef: number, typeId: number, endpointId: number, processId: number, ext: string) => `${runRef}/${typeId}/${endpointId}/${processId}/${ext}`;
  // Of identical detections in one batch, the first is the stored one (as row-by-row inserts would do).
  const stored = rows.map(() => false);
  const firsts = new Set<string>();
  const toFresh: DetectionRow[] = [];
  const toCheck: { row: DetectionRow; at: number }[] = [];
  rows.forEach((r, at) => {
    const k = key(r.runRef, r.typeId, r.endpointId, r.processId, r.ext);
    if (firsts.has(k)) return;
    firsts.add(k);
    if (fresh.has(r.runRef)) {
      toFresh.push(r);
      stored[at] = true;
    } else toCheck.push({ row: r, at });
  });

  await assignGroups(c, tenantId, [...toFresh, ...toCheck.map((x) => x.row)], newJobs);
  if (toFresh.length) {
    await copyRows(
      c,
      `detection_rows (${DETECTION_COLUMNS})`,
      toFresh.map((r) => [tenantId, r.typeId, r.jobRef, r.runRef, r.endpointId, r.ipId, r.directIp, r.port, r.protocol, r.processId, r.ts, r.gid, r.ext] satisfies CopyValue[]),
    );
    await addToRollup(c, tenantId, toFresh);
  }
  if (toCheck.length === 0) return stored;

  const chk = toCheck.map((x) => x.row);
  // One statement: the detections not stored yet go in, and exactly those are added to the rollup
  // (grouped on the server), so rollup counts stay equal to counts of detections.
  const inserted = await c.query<{ run_ref: number; type_id: number; endpoint_id: number; process_id: number; ext: string }>(
    `WITH ins AS (
       INSERT INTO detection_rows (${DETECTION_COLUMNS})
       SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[], $7::boolean[], $8::int[], $9::text[],
         $10::bigint[], $11::bigint[], $12::bigint[], $13::text[])
       ON CONFLICT DO NOTHING
       RETURNING type_id, gid, ts, job_ref, process_id, endpoint_id, ip_id, run_ref, ext),
     roll AS (
       -- the state of what went in is its group's (opened or found by this transaction)
       INSERT INTO detection_rollup (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts)
       SELECT $1, i.type_id, g.status, g.rule_id, floor(i.ts / ${DAY_MS}.0)::int, i.job_ref, i.process_id, i.endpoint_id, i.ip_id, count(*), min(i.ts), max(i.ts)
       FROM ins i JOIN detection_groups g ON g.tenant_id = $1 AND g.id = i.gid
       GROUP BY i.type_id, g.status, g.rule_id, floor(i.ts / ${DAY_MS}.0)::int, i.job_ref, i.process_id, i.endpoint_id, i.ip_id
       ON CONFLICT (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id) DO UPDATE SET
         n = detection_rollup.n + excluded.n,
         first_ts = least(detection_rollup.first_ts, excluded.first_ts),
         last_ts = greatest(detection_rollup.last_ts, excluded.last_ts))
     SELECT run_ref, type_id, endpoint_id, process_id, ext FROM ins`,
    [
      tenantId, chk.map((r) => r.typeId), chk.map((r) => r.jobRef), chk.map((r) => r.runRef), chk.map((r) => r.endpointId),
      chk.map((r) => r.ipId), chk.map((r) => r.directIp), chk.map((r) => r.port), chk.map((r) => r.protocol),
      chk.map((r) => r.processId), chk.map((r) => r.ts), chk.map((r) => r.gid), chk.map((r) => r.ext),
    ],
  );
  const ins = new Set(inserted.rows.map((r) => key(r.run_ref, r.type_id, r.endpoint_id, r.process_id, r.ext)));
  for (const { row: r, at } of toCheck) stored[at] = ins.has(key(r.runRef, r.typeId, r.endpointId, r.processId, r.ext));
  return stored;
}

/**
 * Applies one write batch inside the caller's open transaction, in the order the contract gives:
 * fence, version check, then newJobs, newRuns, runSpans, completedRuns, jobStates, baseline,
 * observations, detections, imported, source. Every statement is a multi-row one, over arrays
 * (unnest) or a COPY, so a batch costs a fixed number of round trips, not one per row.
 */
export async function applyWriteBatch(c: PgClient, ctx: WriteContext, b: IngestWriteBatch): Promise<IngestWriteResult> {
  const { tenantId, dict } = ctx;
  await fenceIngestLease(c, { tenant: ctx.tenant, tenantId, token: b.lease.token, ttlMs: b.lease.ttlMs }, ctx.clock);
  const found = await readVersions(c, tenantId, true);
  if (found.rulesVersion !== b.expect.rulesVersion || found.jobStateVersion !== b.expect.jobStateVersion) {
    throw new IngestStateChangedError(b.expect, found);
  }

  // jobs this statement created: nothing can be stored for them yet (their detections' groups are new)
  const createdJobs = new Set<number>();
  const jobIds = await ensureJobs(c, tenantId, b.newJobs.map((j) => j.key), createdJobs);
  const jobRef = resolver(new Map(b.newJobs.map((j, i) => [j.tempRef, jobIds[i]!])), 'job');
  const { ids: runIds, fresh } = await ensureRuns(c, tenantId, dict, b.newRuns.map((r) => ({ ...r, jobRef: jobRef(r.jobRef) })));
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
        tenantId, intArray(rows.map((r) => r.job)), intArray(rows.map((r) => r.endpointId)), intArray(rows.map((r) => r.entry.runsSeen)),
        intArray(rows.map((r) => r.first)), intArray(rows.map((r) => r.last)), boolArray(rows.map((r) => r.entry.inBaseline)), rows.map((r) => r.entry.source),
      ],
    );
  }

  if (b.observations.length) {
    const endpoints = await dict.endpointIds(c, b.observations.map((o) => o.endpoint));
    await dict.ipIds(c, b.observations.map((o) => o.ip));
    const processes = await dict.processIds(c, b.observations);
    // One row per call key, the first of the batch (as row-by-row inserts would do). A call of a run
    // leg this transaction created cannot be stored yet: those are COPYed straight in (see
    // insertDetections); the others go through INSERT ... ON CONFLICT DO NOTHING.
    const seen = new Set<string>();
    const toFresh: ObservationRow[] = [];
    const toCheck: ObservationRow[] = [];
    for (const o of b.observations) {
      const r: ObservationRow = {
        run: runRef(o.runRef), endpointId: endpoints.get(o.endpoint)!, processId: processes.get(o.variantKey)!, blocked: o.blocked,
        ipId: o.ip ? dict.ipId(o.ip) : null, protocol: o.protocol, ts: o.ts, verdict: o.verdict,
      };
      const k = `${r.run}/${r.endpointId}/${r.processId}/${r.blocked}`;
      if (seen.has(k)) continue;
      seen.add(k);
      (fresh.has(r.run) ? toFresh : toCheck).push(r);
    }
    await copyRows(
      c,
      'observations (tenant_id, run_ref, endpoint_id, process_id, blocked, ip_id, protocol, first_ts)',
      toFresh.map((r) => [tenantId, r.run, r.endpointId, r.processId, r.blocked, r.ipId, r.protocol, r.ts]),
    );
    const verdicts = toFresh.filter((r) => r.verdict);
    if (toCheck.length) {
      const inserted = await c.query<{ run_ref: number; endpoint_id: number; process_id: number; blocked: boolean }>(
        `INSERT INTO observations (tenant_id, run_ref, endpoint_id, process_id, blocked, ip_id, protocol, first_ts)
         SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[], $6::bigint[], $7::text[], $8::bigint[])
         ON CONFLICT DO NOTHING${toCheck.some((r) => r.verdict) ? ' RETURNING run_ref, endpoint_id, process_id, blocked' : ''}`,
        [
          tenantId, toCheck.map((r) => r.run), toCheck.map((r) => r.endpointId), toCheck.map((r) => r.processId), toCheck.map((r) => r.blocked),
          toCheck.map((r) => r.ipId), toCheck.map((r) => r.protocol), toCheck.map((r) => r.ts),
        ],
      );
      // the producer's verdict goes with a call this batch stored, not with one stored before
      const ins = new Set(inserted.rows.map((r) => `${r.run_ref}/${r.endpoint_id}/${r.process_id}/${r.blocked}`));
      verdicts.push(...toCheck.filter((r) => r.verdict && ins.has(`${r.run}/${r.endpointId}/${r.processId}/${r.blocked}`)));
    }
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

  const detectionsStored = await insertDetections(c, ctx, b.detections.map((d) => ({ d, jobRef: jobRef(d.jobRef), runRef: runRef(d.runRef) })), fresh, createdJobs);

  let importedStored: boolean[] = [];
  let importedRunsCreated = 0;
  if (b.imported.length) {
    const importJobsCreated = new Set<number>();
    const importJobs = await ensureJobs(c, tenantId, b.imported.map((x) => x.run), importJobsCreated);
    const legs = await ensureRuns(
      c,
      tenantId,
      dict,
      b.imported.map((x, i) => ({
        jobRef: importJobs[i]!, runId: x.run.runId, runAttempt: x.run.runAttempt, ghJobId: x.run.ghJobId,
        firstTs: x.detection.ts, lastTs: x.detection.ts, learning: false, completed: true, expected: x.expected,
      })),
    );
    importedRunsCreated = legs.created.filter(Boolean).length;
    // a found run's span widens to include the detection's time (a created one already spans it)
    await widenSpans(c, tenantId, b.imported.map((x, i) => ({ ref: legs.ids[i]!, firstTs: x.detection.ts, lastTs: x.detection.ts })));
    importedStored = await insertDetections(c, ctx, b.imported.map((x, i) => ({ d: x.detection, jobRef: importJobs[i]!, runRef: legs.ids[i]! })), legs.fresh, importJobsCreated);
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

