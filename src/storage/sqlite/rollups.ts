import type { Statement } from 'better-sqlite3';
import type { SqliteDatabase } from './db.js';

/**
 * How a detection's status and its rollups are written (schema: migration 7 in core-migrations.ts).
 * A detection row carries no status: `detection_status` holds one narrow row per detection that is
 * not new. detection_rollup counts every detection of a key whatever its status;
 * detection_rollup_held counts those that are not new, by (status, rule); the coarse rollups keep
 * (status, rule) in their key. Every writer of detections goes through here, so the rollups stay
 * exact GROUP BYs of detections + detection_status.
 */

/** Adds detections of one fine key, of any status, to the fine rollup. */
export const ROLLUP_UPSERT = `
INSERT INTO detection_rollup (tenant_id, type_id, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant_id, type_id, day, job_ref, process_id, endpoint_id, ip_id) DO UPDATE SET
  n = n + excluded.n,
  first_ts = min(first_ts, excluded.first_ts),
  last_ts = max(last_ts, excluded.last_ts)`;

/** Adds detections of one fine key that are not new to the held rollup, under their status and rule. */
export const HELD_UPSERT = `
INSERT INTO detection_rollup_held (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id, n)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id) DO UPDATE SET n = n + excluded.n`;

/** Coarse rollups (migration 2) and the fine-rollup column each keeps. */
export const COARSE_TABLES: [table: string, col: 'endpoint_id' | 'job_ref' | 'day'][] = [
  ['rollup_process_endpoint', 'endpoint_id'],
  ['rollup_process_job', 'job_ref'],
  ['rollup_process_day', 'day'],
];

/** SQL for the status code (0 new, 1 suppressed, 2 resolved) of the detection row with this alias. */
export function statusOf(alias: string): string {
  return `coalesce((SELECT ds.status FROM detection_status ds WHERE ds.id = ${alias}.id), 0)`;
}

/** SQL for the rule id (0: none) of the detection row with this alias. */
export function ruleOf(alias: string): string {
  return `coalesce((SELECT ds.rule_id FROM detection_status ds WHERE ds.id = ${alias}.id), 0)`;
}

/**
 * Adds aggregated detections to the fine and coarse rollups. `add` takes the same twelve values, in
 * the same order, as the former single-table ROLLUP_UPSERT: (tenant, type, status, rule, day, job,
 * process, endpoint, ip, n, first_ts, last_ts).
 */
export class RollupWriter {
  private readonly fine: Statement;
  private readonly held: Statement;
  private readonly coarse: Statement[];
  /**
   * While a write batch is held (hold() .. flush()): the additions summed per rollup key, so a key
   * that many detections of the batch share is upserted once. Sums, minima and maxima do not depend
   * on order, so the rows are the same as with one upsert per detection.
   */
  private pending: { fine: Map<string, number[]>; held: Map<string, number[]>; coarse: Map<string, number[]>[] } | null = null;

  constructor(db: SqliteDatabase) {
    this.fine = db.prepare(ROLLUP_UPSERT);
    this.held = db.prepare(HELD_UPSERT);
    this.coarse = COARSE_TABLES.map(([table, col]) =>
      db.prepare(
        `INSERT INTO ${table} (tenant_id, type_id, status, rule_id, process_id, ${col}, n) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (tenant_id, type_id, status, rule_id, process_id, ${col}) DO UPDATE SET n = n + excluded.n`,
      ),
    );
  }

