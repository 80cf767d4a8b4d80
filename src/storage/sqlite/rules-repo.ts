import Database from 'better-sqlite3';
import type { SqliteDatabase } from './db.js';
import { COARSE_TABLES, statusOf } from './rollups.js';
import { riskyIpIndexOf, type RiskyIpIndex } from './risky-ips.js';
import { matchEndpoint, matchIp, matchJob, matchProcess, type CompiledRule } from '../../rules/matcher.js';
import type { RiskyDestinations } from '../../analysis/risky-destinations.js';
import { binaryKey, hashedDaemons, riskyOfCall, sameFileOtherNameImpostors, storedCallEvidence, storedOtherNameEvidence, suspectedImpostors, type CallEvidence, type BinaryRef, type StoredDaemonProcess, type StoredOtherName, type SuspectedImpostor } from '../../analysis/impostor.js';
import { daemonClaimingNames } from '../../analysis/vpn-signatures.js';
import { flaggedFiles, hashlessFiles, pathPartners, sameFileImpostors, type VariantRow } from '../../analysis/impostor-links.js';
import { ImpostorSet } from '../../rules/guards.js';
import type { RuleRecord } from '../rule-row.js';
import { riskySample, type RuleMatchCounts } from '../rules-port.js';

/**
 * SQL side of suppression rules. A compiled rule is evaluated over the dictionary tables (the
 * tenant's jobs, and the shared endpoint / ip / process dictionaries) to get id sets, which go into
 * TEMP tables; counting and status moves are then plain SQL over the rollups, `detection_status`
 * and `detections` with the same predicate. Because the rollup keys hold every dimension a condition
 * can test, a rule matches whole rollup rows, so moving held rollup rows and status rows with the
 * same predicate keeps them in step (schema: migration 7, rollups.ts).
 */

/** A row of the rules table: the columns every backend shares (rule-row.ts) and SQLite's own. */
export interface RuleRow extends RuleRecord {
  severity_action: string;
  deleted_on: string | null;
}

export interface MatchPredicate {
  /** false when some dimension matched no dictionary row: the rule matches nothing */
  possible: boolean;
  /** SQL over columns shared by detections and the fine rollups (no alias) */
  sql: string;
  params: unknown[];
  /** which dimensions the predicate tests (beyond tenant and type) */
  dims: { job: boolean; process: boolean; endpoint: boolean; ip: boolean };
}

const NO_DIMS = { job: false, process: false, endpoint: false, ip: false };

/** The tenant's suspected impostors (rules-port.ts Impostors), with the process ids of their binaries. */
export interface ImpostorVerdict {
  set: ImpostorSet;
  processIds: number[];
  files: readonly string[];
  hashless: readonly string[];
  hashedDaemons: readonly BinaryRef[];
}

/** A copy a caller may change without changing the cached verdict. */
function copyVerdict(v: ImpostorVerdict): ImpostorVerdict {
  return { set: new ImpostorSet(v.set.list()), processIds: [...v.processIds], files: [...v.files], hashless: [...v.hashless], hashedDaemons: [...v.hashedDaemons] };
}

/** The port's preview counts before the impostor hits, which the port adds (sqlite/rules-port.ts). */
export type PreviewCounts = Omit<RuleMatchCounts, 'impostorHits'>;

/** The detection columns a predicate tests (to qualify them with a table alias). */
const COLS = /\b(tenant_id|type_id|job_ref|process_id|endpoint_id|ip_id)\b/g;


const TEMPS = ['rm_jobs', 'rm_procs', 'rm_eps', 'rm_ips', 'rm_risky', 'rm_risky_ips', 'rm_impostors'] as const;
type Temp = (typeof TEMPS)[number];

/** Risky endpoint ids, computed incrementally over the shared (append-only) endpoint dictionary. */
class RiskyEndpointIndex {
  private maxId = 0;
  readonly ids = new Set<number>();
  constructor(private readonly risky: RiskyDestinations) {}
  refresh(db: SqliteDatabase): Set<number> {
    const rows = db.prepare('SELECT id, host FROM endpoints WHERE id > ? ORDER BY id').raw().all(this.maxId) as [number, string][];
    for (const [id, host] of rows) {
      if (this.risky.matchHost(host)) this.ids.add(id);
      this.maxId = id;
    }
    return this.ids;
  }
}

/** Impostor verdicts by connection and tenant, with the commit stamp they were computed at. */
const IMPOSTOR_CACHES = new WeakMap<SqliteDatabase, Map<string, { key: number; value: ImpostorVerdict }>>();
const WATCHERS = new WeakMap<SqliteDatabase, SqliteDatabase>();

/**
 * A number that changes whenever any connection, this one included, commits to the store; null when
 * it cannot be known (in a transaction, or an in-memory store). A second, read-only connection's
 * data_version does this: it moves on every commit that is not its own, and it never writes.
 * (This connection's own data_version ignores its own commits, and total_changes() also counts the
 * temp tables the analysis fills, so neither serves.)
 */
function committedStamp(db: SqliteDatabase): number | null {
  if (db.inTransaction || db.memory) return null;
  return watcherStamp(db);
}

function watcherStamp(db: SqliteDatabase): number {
  let w = WATCHERS.get(db);
  if (!w) WATCHERS.set(db, (w = new Database(db.name, { readonly: true, fileMustExist: true })));
  return w.pragma('data_version', { simple: true }) as number;
}

/** The commit stamp at which the connection's open write transaction began, and its total_changes() then. */
const WRITE_BASES = new WeakMap<SqliteDatabase, { stamp: number; changes: number }>();

function totalChanges(db: SqliteDatabase): number {
  return db.prepare('SELECT total_changes()').pluck().get() as number;
}

/**
 * Call right after BEGIN IMMEDIATE (SqliteRulesPort.write). The transaction holds the write lock, so
 * no other connection commits while it is open: until it writes, it sees exactly the store at the
 * commit stamp read now, and a verdict cached at that stamp is its verdict too. A preview followed by
 * a create in one process (an MCP session, the dashboard) then judges the store's binaries once: at
 * 10M detections that judgement was still a quarter of `rules create`'s CPU once
 * suspectedImpostors judged each variant's start once (CPU profile, 2026-12-07; docs/benchmarks.md).
 */
export function beganWrite(db: SqliteDatabase): void {
  if (db.memory || !db.inTransaction) return;
  WRITE_BASES.set(db, { stamp: watcherStamp(db), changes: totalChanges(db) });
}

/** Call when the write transaction begun by beganWrite commits or rolls back. */
export function endedWrite(db: SqliteDatabase): void {
  WRITE_BASES.delete(db);
}

/**
 * The stamp the open write transaction began at, while it has changed no row (total_changes() counts
 * its temp tables too, which only makes this say null more often); null otherwise.
 */
function unchangedWriteStamp(db: SqliteDatabase): number | null {
  const base = WRITE_BASES.get(db);
  if (base === undefined || !db.inTransaction) return null;
  return totalChanges(db) === base.changes ? base.stamp : null;
}

/**
 * Closes the watcher connection of `db`, if one was opened. Called by the store before it closes
 * `db`: a connection left open keeps the WAL file from being checkpointed and removed on exit.
 */
export function closeCommitWatcher(db: SqliteDatabase): void {
  const w = WATCHERS.get(db);
  WATCHERS.delete(db);
  if (w?.open) w.close();
}

export class SqliteRulesRepo {
  private readonly riskyIndex: RiskyEndpointIndex;
  private readonly riskyIps: RiskyIpIndex;

  private readonly impostorCache: Map<string, { key: number; value: ImpostorVerdict }>;
  /** the risky list's part of an impostor cache key: the verdict depends on it (risky destinations and ranges) */
  private readonly riskyKey: string;

