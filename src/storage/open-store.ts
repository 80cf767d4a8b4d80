import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { SqliteSchema } from './sqlite/schema.js';
import { openSqlite, refuseForeignDatabase } from './sqlite/db.js';
import { ensureTenant as ensureSqliteTenant } from './sqlite/ingest-session.js';
import type { StoreBackend, StoreLocation } from './location.js';
import { postgresProblem } from './postgres/errors.js';
import type { DetectionRepository, IngestLeases } from './store.js';
import type { SchemaPort } from './schema-port.js';
import type { IngestPort } from './ingest-port.js';
import type { InventoryRepository } from './inventory-port.js';
import type { BaselineEditor } from './baseline-port.js';
import type { DashboardQueries } from './dashboard-port.js';
import type { Suppressor } from '../domain/subject.js';
import { suppressorFor } from '../rules/suppressor.js';
import type { RiskyDestinations } from '../analysis/risky-destinations.js';
import type { RulesPort } from './rules-port.js';
import type { AnalysisAggregates } from './analysis-port.js';
import { rulesFromService, type AnalysisRules } from '../analysis/rules-source.js';
import type { RunCallsReader } from './run-calls-port.js';
import type { OverviewReader } from './overview-port.js';
import { RulesService } from '../rules/service.js';

/**
 * The one place that opens a storage backend for the location resolveStoreLocation gave
 * (location.ts): PostgreSQL for a postgres:// URL, else a SQLite file, the embedded default. The
 * policy state has its own picker (open-policy-state.ts). Nothing outside a backend's folder imports
 * a backend but these two pickers (npm run lint enforces it).
 */

/** The store does not exist (a missing SQLite file) or holds no egress-triage schema yet (PostgreSQL). */
export class StoreMissingError extends Error {
  override name = 'StoreMissingError';
}

/** A failure of the store's environment (server unreachable, authentication, missing database). */
export class StoreUnavailableError extends Error {
  override name = 'StoreUnavailableError';
  constructor(
    message: string,
    readonly kind: 'not_found' | 'io',
  ) {
    super(message);
  }
}

/** Rewrites a backend's environment failure as StoreUnavailableError; anything else is rethrown as is. */
export function explainStoreError(loc: StoreLocation, err: unknown): never {
  if (loc.backend === 'postgres') {
    const p = postgresProblem(err);
    if (p) throw new StoreUnavailableError(`PostgreSQL store ${loc.display}: ${p.message}`, p.kind);
  }
  throw err;
}

/**
 * The PostgreSQL backend, loaded only for a postgres:// location: its thirty modules and the driver
 * are most of what a SQLite command would otherwise load for nothing.
 */
async function loadPostgres() {
  const [{ PgStore }, { PgIngestPort }] = await Promise.all([import('./postgres/pg-store.js'), import('./postgres/ingest-port.js')]);
  return { PgStore, PgIngestPort };
}

/** The schema of the store at `loc`, for `db status` / `db migrate`; close() when done. */
export function openSchema(loc: StoreLocation): SchemaPort & { close(): Promise<void> } {
  if (loc.backend === 'postgres') {
    // one connection is all a migrator needs
    const store = loadPostgres().then(({ PgStore }) => PgStore.connect(loc.target, { pool: { max: 2 } }));
    return {
      status: () => store.then((s) => s.status()).catch((e) => explainStoreError(loc, e)),
      migrate: () => store.then((s) => s.migrate()).catch((e) => explainStoreError(loc, e)),
      close: () => store.then((s) => s.close()),
    };
  }
  const schema = new SqliteSchema(loc.target);
  return { status: () => schema.status(), migrate: () => schema.migrate(), close: async () => undefined };
}

/** The ports of an open store. */
export interface OpenStore {
  backend: StoreBackend;
  display: string;
  detections: DetectionRepository;
  inventory: InventoryRepository;
  baselines: BaselineEditor;
  leases: IngestLeases;
  /** the ingest write contract (storage/ingest-port.ts) */
  ingest: IngestPort;
  /**
   * Records that a tenant uses this store (its row in `tenants`) before any of its data is ingested:
   * a server whose agent's calls go to the store's policy tables. A dashboard of another tenant then
   * sees it, and shows only its own tenant's records on the Audit page (policy-tenants.ts).
   */
  registerTenant(tenant: string): Promise<void>;
  /** Records the learning window ingest runs with (store-wide): stats counts the jobs still learning by it. */
  setLearningRuns(n: number): Promise<void>;
  /** Marks the store as made by `demo`, so a later demo may replace it without asking. */
  markAsDemo(): Promise<void>;
  /** the rules port (storage/rules-port.ts), for the rules service */
  rulesPort(risky: RiskyDestinations): RulesPort;
  /** The ingest-time suppressor of a tenant: its active rules, behind the never-suppress guards. */
  ingestSuppressor(tenant: string, extraRiskyDestinations?: string[]): Promise<Suppressor>;
  /** the analysis-aggregates port (storage/analysis-port.ts) */
  analysis: AnalysisAggregates;
  /** What the analysis takes from the rules layer: the rules service (suggestions with their exact impact). */
  analysisRules(extraRiskyDestinations?: string[]): AnalysisRules;
  /** the run-calls port (storage/run-calls-port.ts): every call of one run, for the dashboard */
  runCalls: RunCallsReader;
  /** the overview port (storage/overview-port.ts): detections over time, top processes */
  overview: OverviewReader;
  /** the dashboard's page queries (storage/dashboard-port.ts) */
  dashboard: DashboardQueries;
  close(): Promise<void>;
}

