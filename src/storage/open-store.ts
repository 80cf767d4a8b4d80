import { resolve } from 'node:path';
import { existsSync } from 'node:fs';
import { DEFAULT_DB_PATH } from '../config/paths.js';
import { SqliteStore } from './sqlite/sqlite-store.js';
import { SqliteSchema } from './sqlite/schema.js';
import { openSqlite } from './sqlite/db.js';
import { PgStore } from './postgres/pg-store.js';
import { isPostgresUrl, redactUrl } from './postgres/pool.js';
import { postgresProblem } from './postgres/errors.js';
import type { DetectionRepository, IngestLeases } from './store.js';
import type { SchemaPort } from './schema-port.js';
import type { IngestPort } from './ingest-port.js';
import type { InventoryRepository } from './inventory-port.js';
import type { BaselineEditor } from './baseline-port.js';
import type { DashboardQueries } from './dashboard-port.js';
import { PgIngestPort } from './postgres/ingest-port.js';
import type { PolicyStateBackend } from './policy-state.js';
import { SqlitePolicyState } from './sqlite/policy-state.js';
import { PgPolicyState } from './postgres/policy-state.js';
import { RedisPolicyState, parseRedisStateUrl } from '../state/redis/state.js';
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
 * The one place that picks a storage backend: a postgres:// (or postgresql://) URL selects
 * PostgreSQL; anything else is the path of a SQLite file, the embedded default. It also picks the
 * policy-state backend (the store by default, Redis with `--state redis://...`). Nothing outside a
 * backend's folder imports a backend but this module (npm run lint enforces it).
 */

export type StoreBackend = 'sqlite' | 'postgres';

export interface StoreLocation {
  backend: StoreBackend;
  /** the resolved SQLite path or the full URL (with its password: never print it) */
  target: string;
  /** what to show a person: the path, or the URL without its password */
  display: string;
  /** where it came from, for messages */
  from: '--db' | 'EGRESS_TRIAGE_DB' | 'the default location';
}

/** --db, then EGRESS_TRIAGE_DB, then ./.egress-triage/egress.db */
export function resolveStoreLocation(flag?: string, env: NodeJS.ProcessEnv = process.env): StoreLocation {
  const raw = flag ?? (env.EGRESS_TRIAGE_DB || undefined) ?? DEFAULT_DB_PATH;
  const from = flag !== undefined ? '--db' : env.EGRESS_TRIAGE_DB ? 'EGRESS_TRIAGE_DB' : 'the default location';
  if (isPostgresUrl(raw)) return { backend: 'postgres', target: raw, display: redactUrl(raw), from };
  const path = raw === ':memory:' ? raw : resolve(raw);
  return { backend: 'sqlite', target: path, display: path, from };
}

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

/** The schema of the store at `loc`, for `db status` / `db migrate`; close() when done. */
export function openSchema(loc: StoreLocation): SchemaPort & { close(): Promise<void> } {
  if (loc.backend === 'postgres') {
    // one connection is all a migrator needs
    const s = PgStore.connect(loc.target, { pool: { max: 2 } });
    return {
      status: () => s.status().catch((e) => explainStoreError(loc, e)),
      migrate: () => s.migrate().catch((e) => explainStoreError(loc, e)),
      close: () => s.close(),
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
 * Opens the store. mode 'create' (commands that put data in) creates and migrates it; 'read' wants
 * an existing store and throws StoreMissingError otherwise, so a mistyped location is not answered
 * with an empty store.
 */
export async function openStore(loc: StoreLocation, mode: 'read' | 'create' = 'read'): Promise<OpenStore> {
  if (loc.backend === 'postgres') {
    const s = PgStore.connect(loc.target);
    try {
      if (mode === 'create') await s.migrate();
      else {
        const st = await s.status();
        if (st.applied.length === 0) throw new StoreMissingError(`no egress-triage schema in ${loc.display} (from ${loc.from}): run "egress-triage db migrate --db URL" first`);
        if (st.pending.length) await s.migrate();
      }
    } catch (err) {
      await s.close();
      explainStoreError(loc, err);
    }
    const ingest = new PgIngestPort(s.pool);
    return {
      backend: 'postgres', display: loc.display, detections: s.detections, inventory: s.inventory, baselines: s.baselines, leases: ingest.leases, ingest,
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
  const s = SqliteStore.open(loc.target);
  return {
    backend: 'sqlite', display: loc.display, detections: s.detections, inventory: s.inventory, baselines: s.baselines, leases: s.leases, ingest: s.ingest,
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

/**
 * True only for a readable SQLite store that `demo` created (markAsDemo); anything else, another
 * store or any other file, is not. Opened read-only: a file that is not a store is left untouched.
 */
export function isDemoStore(path: string): boolean {
  let db;
  try {
    db = openSqlite(path, { readonly: true, busyTimeoutMs: 1000 });
    return db.prepare('SELECT value FROM meta WHERE key = ?').pluck().get(DEMO_MARK) === '1';
  } catch {
    return false;
  } finally {
    db?.close();
  }
}

// ----- policy state -----

export interface OpenPolicyStateOptions {
  /**
   * The store: a SQLite path or a postgres:// URL. It holds approvals (and counters, in this
   * process's memory) without --state, and always the audit.
   */
  dbPath: string;
  /** JSONL audit file; default: next to a SQLite file, none for PostgreSQL (the table only); `false`: none. */
  auditFile?: string | false;
  /** `redis://host:port[/db]`: counters and approvals shared by every replica. */
  stateUrl?: string;
  clock?: () => number;
  log?: (line: string) => void;
}

/** Throws a readable message when `--state` is not a URL this build can use. */
export function checkStateUrl(url: string): void {
  parseRedisStateUrl(url);
}

export function openPolicyState(o: OpenPolicyStateOptions): PolicyStateBackend {
  if (o.stateUrl !== undefined) checkStateUrl(o.stateUrl);
  const store: PolicyStateBackend = isPostgresUrl(o.dbPath)
    ? new PgPolicyState({ url: o.dbPath, auditFile: o.auditFile, clock: o.clock })
    : new SqlitePolicyState({ dbPath: o.dbPath, auditFile: o.auditFile, clock: o.clock });
  if (o.stateUrl === undefined) return store;
  // Only the audit of the store is used; on PostgreSQL it needs the store's tables before the first record.
  const storeReady = store instanceof PgPolicyState ? () => store.ready() : undefined;
  return new RedisPolicyState({ url: o.stateUrl, audit: store.audit, auditReady: storeReady, closeAudit: () => store.close(), clock: o.clock, log: o.log });
}