  constructor(
    readonly db: SqliteDatabase,
    readonly risky: RiskyDestinations,
  ) {
    this.riskyIndex = new RiskyEndpointIndex(risky);
    this.riskyIps = riskyIpIndexOf(db, risky);
    this.riskyKey = risky.entries.join('\n');
    // per connection, not per repository: services are built per call (analyze, each MCP tool call)
    let cache = IMPOSTOR_CACHES.get(db);
    if (!cache) IMPOSTOR_CACHES.set(db, (cache = new Map()));
    this.impostorCache = cache;
  }

  tenantIds(): number[] {
    return this.db.prepare('SELECT id FROM tenants ORDER BY id').pluck().all() as number[];
  }

  tenantId(tenant: string): number | undefined {
    return this.db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(tenant) as number | undefined;
  }

  typeId(type: string): number | undefined {
    return this.db.prepare('SELECT id FROM detection_types WHERE name = ?').pluck().get(type) as number | undefined;
  }

  ensureType(type: string): number {
    const id = this.typeId(type);
    if (id !== undefined) return id;
    return Number(this.db.prepare('INSERT INTO detection_types (name) VALUES (?)').run(type).lastInsertRowid);
  }

  /** Temp tables are re-checked each time: a rolled-back transaction drops ones created inside it. */
  private ensureTemps(): void {
    for (const t of TEMPS) this.db.exec(`CREATE TEMP TABLE IF NOT EXISTS ${t} (id INTEGER PRIMARY KEY)`);
    const key = 'tenant_id INTEGER, type_id INTEGER, day INTEGER, job_ref INTEGER, process_id INTEGER, endpoint_id INTEGER, ip_id INTEGER, n INTEGER';
    for (const t of ['rm_moved', 'rm_held']) this.db.exec(`CREATE TEMP TABLE IF NOT EXISTS ${t} (${key})`);
    this.db.exec(`CREATE TEMP TABLE IF NOT EXISTS rm_held_sum (${key},
      PRIMARY KEY (tenant_id, type_id, day, job_ref, process_id, endpoint_id, ip_id)) WITHOUT ROWID`);
    this.db.exec('CREATE TEMP TABLE IF NOT EXISTS rm_rows (id INTEGER PRIMARY KEY)');
  }

  private fill(table: Temp, ids: Iterable<number>): number {
    this.db.prepare(`DELETE FROM temp.${table}`).run();
    const ins = this.db.prepare(`INSERT OR IGNORE INTO temp.${table} (id) VALUES (?)`);
    let n = 0;
    for (const id of ids) {
      ins.run(id);
      n++;
    }
    return n;
  }

  /**
   * Loads the risky endpoint ids into temp.rm_risky and the risky address ids into
   * temp.rm_risky_ips; returns whether there are any of the latter.
   */
  loadRisky(): boolean {
    this.ensureTemps();
    this.fill('rm_risky', this.riskyIndex.refresh(this.db));
    return this.fill('rm_risky_ips', this.riskyIps.refresh(this.db)) > 0;
  }

  riskyEndpointIds(): Set<number> {
    return this.riskyIndex.refresh(this.db);
  }

  /**
   * Evaluates the rule over the dictionaries and fills the TEMP id tables. Returns the predicate on
   * (tenant_id, type_id, job_ref, process_id, endpoint_id, ip_id), shared by rollup and detections.
   */
  buildPredicate(tenantId: number, typeId: number | undefined, r: CompiledRule): MatchPredicate {
    this.ensureTemps();
    const none: MatchPredicate = { possible: false, sql: '0', params: [], dims: NO_DIMS };
    if (typeId === undefined || r.impossible !== null) return none;
    const parts = ['tenant_id = ?', 'type_id = ?'];
    const params: unknown[] = [tenantId, typeId];
    if (r.hasScope) {
      const ids: number[] = [];
      for (const [id, owner, repo, workflow, job] of this.db
        .prepare('SELECT id, owner, repo, workflow, job FROM jobs WHERE tenant_id = ?')
        .raw()
        .iterate(tenantId) as Iterable<[number, string, string, string, string]>) {
        if (matchJob(r, owner, repo, workflow, job)) ids.push(id);
      }
      if (this.fill('rm_jobs', ids) === 0) return none;
      parts.push('job_ref IN (SELECT id FROM temp.rm_jobs)');
    }
    if (r.hasProcess) {
      const ids: number[] = [];
      for (const [id, norm, sha] of this.db.prepare('SELECT id, norm_name, sha256 FROM processes').raw().iterate() as Iterable<
        [number, string, string | null]
      >) {
        if (matchProcess(r, norm, sha)) ids.push(id);
      }
      if (this.fill('rm_procs', ids) === 0) return none;
      parts.push('process_id IN (SELECT id FROM temp.rm_procs)');
    }
    if (r.hasEndpoint) {
      const ids: number[] = [];
      for (const [id, endpoint] of this.db.prepare('SELECT id, endpoint FROM endpoints').raw().iterate() as Iterable<[number, string]>) {
        if (matchEndpoint(r, endpoint)) ids.push(id);
      }
      if (this.fill('rm_eps', ids) === 0) return none;
      parts.push('endpoint_id IN (SELECT id FROM temp.rm_eps)');
    }
    if (r.hasIp) {
      const ids: number[] = [];
      for (const [id, ip] of this.db.prepare('SELECT id, ip FROM ips').raw().iterate() as Iterable<[number, string]>) {
        if (matchIp(r, ip)) ids.push(id);
      }
      if (this.fill('rm_ips', ids) === 0) return none;
      parts.push('ip_id IN (SELECT id FROM temp.rm_ips)');
    }
    return { possible: true, sql: parts.join(' AND '), params, dims: { job: r.hasScope, process: r.hasProcess, endpoint: r.hasEndpoint, ip: r.hasIp } };
  }

  /**
   * The same predicate minus never-suppress destinations, expressed through temp.rm_eps so every
   * path of `move` (coarse tables, index choice) sees a consistent endpoint dimension.
   */
  excludeRisky(pred: MatchPredicate): MatchPredicate {
    if (!pred.possible) return pred;
    return this.excludeRiskyIps(this.excludeRiskyEndpoints(pred));
  }

  /** The predicate minus detections at addresses in the list's ranges, whatever their endpoint. */
  private excludeRiskyIps(pred: MatchPredicate): MatchPredicate {
    if (!pred.possible) return pred;
    this.ensureTemps();
    if (this.fill('rm_risky_ips', this.riskyIps.refresh(this.db)) === 0) return pred;
    // the ip dimension keeps every path of `move` on the fine rollups, which key by address
    return { ...pred, sql: `${pred.sql} AND ip_id NOT IN (SELECT id FROM temp.rm_risky_ips)`, dims: { ...pred.dims, ip: true } };
  }

  private excludeRiskyEndpoints(pred: MatchPredicate): MatchPredicate {
    const risky = this.riskyEndpointIds();
    if (risky.size === 0) return pred;
    let ids: number[];
    if (pred.dims.endpoint) {
      ids = (this.db.prepare('SELECT id FROM temp.rm_eps').pluck().all() as number[]).filter((id) => !risky.has(id));
    } else {
      ids = (this.db.prepare('SELECT id FROM endpoints').pluck().all() as number[]).filter((id) => !risky.has(id));
    }
    if (this.fill('rm_eps', ids) === 0) return { ...pred, possible: false, sql: '0', params: [] };
    const sql = pred.dims.endpoint ? pred.sql : `${pred.sql} AND endpoint_id IN (SELECT id FROM temp.rm_eps)`;
    return { ...pred, sql, dims: { ...pred.dims, endpoint: true } };
  }

