import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';
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
import type { PgClient, PgPool } from './pool.js';
import { PgAnalysisDictionaries } from './analysis-dictionaries.js';
import * as repo from './analysis-repo.js';
import { riskyIpIds } from './rules-match.js';
import { SnapshotGate } from './snapshot-gate.js';

/**
 * The analysis-aggregates port on PostgreSQL. readSnapshot holds one connection in one REPEATABLE
 * READ, READ ONLY transaction, and every read inside it (found through AsyncLocalStorage, so the
 * orchestrator needs no connection in hand) runs on that connection: totals, details and samples
 * see one committed state. Refs are the tenant's row ids (analysis-dictionaries.ts).
 */
class PgScope implements AnalysisScope {
  constructor(
    readonly tenant: string,
    readonly filter: Readonly<DetectionFilter>,
    readonly coarse: boolean,
    readonly scan: repo.PgScanFilter,
  ) {}
}

/** Memory per sort or hash of an analysis snapshot: a 10M-detection window's groups fit in it. */
const SNAPSHOT_WORK_MEM = '64MB';

function own(scope: AnalysisScope): PgScope {
  if (!(scope instanceof PgScope)) throw new Error('analysis scope from another store');
  return scope;
}

export class PgAnalysisStore implements AnalysisAggregates {
  /** the open snapshot: its connection, and what was already read in it (a snapshot's answers never change) */
  private readonly snapshot = new AsyncLocalStorage<{ client: PgClient; memo: Map<string, Promise<unknown>> }>();
  private readonly dicts = new PgAnalysisDictionaries();

  /** at most half the pool in open snapshots (snapshot-gate.ts says why) */
  private readonly gate: SnapshotGate;

  constructor(private readonly pool: PgPool) {
    this.gate = SnapshotGate.forPool(pool.options.max ?? 10);
  }

  /**
   * One statement on the snapshot's connection (or the pool outside one); rows as arrays. Each
   * statement is prepared once per connection under a name derived from its text: planning the
   * sample join alone costs more than running it, and an analysis runs a few dozen statements.
   */
  private readonly q: repo.Query = async <R extends unknown[]>(sql: string, params: unknown[], prepared = true): Promise<R[]> => {
    const c = this.snapshot.getStore()?.client;
    let name: string | undefined;
    if (prepared) {
      name = this.names.get(sql);
      if (name === undefined) this.names.set(sql, (name = `et_analysis_${createHash('sha1').update(sql).digest('hex').slice(0, 16)}`));
    }
    const res = await (c ?? this.pool).query<R>({ ...(name ? { name } : {}), text: sql, values: params, rowMode: 'array' });
    return res.rows;
  };
  private readonly names = new Map<string, string>();

  async readSnapshot<T>(fn: () => Promise<T>): Promise<T> {
    if (this.snapshot.getStore()) return fn();
    return this.gate.run(() => this.openSnapshot(fn));
  }