  add(
    tenantId: number, typeId: number, status: number, ruleId: number, day: number, jobRef: number,
    processId: number, endpointId: number, ipId: number, n: number, firstTs: number, lastTs: number,
  ): void {
    const keys = { endpoint_id: endpointId, job_ref: jobRef, day };
    const p = this.pending;
    if (p === null) {
      this.fine.run(tenantId, typeId, day, jobRef, processId, endpointId, ipId, n, firstTs, lastTs);
      if (status !== 0) this.held.run(tenantId, typeId, status, ruleId, day, jobRef, processId, endpointId, ipId, n);
      COARSE_TABLES.forEach(([, col], i) => this.coarse[i]!.run(tenantId, typeId, status, ruleId, processId, keys[col], n));
      return;
    }
    const f = `${tenantId},${typeId},${day},${jobRef},${processId},${endpointId},${ipId}`;
    const fr = p.fine.get(f);
    if (fr === undefined) p.fine.set(f, [tenantId, typeId, day, jobRef, processId, endpointId, ipId, n, firstTs, lastTs]);
    else {
      fr[7]! += n;
      fr[8] = Math.min(fr[8]!, firstTs);
      fr[9] = Math.max(fr[9]!, lastTs);
    }
    if (status !== 0) sum(p.held, [tenantId, typeId, status, ruleId, day, jobRef, processId, endpointId, ipId], n);
    COARSE_TABLES.forEach(([, col], i) => sum(p.coarse[i]!, [tenantId, typeId, status, ruleId, processId, keys[col]], n));
  }

  /** Sums additions until flush() (one write batch). */
  hold(): void {
    this.pending ??= { fine: new Map(), held: new Map(), coarse: COARSE_TABLES.map(() => new Map()) };
  }

  /** Writes what was summed since hold(), and writes through again. */
  flush(): void {
    const p = this.pending;
    if (p === null) return;
    this.pending = null;
    for (const r of p.fine.values()) this.fine.run(r);
    for (const r of p.held.values()) this.held.run(r);
    p.coarse.forEach((m, i) => {
      for (const r of m.values()) this.coarse[i]!.run(r);
    });
  }

  /** Drops what was summed (the write batch failed and rolls back). */
  discard(): void {
    this.pending = null;
  }
}

/** Adds n to the row of `key` (the key columns, then n last). */
function sum(m: Map<string, number[]>, key: number[], n: number): void {
  const k = key.join(',');
  const r = m.get(k);
  if (r === undefined) {
    key.push(n);
    m.set(k, key);
  } else r[r.length - 1]! += n;
}

const DAY_MS = 86_400_000;

/** The detection columns an insert gives; status and rule go to detection_status when not new. */
export interface DetectionInsert {
  tenantId: number;
  typeId: number;
  jobRef: number;
  runRef: number;
  endpointId: number;
  ipId: number;
  directIp: boolean;
  port: number | null;
  protocol: string | null;
  processId: number;
  ts: number;
  status: number;
  ruleId: number;
  ext: string;
}

/**
 * Inserts one detection (ignored when its natural key exists), its status row when it is not new,
 * and its rollup counts. Returns whether it was new to the store.
 */
export class DetectionWriter {
  private readonly ins: Statement;
  private readonly status: Statement;
  readonly rollups: RollupWriter;

  constructor(db: SqliteDatabase) {
    this.ins = db.prepare(
      `INSERT OR IGNORE INTO detections (tenant_id, type_id, job_ref, run_ref, endpoint_id, ip_id, direct_ip, port, protocol, process_id, ts, ext)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.status = db.prepare('INSERT INTO detection_status (id, status, rule_id) VALUES (?, ?, ?)');
    this.rollups = new RollupWriter(db);
  }

  insert(d: DetectionInsert): boolean {
    const r = this.ins.run(d.tenantId, d.typeId, d.jobRef, d.runRef, d.endpointId, d.ipId, d.directIp ? 1 : 0, d.port, d.protocol, d.processId, d.ts, d.ext);
    if (r.changes !== 1) return false;
    if (d.status !== 0) this.status.run(r.lastInsertRowid, d.status, d.ruleId);
    this.rollups.add(d.tenantId, d.typeId, d.status, d.ruleId, Math.floor(d.ts / DAY_MS), d.jobRef, d.processId, d.endpointId, d.ipId, 1, d.ts, d.ts);
    return true;
  }
}