  /**
   * The tenant's suspected impostors and every process id that is one of their binaries. Evidence:
   * each (VPN-named process variant, endpoint) pair of the tenant's detections, of any type, status
   * or rule (so suppressing or resolving detections never hides evidence), judged by the same pure
   * verdict the analysis uses.
   */
  /** The commit stamp to pass to impostors() from inside a read-only snapshot opened after this call. */
  commitStamp(): number | null {
    return committedStamp(this.db);
  }

  /**
   * The tenant's suspected impostors. The verdict is a pure function of the committed rows, and every
   * analyze, preview and create needs it: it is reused while no commit has happened since. Inside a
   * transaction (whose own uncommitted writes may flag a binary) it is computed afresh, unless the
   * caller opened a read-only snapshot and passes the stamp it took just before (the snapshot then sees
   * at least that state, and a later commit changes the stamp, so a reused verdict is never stale), or
   * the transaction is a rules write that has changed nothing yet (beganWrite).
   */
  impostors(tenantId: number, stampBeforeSnapshot?: number | null): ImpostorVerdict {
    const stamp = stampBeforeSnapshot !== undefined ? stampBeforeSnapshot : (committedStamp(this.db) ?? unchangedWriteStamp(this.db));
    const cacheKey = `${tenantId}\n${this.riskyKey}`;
    const hit = this.impostorCache.get(cacheKey);
    if (stamp !== null && hit && hit.key === stamp) return copyVerdict(hit.value);
    const value = this.computeImpostors(tenantId);
    if (stamp !== null) this.impostorCache.set(cacheKey, { key: stamp, value: copyVerdict(value) });
    return value;
  }

  private computeImpostors(tenantId: number): ImpostorVerdict {
    const procs = this.daemonProcesses(tenantId);
    const set = new ImpostorSet();
    for (const b of this.db
      .prepare('SELECT process, sha256, path, reason FROM suspected_impostors WHERE tenant_id = ? ORDER BY process, binary')
      .all(tenantId) as SuspectedImpostor[]) {
      set.add(b);
    }
    if (procs.length === 0) return { set, processIds: [], files: [], hashless: [], hashedDaemons: [] };
    const stored = storedCallEvidence(procs, this.risky);
    const pairs = this.db
      .prepare(
        `SELECT DISTINCT r.process_id, e.host, e.port, e.is_ip FROM rollup_process_endpoint r JOIN endpoints e ON e.id = r.endpoint_id
         WHERE r.tenant_id = ? AND r.process_id IN (${procs.map((p) => p.id).join(',')})`,
      )
      .raw()
      .all(tenantId) as [number, string, number | null, number][];
    // a rollup keeps no address: these are judged by destination
    const evidence: CallEvidence[] = pairs.map(([pid, host, port, isIp]) => stored.call(pid, host, port, isIp === 1, null));
    // A call into a configured risky range is evidence too, named or not: its detection keeps the
    // address (detections_by_ip). Read only when the list holds ranges.
    const riskyIps = this.riskyIps.refresh(this.db);
    if (riskyIps.size > 0) {
      const atRisk = this.db
        .prepare(
          `SELECT DISTINCT d.process_id, e.host, e.port, e.is_ip, i.ip FROM detections d INDEXED BY detections_by_ip
           JOIN endpoints e ON e.id = d.endpoint_id JOIN ips i ON i.id = d.ip_id
           WHERE d.tenant_id = ? AND d.ip_id IN (SELECT value FROM json_each(?)) AND d.process_id IN (${procs.map((p) => p.id).join(',')})`,
        )
        .raw()
        .all(tenantId, JSON.stringify([...riskyIps])) as [number, string, number | null, number, string][];
      for (const [pid, host, port, isIp, ip] of atRisk) evidence.push(stored.call(pid, host, port, isIp === 1, ip));
    }
    for (const b of suspectedImpostors(evidence)) set.add(b);
    for (const b of this.otherNameImpostors(tenantId, procs)) set.add(b);
    const variants = procs.map((p): VariantRow => ({ id: p.id, process: p.norm_name, sha256: p.sha256, path: p.path, parentChain: stored.byId.get(p.id)!.chain }));
    for (const b of this.sameFileLinks(tenantId, set, variants)) set.add(b);
    return { set, processIds: this.processIdsOf(set, procs), files: flaggedFiles(set, variants), hashless: hashlessFiles(variants), hashedDaemons: hashedDaemons(procs) };
  }

  /**
   * Daemon-named binaries whose file, under another name in this tenant, made a risky call, ran from
   * a temporary or job-writable folder or from memory, or was started by a package manager or an
   * interpreter (analysis/impostor.ts sameFileOtherNameImpostors). Reads nothing more unless another
   * name shares a daemon's hash; a risky call always leaves a detection, so the rollup has it.
   */
  private otherNameImpostors(tenantId: number, procs: readonly StoredDaemonProcess[]): SuspectedImpostor[] {
    const hashes = [...new Set(procs.flatMap((p) => (p.sha256 ? [p.sha256.toLowerCase()] : [])))];
    if (hashes.length === 0) return [];
    const others = this.db
      .prepare(
        `SELECT id, norm_name, sha256, path, parent_chain FROM processes
         WHERE lower(sha256) IN (SELECT value FROM json_each(?)) AND id NOT IN (${procs.map((p) => p.id).join(',')})`,
      )
      .all(JSON.stringify(hashes)) as StoredOtherName[];
    if (others.length === 0) return [];
    // the processes dictionary is shared by the tenants: only what ran in this one counts
    const calls = this.db
      .prepare(
        `SELECT DISTINCT r.process_id, e.host FROM rollup_process_endpoint r JOIN endpoints e ON e.id = r.endpoint_id
         WHERE r.tenant_id = ? AND r.process_id IN (${others.map((o) => o.id).join(',')})`,
      )
      .raw()
      .all(tenantId) as [number, string][];
    const ran = this.ranInTenant(tenantId, others.map((o) => o.id), () => calls.map(([id]) => id));
    const daemons = procs.map((p) => ({ process: p.norm_name, sha256: p.sha256, path: p.path }));
    return sameFileOtherNameImpostors(daemons, storedOtherNameEvidence(others, calls.map(([processId, host]) => ({ processId, host })), ran, this.risky));
  }

  /**
   * The tenant's processes named like a VPN / mesh daemon. The processes dictionary is shared by the
   * tenants: another tenant's daemon must not judge this one's binaries (its hash made this tenant's
   * /tmp binary flag a tailscaled this tenant never ran, and refused this tenant's rules), as the
   * PostgreSQL store, whose dictionary is per tenant, never did.
   */
  private daemonProcesses(tenantId: number): StoredDaemonProcess[] {
    const names = daemonClaimingNames(this.db.prepare('SELECT DISTINCT norm_name FROM processes').pluck().all() as string[]);
    const all = this.db
      .prepare('SELECT id, norm_name, path, sha256, parent_chain FROM processes WHERE norm_name IN (SELECT value FROM json_each(?))')
      .all(JSON.stringify(names)) as StoredDaemonProcess[];
    if (all.length === 0) return all;
    const detected = () =>
      this.db
        .prepare(`SELECT DISTINCT process_id FROM rollup_process_endpoint WHERE tenant_id = ? AND process_id IN (${all.map((p) => p.id).join(',')})`)
        .pluck()
        .all(tenantId) as number[];
    const ran = this.ranInTenant(tenantId, all.map((p) => p.id), detected);
    return all.filter((p) => ran.has(p.id));
  }