  private async openSnapshot<T>(fn: () => Promise<T>): Promise<T> {
    const c = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      try {
        // A windowed scan groups every (variant, endpoint, job) of its days: at the default 4MB it
        // sorts on disk; with room for a hash table it aggregates in memory (this transaction only).
        await c.query(`SET LOCAL work_mem = '${SNAPSHOT_WORK_MEM}'`);
        const out = await this.snapshot.run({ client: c, memo: new Map() }, fn);
        await c.query('COMMIT');
        return out;
      } catch (err) {
        await c.query('ROLLBACK').catch((e: Error) => (broken = e));
        throw err;
      }
    } finally {
      c.release(broken);
    }
  }

  /** Inside a snapshot, a read made once (a dictionary) is reused by later reads of the same snapshot. */
  private once<T>(key: string, read: () => Promise<T>): Promise<T> {
    const memo = this.snapshot.getStore()?.memo;
    if (!memo) return read();
    let p = memo.get(key) as Promise<T> | undefined;
    if (!p) memo.set(key, (p = read()));
    return p;
  }

  inSnapshot(): boolean {
    return this.snapshot.getStore() !== undefined;
  }

  async scope(tenant: string, filter: DetectionFilter): Promise<ScopeResult> {
    const t = await this.q<[number]>('SELECT tenant_id FROM tenants WHERE name = $1', [tenant]);
    // absent types = every type (DetectionFilter); named types the store has never seen match nothing
    const typeIds = (
      filter.types
        ? await this.q<[number]>('SELECT id FROM detection_types WHERE name = ANY($1::text[]) ORDER BY id', [filter.types])
        : await this.q<[number]>('SELECT id FROM detection_types ORDER BY id', [])
    ).map((r) => r[0]);
    if (t.length === 0) return { ok: false, missing: 'tenant' };
    if (typeIds.length === 0) return { ok: false, missing: 'types' };
    const tenantId = t[0]![0];
    const statuses = filter.statuses ? filter.statuses.map((x) => STATUS_CODE[x]) : [0, 1, 2];
    const scan: repo.PgScanFilter = { tenantId, typeIds, statuses, since: filter.since, until: filter.until };
    const jobIds = await repo.scopedJobs(this.q, tenantId, filter);
    if (jobIds) scan.jobIds = jobIds;
    const coarse = filter.since === undefined && filter.until === undefined && !jobIds;
    return { ok: true, scope: new PgScope(tenant, filter, coarse, scan) };
  }

  storedSpelling(scope: AnalysisScope, field: 'owner' | 'repo', value: string): Promise<string> {
    return repo.storedSpelling(this.q, own(scope).scan.tenantId, field, value);
  }

  coarseTotals(scope: AnalysisScope): Promise<VariantTotal[]> {
    return repo.coarseTotals(this.q, own(scope).scan);
  }

  /** Both dimensions in one statement: the first call reads them, the other is kept for the snapshot. */
  async coarseBreakdown(scope: AnalysisScope, dim: 'endpoint' | 'job', variant: VariantRef): Promise<BreakdownRow[]> {
    const s = own(scope).scan;
    const key = `breakdowns ${s.tenantId} ${s.typeIds.join(',')} ${s.statuses.join(',')} ${variant}`;
    const memo = this.snapshot.getStore()?.memo;
    let both = memo?.get(key) as ReturnType<typeof repo.coarseBreakdowns> | undefined;
    if (!both) {
      both = repo.coarseBreakdowns(this.q, s, variant);
      memo?.set(key, both);
    }
    return (await both)[dim];
  }

  firstLast(scope: AnalysisScope, variant: VariantRef, firstDay: number, lastDay: number): Promise<[number, number]> {
    return repo.firstLast(this.q, own(scope).scan, variant, firstDay, lastDay);
  }

  scan(scope: AnalysisScope, onRows: (rows: readonly ScanRow[]) => void): Promise<void> {
    return repo.scan(this.q, own(scope).scan, onRows);
  }

  async riskyAddressCalls(scope: AnalysisScope, risky: RiskyRanges): Promise<RiskyAddressRow[]> {
    if (!risky.hasRanges) return [];
    const s = own(scope).scan;
    const ids = await riskyIpIds(this.snapshot.getStore()?.client ?? this.pool, s.tenantId, risky);
    return (await repo.riskyAddressCounts(this.q, s, ids)).map(([variant, endpoint, ip, n]) => ({ variant, endpoint, ip, n }));
  }

  samples(scope: AnalysisScope, variant: VariantRef, limit: number): Promise<SampleRecord[]> {
    return repo.samples(this.q, own(scope).scan, variant, limit);
  }

  variants(scope: AnalysisScope): Promise<VariantDictionary> {
    return this.once(`variants ${own(scope).scan.tenantId}`, () => this.dicts.variantsOf(this.q, own(scope).scan.tenantId));
  }

  endpoints(scope: AnalysisScope): Promise<EndpointDictionary> {
    return this.once(`endpoints ${own(scope).scan.tenantId}`, () => this.dicts.endpointsOf(this.q, own(scope).scan.tenantId));
  }

  jobs(scope: AnalysisScope): Promise<JobDictionary> {
    return this.once(`jobs ${own(scope).scan.tenantId}`, () => this.dicts.jobsOf(this.q, own(scope).scan.tenantId));
  }
}
