import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from './db.js';
import { Dictionaries } from './dictionaries.js';
import { DetectionWriter } from './rollups.js';
import {
  STATUS_CODE,
  type BaselineEntry,
  type CallVerdict,
  type JobRow,
  type ProcessVariant,
  type RunRow,
} from '../store.js';
import {
  IngestStateChangedError,
  addStoredObservation,
  observationKey,
  processVariantKey,
  type DetectionWrite,
  type IngestReadRequest,
  type IngestReadResult,
  type IngestVersions,
  type IngestWriteBatch,
  type IngestWriteResult,
  type RunObservations,
  type StoredJob,
  type StoredRun,
} from '../ingest-port.js';
import type { Protocol } from '../../domain/types.js';
import { jobIdentity } from '../../domain/github-name.js';

export const DAY_MS = 86_400_000;

export function ensureTenant(db: SqliteDatabase, tenant: string): number {
  const row = db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
  if (row !== undefined) return row;
  db.prepare('INSERT OR IGNORE INTO tenants (name, created_at) VALUES (?, ?)').run(tenant, Date.now());
  return db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number;
}

interface Stmts {
  jobSel: Statement;
  jobId: Statement;
  jobIns: Statement;
  jobSet: Statement;
  runSel: Statement;
  runLegs: Statement;
  runByRef: Statement;
  runIns: Statement;
  runTouch: Statement;
  runComplete: Statement;
  obsKeys: Statement;
  baseSel: Statement;
  baseUpsert: Statement;
  obsIns: Statement;
  rulesVersion: Statement;
  jobStateVersion: Statement;
  sourceIns: Statement;
}

/** Rows per multi-row observation INSERT: one statement call instead of one per row. */
const OBS_ROWS = 64;
/** Rows per multi-row baseline upsert (rows are applied in order, as by single upserts; triggers fire per row). */
const BASELINE_ROWS = 32;

function baselineUpsert(rows: number): string {
  return `INSERT INTO baseline (job_ref, endpoint_id, runs_seen, first_ts, last_ts, in_baseline, source) VALUES
    ${Array.from({ length: rows }, () => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}
    ON CONFLICT (job_ref, endpoint_id) DO UPDATE SET runs_seen = excluded.runs_seen,
      last_ts = max(last_ts, excluded.last_ts), in_baseline = excluded.in_baseline, source = excluded.source`;
}

/**
 * One tenant's ingest access to the SQLite store: the backend side of the ingest write contract
 * (readSync / writeSync, wrapped async by SqliteIngestPort), plus the row-level calls tools and
 * tests use to build a store directly.
 */
export class SqliteIngestSession {
  readonly tenantId: number;
  private readonly dict: Dictionaries;
  private readonly s: Stmts;
  private verdictIns: Statement | null = null;
  private readonly detections: DetectionWriter;
  private obsInsMany: Statement | null = null;
  private baseUpsertMany: Statement | null = null;
  private readonly jobIds = new Map<string, number>();
  private runInsFull: Statement | null = null;

