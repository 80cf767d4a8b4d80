import type { PgClient, PgPool } from './pool.js';
import { matchEndpoint, matchIp, matchJob, matchProcess, type CompiledRule } from '../../rules/matcher.js';
import type { RiskyDestinations } from '../../analysis/risky-destinations.js';
import { hashedDaemons, riskyOfCall, sameFileOtherNameImpostors, storedCallEvidence, storedOtherNameEvidence, suspectedImpostors, type BinaryRef, type CallEvidence, type StoredOtherName, type SuspectedImpostor } from '../../analysis/impostor.js';
import { daemonClaimingNames } from '../../analysis/vpn-signatures.js';
import { flaggedFiles, hashlessFiles, pathPartners, sameFileImpostors, type VariantRow } from '../../analysis/impostor-links.js';
import { ImpostorSet } from '../../rules/guards.js';

/**
 * A compiled rule evaluated over one tenant's dictionaries (jobs, processes, endpoints, ips: per
 * tenant on PostgreSQL), as SQLite does over its own: each dimension the rule tests becomes an id
 * array, and the predicate is `column = ANY(ids)` over columns that detections and
 * detection_rollup share, so counts (rollup) and moves (detections) test exactly the same thing.
 */

type Db = PgPool | PgClient;

/** Numbered parameters of one statement. */
export class Params {
  readonly values: unknown[] = [];
  add(v: unknown): string {
    this.values.push(v);
    return `$${this.values.length}`;
  }
}

export interface PgPredicate {
  /** false when a tested dimension matched no dictionary row: the rule matches nothing */
  possible: boolean;
  /** conditions over unqualified detection / rollup columns, beyond tenant_id (type included) */
  sql(p: Params): string;
}

const NOTHING: PgPredicate = { possible: false, sql: () => 'false' };

export async function typeIdOf(db: Db, type: string): Promise<number | undefined> {
  return (await db.query<{ id: number }>('SELECT id FROM detection_types WHERE name = $1', [type])).rows[0]?.id;
}

export async function ensureTypeId(db: Db, type: string): Promise<number> {
  await db.query('INSERT INTO detection_types (name) VALUES ($1) ON CONFLICT DO NOTHING', [type]);
  return (await typeIdOf(db, type))!;
}

/** The rule's predicate within the tenant; `typeId` undefined (the type was never stored) matches nothing. */
export async function rulePredicate(db: Db, tenantId: number, typeId: number | undefined, r: CompiledRule): Promise<PgPredicate> {
  if (typeId === undefined || r.impossible !== null) return NOTHING;
  const dims: { col: string; ids: number[] }[] = [];
  if (r.hasScope) {
    const rows = (await db.query<{ id: number; owner: string; repo: string; workflow: string; job: string }>('SELECT id, owner, repo, workflow, job FROM jobs WHERE tenant_id = $1', [tenantId])).rows;
    dims.push({ col: 'job_ref', ids: rows.filter((j) => matchJob(r, j.owner, j.repo, j.workflow, j.job)).map((j) => j.id) });
  }
  if (r.hasProcess) {
    const rows = (await db.query<{ id: number; norm_name: string; sha256: string | null }>('SELECT id, norm_name, sha256 FROM processes WHERE tenant_id = $1', [tenantId])).rows;
    dims.push({ col: 'process_id', ids: rows.filter((p) => matchProcess(r, p.norm_name, p.sha256)).map((p) => p.id) });
  }
  if (r.hasEndpoint) {
    const rows = (await db.query<{ id: number; endpoint: string }>('SELECT id, endpoint FROM endpoints WHERE tenant_id = $1', [tenantId])).rows;
    dims.push({ col: 'endpoint_id', ids: rows.filter((e) => matchEndpoint(r, e.endpoint)).map((e) => e.id) });
  }
  if (r.hasIp) {
    const rows = (await db.query<{ id: number; ip: string }>('SELECT id, ip FROM ips WHERE tenant_id = $1', [tenantId])).rows;
    dims.push({ col: 'ip_id', ids: rows.filter((x) => matchIp(r, x.ip)).map((x) => x.id) });
  }
  if (dims.some((d) => d.ids.length === 0)) return NOTHING;
  return {
    possible: true,
    sql: (p) => [`type_id = ${p.add(typeId)}`, ...dims.map((d) => `${d.col} = ANY(${p.add(d.ids)}::bigint[])`)].join(' AND '),
  };
}

