import { untilUnlockedSync } from './busy-retry.js';
import { openSqlite, migrate, writeMeta, type SqliteDatabase } from './db.js';
import { closeCommitWatcher } from './rules-repo.js';
import { CORE_MIGRATIONS, CORE_TABLES } from './core-migrations.js';
import { refuseDamagedSqliteStore } from './schema.js';
import { SqliteIngestSession } from './ingest-session.js';
import { SqliteDetectionRepository } from './detection-repo.js';
import { SqliteBaselineRepository } from './baseline-repo.js';
import { SqliteInventoryRepository } from './inventory-repo.js';
import { SqliteIngestLeases } from './ingest-leases.js';
import { SqliteAnalysisStore } from './analysis-store.js';
import { SqliteIngestPort } from './ingest-port.js';
import { SqliteRulesPort } from './rules-port.js';
import { SqliteRunCallsRepository } from './run-calls-repo.js';
import { SqliteOverviewRepository } from './overview-repo.js';
import { SqliteDashboardQueries } from './dashboard-queries.js';
import type { RiskyDestinations } from '../../analysis/risky-destinations.js';

/** The embedded default store: one SQLite file shared safely by several processes (WAL). */
export class SqliteStore {
  readonly detections: SqliteDetectionRepository;
  readonly baselines: SqliteBaselineRepository;
  readonly inventory: SqliteInventoryRepository;
  /** per-tenant writer lease: concurrent ingests are serialised per tenant (contract in store.ts) */
  readonly leases: SqliteIngestLeases;
  /** the analysis-aggregates port (storage/analysis-port.ts) */
  readonly analysis: SqliteAnalysisStore;
  /** the ingest write contract (storage/ingest-port.ts) */
  readonly ingest: SqliteIngestPort;
  /** the run-calls port (storage/run-calls-port.ts) */
  readonly runCalls: SqliteRunCallsRepository;
  /** the overview port (storage/overview-port.ts) */
  readonly overview: SqliteOverviewRepository;
  /** the dashboard's page queries (storage/dashboard-port.ts) */
  readonly dashboard: SqliteDashboardQueries;

  private constructor(
    readonly db: SqliteDatabase,
    readonly path: string,
  ) {
    this.detections = new SqliteDetectionRepository(db);
    this.baselines = new SqliteBaselineRepository(db);
    this.inventory = new SqliteInventoryRepository(db);
    this.leases = new SqliteIngestLeases(db);
    this.analysis = new SqliteAnalysisStore(db);
    this.ingest = new SqliteIngestPort(db, this.leases);
    this.runCalls = new SqliteRunCallsRepository(db);
    this.overview = new SqliteOverviewRepository(db);
    this.dashboard = new SqliteDashboardQueries(db, this.detections);
  }

  /** the rules port (storage/rules-port.ts) with these risky destinations */
  rulesPort(risky: RiskyDestinations): SqliteRulesPort {
    return new SqliteRulesPort(this.db, risky);
  }

  static open(path: string): SqliteStore {
    // Opening is idempotent (pragmas, migrations in IMMEDIATE transactions), so a busy refusal is
    // retried whole: one of two ingests creating a new store at once was refused (a fresh-clone run).
    return untilUnlockedSync(() => {
      const db = openSqlite(path);
      try {
        migrate(db, CORE_MIGRATIONS, CORE_TABLES);
        refuseDamagedSqliteStore(db);
      } catch (err) {
        db.close();
        throw err;
      }
      return new SqliteStore(db, path);
    });
  }

  /** Row-level access for tools and tests that build a store directly; `ingest` goes through `ingest`. */
  openIngestSession(tenant: string): SqliteIngestSession {
    return new SqliteIngestSession(this.db, tenant);
  }

  setMeta(key: string, value: string): void {
    writeMeta(this.db, key, value);
  }

  close(): void {
    closeCommitWatcher(this.db);
    if (this.db.open) this.db.close();
  }
}
