import type { SqliteDatabase } from './db.js';
import type { DetectionFilter } from '../../domain/filter.js';
import { STATUS_CODE } from '../store.js';
import type {
  AnalysisAggregates,
  AnalysisScope,
  BreakdownRow,
  EndpointDictionary,
  JobDictionary,
  RiskyAddressRow,
  RiskyRanges,
  SampleRecord,
  ScanRow,
  ScopeResult,
  VariantDictionary,
  VariantRef,
  VariantTotal,
} from '../analysis-port.js';
import {
  coarseKeys,
  coarseVariantRows,
  coarseVariantTotals,
  allTypeIds,
  jobScopeSql,
  riskyAddressCounts,
  sampleReader,
  scanDetections,
  storedSpelling,
  tenantIdOf,
  typeIdOf,
  variantFirstLast,
  type SampleRow,
  type ScanFilter,
} from './analysis-repo.js';
import { endpointDict, jobDict, processDict } from './dictionary-cache.js';
import { riskyIpIndexOf } from './risky-ips.js';

/**
 * The analysis-aggregates port over the embedded store. Refs are the dictionary tables' row ids
 * (dense integers), which is what lets the analysis count over typed arrays. Coarse scopes read the
 * coarse rollups (rollup_process_day / _endpoint / _job), the others the fine rollup plus raw edge
 * days (analysis-repo.ts).
 */
class SqliteScope implements AnalysisScope {
  private keys: [number, number, number][] | null = null;
  private reader: ((processId: number, limit: number) => SampleRow[]) | null = null;
  constructor(
    readonly tenant: string,
    readonly filter: Readonly<DetectionFilter>,
    readonly coarse: boolean,
    readonly tenantId: number,
    readonly scan: ScanFilter,
  ) {}
  /** the (type, status, rule) key prefixes of the coarse rollups, read once per scope */
  coarseKeys(db: SqliteDatabase): [number, number, number][] {
    return (this.keys ??= coarseKeys(db, this.tenantId, this.scan.typeIds, this.scan.statuses));
  }
  sampleReader(db: SqliteDatabase): (processId: number, limit: number) => SampleRow[] {
    return (this.reader ??= sampleReader(db, this.scan));
  }
}

function own(scope: AnalysisScope): SqliteScope {
  if (!(scope instanceof SqliteScope)) throw new Error('analysis scope from another store');
  return scope;
}

export class SqliteAnalysisStore implements AnalysisAggregates {
  constructor(private readonly db: SqliteDatabase) {}

  async readSnapshot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.db.inTransaction) return fn();
    // A deferred transaction (WAL readers never block the writer), opened by hand because fn is
    // async. Every read of this port is synchronous underneath and only resolves promises, so no
    // other I/O callback can run on this connection while the transaction is open.
    this.db.exec('BEGIN');
    try {
      const out = await fn();
      this.db.exec('COMMIT');
      return out;
    } catch (err) {
      if (this.db.inTransaction) this.db.exec('ROLLBACK');
      throw err;
    }
  }

  inSnapshot(): boolean {
    return this.db.inTransaction;
  }

  async scope(tenant: string, filter: DetectionFilter): Promise<ScopeResult> {
    const tenantId = tenantIdOf(this.db, tenant);
    // absent types = every type (DetectionFilter); named types the store has never seen match nothing
    const typeIds = filter.types ? filter.types.map((t) => typeIdOf(this.db, t)).filter((x): x is number => x !== undefined) : allTypeIds(this.db);
    if (tenantId === undefined) return { ok: false, missing: 'tenant' };
    if (typeIds.length === 0) return { ok: false, missing: 'types' };
    const statuses = filter.statuses ? filter.statuses.map((x) => STATUS_CODE[x]) : [0, 1, 2];
    const scan: ScanFilter = { tenantId, typeIds, statuses, since: filter.since, until: filter.until };
    const jobs = jobScopeSql(tenantId, filter);
    if (jobs) scan.jobFilterSql = jobs;
    const coarse = filter.since === undefined && filter.until === undefined && !jobs;
    return { ok: true, scope: new SqliteScope(tenant, filter, coarse, tenantId, scan) };
  }

  async storedSpelling(scope: AnalysisScope, field: 'owner' | 'repo', value: string): Promise<string> {
    return storedSpelling(this.db, own(scope).tenantId, field, value);
  }

  async coarseTotals(scope: AnalysisScope): Promise<VariantTotal[]> {
    const s = own(scope);
    return coarseVariantTotals(this.db, s.tenantId, s.scan.typeIds, s.scan.statuses).map(([variant, n, firstDay, lastDay]) => ({ variant, n, firstDay, lastDay }));
  }

  async coarseBreakdown(scope: AnalysisScope, dim: 'endpoint' | 'job', variant: VariantRef): Promise<BreakdownRow[]> {
    const s = own(scope);
    const rows: BreakdownRow[] = [];
    coarseVariantRows(this.db, dim, s.tenantId, s.coarseKeys(this.db), variant, (ref, n) => rows.push([ref, n]));
    return rows;
  }

  async firstLast(scope: AnalysisScope, variant: VariantRef, firstDay: number, lastDay: number): Promise<[number, number]> {
    const s = own(scope);
    return variantFirstLast(this.db, s.tenantId, variant, s.scan.typeIds, s.scan.statuses, firstDay, lastDay);
  }

  async scan(scope: AnalysisScope, onRows: (rows: readonly ScanRow[]) => void): Promise<void> {
    scanDetections(this.db, own(scope).scan, onRows);
  }

  async riskyAddressCalls(scope: AnalysisScope, risky: RiskyRanges): Promise<RiskyAddressRow[]> {
    if (!risky.hasRanges) return [];
    const ids = riskyIpIndexOf(this.db, risky).refresh(this.db);
    return riskyAddressCounts(this.db, own(scope).scan, [...ids]).map(([variant, endpoint, ip, n]) => ({ variant, endpoint, ip, n }));
  }

  async samples(scope: AnalysisScope, variant: VariantRef, limit: number): Promise<SampleRecord[]> {
    return own(scope)
      .sampleReader(this.db)(variant, limit)
      .map((r) => ({
        id: r.id,
        variant: r.process_id,
        owner: r.owner,
        repo: r.repo,
        workflow: r.workflow,
        job: r.job,
        runId: r.run_id,
        ghJobId: r.gh_job_id,
        endpoint: r.endpoint,
        host: r.host,
        ip: r.ip,
        directIp: !!r.direct_ip,
        ts: r.ts,
        sha256: r.sha256,
      }));
  }

  // The dictionaries are shared by every tenant of the embedded store: the scope does not narrow them.
  async variants(_scope: AnalysisScope): Promise<VariantDictionary> {
    return processDict(this.db);
  }

  async endpoints(_scope: AnalysisScope): Promise<EndpointDictionary> {
    return endpointDict(this.db);
  }

  async jobs(scope: AnalysisScope): Promise<JobDictionary> {
    return jobDict(this.db, own(scope).tenantId);
  }
}