  /**
   * Which of these processes ran in the tenant: those with a detection in it (`detected`, read only
   * when needed), and those whose calls left none (an allowed endpoint, a learning run), from its
   * observations. In a store of one tenant every process is its own, and nothing is read. Observations have no index by process: this reads them only
   * in a store of several tenants, for the few processes a verdict asks about, and the verdict is
   * kept until the store changes.
   */
  private ranInTenant(tenantId: number, ids: readonly number[], detected: () => Iterable<number>): Set<number> {
    if ((this.db.prepare('SELECT count(*) FROM tenants').pluck().get() as number) <= 1) return new Set(ids);
    const ran = new Set<number>(detected());
    const unseen = ids.filter((id) => !ran.has(id));
    if (unseen.length > 0) {
      const seen = this.db
        .prepare(
          `SELECT DISTINCT o.process_id FROM observations o JOIN runs r ON r.id = o.run_ref JOIN jobs j ON j.id = r.job_ref
           WHERE j.tenant_id = ? AND o.process_id IN (${unseen.join(',')})`,
        )
        .pluck()
        .all(tenantId) as number[];
      for (const id of seen) ran.add(id);
    }
    return ran;
  }

  /**
   * The daemon-named binaries of the tenant whose observed calls went where the list covers, by name
   * or by address: calls that left no detection count too (a learning run, an endpoint in the
   * baseline). Read when the store first remembers an entry: ingest flags such calls as it sees them
   * from then on, and a flag is kept (suspected_impostors).
   */
  observedImpostors(tenantId: number): SuspectedImpostor[] {
    const procs = this.daemonProcesses(tenantId);
    const eps = this.riskyIndex.refresh(this.db);
    const ips = this.riskyIps.refresh(this.db);
    if (procs.length === 0 || (eps.size === 0 && ips.size === 0)) return [];
    const stored = storedCallEvidence(procs, this.risky);
    const rows = this.db
      .prepare(
        `SELECT DISTINCT o.process_id, e.host, e.port, e.is_ip, i.ip FROM observations o
         JOIN runs r ON r.id = o.run_ref JOIN jobs j ON j.id = r.job_ref JOIN endpoints e ON e.id = o.endpoint_id LEFT JOIN ips i ON i.id = o.ip_id
         WHERE j.tenant_id = ? AND o.process_id IN (${procs.map((p) => p.id).join(',')})
           AND (o.endpoint_id IN (SELECT value FROM json_each(?)) OR o.ip_id IN (SELECT value FROM json_each(?)))`,
      )
      .raw()
      .all(tenantId, JSON.stringify([...eps]), JSON.stringify([...ips])) as [number, string, number | null, number, string | null][];
    return suspectedImpostors(rows.map(([pid, host, port, isIp, ip]) => stored.call(pid, host, port, isIp === 1, ip)));
  }

  /**
   * The other identity of a flagged binary's file within a run (analysis/impostor-links.ts). Reads
   * nothing more unless some flagged binary has a partner at its path: the runs where a flagged
   * variant called come from its detections (detections_by_process), the partners seen in those
   * runs from observations and detections (both keyed by run first; imported detections have no
   * observations).
   */
  private sameFileLinks(tenantId: number, set: ImpostorSet, variants: VariantRow[]): SuspectedImpostor[] {
    const pairs = pathPartners(set, variants);
    if (pairs.partners.length === 0) return [];
    const calls = this.db
      .prepare(
        `SELECT DISTINCT d.run_ref, d.process_id, e.host, e.port, e.is_ip, i.ip FROM detections d JOIN endpoints e ON e.id = d.endpoint_id
         LEFT JOIN ips i ON i.id = d.ip_id
         WHERE d.tenant_id = ? AND d.process_id IN (${pairs.flagged.map((v) => v.id).join(',')})`,
      )
      .raw()
      .all(tenantId) as [number, number, string, number | null, number, string | null][];
    const flaggedCalls = calls.map(([run, variant, host, port, isIp, ip]) => ({ run, variant, host, port, isIp: isIp === 1, ...riskyOfCall(this.risky, host, ip) }));
    const runs = [...new Set(calls.map((c) => c[0]))];
    if (runs.length === 0) return [];
    const partnerIds = pairs.partners.map((v) => v.id).join(',');
    const runList = runs.join(',');
    const seen = this.db
      .prepare(
        `SELECT run_ref, process_id FROM observations WHERE run_ref IN (${runList}) AND process_id IN (${partnerIds})
         UNION SELECT run_ref, process_id FROM detections WHERE tenant_id = ? AND run_ref IN (${runList}) AND process_id IN (${partnerIds})`,
      )
      .raw()
      .all(tenantId) as [number, number][];
    if (seen.length === 0) return [];
    const labels = new Map(
      (this.db.prepare(`SELECT id, run_id, run_attempt FROM runs WHERE id IN (${runList})`).raw().all() as [number, string, number][]).map(([id, runId, attempt]) => [
        id,
        `${runId} attempt ${attempt}`,
      ]),
    );
    return sameFileImpostors(set, pairs, flaggedCalls, seen.map(([run, variant]) => ({ run, variant })), (r) => labels.get(r) ?? String(r));
  }

  /** Records a binary flagged at ingest (idempotent). */
  flagImpostor(tenantId: number, b: SuspectedImpostor): void {
    this.db
      .prepare('INSERT OR IGNORE INTO suspected_impostors (tenant_id, process, binary, sha256, path, reason) VALUES (?, ?, ?, ?, ?, ?)')
      .run(tenantId, b.process, binaryKey(b), b.sha256, b.path, b.reason);
  }

  /** Process ids (of the shared dictionary) that are binaries of the set. */
  processIdsOf(set: ImpostorSet, procs?: { id: number; norm_name: string; path: string | null; sha256: string | null }[]): number[] {
    if (set.size === 0) return [];
    type Row = { id: number; norm_name: string; path: string | null; sha256: string | null };
    const names = [...new Set(set.list().map((b) => b.process))];
    const hashes = set.hashes();
    // by name, and by hash under any name (ImpostorSet.flagOf): the daemon-named `procs` the caller may
    // pass hold no copy of the file under a name that is no daemon's, so those are read here
    const byHash = hashes.length
      ? (this.db.prepare(`SELECT id, norm_name, path, sha256 FROM processes WHERE sha256 COLLATE NOCASE IN (${hashes.map(() => '?').join(',')})`).all(...hashes) as Row[])
      : [];
    const rows = [
      ...(procs ?? (this.db.prepare(`SELECT id, norm_name, path, sha256 FROM processes WHERE norm_name IN (${names.map(() => '?').join(',')})`).all(...names) as Row[])),
      ...byHash,
    ];
    return [...new Set(rows.filter((p) => set.flagOf({ process: p.norm_name, sha256: p.sha256, path: p.path }) !== null).map((p) => p.id))];
  }

  /** Puts these process ids in temp.rm_procs (for a hand-built predicate with dims.process). */
  fillProcesses(ids: number[]): void {
    this.ensureTemps();
    this.fill('rm_procs', ids);
  }

  /** The same predicate minus detections of these process ids (suspected impostors). */
  excludeProcesses(pred: MatchPredicate, ids: number[]): MatchPredicate {
    if (!pred.possible || ids.length === 0) return pred;
    this.ensureTemps();
    this.fill('rm_impostors', ids);
    return { ...pred, sql: `${pred.sql} AND process_id NOT IN (SELECT id FROM temp.rm_impostors)` };
  }