/** The predicate minus the given endpoint, process and address ids (the never-suppress guard). */
export function excluding(pred: PgPredicate, endpointIds: number[], processIds: number[], ipIds: number[] = []): PgPredicate {
  if (!pred.possible || (endpointIds.length === 0 && processIds.length === 0 && ipIds.length === 0)) return pred;
  return {
    possible: true,
    sql: (p) => {
      const parts = [pred.sql(p)];
      if (endpointIds.length) parts.push(`NOT (endpoint_id = ANY(${p.add(endpointIds)}::bigint[]))`);
      if (processIds.length) parts.push(`NOT (process_id = ANY(${p.add(processIds)}::bigint[]))`);
      if (ipIds.length) parts.push(`NOT (ip_id = ANY(${p.add(ipIds)}::bigint[]))`);
      return parts.join(' AND ');
    },
  };
}

/** The tenant's endpoint ids that are risky destinations. */
export async function riskyEndpointIds(db: Db, tenantId: number, risky: RiskyDestinations): Promise<number[]> {
  const rows = (await db.query<{ id: number; host: string }>('SELECT id, host FROM endpoints WHERE tenant_id = $1', [tenantId])).rows;
  return rows.filter((e) => risky.matchHost(e.host)).map((e) => e.id);
}

/**
 * The tenant's address ids in the list's IP ranges: a detection there is risky whatever name its
 * call went by. None without ranges (the built-in list has none), and then no query.
 */
export async function riskyIpIds(db: Db, tenantId: number, risky: Pick<RiskyDestinations, 'hasRanges' | 'matchHost'>): Promise<number[]> {
  if (!risky.hasRanges) return [];
  const rows = (await db.query<{ id: number; ip: string }>('SELECT id, ip FROM ips WHERE tenant_id = $1', [tenantId])).rows;
  return rows.filter((x) => risky.matchHost(x.ip)).map((x) => x.id);
}

/**
 * The tenant's risky endpoint and address ids (riskyEndpointIds, riskyIpIds), with the test of a
 * row (detection or rollup) against them.
 */
export async function riskyIdsOf(db: Db, tenantId: number, risky: RiskyDestinations): Promise<{ endpoints: number[]; ips: number[]; row: (p: Params) => string }> {
  const endpoints = await riskyEndpointIds(db, tenantId, risky);
  const ips = await riskyIpIds(db, tenantId, risky);
  return { endpoints, ips, row: (p) => `(endpoint_id = ANY(${p.add(endpoints)}::bigint[]) OR ip_id = ANY(${p.add(ips)}::bigint[]))` };
}

interface ProcRow {
  id: number;
  norm_name: string;
  path: string | null;
  sha256: string | null;
}

/** The tenant's process ids that are binaries of the set. */
export async function processIdsOf(db: Db, tenantId: number, set: ImpostorSet): Promise<number[]> {
  if (set.size === 0) return [];
  const names = [...new Set(set.list().map((b) => b.process))];
  // by name, and by hash under any name (ImpostorSet.get: one file is one binary whatever it is called)
  const rows = (
    await db.query<ProcRow>('SELECT id, norm_name, path, sha256 FROM processes WHERE tenant_id = $1 AND (norm_name = ANY($2::text[]) OR lower(sha256) = ANY($3::text[]))', [
      tenantId, names, set.hashes(),
    ])
  ).rows;
  return idsOf(rows, set);
}

function idsOf(rows: ProcRow[], set: ImpostorSet): number[] {
  return rows.filter((p) => set.flagOf({ process: p.norm_name, sha256: p.sha256, path: p.path }) !== null).map((p) => p.id);
}

/**
 * The tenant's suspected impostors: recorded ones, and those its detections' evidence shows (each
 * VPN-named binary's destinations, of any type, status or rule), by the same pure verdict SQLite
 * and the analysis use.
 */
