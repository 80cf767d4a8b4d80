import { transaction, type PgClient, type PgPool } from './pool.js';
import { PgDictionaries } from './dictionaries.js';
import { ensureTenant } from './tenants.js';
import { readIngestState } from './ingest-read.js';
import { applyWriteBatch } from './ingest-write.js';
import { PgIngestLeases, SERVER_LEASE_CLOCK, type PgLeaseClock } from './ingest-leases.js';
import type { IngestPort, IngestReadRequest, IngestReadResult, IngestScope, IngestWriteBatch, IngestWriteResult, TenantIngest } from '../ingest-port.js';

/**
 * The ingest write contract (src/storage/ingest-port.ts) on PostgreSQL. A write batch is one
 * transaction: fence, version check and every write in it, each a multi-row statement. An atomic
 * scope (--strict) holds one connection and one transaction for the whole source.
 */
export class PgIngestPort implements IngestPort {
  readonly leases: PgIngestLeases;

  constructor(
    private readonly pool: PgPool,
    private readonly clock: PgLeaseClock = SERVER_LEASE_CLOCK,
    pollMs = 100,
  ) {
    this.leases = new PgIngestLeases(pool, clock, pollMs);
  }

  async beginSource(opts: { atomic: boolean }): Promise<IngestScope> {
    if (!opts.atomic) return new PgScope(this.pool, null, this.clock);
    const c = await this.pool.connect();
    const conn = new AtomicConnection(c);
    try {
      await c.query('BEGIN');
    } catch (err) {
      conn.release(err as Error);
      throw err;
    }
    return new PgScope(this.pool, conn, this.clock);
  }
}

/**
 * The one connection of an atomic scope, checked out for as long as its source is read: minutes on
 * a quiet pipe. When the server ends its session meanwhile (a restart, pg_terminate_backend,
 * idle_in_transaction_session_timeout), the reason is kept, and the scope's next use fails with it
 * rather than with the driver's "not queryable": the CLI reports it as the store's failure (exit 5).
 */
class AtomicConnection {
  private lost: Error | null = null;
  private readonly onError = (err: Error) => {
    this.lost ??= err;
  };

  constructor(private readonly c: PgClient) {
    c.on('error', this.onError);
  }

  /** The connection, or the error that ended it. */
  get client(): PgClient {
    if (this.lost) throw this.lost;
    return this.c;
  }

  get isLost(): boolean {
    return this.lost !== null;
  }

  /** `err` if the connection was lost meanwhile: the cause, not the driver's "not queryable". */
  cause(err: unknown): unknown {
    return this.lost ?? err;
  }

  /** Runs `work` on the connection; a failure is reported by its cause (see cause()). */
  async use<T>(work: (c: PgClient) => Promise<T>): Promise<T> {
    try {
      return await work(this.client);
    } catch (err) {
      throw this.cause(err);
    }
  }

  release(err?: Error): void {
    this.c.off('error', this.onError);
    this.c.release(this.lost ?? err);
  }
}

class PgScope implements IngestScope {
  private readonly tenants = new Map<string, PgTenantIngest>();
  private ended = false;

  constructor(
    private readonly pool: PgPool,
    /** the atomic scope's connection, inside its open transaction; null: one transaction per write */
    private readonly atomic: AtomicConnection | null,
    private readonly clock: PgLeaseClock,
  ) {}

  async tenant(name: string): Promise<TenantIngest> {
    let t = this.tenants.get(name);
    if (!t) {
      // A tenant is created outside the atomic transaction: the lease row needs it first anyway.
      const id = await ensureTenant(this.pool, name);
      t = new PgTenantIngest(name, id, this.pool, this.atomic, this.clock);
      this.tenants.set(name, t);
    }
    return t;
  }

  private async end(sql: 'COMMIT' | 'ROLLBACK'): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    if (!this.atomic) return;
    let broken: Error | undefined;
    try {
      await this.atomic.client.query(sql);
    } catch (err) {
      broken = this.atomic.cause(err) as Error;
      // a rollback of a transaction whose session the server ended is done: nothing of it was kept
      if (sql === 'ROLLBACK' && this.atomic.isLost) return;
      throw broken;
    } finally {
      this.atomic.release(broken);
      if (sql === 'ROLLBACK' || broken) for (const t of this.tenants.values()) t.resetCaches();
    }
  }

  /** Each write commits by itself (or joins the atomic transaction): nothing is held back. */
  async settle(): Promise<void> {}

  commit(): Promise<void> {
    return this.end('COMMIT');
  }

  rollback(): Promise<void> {
    return this.end('ROLLBACK');
  }
}

class PgTenantIngest implements TenantIngest {
  private readonly dict: PgDictionaries;

  constructor(
    readonly tenant: string,
    private readonly tenantId: number,
    private readonly pool: PgPool,
    private readonly atomic: AtomicConnection | null,
    private readonly clock: PgLeaseClock,
  ) {
    this.dict = new PgDictionaries(tenantId);
  }

  resetCaches(): void {
    this.dict.reset();
  }

  async read(req: IngestReadRequest): Promise<IngestReadResult> {
    if (this.atomic) {
      return this.atomic.use((c) => readIngestState(c, this.tenantId, req));
    }
    const c = await this.pool.connect();
    try {
      // one snapshot for the whole read
      await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const r = await readIngestState(c, this.tenantId, req);
      await c.query('COMMIT');
      return r;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }

  async write(batch: IngestWriteBatch): Promise<IngestWriteResult> {
    const ctx = { tenant: this.tenant, tenantId: this.tenantId, dict: this.dict, clock: this.clock };
    if (this.atomic) {
      const a = this.atomic;
      // part of the scope's one transaction: a savepoint keeps a failed batch from poisoning it
      await a.use((c) => c.query('SAVEPOINT batch'));
      try {
        const r = await applyWriteBatch(a.client, ctx, batch);
        await a.client.query('RELEASE SAVEPOINT batch');
        return r;
      } catch (err) {
        this.dict.reset();
        const cause = a.cause(err);
        // on a lost connection there is no savepoint to return to: the whole transaction is gone
        if (cause === err) await a.client.query('ROLLBACK TO SAVEPOINT batch');
        throw cause;
      }
    }
    try {
      return await transaction(this.pool, (c) => applyWriteBatch(c, ctx, batch));
    } catch (err) {
      // ids handed out by the rolled back transaction vanish: no cache may keep them
      this.dict.reset();
      throw err;
    }
  }
}