  /** Currently-new detections matching the predicate, per process id among `ids`. */
  newCountsOf(pred: MatchPredicate, ids: number[]): Map<number, number> {
    const out = new Map<number, number>();
    if (!pred.possible || ids.length === 0) return out;
    this.ensureTemps();
    this.fill('rm_impostors', ids);
    const table = pred.dims.ip || (pred.dims.endpoint && pred.dims.job) ? null : pred.dims.endpoint ? 'rollup_process_endpoint' : 'rollup_process_job';
    const onImpostors = `${pred.sql} AND process_id IN (SELECT id FROM temp.rm_impostors)`;
    // the fine rollups: every detection of a key, less the held (not new) ones
    const [sql, params] = table
      ? [`SELECT process_id, sum(n) FROM ${table} WHERE ${onImpostors} AND status = 0 AND rule_id = 0 GROUP BY process_id`, pred.params]
      : [`SELECT process_id, sum(n) FROM ${fineNew('process_id', onImpostors)} GROUP BY process_id HAVING sum(n) <> 0`, [...pred.params, ...pred.params]];
    for (const [pid, n] of this.db
      .prepare(sql)
      .raw()
      .all(...params) as [number, number][]) {
      out.set(pid, n);
    }
    return out;
  }

  /**
   * Exact counts of currently-new detections matching the predicate (rollups only). The coarse
   * rollups are marginals of detection_rollup, so when the predicate tests no dimension a coarse
   * table lacks, it gives the same sums over far fewer rows: rollup_process_endpoint when it tests
   * neither job scope nor ip, rollup_process_job (by job/process) when it tests neither endpoint nor
   * ip. Otherwise the fine rollup.
   */
  previewCounts(pred: MatchPredicate, sampleLimit = 10, countsOnly = false): PreviewCounts {
    const out: PreviewCounts = { total: 0, risky: 0, byProcess: [], byRepo: [], riskySamples: [], sampleIds: [] };
    if (!pred.possible) return out;
    // Risky addresses are known only to the fine rollups (the coarse ones have no address).
    const byAddress = this.loadRisky();
    const byEndpoint = !pred.dims.job && !pred.dims.ip && !byAddress;
    const byJob = !pred.dims.endpoint && !pred.dims.ip && !byAddress;
    const riskyRow = riskyRowSql(byAddress);
    // The coarse rollups key by (status, rule); the fine ones give new = every detection - held.
    const fine = { from: `${fineNew('job_ref, process_id, endpoint_id, ip_id', pred.sql)} AS f WHERE true`, params: [...pred.params, ...pred.params] };
    // totals and risky samples: from the endpoint rollup when the predicate tests nothing it lacks
    const source = byEndpoint ? { from: `rollup_process_endpoint WHERE ${pred.sql} AND status = 0 AND rule_id = 0`, params: pred.params } : fine;
    const totals = (): [number, number] =>
      this.db
        .prepare(
          `SELECT coalesce(sum(n), 0), coalesce(sum(CASE WHEN ${riskyRow} THEN n ELSE 0 END), 0)
           FROM ${source.from}`,
        )
        .raw()
        .get(...source.params) as [number, number];
    if (countsOnly) {
      // Same predicate, totals only (used for suggestion impact): no grouping, no sort.
      [out.total, out.risky] = totals();
      if (out.risky === 0) return out;
      sampleLimit = 0;
    }
    let rows: [number, number, number, number][];
    if (byJob) {
      // (job, process) sums from the job rollup; the risky share from the endpoint rollup.
      rows = this.db
        .prepare(`SELECT job_ref, process_id, 0, sum(n) FROM rollup_process_job WHERE ${pred.sql} AND status = 0 AND rule_id = 0 GROUP BY job_ref, process_id`)
        .raw()
        .all(...pred.params) as [number, number, number, number][];
      out.risky = countsOnly ? out.risky : totals()[1];
      out.total = 0;
    } else {
      rows = this.db
        .prepare(
          `SELECT job_ref, process_id, ${riskyRow} AS risky, sum(n) AS n
           FROM ${fine.from} GROUP BY job_ref, process_id, risky HAVING sum(n) <> 0`,
        )
        .raw()
        .all(...fine.params) as [number, number, number, number][];
      out.total = 0;
      out.risky = 0;
    }
    if (rows.length === 0) return out;
    const jobs = new Map<number, { owner: string; repo: string }>();
    const procs = new Map<number, string>();
    const jobStmt = this.db.prepare('SELECT owner, repo FROM jobs WHERE id = ?');
    const procStmt = this.db.prepare('SELECT norm_name FROM processes WHERE id = ?').pluck();
    const byProc = new Map<string, number>();
    const byRepo = new Map<string, { owner: string; repo: string; count: number }>();
    for (const [jobRef, pid, risky, n] of rows) {
      out.total += n;
      if (risky) out.risky += n;
      let j = jobs.get(jobRef);
      if (!j) {
        j = jobStmt.get(jobRef) as { owner: string; repo: string };
        jobs.set(jobRef, j);
      }
      let p = procs.get(pid);
      if (p === undefined) {
        p = procStmt.get(pid) as string;
        procs.set(pid, p);
      }
      byProc.set(p, (byProc.get(p) ?? 0) + n);
      const rk = `${j.owner}/${j.repo}`;
      const e = byRepo.get(rk) ?? { owner: j.owner, repo: j.repo, count: 0 };
      e.count += n;
      byRepo.set(rk, e);
    }
    out.byProcess = [...byProc].map(([process, count]) => ({ process, count })).sort((a, b) => b.count - a.count || cmp(a.process, b.process));
    out.byRepo = [...byRepo.values()].sort((a, b) => b.count - a.count || cmp(`${a.owner}/${a.repo}`, `${b.owner}/${b.repo}`));
    if (out.risky > 0) {
      // the address too when the call is risky by it alone (its destination is not on the list)
      const ipCol = byAddress ? 'ip_id' : 'NULL AS ip_id';
      out.riskySamples = (
        this.db
          .prepare(
            `SELECT e.endpoint, p.norm_name AS process, CASE WHEN r.endpoint_id IN (SELECT id FROM temp.rm_risky) THEN NULL ELSE i.ip END AS address,
               sum(r.n) AS count
             FROM (SELECT endpoint_id, process_id, ${ipCol}, n FROM ${source.from} AND ${riskyRow}) r
             JOIN endpoints e ON e.id = r.endpoint_id JOIN processes p ON p.id = r.process_id LEFT JOIN ips i ON i.id = r.ip_id
             GROUP BY e.endpoint, p.norm_name, address HAVING count <> 0 ORDER BY count DESC, e.endpoint, address, p.norm_name LIMIT 20`,
          )
          .all(...source.params) as { endpoint: string; process: string; address: string | null; count: number }[]
      ).map(riskySample);
    }
    if (sampleLimit > 0) {
      out.sampleIds = this.db
        .prepare(`SELECT d.id FROM detections d WHERE ${pred.sql.replace(COLS, 'd.$1')} AND ${statusOf('d')} = 0 LIMIT ?`)
        .pluck()
        .all(...pred.params, sampleLimit) as number[];
    }
    return out;
  }