export async function tenantImpostors(db: Db, tenantId: number, risky: RiskyDestinations): Promise<{ set: ImpostorSet; processIds: number[]; files: string[]; hashless: string[]; hashedDaemons: BinaryRef[] }> {
  const set = new ImpostorSet();
  const recorded = await db.query<{ process: string; sha256: string | null; path: string | null; reason: string }>(
    'SELECT process, sha256, path, reason FROM suspected_impostors WHERE tenant_id = $1 ORDER BY process, "binary"',
    [tenantId],
  );
  for (const b of recorded.rows) set.add(b);
  const procs = await daemonProcesses(db, tenantId);
  if (procs.length === 0) return { set, processIds: [], files: [], hashless: [], hashedDaemons: [] };
  const stored = storedCallEvidence(procs, risky);
  const pairs = await db.query<{ process_id: number; host: string; port: number | null; is_ip: boolean }>(
    `SELECT DISTINCT r.process_id, e.host, e.port, e.is_ip FROM detection_rollup r
     JOIN endpoints e ON e.tenant_id = r.tenant_id AND e.id = r.endpoint_id
     WHERE r.tenant_id = $1 AND r.process_id = ANY($2::bigint[])`,
    [tenantId, procs.map((p) => p.id)],
  );
  // a rollup keeps no address: these are judged by destination
  const evidence: CallEvidence[] = pairs.rows.map((x) => stored.call(x.process_id, x.host, x.port, x.is_ip, null));
  // A call into a configured risky range is evidence too, named or not: its detection keeps the
  // address (detections_by_ip). Read only when the list holds ranges.
  const ips = await riskyIpIds(db, tenantId, risky);
  if (ips.length > 0) {
    const atRisk = await db.query<{ process_id: number; host: string; port: number | null; is_ip: boolean; ip: string }>(
      `SELECT DISTINCT d.process_id, e.host, e.port, e.is_ip, i.ip FROM detection_rows d
       JOIN endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
       JOIN ips i ON i.tenant_id = d.tenant_id AND i.id = d.ip_id
       WHERE d.tenant_id = $1 AND d.ip_id = ANY($2::bigint[]) AND d.process_id = ANY($3::bigint[])`,
      [tenantId, ips, procs.map((p) => p.id)],
    );
    for (const x of atRisk.rows) evidence.push(stored.call(x.process_id, x.host, x.port, x.is_ip, x.ip));
  }
  for (const b of suspectedImpostors(evidence)) set.add(b);
  for (const b of await otherNameImpostors(db, tenantId, risky, procs)) set.add(b);
  const variants = procs.map((p): VariantRow => ({ id: p.id, process: p.norm_name, sha256: p.sha256, path: p.path, parentChain: stored.byId.get(p.id)!.chain }));
  for (const b of await sameFileLinks(db, tenantId, risky, set, variants)) set.add(b);
  return { set, processIds: idsOf(procs, set), files: flaggedFiles(set, variants), hashless: hashlessFiles(variants), hashedDaemons: hashedDaemons(procs) };
}

/**
 * Daemon-named binaries whose file did under another name in this tenant what no daemon's file does
 * (analysis/impostor.ts sameFileOtherNameImpostors), as the SQLite store reads them.
 */
async function otherNameImpostors(db: Db, tenantId: number, risky: RiskyDestinations, procs: readonly (ProcRow & { parent_chain: string })[]): Promise<SuspectedImpostor[]> {
  const hashes = [...new Set(procs.flatMap((p) => (p.sha256 ? [p.sha256.toLowerCase()] : [])))];
  if (hashes.length === 0) return [];
  const others = await db.query<StoredOtherName>(
    'SELECT id, norm_name, sha256, path, parent_chain FROM processes WHERE tenant_id = $1 AND lower(sha256) = ANY($2::text[]) AND NOT (id = ANY($3::bigint[]))',
    [tenantId, hashes, procs.map((p) => p.id)],
  );
  if (others.rows.length === 0) return [];
  // the risky calls, as the SQLite store reads them; the processes are the tenant's own, each seen in it
  const calls = await db.query<{ process_id: number; host: string }>(
    `SELECT DISTINCT r.process_id, e.host FROM detection_rollup r
     JOIN endpoints e ON e.tenant_id = r.tenant_id AND e.id = r.endpoint_id
     WHERE r.tenant_id = $1 AND r.process_id = ANY($2::bigint[])`,
    [tenantId, others.rows.map((o) => o.id)],
  );
  return sameFileOtherNameImpostors(
    procs.map((p) => ({ process: p.norm_name, sha256: p.sha256, path: p.path })),
    storedOtherNameEvidence(
      others.rows.map((o) => ({ ...o, id: Number(o.id) })),
      calls.rows.map((c) => ({ processId: Number(c.process_id), host: c.host })),
      new Set(others.rows.map((o) => Number(o.id))),
      risky,
    ),
  );
}

/** The tenant's processes named like a VPN / mesh daemon. */
async function daemonProcesses(db: Db, tenantId: number): Promise<(ProcRow & { parent_chain: string })[]> {
  const stored = await db.query<{ norm_name: string }>('SELECT DISTINCT norm_name FROM processes WHERE tenant_id = $1', [tenantId]);
  return (
    await db.query<ProcRow & { parent_chain: string }>(
      'SELECT id, norm_name, path, sha256, parent_chain FROM processes WHERE tenant_id = $1 AND norm_name = ANY($2::text[])',
      [tenantId, daemonClaimingNames(stored.rows.map((r) => r.norm_name))],
    )
  ).rows;
}

