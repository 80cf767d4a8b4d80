import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../src/storage/sqlite/sqlite-store.js';
import { DetectionEngine, DEFAULT_ENGINE_CONFIG, type EngineConfig } from '../../src/detection/engine.js';
import { suppressorFor } from '../../src/rules/suppressor.js';
import type { NetworkCallEvent, ProcessInfo } from '../../src/domain/types.js';
import type { Suppressor } from '../../src/domain/subject.js';
import type { AdapterOutput } from '../../src/ingest/adapters/types.js';
import type { SqliteIngestSession } from '../../src/storage/sqlite/ingest-session.js';
import type { OpenStore } from '../../src/storage/open-store.js';
import { IngestPipeline, type SourceSummary } from '../../src/ingest/pipeline.js';
import type { StoreUnderTest } from '../helpers/each-store.js';

/**
 * Drives the engine through one write transaction of a session, synchronously (the pipeline does
 * the same through the async contract, under a lease; tests that build a store need neither).
 */
export function evaluateSync(session: SqliteIngestSession, engine: DetectionEngine, outs: AdapterOutput[], loadSuppressor?: () => Suppressor): void {
  session.transaction(() => {
    let at = 0;
    let req = engine.plan(outs, 0);
    for (;;) {
      const res = session.readSync(req);
      const a = engine.accept(req, res);
      if (a === 'stale') throw new Error('state changed under a pending write');
      if (a === 'replan') {
        req = engine.plan(outs, at);
        continue;
      }
      const v = engine.rulesChanged;
      if (v !== null && loadSuppressor) engine.setSuppressor(loadSuppressor(), v);
      const o = engine.apply(outs, at);
      if (o.done) break;
      at = o.at;
      req = o.need;
    }
    const b = engine.takeWrite({ token: '', ttlMs: 0 });
    if (b) engine.committed(session.writeSync(b));
  });
}