  /**
   * Moves the matching detections from (from.status, from.rule) to (to.status, to.rule): their rows
   * in detection_status, their held rollup rows and their coarse rollup rows (detection_rollup
   * counts every status, so it does not change). Returns the number of detections moved; throws if
   * the rollups and the detections disagree. Must run inside a transaction.
   */
  move(pred: MatchPredicate, from: { status: number; rule: number }, to: { status: number; rule: number }): number {
    if (!pred.possible) return 0;
    this.ensureTemps();
    this.db.prepare('DELETE FROM temp.rm_moved').run();
    const whole = from.status !== 0 && this.wholeRule(pred, from);
    const expected = from.status === 0 ? this.selectNew(pred) : this.selectHeld(pred, from, 'rm_moved');
    if (expected === 0) return 0;
    const changed = this.moveStatusRows(pred, from, to, whole);
    if (changed !== expected) {
      throw new Error(`rollup out of step: ${expected} detections in rollup rows, ${changed} status rows moved; transaction rolled back`);
    }
    const held = 'tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id';
    if (from.status !== 0) {
      // whole held rows move: a rule matches whole keys
      const rows = this.db.prepare('SELECT count(*) FROM temp.rm_moved').pluck().get() as number;
      const deleted = whole
        ? this.db
            .prepare(`DELETE FROM detection_rollup_held WHERE tenant_id = ? AND type_id = ? AND status = ${Number(from.status)} AND rule_id = ${Number(from.rule)}`)
            .run(pred.params[0], pred.params[1]).changes
        : this.db
            .prepare(
              `DELETE FROM detection_rollup_held WHERE (${held}) IN
               (SELECT tenant_id, type_id, ${Number(from.status)}, ${Number(from.rule)}, day, job_ref, process_id, endpoint_id, ip_id FROM temp.rm_moved)`,
            )
            .run().changes;
      if (deleted !== rows) throw new Error(`rollup move: ${rows} held rows selected, ${deleted} deleted; transaction rolled back`);
    }
    if (to.status !== 0) {
      this.db
        .prepare(
          `INSERT INTO detection_rollup_held (${held}, n)
           SELECT tenant_id, type_id, ${Number(to.status)}, ${Number(to.rule)}, day, job_ref, process_id, endpoint_id, ip_id, n FROM temp.rm_moved WHERE true
           ON CONFLICT (${held}) DO UPDATE SET n = n + excluded.n`,
        )
        .run();
    }
    const where = `${pred.sql} AND status = ? AND rule_id = ?`;
    this.moveCoarse(pred, where, [...pred.params, from.status, from.rule], from, to);
    return changed;
  }

  /**
   * True when the predicate is "all of this type" and the rule holds detections of that type only
   * (the coarse rollups say so; a rule id belongs to one tenant): the rule's rows are then exactly
   * the matched ones, found by rule alone.
   */
  private wholeRule(pred: MatchPredicate, from: { status: number; rule: number }): boolean {
    const d = pred.dims;
    if (d.job || d.process || d.endpoint || d.ip) return false;
    const types = this.db
      .prepare(`SELECT DISTINCT type_id FROM rollup_process_day WHERE tenant_id = ? AND status = ${Number(from.status)} AND rule_id = ${Number(from.rule)}`)
      .pluck()
      .all(pred.params[0]) as number[];
    return types.length === 1 && types[0] === Number(pred.params[1]);
  }

  /**
   * Inserts into temp.`into` the (key, n) of the rows of `table` the predicate matches, `fixed`
   * giving held rows their (status, rule). Seeks instead of scanning the whole (tenant, type[,
   * status, rule]) range when the predicate names processes or jobs: the coarse rollups at
   * `coarse` (status, rule) list the days and jobs they have rows in, and (day, job[, process]) is a
   * key prefix of both fine rollups after (tenant, type[, status, rule]).
   */
  private selectRows(
    table: 'detection_rollup' | 'detection_rollup_held',
    pred: MatchPredicate,
    coarse: { status: number; rule: number },
    into: string,
  ): void {
    const cols = 'r.tenant_id, r.type_id, r.day, r.job_ref, r.process_id, r.endpoint_id, r.ip_id, r.n';
    const fixed = table === 'detection_rollup_held' ? ` AND r.status = ${Number(coarse.status)} AND r.rule_id = ${Number(coarse.rule)}` : '';
    const match = pred.sql.replace(COLS, 'r.$1');
    if (pred.dims.process || pred.dims.job) {
      const tenantId = Number(pred.params[0]);
      const typeId = Number(pred.params[1]);
      const key = `tenant_id = ${tenantId} AND type_id = ${typeId} AND status = ${Number(coarse.status)} AND rule_id = ${Number(coarse.rule)}`;
      const procIn = pred.dims.process ? ' AND process_id IN (SELECT id FROM temp.rm_procs)' : '';
      const jobIn = pred.dims.job ? ' AND job_ref IN (SELECT id FROM temp.rm_jobs)' : '';
      this.db
        .prepare(
          `INSERT INTO temp.${into} SELECT ${cols}
           FROM (SELECT DISTINCT day AS dday FROM rollup_process_day WHERE ${key}${procIn}) AS dd
           CROSS JOIN (SELECT DISTINCT job_ref AS jref FROM rollup_process_job WHERE ${key}${procIn}${jobIn}) AS jj
           ${pred.dims.process ? 'CROSS JOIN (SELECT id AS pid FROM temp.rm_procs) AS pp' : ''}
           CROSS JOIN ${table} AS r
           WHERE r.tenant_id = ${tenantId} AND r.type_id = ${typeId}${fixed} AND r.day = dd.dday AND r.job_ref = jj.jref
             ${pred.dims.process ? 'AND r.process_id = pp.pid' : ''} AND ${match}`,
        )
        .run(...pred.params);
    } else {
      this.db.prepare(`INSERT INTO temp.${into} SELECT ${cols} FROM ${table} AS r WHERE ${match}${fixed}`).run(...pred.params);
    }
  }

  /** Fills temp.`into` with the held rows of (from.status, from.rule) the predicate matches; returns their total. */
  private selectHeld(pred: MatchPredicate, from: { status: number; rule: number }, into: string): number {
    this.selectRows('detection_rollup_held', pred, from, into);
    return (this.db.prepare(`SELECT coalesce(sum(n), 0) FROM temp.${into}`).pluck().get() as number) ?? 0;
  }

  /**
   * Fills temp.rm_moved with the new detections the predicate matches, per fine key: every
   * detection of each matched key, less its held ones (of any status and rule). A rule matches whole
   * keys, so all the new detections of a matched key move.
   */
  private selectNew(pred: MatchPredicate): number {
    const db = this.db;
    this.selectRows('detection_rollup', pred, { status: 0, rule: 0 }, 'rm_moved');
    const procIn = pred.dims.process ? ' AND process_id IN (SELECT id FROM temp.rm_procs)' : '';
    const heldKeys = db
      .prepare(`SELECT DISTINCT status, rule_id FROM rollup_process_day WHERE tenant_id = ? AND type_id = ? AND status <> 0${procIn}`)
      .raw()
      .all(pred.params[0], pred.params[1]) as [number, number][];
    if (heldKeys.length > 0) {
      db.prepare('DELETE FROM temp.rm_held').run();
      for (const [status, rule] of heldKeys) this.selectRows('detection_rollup_held', pred, { status, rule }, 'rm_held');
      const key = ['tenant_id', 'type_id', 'day', 'job_ref', 'process_id', 'endpoint_id', 'ip_id'].map((c) => `m.${c} = h.${c}`).join(' AND ');
      db.prepare('DELETE FROM temp.rm_held_sum').run();
      db.prepare(
        `INSERT INTO temp.rm_held_sum SELECT tenant_id, type_id, day, job_ref, process_id, endpoint_id, ip_id, sum(n) FROM temp.rm_held
         GROUP BY tenant_id, type_id, day, job_ref, process_id, endpoint_id, ip_id`,
      ).run();
      db.prepare(`UPDATE temp.rm_moved AS m SET n = m.n - h.n FROM temp.rm_held_sum AS h WHERE ${key}`).run();
      db.prepare('DELETE FROM temp.rm_moved WHERE n = 0').run();
    }
    return (db.prepare('SELECT coalesce(sum(n), 0) FROM temp.rm_moved').pluck().get() as number) ?? 0;
  }

