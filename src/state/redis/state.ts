import type { AuditSink, PolicyStateBackend, RateCounters } from '../../storage/policy-state.js';
import { RedisApprovals } from './approvals.js';
import { RedisConnection } from './connection.js';
import { RedisCounters } from './counters.js';
import { RedisSessionHandles } from './handles.js';
import { parseRedisStateUrl } from './url.js';

export interface RedisPolicyStateOptions {
  /** `redis://host:port[/db]` */
  url: string;
  /**
   * Where audit records go: the store's audit (table + JSONL). Not Redis: a denial because Redis is
   * unreachable must still be audited, with its reason.
   */
  audit: AuditSink;
  /** Resolves once `audit` can write (a PostgreSQL store migrates and connects first). */
  auditReady?: () => Promise<void>;
  /** Closes what `audit` belongs to, after the Redis connections. */
  closeAudit?: () => void | Promise<void>;
  /** Tests inject a clock; production uses Redis TIME for counters and this process's clock for approval deadlines. */
  clock?: () => number;
  approvalPollMs?: number;
  recoveryHoldMs?: number;
  connectWaitMs?: number;
  log?: (line: string) => void;
}

/** Policy state shared by gateway replicas: counters, approvals and session handles in Redis, the audit in the store. */
export class RedisPolicyState implements PolicyStateBackend {
  readonly describe: string;
  readonly conn: RedisConnection;
  readonly approvals: RedisApprovals;
  readonly audit: AuditSink;
  readonly sessionHandles: RedisSessionHandles;
  private readonly counterSets = new Map<string, RedisCounters>();

  constructor(private readonly o: RedisPolicyStateOptions) {
    const address = parseRedisStateUrl(o.url);
    this.describe = address.display;
    this.conn = new RedisConnection({ address, clock: o.clock, recoveryHoldMs: o.recoveryHoldMs, connectWaitMs: o.connectWaitMs, log: o.log });
    this.approvals = new RedisApprovals(this.conn, o.clock, o.approvalPollMs);
    this.audit = o.audit;
    this.sessionHandles = new RedisSessionHandles(this.conn);
  }

  get hashKey(): Buffer {
    return this.conn.hashKey;
  }

  counters(namespace: string): RateCounters {
    let c = this.counterSets.get(namespace);
    if (!c) this.counterSets.set(namespace, (c = new RedisCounters(this.conn, namespace, this.conn.journal)));
    return c;
  }

  async ready(): Promise<void> {
    await Promise.all([this.conn.ready(), this.o.auditReady?.()]);
  }

  async close(): Promise<void> {
    await this.approvals.close();
    await this.conn.close();
    await this.o.closeAudit?.();
  }
}