export function tmpStore(): { store: SqliteStore; dir: string; path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'et-analysis-'));
  const path = join(dir, 'egress.db');
  const store = SqliteStore.open(path);
  return {
    store,
    dir,
    path,
    cleanup: () => {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Drives the real detection engine with learning off: every non-baseline call raises a detection. */
export async function ingest(store: SqliteStore, tenant: string, events: NetworkCallEvent[]): Promise<{ detections: number; suppressedOnIngest: number }> {
  const s = store.openIngestSession(tenant);
  const e = new DetectionEngine({ ...DEFAULT_ENGINE_CONFIG, learningRuns: 0, promoteAfterRuns: 1_000_000 });
  // built before the (synchronous) write; the impostor flags it raises are stored right after it
  const suppressor = await suppressorFor(store, tenant);
  evaluateSync(s, e, events.map((event) => ({ kind: 'call', event })), () => suppressor);
  await suppressor.settle?.();
  return { detections: e.counters.detections, suppressedOnIngest: e.counters.suppressedOnIngest };
}

export const TS0 = Date.parse('2026-11-01T00:00:00Z');

export const GENUINE_SHA = 'a'.repeat(64);
export const IMPOSTOR_SHA = 'b'.repeat(64);

export function tailscaled(genuine: boolean): ProcessInfo {
  return genuine
    ? {
        name: 'tailscaled',
        path: '/usr/sbin/tailscaled',
        sha256: GENUINE_SHA,
        parent: { name: 'sudo', path: '/usr/bin/sudo', parent: { name: 'bash', path: '/usr/bin/bash', parent: { name: 'Runner.Worker' } } },
      }
    : {
        name: 'tailscaled',
        path: '/tmp/.cache/tailscaled',
        sha256: IMPOSTOR_SHA,
        parent: { name: 'node', path: '/opt/hostedtoolcache/node/20/bin/node', parent: { name: 'npm', parent: { name: 'bash', parent: { name: 'Runner.Worker' } } } },
      };
}

export function proc(name: string, sha?: string): ProcessInfo {
  return { name, path: `/usr/bin/${name}`, sha256: sha ?? Buffer.from(name).toString('hex').padEnd(64, '0').slice(0, 64), parent: { name: 'bash', parent: { name: 'Runner.Worker' } } };
}

export function call(
  tenant: string,
  repo: string,
  runId: number,
  ts: number,
  process: ProcessInfo,
  dest: { domain?: string; ip?: string; port: number },
  owner = 'acme',
  job = 'build',
): NetworkCallEvent {
  return {
    tenant,
    ctx: { owner, repo, workflow: '.github/workflows/ci.yml', job, runId: String(runId), runAttempt: 1, jobId: String(runId * 10) },
    timestamp: ts,
    domain: dest.domain,
    ip: dest.ip ?? (dest.domain ? '203.0.113.7' : undefined),
    port: dest.port,
    process,
    status: 'allowed',
  };
}

/** The rollup (and the coarse rollups, see coarseMismatches) must equal GROUP BYs of detections and their status rows, row for row. */
const ROLLUP_MISMATCHES = `
    WITH g AS (SELECT tenant_id, type_id, ts / 86400000 AS day, job_ref, process_id, endpoint_id, ip_id, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts
               FROM detections GROUP BY 1,2,3,4,5,6,7),
         h AS (SELECT d.tenant_id, d.type_id, s.status, s.rule_id, d.ts / 86400000 AS day, d.job_ref, d.process_id, d.endpoint_id, d.ip_id, count(*) AS n
               FROM detections d JOIN detection_status s ON s.id = d.id GROUP BY 1,2,3,4,5,6,7,8,9)
    SELECT (SELECT count(*) FROM (SELECT * FROM g EXCEPT SELECT * FROM detection_rollup))
         + (SELECT count(*) FROM (SELECT * FROM detection_rollup EXCEPT SELECT * FROM g))
         + (SELECT count(*) FROM (SELECT * FROM h EXCEPT SELECT * FROM detection_rollup_held))
         + (SELECT count(*) FROM (SELECT * FROM detection_rollup_held EXCEPT SELECT * FROM h))
         -- a status row exists only for a detection (of its tenant's rule) that is not new
         + (SELECT count(*) FROM detection_status s WHERE s.status = 0 OR NOT EXISTS (SELECT 1 FROM detections d WHERE d.id = s.id)
              OR (s.rule_id > 0 AND NOT EXISTS (SELECT 1 FROM detections d JOIN rules r ON r.tenant_id = d.tenant_id WHERE d.id = s.id AND r.id = s.rule_id)))`;

const COARSE_ROLLUPS = [
  ['rollup_process_endpoint', 'endpoint_id'],
  ['rollup_process_job', 'job_ref'],
  ['rollup_process_day', 'ts / 86400000'],
] as const;

function coarseMismatchSql(table: string, col: string): string {
  return `
      WITH g AS (SELECT d.tenant_id, d.type_id, coalesce(s.status, 0), coalesce(s.rule_id, 0), d.process_id, d.${col} AS k, count(*) AS n
                 FROM detections d LEFT JOIN detection_status s ON s.id = d.id GROUP BY 1,2,3,4,5,6)
      SELECT (SELECT count(*) FROM (SELECT * FROM g EXCEPT SELECT * FROM ${table}))
           + (SELECT count(*) FROM (SELECT * FROM ${table} EXCEPT SELECT * FROM g))`;
}

export function rollupMismatches(store: SqliteStore): number {
  return (store.db.prepare(ROLLUP_MISMATCHES).pluck().get() as number) + coarseMismatches(store);
}

/** Each coarse rollup must equal a GROUP BY of detections (rows with n = 0 must not exist). */
export function coarseMismatches(store: SqliteStore): number {
  let bad = 0;
  for (const [table, col] of COARSE_ROLLUPS) bad += store.db.prepare(coarseMismatchSql(table, col)).pluck().get() as number;
  return bad;
}

/**
 * rollupMismatches on either backend. PostgreSQL keeps one fine rollup keyed by status and rule
 * (no side table): it must be the GROUP BY of detections, each coarse rollup the GROUP BY of the
 * fine one, and every rule a detection names one of its tenant's.
 */
export async function rollupMismatchesOf(at: StoreUnderTest): Promise<number> {
  if (at.backend === 'sqlite') {
    let bad = Number(await at.value(ROLLUP_MISMATCHES));
    for (const [table, col] of COARSE_ROLLUPS) bad += Number(await at.value(coarseMismatchSql(table, col)));
    return bad;
  }
  const fineKey = 'tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id';
  const fine = `SELECT tenant_id, type_id, status, rule_id, floor(ts / 86400000.0)::int AS day, job_ref, process_id, endpoint_id, ip_id, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts
                FROM detections GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9`;
  const cols = `${fineKey}, n, first_ts, last_ts`;
  let bad = Number(
    await at.value(`SELECT count(*) FROM (
      (${fine} EXCEPT SELECT ${cols} FROM detection_rollup) UNION ALL (SELECT ${cols} FROM detection_rollup WHERE n <> 0 EXCEPT ${fine})) x`),
  );
  for (const [table, col] of [['rollup_process_day', 'day'], ['rollup_process_endpoint', 'endpoint_id'], ['rollup_process_job', 'job_ref']]) {
    const key = `tenant_id, type_id, status, rule_id, process_id, ${col}`;
    const grouped = `SELECT ${key}, sum(n) FROM detection_rollup GROUP BY ${key} HAVING sum(n) <> 0`;
    bad += Number(await at.value(`SELECT count(*) FROM ((SELECT ${key}, n FROM ${table} WHERE n <> 0 EXCEPT ${grouped}) UNION ALL (${grouped} EXCEPT SELECT ${key}, n FROM ${table})) x`));
  }
  bad += Number(
    await at.value(`SELECT count(*) FROM detections d WHERE (d.status = 0 AND d.rule_id <> 0) OR (d.rule_id > 0 AND NOT EXISTS (SELECT 1 FROM rules r WHERE r.tenant_id = d.tenant_id AND r.id = d.rule_id))`),
  );
  return bad;
}

/**
 * Drives the real detection engine through the ingest pipeline of any store, learning off (every
 * non-baseline call raises a detection), the tenant's rules suppressing as at ingest.
 */
export async function ingestCalls(
  at: StoreUnderTest,
  store: OpenStore,
  tenant: string,
  events: NetworkCallEvent[],
  /** lines per write batch (the pipeline's default when not given) */
  batchSize?: number,
  /** engine settings over the ones above (learning, hot runs) */
  engine: Partial<EngineConfig> = {},
): Promise<Pick<SourceSummary, 'detections' | 'suppressedOnIngest' | 'releasedOnIngest' | 'suspectedImpostors'>> {
  const file = join(at.dir, `calls-${++ingested}.ndjson`);
  writeFileSync(file, events.map(nativeLine).join('\n') + '\n');
  const p = new IngestPipeline(store, {
    tenant,
    format: 'native',
    strict: false,
    defaults: {},
    engine: { ...DEFAULT_ENGINE_CONFIG, learningRuns: 0, promoteAfterRuns: 1_000_000, ...engine },
    suppressorFor: (s, t) => s.ingestSuppressor(t),
    ...(batchSize !== undefined ? { batchSize } : {}),
  });
  const r = await p.ingest(file);
  return { detections: r.detections, suppressedOnIngest: r.suppressedOnIngest, releasedOnIngest: r.releasedOnIngest, suspectedImpostors: r.suspectedImpostors };
}
let ingested = 0;

/** A call as a native NDJSON record. */
export function nativeLine(e: NetworkCallEvent): string {
  const c = e.ctx;
  return JSON.stringify({
    tenant: e.tenant, owner: c.owner, repo: c.repo, workflow: c.workflow, job: c.job, run_id: c.runId, run_attempt: c.runAttempt, job_id: c.jobId,
    timestamp: new Date(e.timestamp).toISOString(), domain: e.domain, ip: e.ip, port: e.port, process: e.process, status: e.status,
  });
}
