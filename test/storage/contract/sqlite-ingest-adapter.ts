import type { SqliteStore } from '../../../src/storage/sqlite/sqlite-store.js';
import {
  IngestStateChangedError,
  type IngestPort,
  type IngestReadRequest,
  type IngestReadResult,
  type IngestScope,
  type IngestWriteBatch,
  type IngestWriteResult,
  type TenantIngest,
} from '../../../src/storage/ingest-port.js';
import type { AcquireIngestLeaseOptions, IngestLease, IngestLeaseHolder, IngestLeases, IngestSession } from '../../../src/storage/store.js';

/**
 * The ingest port's write side over SQLite's current synchronous IngestSession, so the contract
 * suite seeds both backends through the same port. It stands in until SQLite's own IngestPort
 * lands; it implements write() fully (fence inside the transaction, version check, temp refs)
 * and read() for versions only, which is all the suite reads.
 */
export class SqliteIngestAdapter implements IngestPort {
  private readonly held = new Map<string, IngestLease>();
  readonly leases: IngestLeases;

  constructor(
    private readonly store: SqliteStore,
    inner: IngestLeases,
  ) {
    const held = this.held;
    this.leases = {
      async acquireIngestLease(tenant: string, holder: IngestLeaseHolder, opts: AcquireIngestLeaseOptions = {}) {
        const l = await inner.acquireIngestLease(tenant, holder, opts);
        if (l) held.set(l.token, l);
        return l;
      },
    } as IngestLeases;
  }

  async beginSource(opts: { atomic: boolean }): Promise<IngestScope> {
    if (opts.atomic) throw new Error('the contract suite does not use atomic scopes on the SQLite adapter');
    const sessions = new Map<string, IngestSession>();
    const held = this.held;
    const store = this.store;
    return {
      async tenant(name: string): Promise<TenantIngest> {
        let s = sessions.get(name);
        if (!s) sessions.set(name, (s = store.openIngestSession(name)));
        return new AdapterTenant(s, held);
      },
      async commit() {},
      async rollback() {},
    };
  }
}

class AdapterTenant implements TenantIngest {
  constructor(
    private readonly s: IngestSession,
    private readonly held: Map<string, IngestLease>,
  ) {}

  get tenant(): string {
    return this.s.tenant;
  }

  async read(req: IngestReadRequest): Promise<IngestReadResult> {
    if (req.jobs.length || req.runs.length || req.observations.length) throw new Error('the SQLite adapter reads versions only');
    return { versions: { rulesVersion: this.s.rulesVersion(), jobStateVersion: this.s.jobStateVersion() }, jobs: [], runs: [], observations: [] };
  }

  async write(b: IngestWriteBatch): Promise<IngestWriteResult> {
    const s = this.s;
    const lease = this.held.get(b.lease.token);
    if (!lease) throw new Error('write batch names a lease this process never took');
    return s.transaction(() => {
      lease.fence();
      const found = { rulesVersion: s.rulesVersion(), jobStateVersion: s.jobStateVersion() };
      if (found.rulesVersion !== b.expect.rulesVersion || found.jobStateVersion !== b.expect.jobStateVersion) throw new IngestStateChangedError(b.expect, found);
      const jobs = new Map<number, number>();
      const runs = new Map<number, number>();
      const job = (r: number) => (r > 0 ? r : jobs.get(r)!);
      const run = (r: number) => (r > 0 ? r : runs.get(r)!);
      for (const j of b.newJobs) jobs.set(j.tempRef, s.getJob(j.key.owner, j.key.repo, j.key.workflow, j.key.job).ref);
      for (const r of b.newRuns) {
        const ref = s.createRun(job(r.jobRef), r.runId, r.runAttempt, r.ghJobId, r.firstTs, r.learning, r.expected);
        s.touchRun(ref, r.firstTs, r.lastTs);
        if (r.completed) s.completeRun(ref);
        runs.set(r.tempRef, ref);
      }
      for (const sp of b.runSpans) s.touchRun(run(sp.ref), sp.firstTs, sp.lastTs);
      for (const r of b.completedRuns) s.completeRun(run(r));
      for (const j of b.jobStates) s.setJobState(job(j.ref), j.completedRuns, j.openRun === null ? null : run(j.openRun));
      for (const w of b.baseline) s.upsertBaseline(job(w.jobRef), w.endpoint, w.entry, w.lastTs);
      for (const o of b.observations) s.insertObservation(run(o.runRef), o.endpoint, o.ip, o.process, o.blocked, o.protocol, o.ts, o.variantKey, o.verdict);
      const detectionsStored = b.detections.map((d) => s.insertDetection({ ...d, jobRef: job(d.jobRef), runRef: run(d.runRef) }));
      if (b.imported.length) throw new Error('the SQLite adapter does not import detections');
      if (b.source) s.recordSource(b.source.source, b.source.format, b.source, b.source.startedAt);
      return { jobRefs: b.newJobs.map((j) => jobs.get(j.tempRef)!), runRefs: b.newRuns.map((r) => runs.get(r.tempRef)!), detectionsStored, importedStored: [], importedRunsCreated: 0 };
    });
  }
}