/**
 * The tenant's daemon-named binaries whose observed calls went where the list covers (`ids`, from
 * riskyIdsOf), by name or by address: calls that left no detection count too (a learning run, an
 * endpoint in the baseline). Read when the store first remembers an entry (see the SQLite store's).
 */
export async function observedImpostors(db: Db, tenantId: number, risky: RiskyDestinations, ids: { endpoints: number[]; ips: number[] }): Promise<SuspectedImpostor[]> {
  const procs = await daemonProcesses(db, tenantId);
  if (procs.length === 0) return [];
  const stored = storedCallEvidence(procs, risky);
  const rows = await db.query<{ process_id: number; host: string; port: number | null; is_ip: boolean; ip: string | null }>(
    `SELECT DISTINCT o.process_id, e.host, e.port, e.is_ip, i.ip FROM observations o
     JOIN endpoints e ON e.tenant_id = o.tenant_id AND e.id = o.endpoint_id
     LEFT JOIN ips i ON i.tenant_id = o.tenant_id AND i.id = o.ip_id
     WHERE o.tenant_id = $1 AND o.process_id = ANY($2::bigint[]) AND (o.endpoint_id = ANY($3::bigint[]) OR o.ip_id = ANY($4::bigint[]))`,
    [tenantId, procs.map((p) => p.id), ids.endpoints, ids.ips],
  );
  return suspectedImpostors(rows.rows.map((x) => stored.call(x.process_id, x.host, x.port, x.is_ip, x.ip)));
}

/**
 * The other identity of a flagged binary's file within a run (analysis/impostor-links.ts), as
 * SQLite reads it. Reads nothing more unless some flagged binary has a partner at its path. The
 * runs where a flagged variant called come from its detections, narrowed to its jobs through the
 * detection groups (detection_rows has no index on the process); the partners seen in those runs
 * from observations and detections (both keyed by run; imported detections have no observations).
 */
async function sameFileLinks(db: Db, tenantId: number, risky: RiskyDestinations, set: ImpostorSet, variants: VariantRow[]): Promise<SuspectedImpostor[]> {
  const pairs = pathPartners(set, variants);
  if (pairs.partners.length === 0) return [];
  const flaggedIds = pairs.flagged.map((v) => v.id);
  const calls = (
    await db.query<{ run_ref: number; process_id: number; host: string; port: number | null; is_ip: boolean; ip: string | null }>(
      `SELECT DISTINCT d.run_ref, d.process_id, e.host, e.port, e.is_ip, i.ip FROM detection_rows d
       JOIN endpoints e ON e.tenant_id = d.tenant_id AND e.id = d.endpoint_id
       LEFT JOIN ips i ON i.tenant_id = d.tenant_id AND i.id = d.ip_id
       WHERE d.tenant_id = $1 AND d.process_id = ANY($2::bigint[])
         AND d.job_ref IN (SELECT job_ref FROM detection_groups WHERE tenant_id = $1 AND process_id = ANY($2::bigint[]))`,
      [tenantId, flaggedIds],
    )
  ).rows;
  const runs = [...new Set(calls.map((c) => c.run_ref))];
  if (runs.length === 0) return [];
  const partnerIds = pairs.partners.map((v) => v.id);
  const seen = (
    await db.query<{ run_ref: number; process_id: number }>(
      `SELECT run_ref, process_id FROM observations WHERE tenant_id = $1 AND run_ref = ANY($2::bigint[]) AND process_id = ANY($3::bigint[])
       UNION SELECT run_ref, process_id FROM detection_rows WHERE tenant_id = $1 AND run_ref = ANY($2::bigint[]) AND process_id = ANY($3::bigint[])`,
      [tenantId, runs, partnerIds],
    )
  ).rows;
  if (seen.length === 0) return [];
  const labels = new Map(
    (await db.query<{ id: number; run_id: string; run_attempt: number }>('SELECT id, run_id, run_attempt FROM runs WHERE tenant_id = $1 AND id = ANY($2::bigint[])', [tenantId, runs])).rows.map(
      (r) => [r.id, `${r.run_id} attempt ${r.run_attempt}`],
    ),
  );
  return sameFileImpostors(
    set,
    pairs,
    calls.map((c) => ({ run: c.run_ref, variant: c.process_id, host: c.host, port: c.port, isIp: c.is_ip, ...riskyOfCall(risky, c.host, c.ip) })),
    seen.map((r) => ({ run: r.run_ref, variant: r.process_id })),
    (r) => labels.get(r) ?? String(r),
  );
}

export type { SuspectedImpostor };