  constructor(
    private readonly db: SqliteDatabase,
    readonly tenant: string,
  ) {
    this.tenantId = ensureTenant(db, tenant);
    this.dict = new Dictionaries(db);
    this.detections = new DetectionWriter(db);
    this.s = {
      // Owner and repo without ASCII case, as the engine keys jobs (domain/github-name.ts); where a
      // store made before that holds one job under two spellings, the older one goes on.
      jobSel: db.prepare(
        `SELECT id, completed_runs, open_run FROM jobs
         WHERE tenant_id = ? AND owner = ? COLLATE NOCASE AND repo = ? COLLATE NOCASE AND workflow = ? AND job = ? ORDER BY id LIMIT 1`,
      ),
      jobId: db
        .prepare(
          `SELECT id FROM jobs
           WHERE tenant_id = ? AND owner = ? COLLATE NOCASE AND repo = ? COLLATE NOCASE AND workflow = ? AND job = ? ORDER BY id LIMIT 1`,
        )
        .pluck(),
      jobIns: db.prepare('INSERT INTO jobs (tenant_id, owner, repo, workflow, job) VALUES (?, ?, ?, ?, ?)'),
      jobSet: db.prepare('UPDATE jobs SET completed_runs = ?, open_run = ? WHERE id = ?'),
      // a run row is one leg of a matrix job: keyed by the GitHub job id too ('' when unknown)
      runSel: db.prepare(
        `SELECT id, gh_job_id, first_ts, last_ts, completed, learning FROM runs
         WHERE job_ref = ? AND run_id = ? AND run_attempt = ? AND coalesce(gh_job_id, '') = ?`,
      ),
      runLegs: db.prepare(
        'SELECT id, gh_job_id, first_ts, last_ts, completed, learning FROM runs WHERE job_ref = ? AND run_id = ? AND run_attempt = ? ORDER BY id',
      ),
      runByRef: db.prepare('SELECT id, job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, completed, learning FROM runs WHERE id = ?'),
      runIns: db.prepare(
        'INSERT INTO runs (job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, learning, expected_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      ),
      runTouch: db.prepare('UPDATE runs SET first_ts = min(first_ts, ?), last_ts = max(last_ts, ?) WHERE id = ?'),
      runComplete: db.prepare('UPDATE runs SET completed = 1 WHERE id = ?'),
      obsKeys: db.prepare(
        `SELECT e.endpoint, p.variant_key, o.blocked, p.norm_name, p.sha256, p.path FROM observations o
         JOIN endpoints e ON e.id = o.endpoint_id JOIN processes p ON p.id = o.process_id WHERE o.run_ref = ?`,
      ),
      baseSel: db.prepare(
        `SELECT e.endpoint, b.runs_seen, b.in_baseline, b.source FROM baseline b JOIN endpoints e ON e.id = b.endpoint_id WHERE b.job_ref = ?`,
      ),
      baseUpsert: db.prepare(baselineUpsert(1)),
      obsIns: db.prepare(
        'INSERT OR IGNORE INTO observations (run_ref, endpoint_id, process_id, blocked, ip_id, protocol, first_ts) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      rulesVersion: db.prepare("SELECT value FROM meta WHERE key = 'rules_version'").pluck(),
      jobStateVersion: db.prepare('SELECT job_state_version FROM tenants WHERE id = ?').pluck(),
      sourceIns: db.prepare(
        `INSERT INTO ingest_sources (tenant_id, source, format, started_at, finished_at, lines_read, accepted, rejected, detections)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
    };
  }

  transaction<T>(fn: () => T): T {
    try {
      return this.db.transaction(fn).immediate();
    } catch (err) {
      this.resetCaches();
      throw err;
    }
  }

  resetCaches(): void {
    this.jobIds.clear();
    this.dict.reset();
  }

  /** A run's expected-endpoint sample as runs name it: its dictionary id, or null for none. */
  private expectedId(expected: readonly string[]): number | null {
    return expected.length === 0 ? null : this.dict.sampleId(JSON.stringify(expected));
  }

  getJob(owner: string, repo: string, workflow: string, job: string): JobRow {
    let row = this.s.jobSel.get(this.tenantId, owner, repo, workflow, job) as
      | { id: number; completed_runs: number; open_run: number | null }
      | undefined;
    if (!row) {
      const id = Number(this.s.jobIns.run(this.tenantId, owner, repo, workflow, job).lastInsertRowid);
      row = { id, completed_runs: 0, open_run: null };
    }
    return { ref: row.id, owner, repo, workflow, job, completedRuns: row.completed_runs, openRun: row.open_run };
  }

  setJobState(jobRef: number, completedRuns: number, openRun: number | null): void {
    this.s.jobSet.run(completedRuns, openRun, jobRef);
  }

  findRun(jobRef: number, runId: string, runAttempt: number, ghJobId: string | null): RunRow | null {
    const r = this.s.runSel.get(jobRef, runId, runAttempt, ghJobId ?? '') as RunRecord | undefined;
    return r ? runRow(jobRef, runId, runAttempt, r) : null;
  }

  runLegs(jobRef: number, runId: string, runAttempt: number): RunRow[] {
    return (this.s.runLegs.all(jobRef, runId, runAttempt) as RunRecord[]).map((r) => runRow(jobRef, runId, runAttempt, r));
  }

  findRunByRef(runRef: number): RunRow | null {
    const r = this.s.runByRef.get(runRef) as
      | { id: number; job_ref: number; run_id: string; run_attempt: number; gh_job_id: string | null; first_ts: number; last_ts: number; completed: number; learning: number }
      | undefined;
    if (!r) return null;
    return {
      ref: r.id, jobRef: r.job_ref, runId: r.run_id, runAttempt: r.run_attempt, ghJobId: r.gh_job_id,
      firstTs: r.first_ts, lastTs: r.last_ts, completed: r.completed === 1, learning: r.learning === 1,
    };
  }

  createRun(jobRef: number, runId: string, runAttempt: number, ghJobId: string | null, ts: number, learning: boolean, expected: string[]): number {
    return Number(
      this.s.runIns.run(jobRef, runId, runAttempt, ghJobId, ts, ts, learning ? 1 : 0, this.expectedId(expected)).lastInsertRowid,
    );
  }

  touchRun(runRef: number, minTs: number, maxTs = minTs): void {
    this.s.runTouch.run(minTs, maxTs, runRef);
  }

  completeRun(runRef: number): void {
    this.s.runComplete.run(runRef);
  }

  runObservations(runRef: number): RunObservations {
    const o: RunObservations = { keys: new Set(), allowedEndpoints: new Set(), callers: new Map() };
    type Row = { endpoint: string; variant_key: string; blocked: number; norm_name: string; sha256: string | null; path: string | null };
    for (const r of this.s.obsKeys.iterate(runRef) as Iterable<Row>) {
      const blocked = r.blocked === 1;
      addStoredObservation(o, r.endpoint, observationKey(r.endpoint, r.variant_key, blocked), blocked, { process: r.norm_name, sha256: r.sha256, path: r.path });
    }
    return o;
  }

  loadBaseline(jobRef: number): Map<string, BaselineEntry> {
    const m = new Map<string, BaselineEntry>();
    for (const r of this.s.baseSel.iterate(jobRef) as Iterable<{ endpoint: string; runs_seen: number; in_baseline: number; source: string }>) {
      m.set(r.endpoint, { runsSeen: r.runs_seen, inBaseline: r.in_baseline === 1, source: r.source as BaselineEntry['source'] });
    }
    return m;
  }

  upsertBaseline(jobRef: number, endpoint: string, e: BaselineEntry, ts: number): void {
    this.s.baseUpsert.run(jobRef, this.dict.endpointId(endpoint), e.runsSeen, ts, ts, e.inBaseline ? 1 : 0, e.source);
  }

  insertObservation(runRef: number, endpoint: string, ip: string | null, p: ProcessVariant, blocked: boolean, protocol: Protocol | null, ts: number, variantKey?: string, verdict?: CallVerdict): boolean {
    const endpointId = this.dict.endpointId(endpoint);
    const processId = this.dict.processId(p, variantKey);
    const r = this.s.obsIns.run(runRef, endpointId, processId, blocked ? 1 : 0, ip ? this.dict.ipId(ip) : null, protocol, ts);
    if (r.changes === 1 && verdict) {
      // prepared on first use: most sources carry no verdicts
      this.verdictIns ??= this.db.prepare(
        'INSERT OR IGNORE INTO call_verdicts (run_ref, endpoint_id, process_id, blocked, matched_policy, reason) VALUES (?, ?, ?, ?, ?, ?)',
      );
      this.verdictIns.run(runRef, endpointId, processId, blocked ? 1 : 0, verdict.matchedPolicy ?? null, verdict.reason ?? null);
    }
    return r.changes === 1;
  }

  insertDetection(d: DetectionWrite): boolean {
    const typeId = this.dict.typeId(d.type);
    const endpointId = this.dict.endpointId(d.endpoint);
    const ipId = this.dict.ipId(d.ip);
    const processId = this.dict.processId(d.process);
    return this.detections.insert({
      tenantId: this.tenantId, typeId, jobRef: d.jobRef, runRef: d.runRef, endpointId, ipId, directIp: d.directIp, port: d.port,
      protocol: d.protocol, processId, ts: d.ts, status: STATUS_CODE[d.status], ruleId: d.ruleRef, ext: d.externalId,
    });
  }

  versions(): IngestVersions {
    return { rulesVersion: this.rulesVersion(), jobStateVersion: this.jobStateVersion() };
  }

  private findJob(owner: string, repo: string, workflow: string, job: string): { id: number; completed_runs: number; open_run: number | null } | undefined {
    return this.s.jobSel.get(this.tenantId, owner, repo, workflow, job) as { id: number; completed_runs: number; open_run: number | null } | undefined;
  }

  /** A job's id (ids never change; a rolled-back job is forgotten by resetCaches). */
  private jobId(owner: string, repo: string, workflow: string, job: string): number | undefined {
    const k = jobIdentity(owner, repo, workflow, job);
    let id = this.jobIds.get(k);
    if (id === undefined) {
      id = this.s.jobId.get(this.tenantId, owner, repo, workflow, job) as number | undefined;
      if (id !== undefined) this.jobIds.set(k, id);
    }
    return id;
  }

  private storedRun(r: RunRow): StoredRun {
    return { ...r, observations: this.runObservations(r.ref) };
  }


  /** The read half of the ingest write contract (IngestReadRequest in ingest-port.ts). */
  readSync(req: IngestReadRequest): IngestReadResult {
    const jobs = req.jobs.map((k): StoredJob | null => {
      const row = this.findJob(k.owner, k.repo, k.workflow, k.job);
      if (!row) return null;
      const openLegs: StoredRun[] = [];
      const open = row.open_run === null ? null : this.findRunByRef(row.open_run);
      if (open) {
        openLegs.push(this.storedRun(open));
        for (const leg of this.runLegs(row.id, open.runId, open.runAttempt)) {
          if (!leg.completed && leg.ref !== open.ref) openLegs.push(this.storedRun(leg));
        }
      }
      return { ref: row.id, completedRuns: row.completed_runs, openRun: row.open_run, baseline: this.loadBaseline(row.id), openLegs };
    });
    const runs = req.runs.map((k) => {
      const id = this.jobId(k.owner, k.repo, k.workflow, k.job);
      return id === undefined ? [] : this.runLegs(id, k.runId, k.runAttempt).map((r) => this.storedRun(r));
    });
    const observations = req.observations.map((ref) => this.runObservations(ref));
    return { versions: this.versions(), jobs, runs, observations };
  }

  /**
   * The write half: one batch, applied in the contract's order. Runs inside the caller's
   * transaction, after the caller has fenced the lease.
   */
  writeSync(b: IngestWriteBatch): IngestWriteResult {
    const found = this.versions();
    if (found.rulesVersion !== b.expect.rulesVersion || found.jobStateVersion !== b.expect.jobStateVersion) {
      throw new IngestStateChangedError(b.expect, found);
    }
    const temp = new Map<number, number>();
    const ref = (r: number): number => {
      if (r > 0) return r;
      const real = temp.get(r);
      if (real === undefined) throw new Error(`internal: write batch names temporary ref ${r} it does not declare`);
      return real;
    };
    const jobRefs = b.newJobs.map((j) => {
      const id = this.getJob(j.key.owner, j.key.repo, j.key.workflow, j.key.job).ref;
      temp.set(j.tempRef, id);
      return id;
    });
    this.runInsFull ??= this.db.prepare(
      'INSERT INTO runs (job_ref, run_id, run_attempt, gh_job_id, first_ts, last_ts, completed, learning, expected_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    const runRefs = b.newRuns.map((r) => {
      const id = Number(
        this.runInsFull!.run(ref(r.jobRef), r.runId, r.runAttempt, r.ghJobId, r.firstTs, r.lastTs, r.completed ? 1 : 0, r.learning ? 1 : 0, this.expectedId(r.expected))
          .lastInsertRowid,
      );
      temp.set(r.tempRef, id);
      return id;
    });
    for (const r of b.runSpans) this.s.runTouch.run(r.firstTs, r.lastTs, ref(r.ref));
    for (const r of b.completedRuns) this.s.runComplete.run(ref(r));
    for (const j of b.jobStates) this.s.jobSet.run(j.completedRuns, j.openRun === null ? null : ref(j.openRun), ref(j.ref));
    this.writeBaseline(b, ref);
    this.writeObservations(b, ref);
    // The batch's rollup additions are summed per key and written once each, after its detections.
    const rollups = this.detections.rollups;
    rollups.hold();
    try {
      const detectionsStored = b.detections.map((d) => this.insertDetection({ ...d, jobRef: ref(d.jobRef), runRef: ref(d.runRef) }));
      const imported = this.writeImported(b);
      rollups.flush();
      if (b.source) {
        const src = b.source;
        this.recordSource(src.source, src.format, { lines: src.lines, accepted: src.accepted, rejected: src.rejected, detections: src.detections }, src.startedAt);
      }
      return { jobRefs, runRefs, detectionsStored, importedStored: imported.stored, importedRunsCreated: imported.runsCreated };
    } finally {
      rollups.discard();
    }
  }

  /** Baseline upserts in multi-row statements (the engine sends one per job and endpoint). */
  private writeBaseline(b: IngestWriteBatch, ref: (r: number) => number): void {
    const rows = b.baseline;
    const params: unknown[] = [];
    let i = 0;
    if (rows.length >= BASELINE_ROWS) {
      this.baseUpsertMany ??= this.db.prepare(baselineUpsert(BASELINE_ROWS));
      for (; i + BASELINE_ROWS <= rows.length; i += BASELINE_ROWS) {
        params.length = 0;
        for (let j = i; j < i + BASELINE_ROWS; j++) this.baselineRow(rows[j]!, ref, params);
        this.baseUpsertMany.run(params);
      }
    }
    for (; i < rows.length; i++) {
      params.length = 0;
      this.baselineRow(rows[i]!, ref, params);
      this.s.baseUpsert.run(params);
    }
  }

  private baselineRow(w: IngestWriteBatch['baseline'][number], ref: (r: number) => number, out: unknown[]): void {
    out.push(ref(w.jobRef), this.dict.endpointId(w.endpoint), w.entry.runsSeen, w.firstTs, w.lastTs, w.entry.inBaseline ? 1 : 0, w.entry.source);
  }

  private writeImported(b: IngestWriteBatch): { stored: boolean[]; runsCreated: number } {
    let importedRunsCreated = 0;
    const importedStored = b.imported.map((d) => {
      const k = d.run;
      const job = this.getJob(k.owner, k.repo, k.workflow, k.job);
      const run = this.findRun(job.ref, k.runId, k.runAttempt, k.ghJobId);
      let runRef: number;
      if (run) {
        runRef = run.ref;
        this.touchRun(runRef, d.detection.ts);
      } else {
        runRef = this.createRun(job.ref, k.runId, k.runAttempt, k.ghJobId, d.detection.ts, false, d.expected);
        this.completeRun(runRef);
        importedRunsCreated++;
      }
      return this.insertDetection({ ...d.detection, jobRef: job.ref, runRef });
    });
    return { stored: importedStored, runsCreated: importedRunsCreated };
  }

  /** Observations in multi-row INSERTs; all are new (the engine sends none a run already has). */
  private writeObservations(b: IngestWriteBatch, ref: (r: number) => number): void {
    const obs = b.observations;
    const row = (o: IngestWriteBatch['observations'][number], out: unknown[], endpointId: number, processId: number) => {
      out.push(ref(o.runRef), endpointId, processId, o.blocked ? 1 : 0, o.ip ? this.dict.ipId(o.ip) : null, o.protocol, o.ts);
    };
    const ids = obs.map((o) => [this.dict.endpointId(o.endpoint), this.dict.processId(o.process, o.variantKey)] as const);
    let i = 0;
    if (obs.length >= OBS_ROWS) {
      this.obsInsMany ??= this.db.prepare(
        'INSERT OR IGNORE INTO observations (run_ref, endpoint_id, process_id, blocked, ip_id, protocol, first_ts) VALUES ' +
          Array.from({ length: OBS_ROWS }, () => '(?, ?, ?, ?, ?, ?, ?)').join(', '),
      );
      const params: unknown[] = [];
      for (; i + OBS_ROWS <= obs.length; i += OBS_ROWS) {
        params.length = 0;
        for (let j = i; j < i + OBS_ROWS; j++) row(obs[j]!, params, ids[j]![0], ids[j]![1]);
        this.obsInsMany.run(params);
      }
    }
    const one: unknown[] = [];
    for (; i < obs.length; i++) {
      one.length = 0;
      row(obs[i]!, one, ids[i]![0], ids[i]![1]);
      this.s.obsIns.run(one);
    }
    for (const [j, o] of obs.entries()) {
      if (!o.verdict) continue;
      // prepared on first use: most sources carry no verdicts
      this.verdictIns ??= this.db.prepare(
        'INSERT OR IGNORE INTO call_verdicts (run_ref, endpoint_id, process_id, blocked, matched_policy, reason) VALUES (?, ?, ?, ?, ?, ?)',
      );
      this.verdictIns.run(ref(o.runRef), ids[j]![0], ids[j]![1], o.blocked ? 1 : 0, o.verdict.matchedPolicy ?? null, o.verdict.reason ?? null);
    }
  }

  rulesVersion(): number {
    return Number(this.s.rulesVersion.get() ?? 0);
  }

  jobStateVersion(): number {
    return Number(this.s.jobStateVersion.get(this.tenantId) ?? 0);
  }

  recordSource(source: string, format: string, st: { lines: number; accepted: number; rejected: number; detections: number }, startedAt: string): void {
    this.s.sourceIns.run(this.tenantId, source, format, startedAt, new Date().toISOString(), st.lines, st.accepted, st.rejected, st.detections);
  }
}

interface RunRecord {
  id: number;
  gh_job_id: string | null;
  first_ts: number;
  last_ts: number;
  completed: number;
  learning: number;
}

function runRow(jobRef: number, runId: string, runAttempt: number, r: RunRecord): RunRow {
  return {
    ref: r.id, jobRef, runId, runAttempt, ghJobId: r.gh_job_id,
    firstTs: r.first_ts, lastTs: r.last_ts, completed: r.completed === 1, learning: r.learning === 1,
  };
}

export { observationKey, processVariantKey };
