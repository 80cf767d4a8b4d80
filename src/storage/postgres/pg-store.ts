import { createPool, writeMeta, type PgPool, type PgPoolSettings } from './pool.js';
import { redactUrl } from '../location.js';
import { migratePostgres, PG_TABLES, refuseDamagedPgStore, schemaStatus, tableNames } from './migrations.js';
import { missingTables } from '../schema-version.js';
import { PgDetectionRepository } from './detection-repo.js';
import { PgInventoryRepository } from './inventory-repo.js';
import { PgRunCallsRepository } from './run-calls-repo.js';
import { PgOverviewRepository } from './overview-repo.js';
import { PgBaselineRepository } from './baseline-repo.js';
import { PgAnalysisStore } from './analysis-store.js';
import { PgDashboardQueries } from './dashboard-queries.js';
import { PgIngestLeases, SERVER_LEASE_CLOCK, type PgLeaseClock } from './ingest-leases.js';
import type { SchemaPort, SchemaStatus } from '../schema-port.js';
import { PgRulesRepo } from './rules-repo.js';
import type { RiskyDestinations } from '../../analysis/risky-destinations.js';

export interface PgStoreOptions {
  pool?: PgPoolSettings;
  leaseClock?: PgLeaseClock;
}

/** The shared store on PostgreSQL: one pool per process, the ports on top of it. */
export class PgStore implements SchemaPort {
  readonly detections: PgDetectionRepository;
  readonly inventory: PgInventoryRepository;
  readonly baselines: PgBaselineRepository;
  readonly leases: PgIngestLeases;
  /** the analysis-aggregates port (storage/analysis-port.ts) */
  readonly analysis: PgAnalysisStore;
  /** the run-calls port (storage/run-calls-port.ts) */
  readonly runCalls: PgRunCallsRepository;
  /** the overview port (storage/overview-port.ts) */
  readonly overview: PgOverviewRepository;
  /** the dashboard's page queries (storage/dashboard-port.ts) */
  readonly dashboard: PgDashboardQueries;
  /** the URL without its password */
  readonly location: string;

  constructor(
    readonly pool: PgPool,
    url: string,
    opts: PgStoreOptions = {},
  ) {
    this.location = redactUrl(url);
    this.detections = new PgDetectionRepository(pool);
    this.inventory = new PgInventoryRepository(pool);
    this.baselines = new PgBaselineRepository(pool);
    this.leases = new PgIngestLeases(pool, opts.leaseClock ?? SERVER_LEASE_CLOCK);
    this.analysis = new PgAnalysisStore(pool);
    this.runCalls = new PgRunCallsRepository(pool);
    this.overview = new PgOverviewRepository(pool);
    this.dashboard = new PgDashboardQueries(pool, this.detections);
  }

  static connect(url: string, opts: PgStoreOptions = {}): PgStore {
    return new PgStore(createPool(url, opts.pool), url, opts);
  }

  /** the rules port (storage/rules-port.ts) with these risky destinations */
  rulesPort(risky: RiskyDestinations): PgRulesRepo {
    return new PgRulesRepo(this.pool, risky);
  }

  /** As SqliteSchema.status: `missing` names the tables a fully migrated store has lost. */
  async status(): Promise<SchemaStatus> {
    const st = await schemaStatus(this.pool);
    const whole = st.applied.length > 0 && st.pending.length === 0 && st.unknown.length === 0;
    return { ...st, missing: whole ? missingTables(await tableNames(this.pool), PG_TABLES) : [] };
  }

  /** Applies what is pending, then refuses a store that lacks a table its schema made. */
  async migrate(): Promise<number[]> {
    const applied = await migratePostgres(this.pool);
    await this.refuseDamaged();
    return applied;
  }

  /** Throws StoreDamagedError when a table or view the migrations made is gone. */
  refuseDamaged(): Promise<void> {
    return refuseDamagedPgStore(this.pool);
  }

  /** A store-wide setting (the meta table), as SqliteStore.setMeta: `learning_runs`, read by stats. */
  async setMeta(key: string, value: string): Promise<void> {
    await writeMeta(this.pool, key, value);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}