  /**
   * Moves the status rows. From new: the candidate detections come from the cheapest index (the
   * coarse rollups give how many rows each would visit), sorted by id; each is checked against the
   * predicate (in its table row, unless the index alone decides it) and for having no status row,
   * and gets one. From a rule: its rows (by-rule index) that the predicate matches are deleted (to
   * new) or re-pointed; `whole` when all of them match.
   */
  private moveStatusRows(pred: MatchPredicate, from: { status: number; rule: number }, to: { status: number; rule: number }, whole: boolean): number {
    const db = this.db;
    const set = `status = ${Number(to.status)}, rule_id = ${Number(to.rule)}`;
    if (from.status === 0) {
      const c = this.candidateIds(pred);
      const fresh = 'NOT EXISTS (SELECT 1 FROM detection_status AS x WHERE x.id = c.id)';
      const sql =
        c === null
          ? `SELECT d.id, ${Number(to.status)}, ${Number(to.rule)} FROM detections AS d NOT INDEXED
             WHERE ${pred.sql.replace(COLS, 'd.$1')} AND NOT EXISTS (SELECT 1 FROM detection_status AS x WHERE x.id = d.id)`
          : c.decides
            ? `SELECT c.id, ${Number(to.status)}, ${Number(to.rule)} FROM temp.rm_rows AS c WHERE ${fresh}`
            : `SELECT d.id, ${Number(to.status)}, ${Number(to.rule)} FROM temp.rm_rows AS c CROSS JOIN detections AS d ON d.id = c.id
               WHERE ${pred.sql.replace(COLS, 'd.$1')} AND ${fresh}`;
      const changed = db.prepare(`INSERT INTO detection_status (id, status, rule_id) ${sql}`).run(...(c?.decides ? [] : pred.params)).changes;
      if (c !== null) db.prepare('DELETE FROM temp.rm_rows').run();
      return changed;
    }
    // a rule id > 0 is a suppression (status 1); the marker -id too: the rule alone finds its rows
    const onRule = `rule_id = ${Number(from.rule)} AND status = ${Number(from.status)}`;
    if (whole) {
      return to.status === 0
        ? db.prepare(`DELETE FROM detection_status WHERE ${onRule}`).run().changes
        : db.prepare(`UPDATE detection_status SET ${set} WHERE ${onRule}`).run().changes;
    }
    db.prepare('DELETE FROM temp.rm_rows').run();
    db.prepare(
      `INSERT INTO temp.rm_rows SELECT s.id FROM detection_status AS s INDEXED BY detection_status_by_rule CROSS JOIN detections AS d ON d.id = s.id
       WHERE s.${onRule.replace(' AND status', ' AND s.status')} AND ${pred.sql.replace(COLS, 'd.$1')}`,
    ).run(...pred.params);
    const changed =
      to.status === 0
        ? db.prepare('DELETE FROM detection_status WHERE id IN (SELECT id FROM temp.rm_rows)').run().changes
        : db.prepare(`UPDATE detection_status SET ${set} WHERE id IN (SELECT id FROM temp.rm_rows)`).run().changes;
    db.prepare('DELETE FROM temp.rm_rows').run();
    return changed;
  }

  /**
   * Fills temp.rm_rows with the ids of a superset of the matching detections, read from one index
   * only (no table rows); null when a scan of the table is cheaper. The coarse rollups give the exact
   * number of entries each candidate index would visit (all statuses): by process
   * (detections_by_process), by job (the runs of the matched jobs, through the (run_ref, ...) unique
   * index), by endpoint (detections_by_endpoint). Ids come out sorted, so the detections are then
   * read in table order, each page once. `decides`: the index alone decides the predicate (it tests
   * only that index's dimension, and every detection of the tenant there is of the predicate's type),
   * so no table row needs reading.
   */
  private candidateIds(pred: MatchPredicate): { decides: boolean } | null {
    const tenantId = pred.params[0];
    const sum = (sql: string) => (this.db.prepare(sql).pluck().get(tenantId) as number | null) ?? 0;
    const total = sum('SELECT sum(n) FROM rollup_process_day WHERE tenant_id = ?');
    // a sequential scan visits every row but costs less per row than reading rows by id
    let best: { cost: number; sql: string; only: string; coarse: string } | null = null;
    // every candidate query takes the tenant id as its one parameter
    const consider = (cost: number, sql: string, only = '', coarse = '') => {
      if (cost < (best?.cost ?? total / 3)) best = { cost, sql, only, coarse };
    };
    const procIn = 'process_id IN (SELECT id FROM temp.rm_procs)';
    const epIn = 'endpoint_id IN (SELECT id FROM temp.rm_eps)';
    if (pred.dims.process) {
      consider(
        sum(`SELECT sum(n) FROM rollup_process_day WHERE tenant_id = ? AND ${procIn}`),
        `SELECT id FROM detections INDEXED BY detections_by_process WHERE tenant_id = ? AND ${procIn}`,
        procIn,
        `rollup_process_day WHERE tenant_id = ? AND ${procIn}`,
      );
    }
    if (pred.dims.job) {
      consider(
        sum('SELECT sum(n) FROM rollup_process_job WHERE tenant_id = ? AND job_ref IN (SELECT id FROM temp.rm_jobs)'),
        `SELECT id FROM detections INDEXED BY sqlite_autoindex_detections_1 WHERE run_ref IN (SELECT id FROM runs WHERE job_ref IN (SELECT id FROM temp.rm_jobs) AND job_ref IN (SELECT id FROM jobs WHERE tenant_id = ?))`,
      );
    }
    if (pred.dims.endpoint) {
      consider(
        sum(`SELECT sum(n) FROM rollup_process_endpoint WHERE tenant_id = ? AND ${epIn}`),
        `SELECT id FROM detections INDEXED BY detections_by_endpoint WHERE tenant_id = ? AND ${epIn}`,
        epIn,
        `rollup_process_endpoint WHERE tenant_id = ? AND ${epIn}`,
      );
    }
    if (best === null) return null;
    const b = best as { sql: string; only: string; coarse: string };
    this.db.prepare('DELETE FROM temp.rm_rows').run();
    this.db.prepare(`INSERT INTO temp.rm_rows ${b.sql}`).run(tenantId);
    let decides = false;
    if (b.only && pred.sql === `tenant_id = ? AND type_id = ? AND ${b.only}`) {
      const types = this.db.prepare(`SELECT DISTINCT type_id FROM ${b.coarse}`).pluck().all(tenantId) as number[];
      decides = types.length === 1 && types[0] === Number(pred.params[1]);
    }
    return { decides };
  }