/**
 * An existing file that is no store is not made one by a command that only reads (an empty file is
 * answered as no store), nor by any command when it is another application's database.
 */
function refuseNonStore(loc: StoreLocation, mode: 'read' | 'create'): void {
  // one look at the file: not a SQLite file, or unreadable, is left to SqliteStore.open to report
  if (refuseForeignDatabase(loc.target, loc.display) === 'empty' && mode === 'read') throw new StoreMissingError(`no store at ${loc.display} (from ${loc.from}): the file is empty`);
}

/**
 * Opens the store. mode 'create' (commands that put data in) creates and migrates it; 'read' wants
 * an existing store and throws StoreMissingError otherwise, so a mistyped location is not answered
 * with an empty store.
 */
export async function openStore(loc: StoreLocation, mode: 'read' | 'create' = 'read'): Promise<OpenStore> {
  if (loc.backend === 'postgres') {
    const { PgStore, PgIngestPort } = await loadPostgres();
    const s = PgStore.connect(loc.target);
    try {
      if (mode === 'create') await s.migrate();
      else {
        const st = await s.status();
        if (st.applied.length === 0) throw new StoreMissingError(`no egress-triage schema in ${loc.display} (from ${loc.from}): run "egress-triage db migrate --db URL" first`);
        // read as SQLite reads it: a newer build's schema is refused by readers too (migrate() says why)
        if (st.pending.length || st.unknown.length) await s.migrate();
        else await s.refuseDamaged();
      }
    } catch (err) {
      await s.close();
      explainStoreError(loc, err);
    }
    const ingest = new PgIngestPort(s.pool);
    return {
      backend: 'postgres', display: loc.display, detections: s.detections, inventory: s.inventory, baselines: s.baselines, leases: ingest.leases, ingest,
      registerTenant: async (t) => {
        const { ensureTenant } = await import('./postgres/tenants.js');
        await ensureTenant(s.pool, t).catch((e) => explainStoreError(loc, e));
      },
      setLearningRuns: (n) => s.setMeta('learning_runs', String(n)).catch((e) => explainStoreError(loc, e)),
      markAsDemo: () => s.setMeta(DEMO_MARK, '1').catch((e) => explainStoreError(loc, e)),
      rulesPort: (risky) => s.rulesPort(risky),
      ingestSuppressor: (tenant, extra) => suppressorFor(s, tenant, extra),
      analysis: s.analysis,
      analysisRules: (extra) => rulesFromService(new RulesService(s, { extraRiskyDestinations: extra })),
      runCalls: s.runCalls,
      overview: s.overview,
      dashboard: s.dashboard,
      close: () => s.close(),
    };
  }
  if (mode === 'read' && loc.target !== ':memory:' && !existsSync(loc.target)) {
    throw new StoreMissingError(`no store at ${loc.display} (from ${loc.from})`);
  }
  if (loc.target !== ':memory:' && existsSync(loc.target)) refuseNonStore(loc, mode);
  const s = SqliteStore.open(loc.target);
  return {
    backend: 'sqlite', display: loc.display, detections: s.detections, inventory: s.inventory, baselines: s.baselines, leases: s.leases, ingest: s.ingest,
    registerTenant: async (t) => void ensureSqliteTenant(s.db, t),
    setLearningRuns: async (n) => s.setMeta('learning_runs', String(n)),
    markAsDemo: async () => s.setMeta(DEMO_MARK, '1'),
    rulesPort: (risky) => s.rulesPort(risky),
    ingestSuppressor: (tenant, extra) => suppressorFor(s, tenant, extra),
    analysis: s.analysis,
    analysisRules: (extra) => rulesFromService(new RulesService(s, { extraRiskyDestinations: extra })),
    runCalls: s.runCalls,
    overview: s.overview,
    dashboard: s.dashboard,
    close: async () => s.close(),
  };
}

/** meta row that marks a store as demo's own */
const DEMO_MARK = 'demo_store';

/** The events file `demo` writes beside its store and ingests (cli/commands/demo.ts). */
export const DEMO_EVENTS_FILE = 'demo-events.ndjson.gz';

/**
 * For a readable SQLite store that `demo` created (markAsDemo): the sources ingested into it besides
 * demo's own events file, newest first (a user who pointed EGRESS_TRIAGE_DB at it, as demo suggests,
 * and ingested their own telemetry). Null for anything else, another store or any other file. Opened
 * read-only: a file that is not a store is left untouched.
 */
export function demoStoreSources(path: string): { others: string[] } | null {
  let db;
  try {
    db = openSqlite(path, { readonly: true, busyTimeoutMs: 1000 });
    if (db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(DEMO_MARK) !== '1') return null;
    const sources = db.prepare('SELECT source FROM ingest_sources ORDER BY id DESC').pluck().all() as string[];
    return { others: [...new Set(sources.filter((s) => basename(s) !== DEMO_EVENTS_FILE))] };
  } catch {
    return null;
  } finally {
    db?.close();
  }
}
