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
    try {
      await c.query('BEGIN');
    } catch (err) {
      c.release(err as Error);
      throw err;
    }
    return new PgScope(this.pool, c, this.clock);
  }
}

class PgScope implements IngestScope {
  private readonly tenants = new Map<string, PgTenantIngest>();
  private ended = false;

  constructor(
    private readonly pool: PgPool,
    /** the atomic scope's connection, inside its open transaction; null: one transaction per write */
    private readonly atomic: PgClient | null,
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
      await this.atomic.query(sql);
    } catch (err) {
      broken = err as Error;
      throw err;
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
    private readonly atomic: PgClient | null,
    private readonly clock: PgLeaseClock,
  ) {
    this.dict = new PgDictionaries(tenantId);
  }

  resetCaches(): void {
    this.dict.reset();
  }

  async read(req: IngestReadRequest): Promise<IngestReadResult> {
    if (this.atomic) return readIngestState(this.atomic, this.tenantId, req);
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
      // part of the scope's one transaction: a savepoint keeps a failed batch from poisoning it
      await this.atomic.query('SAVEPOINT batch');
      try {
        const r = await applyWriteBatch(this.atomic, ctx, batch);
        await this.atomic.query('RELEASE SAVEPOINT batch');
        return r;
      } catch (err) {
        await this.atomic.query('ROLLBACK TO SAVEPOINT batch');
        this.dict.reset();
        throw err;
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
