import { after } from 'node:test';
import { join } from 'node:path';
import { tempDir } from '../../helpers.js';
import { usePostgres } from '../../helpers/postgres.js';
import { SqliteStore } from '../../../src/storage/sqlite/sqlite-store.js';
import { SqliteIngestLeases, type LeaseClock } from '../../../src/storage/sqlite/ingest-leases.js';
import { PgStore } from '../../../src/storage/postgres/pg-store.js';
import { PgIngestPort } from '../../../src/storage/postgres/ingest-port.js';
import { SqliteIngestPort } from '../../../src/storage/sqlite/ingest-port.js';
import type { DetectionRepository } from '../../../src/storage/store.js';
import type { IngestPort } from '../../../src/storage/ingest-port.js';
import type { InventoryRepository } from '../../../src/storage/inventory-port.js';
import type { BaselineEditor } from '../../../src/storage/baseline-port.js';
import type { RulesStore } from '../../../src/storage/rules-port.js';
import type { RunCallsReader } from '../../../src/storage/run-calls-port.js';
import type { OverviewReader } from '../../../src/storage/overview-port.js';
import type { DashboardQueries } from '../../../src/storage/dashboard-port.js';

/** Time that only moves when a waiter sleeps: expiry is tested without waiting for it. */
export class FakeClock implements LeaseClock {
  t = Date.UTC(2026, 11, 1, 12);
  onSleep: (() => void | Promise<void>) | null = null;
  now(): number {
    return this.t;
  }
  async sleep(ms: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    this.t += ms;
    await this.onSleep?.();
  }
}

/** One connection to a store, as one writer process has it. */
export interface Connection {
  detections: DetectionRepository;
  inventory: InventoryRepository;
  baselines: BaselineEditor;
  /** the ingest port; its leases judged by `clock` when given (a fake one in tests of expiry) */
  ingest(clock?: FakeClock): IngestPort;
  /** the rules port, for the rules service and the ingest-time suppressor */
  rules: RulesStore;
  /** the dashboard's run page reads */
  runCalls: RunCallsReader;
  /** the dashboard's overview reads */
  overview: OverviewReader;
  /** the dashboard's page queries */
  dashboard: DashboardQueries;
  close(): Promise<void>;
}

/** A fresh, empty store; connect() as often as there are writers. */
export interface Store {
  /** what a child process passes to openConnection() */
  location: string;
  connect(): Promise<Connection>;
}

export interface Backend {
  name: 'sqlite' | 'postgres';
  create(): Promise<Store>;
}

/** Opens a connection by location: a postgres:// URL or a SQLite file (used by child processes too). */
export async function openConnection(location: string): Promise<Connection> {
  if (location.startsWith('postgres://')) {
    const s = PgStore.connect(location);
    await s.migrate();
    return {
      detections: s.detections,
      inventory: s.inventory,
      baselines: s.baselines,
      ingest: (clock) => (clock ? new PgIngestPort(s.pool, clock, 100) : new PgIngestPort(s.pool)),
      rules: s,
      runCalls: s.runCalls,
      overview: s.overview,
      dashboard: s.dashboard,
      close: () => s.close(),
    };
  }
  const s = SqliteStore.open(location);
  return {
    detections: s.detections,
    inventory: s.inventory,
    baselines: s.baselines,
    ingest: (clock) => (clock ? new SqliteIngestPort(s.db, new SqliteIngestLeases(s.db, clock, 100)) : s.ingest),
    rules: s,
    runCalls: s.runCalls,
    overview: s.overview,
    dashboard: s.dashboard,
    close: async () => s.close(),
  };
}

/** Every backend the contract runs on. Call at the top level of a test file. */
export function backends(): Backend[] {
  const tmp = tempDir();
  after(() => tmp.cleanup());
  const pg = usePostgres();
  let n = 0;
  return [
    {
      name: 'sqlite',
      async create() {
        const location = join(tmp.dir, `contract-${n++}.db`);
        return { location, connect: () => openConnection(location) };
      },
    },
    {
      name: 'postgres',
      async create() {
        const location = await (await pg()).createStoreDatabase('contract');
        return { location, connect: () => openConnection(location) };
      },
    },
  ];
}