  /**
   * Applies the moved sums to the coarse rollups: minus at `from`, plus at `to`, set-based. When the
   * predicate tests only dimensions a coarse table has, that table's own matching rows are exactly
   * the moved marginal; otherwise one pass over temp.rm_moved aggregates it in integer-keyed maps.
   */
  private moveCoarse(
    pred: MatchPredicate,
    where: string,
    params: unknown[],
    from: { status: number; rule: number },
    to: { status: number; rule: number },
  ): void {
    const db = this.db;
    const d = pred.dims;
    const self = (col: string) =>
      !d.ip && (col === 'endpoint_id' ? !d.job : col === 'job_ref' ? !d.endpoint : !d.job && !d.endpoint);
    const fromMoved = COARSE_TABLES.filter(([, col]) => !self(col));
    const sums = new Map<string, Map<string, Map<number, number>>>();
    if (fromMoved.length) {
      for (const [, col] of fromMoved) sums.set(col, new Map());
      const targets = fromMoved.map(([, col]) => [col, sums.get(col)!] as const);
      for (const row of db
        .prepare('SELECT tenant_id, type_id, process_id, endpoint_id, job_ref, day, n FROM temp.rm_moved')
        .iterate() as Iterable<{ tenant_id: number; type_id: number; process_id: number; endpoint_id: number; job_ref: number; day: number; n: number }>) {
        const outer = `${row.tenant_id}/${row.type_id}/${row.process_id}`;
        for (const [col, m] of targets) {
          let inner = m.get(outer);
          if (!inner) {
            inner = new Map();
            m.set(outer, inner);
          }
          const k = row[col as 'endpoint_id' | 'job_ref' | 'day'];
          inner.set(k, (inner.get(k) ?? 0) + row.n);
        }
      }
    }
    db.exec(`CREATE TEMP TABLE IF NOT EXISTS rm_delta (
      tenant_id INTEGER, type_id INTEGER, process_id INTEGER, k INTEGER, n INTEGER,
      PRIMARY KEY (tenant_id, type_id, process_id, k)) WITHOUT ROWID`);
    const ins = db.prepare('INSERT INTO temp.rm_delta (tenant_id, type_id, process_id, k, n) VALUES (?, ?, ?, ?, ?)');
    for (const [table, col] of COARSE_TABLES) {
      db.prepare('DELETE FROM temp.rm_delta').run();
      const m = sums.get(col);
      if (m) {
        for (const [outer, inner] of m) {
          const [tenant, type, proc] = outer.split('/').map(Number) as [number, number, number];
          for (const [k, n] of inner) ins.run(tenant, type, proc, k, n);
        }
      } else {
        db.prepare(`INSERT INTO temp.rm_delta SELECT tenant_id, type_id, process_id, ${col}, n FROM ${table} WHERE ${where}`).run(...params);
      }
      const key = `t.tenant_id = d.tenant_id AND t.type_id = d.type_id AND t.status = ${Number(from.status)} AND t.rule_id = ${Number(from.rule)}
        AND t.process_id = d.process_id AND t.${col} = d.k`;
      db.prepare(`UPDATE ${table} AS t SET n = t.n - d.n FROM temp.rm_delta AS d WHERE ${key}`).run();
      db.prepare(`DELETE FROM ${table} AS t WHERE t.n = 0 AND EXISTS (SELECT 1 FROM temp.rm_delta AS d WHERE ${key})`).run();
      db.prepare(
        `INSERT INTO ${table} (tenant_id, type_id, status, rule_id, process_id, ${col}, n)
         SELECT tenant_id, type_id, ${Number(to.status)}, ${Number(to.rule)}, process_id, k, n FROM temp.rm_delta WHERE true
         ON CONFLICT (tenant_id, type_id, status, rule_id, process_id, ${col}) DO UPDATE SET n = n + excluded.n`,
      ).run();
    }
  }

  /**
   * Predicate for "suppressed by this rule" (restore on delete), one detection type at a time so the
   * rollup reads are primary-key ranges (tenant, type, status, rule). A rule's type can change
   * through update, so restore covers every type the rule has suppressions in (ruleTypes).
   */
  rulePredicate(tenantId: number, typeId: number): MatchPredicate {
    return { possible: true, sql: 'tenant_id = ? AND type_id = ?', params: [tenantId, typeId], dims: NO_DIMS };
  }

  /** Detection types that have detections suppressed by this rule. */
  ruleTypes(tenantId: number, ruleId: number): number[] {
    return this.db
      .prepare('SELECT DISTINCT type_id FROM rollup_process_day WHERE tenant_id = ? AND status = 1 AND rule_id = ? ORDER BY type_id')
      .pluck()
      .all(tenantId, ruleId) as number[];
  }

  /**
   * Moves every detection of these process ids that is not `new` back to `new`: suppressed by a
   * rule, or suppressed or resolved upstream (an imported detection, rule 0). Used when ingest first
   * sees a binary contradict the daemon it is named after: an imported detection of a suspected
   * impostor arrives as `new` whatever status its export gave it, and one imported before the binary
   * was flagged must end the same. Must run inside a write transaction. Returns how many moved.
   */
  releaseProcesses(tenantId: number, processIds: number[]): number {
    if (processIds.length === 0) return 0;
    const rows = this.db
      .prepare(
        `SELECT DISTINCT type_id, status, rule_id FROM rollup_process_day WHERE tenant_id = ? AND status <> 0
         AND process_id IN (${processIds.map(Number).join(',')})`,
      )
      .raw()
      .all(tenantId) as [number, number, number][];
    let moved = 0;
    for (const [typeId, status, ruleId] of rows) {
      this.fillProcesses(processIds);
      const pred: MatchPredicate = {
        possible: true,
        sql: 'tenant_id = ? AND type_id = ? AND process_id IN (SELECT id FROM temp.rm_procs)',
        params: [tenantId, typeId],
        dims: { job: false, process: true, endpoint: false, ip: false },
      };
      moved += this.move(pred, { status, rule: ruleId }, { status: 0, rule: 0 });
    }
    return moved;
  }

  /**
   * Moves the detections that the risky list covers (by destination, or by address for a range), of
   * every tenant, that are not new back to new: suppressed by a rule, or suppressed or resolved
   * upstream (imported), as releaseProcesses does for impostors. Returns how many moved.
   */
  releaseRisky(): number {
    const byAddress = this.loadRisky();
    const risky = riskyRowSql(byAddress);
    const held = this.db
      .prepare(`SELECT DISTINCT tenant_id, type_id, status, rule_id FROM detection_rollup_held WHERE status <> 0 AND ${risky}`)
      .raw()
      .all() as [number, number, number, number][];
    let moved = 0;
    for (const [tenantId, typeId, status, ruleId] of held) {
      // the ip dimension keeps every step on the fine rollups, which hold both columns tested
      const pred: MatchPredicate = { possible: true, sql: `tenant_id = ? AND type_id = ? AND ${risky}`, params: [tenantId, typeId], dims: { job: false, process: false, endpoint: true, ip: true } };
      moved += this.move(pred, { status, rule: ruleId }, { status: 0, rule: 0 });
    }
    return moved;
  }

  activeRules(tenantId: number): RuleRow[] {
    return this.db
      .prepare('SELECT * FROM rules WHERE tenant_id = ? AND deleted_on IS NULL ORDER BY id')
      .all(tenantId) as RuleRow[];
  }

  ruleByUid(tenantId: number, uid: string): RuleRow | undefined {
    return this.db.prepare('SELECT * FROM rules WHERE tenant_id = ? AND rule_uid = ? AND deleted_on IS NULL').get(tenantId, uid) as RuleRow | undefined;
  }

  bumpRulesVersion(): void {
    this.db
      .prepare(
        `INSERT INTO meta (key, value) VALUES ('rules_version', '1')
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)`,
      )
      .run();
  }

  audit(tenantId: number, uid: string, action: string, actor: string, before: unknown, after: unknown, affected: number, at: string = new Date().toISOString()): void {
    this.db
      .prepare(
        'INSERT INTO rule_audit (tenant_id, rule_uid, action, actor, at, before_json, after_json, affected) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
      )
      .run(
        tenantId,
        uid,
        action,
        actor,
        at,
        before === null ? null : JSON.stringify(before),
        after === null ? null : JSON.stringify(after),
        affected,
      );
  }
}

/**
 * Rows (cols, n) of the new detections of each fine key matching `where`: every detection of the key
 * (detection_rollup) and, with n negated, its held ones. Sum n over them; pass where's params twice.
 */
/**
 * A row (detection or fine rollup) is risky: its endpoint is in temp.rm_risky, or, when the list has
 * ranges that some address falls in (`byAddress`, loadRisky), its address is in temp.rm_risky_ips.
 */
function riskyRowSql(byAddress: boolean): string {
  return byAddress
    ? '(endpoint_id IN (SELECT id FROM temp.rm_risky) OR ip_id IN (SELECT id FROM temp.rm_risky_ips))'
    : 'endpoint_id IN (SELECT id FROM temp.rm_risky)';
}

function fineNew(cols: string, where: string): string {
  return `(SELECT ${cols}, n FROM detection_rollup WHERE ${where} UNION ALL SELECT ${cols}, -n AS n FROM detection_rollup_held WHERE ${where})`;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
