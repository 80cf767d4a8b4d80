import { createHash } from 'node:crypto';
import type { SqliteStore } from '../storage/sqlite/sqlite-store.js';
import { coarseKeys, coarseVariantRows, coarseVariantTotals, scanDetections, variantFirstLast, type ScanFilter } from '../storage/sqlite/analysis-repo.js';
import { endpointDict, jobDict, processDict, type EndpointDict, type JobDict } from '../storage/sqlite/dictionary-cache.js';
import type { SqliteDatabase } from '../storage/sqlite/db.js';
import { NEW_OUTBOUND, type ParentLink } from '../domain/types.js';
import { FilterError, parseDetectionFilter, type DetectionFilter } from '../domain/filter.js';
import { STATUS_CODE } from '../storage/store.js';
import { dashboardUrl, resolveDashboardUrl } from '../domain/dashboard.js';
import { formatChain } from '../domain/process-name.js';
import { riskyDestinations, type RiskyDestinations } from './risky-destinations.js';
import { signatureSignals, suspiciousParent, vpnSignatureFor, type VpnSignature } from './vpn-signatures.js';
import { RulesService } from '../rules/service.js';
import { compileRule } from '../rules/matcher.js';
import type { RuleConditions } from '../rules/types.js';
import type { ImpostorSet } from '../rules/guards.js';
import type { AnalyzeInput, AnalyzeResult, BinaryVerdict, ProcessGroup, SampleDetection, SuggestedRule } from './types.js';

/**
 * analyze_anomalous_calls_by_process, exact and evidence-based (docs/analysis.md).
 *
 * 1. Per process variant, exact counts. Without since/until/owner/repo (the default) they come from
 *    the coarse rollups (rollup_process_day); otherwise one streaming pass over the matching fine
 *    rollup rows (plus raw detections for partial edge days) accumulates, per variant: count,
 *    first/last seen, per-endpoint counts and job set.
 * 2. Variants are grouped by normalised process name; totals are exact; groups are sorted by count
 *    descending then name, filtered by minCount and paged with an opaque cursor.
 * 3. Only the page's groups get details (on the default path read now, per variant, from
 *    rollup_process_endpoint / rollup_process_job, first/last seen probed in detections_by_process
 *    on the first/last day): samples, binaries, parents, VPN evidence per binary,
 *    risky destinations, review notes and a suggested rule whose impact comes from the same preview
 *    function `rules preview` uses.
 */

export class AnalysisError extends Error {
  constructor(
    readonly code: 'invalid_input' | 'invalid_cursor' | 'invalid_time' | 'unknown_type',
    message: string,
  ) {
    super(message);
    this.name = 'AnalysisError';
  }
}

export interface AnalyzeOptions {
  /** reuse a RulesService (and its risky endpoint cache) across calls */
  rules?: RulesService;
}

/** Exact counts per id, ids unique: parallel typed arrays. */
interface Counts {
  ids: Int32Array;
  n: Float64Array;
}

interface VariantAcc {
  n: number;
  /** exact once `detail` ran (filtered path: from the scan) */
  first: number;
  last: number;
  /** coarse path: first / last day with a match */
  minDay: number;
  maxDay: number;
  /** filtered path accumulators (integer-keyed), turned into Counts on demand */
  epMap: Map<number, number> | null;
  jobSet: Set<number> | null;
  eps: Counts | null;
  jobs: Int32Array | null;
}

/**
 * Scratch counter over dense integer ids: a Float64Array indexed by id plus the list of touched ids,
 * so merging per-variant counts allocates nothing per row and `take()` resets only what it touched.
 */
class IdCounter {
  private v: Float64Array;
  private touched: Int32Array;
  private len = 0;
  constructor(size: number) {
    this.v = new Float64Array(Math.max(16, size));
    this.touched = new Int32Array(256);
  }
  add(id: number, n: number): void {
    if (n === 0) return;
    if (id >= this.v.length) {
      const v = new Float64Array(Math.max(id + 1, this.v.length * 2));
      v.set(this.v);
      this.v = v;
    }
    if (this.v[id] === 0) {
      if (this.len === this.touched.length) {
        const t = new Int32Array(this.len * 2);
        t.set(this.touched);
        this.touched = t;
      }
      this.touched[this.len++] = id;
    }
    this.v[id] += n;
  }
  addAll(c: Counts): void {
    for (let i = 0; i < c.ids.length; i++) this.add(c.ids[i]!, c.n[i]!);
  }
  take(): Counts {
    const ids = this.touched.slice(0, this.len);
    const n = new Float64Array(this.len);
    for (let i = 0; i < ids.length; i++) {
      n[i] = this.v[ids[i]!]!;
      this.v[ids[i]!] = 0;
    }
    this.len = 0;
    return { ids, n };
  }
}

function mergeCounts(parts: Counts[], scratch: IdCounter): Counts {
  if (parts.length === 1) return parts[0]!;
  for (const c of parts) scratch.addAll(c);
  return scratch.take();
}

interface ProcRow {
  id: number;
  name: string;
  norm_name: string;
  path: string | null;
  sha256: string | null;
  parent_chain: string;
}

type ProcessGroupExt = ProcessGroup;

const DEFAULTS = { minCount: 2, limit: 50, samples: 5 };
/** Hashes one process_sha256 condition can list: 7 digests and their separators fit its 512 characters. */
const MAX_RULE_HASHES = 7;

/**
 * The analysis filter, from the one parser (domain/filter.ts): a pre-parsed `input.filter` from a face
 * that named its own arguments, or the raw library fields. Filters the analysis cannot apply
 * (process, endpoint, run) are refused rather than ignored.
 */
function analysisFilter(input: AnalyzeInput): DetectionFilter {
  let f: DetectionFilter;
  const raw = { detectionTypes: input.detectionTypes, status: input.status, since: input.since, until: input.until, owner: input.owner, repo: input.repo };
  const given = Object.entries(raw).filter(([, v]) => v !== undefined).map(([k]) => k);
  if (input.filter && given.length) throw new AnalysisError('invalid_input', `pass either filter or ${given.join(', ')}, not both`);
  try {
    f = input.filter
      ? { ...input.filter }
      : parseDetectionFilter(
          { types: input.detectionTypes, status: input.status, since: input.since, until: input.until, owner: input.owner, repo: input.repo },
          { names: { types: 'detectionTypes' }, defaultStatus: 'new', now: input.now ?? Date.now() },
        );
  } catch (e) {
    if (e instanceof FilterError) throw new AnalysisError(e.kind === 'invalid' ? 'invalid_input' : e.kind, e.message);
    throw e;
  }
  if (!f.types || f.types.length === 0) f.types = [NEW_OUTBOUND];
  for (const [k, v] of [['process', f.process], ['endpoint', f.host], ['run id', f.runId]] as const) {
    if (v !== undefined) throw new AnalysisError('invalid_input', `the analysis cannot filter by ${k}; it groups by process over owner, repo, workflow, job and time`);
  }
  return f;
}

/** The stored spelling of an owner or repo matched case-insensitively, when it is unique. */
function storedSpelling(db: SqliteDatabase, tenantId: number, col: 'owner' | 'repo', value: string): string {
  const found = db.prepare(`SELECT DISTINCT ${col} FROM jobs WHERE tenant_id = ? AND ${col} = ? COLLATE NOCASE LIMIT 2`).pluck().all(tenantId, value) as string[];
  return found.length === 1 ? found[0]! : value;
}

function intIn(name: string, v: unknown, def: number, min: number, max: number): number {
  if (v === undefined || v === null) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new AnalysisError('invalid_input', `${name}: expected an integer between ${min} and ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface Cursor {
  c: number;
  p: string;
  f: string;
}

function encodeCursor(c: Cursor): string {
  return 'pg1.' + Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(raw: string, fingerprint: string): Cursor {
  const bad = (why: string) =>
    new AnalysisError('invalid_cursor', `invalid cursor: ${why}; pass the next_cursor value returned by the previous call with the same filters`);
  if (typeof raw !== 'string' || !raw.startsWith('pg1.')) throw bad('unrecognised format');
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(raw.slice(4), 'base64url').toString('utf8'));
  } catch {
    throw bad('not decodable');
  }
  const o = c as Partial<Cursor>;
  if (!o || typeof o !== 'object' || typeof o.c !== 'number' || typeof o.p !== 'string' || typeof o.f !== 'string') throw bad('malformed');
  if (o.f !== fingerprint) throw bad('it was issued for a different query (tenant, types, status, window, owner/repo/workflow/job or minCount differ)');
  return o as Cursor;
}

export async function analyzeAnomalousCallsByProcess(store: SqliteStore, input: AnalyzeInput, opts: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  if (!input || typeof input.tenant !== 'string' || input.tenant === '') throw new AnalysisError('invalid_input', 'tenant is required');
  const f = analysisFilter(input);
  const types = f.types!;
  const status = f.statuses ? f.statuses[0]! : 'all';
  const statuses = f.statuses ? f.statuses.map((x) => STATUS_CODE[x]) : [0, 1, 2];
  const { since, until } = f;
  const minCount = intIn('minCount', input.minCount, DEFAULTS.minCount, 1, Number.MAX_SAFE_INTEGER);
  const limit = intIn('limit', input.limit, DEFAULTS.limit, 1, 1000);
  const samples = intIn('samples', input.samples, DEFAULTS.samples, 0, 100);
  const base = resolveDashboardUrl(input.dashboardUrl);
  const rules = opts.rules ?? new RulesService(store, { extraRiskyDestinations: input.extraRiskyDestinations });
  const risky = rules.risky;
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([input.tenant, types, status, since ?? null, until ?? null, f.owner ?? null, f.repo ?? null, f.workflow ?? null, f.job ?? null, minCount]))
    .digest('base64url')
    .slice(0, 16);
  const cursor = input.cursor ? decodeCursor(input.cursor, fingerprint) : null;
  const pageNo = input.page === undefined ? undefined : intIn('page', input.page, 1, 1, Number.MAX_SAFE_INTEGER);
  if (pageNo !== undefined && cursor) throw new AnalysisError('invalid_input', 'page and cursor are two ways to choose a page: pass only one of them');

  const result: AnalyzeResult = {
    tenant: input.tenant,
    detection_id: types.join(','),
    total_anomalies_scanned: 0,
    processes_returned: 0,
    min_count_filter: minCount,
    note: '',
    processes: [],
    window: { since: since === undefined ? null : new Date(since).toISOString(), until: until === undefined ? null : new Date(until).toISOString() },
    next_cursor: null,
  };
  const db = store.db;
  // One read snapshot (a deferred transaction: WAL readers never block the writer) so totals, coarse
  // rows and timestamp probes all see the same committed state even while another process ingests
  // or moves detections. Temp-table writes (suggestion impact) need no lock on the store.
  if (db.inTransaction) return analyzeIn(db);
  const stamp = rules.repo.commitStamp(); // taken before the snapshot opens (see impostors())
  return db.transaction(() => analyzeIn(db, stamp))();

  function analyzeIn(db: SqliteDatabase, stamp?: number | null): AnalyzeResult {
    const tenantId = db.prepare('SELECT id FROM tenants WHERE name = ?').pluck().get(input.tenant) as number | undefined;
    const typeIds = types
      .map((t) => db.prepare('SELECT id FROM detection_types WHERE name = ?').pluck().get(t) as number | undefined)
      .filter((x): x is number => x !== undefined);
    if (tenantId === undefined || typeIds.length === 0) {
      result.note = tenantId === undefined ? `tenant "${input.tenant}" has no data` : 'no detections of the requested types';
      return result;
    }

    // ---- 1. one pass over rollup (+ raw edge days) ----
    const filter: ScanFilter = { tenantId, typeIds, statuses, since, until };
    const scoped = f.owner !== undefined || f.repo !== undefined || f.workflow !== undefined || f.job !== undefined;
    if (scoped) {
      // owner and repo compare case-insensitively, workflow and job exactly (domain/filter.ts)
      const conds = ['tenant_id = ?'];
      const params: unknown[] = [tenantId];
      for (const [col, v, nocase] of [['owner', f.owner, true], ['repo', f.repo, true], ['workflow', f.workflow, false], ['job', f.job, false]] as const) {
        if (v === undefined) continue;
        conds.push(nocase ? `${col} = ? COLLATE NOCASE` : `${col} = ?`);
        params.push(v);
      }
      filter.jobFilterSql = { sql: `SELECT id FROM jobs WHERE ${conds.join(' AND ')}`, params };
    }
    // A suggested rule scoped like the query uses the names as stored (rule conditions are exact).
    const owner = f.owner === undefined ? undefined : storedSpelling(db, tenantId, 'owner', f.owner);
    const repo = f.repo === undefined ? undefined : storedSpelling(db, tenantId, 'repo', f.repo);
    const acc = new Map<number, VariantAcc>();
    const coarse = since === undefined && until === undefined && !scoped;
    const newAcc = (n: number): VariantAcc => ({ n, first: Infinity, last: -Infinity, minDay: 0, maxDay: 0, epMap: null, jobSet: null, eps: null, jobs: null });
    if (coarse) {
      for (const [pid, n, minDay, maxDay] of coarseVariantTotals(db, tenantId, typeIds, statuses)) {
        if (n <= 0) continue;
        const a = newAcc(n);
        a.minDay = minDay;
        a.maxDay = maxDay;
        acc.set(pid, a);
      }
    } else {
      const byPid: (VariantAcc | undefined)[] = [];
      scanDetections(db, filter, (rows) => {
        for (let i = 0; i < rows.length; i++) {
          const r = rows[i]!;
          const pid = r[0];
          let a = byPid[pid];
          if (!a) {
            a = newAcc(0);
            a.epMap = new Map();
            a.jobSet = new Set();
            byPid[pid] = a;
            acc.set(pid, a);
          }
          const n = r[3];
          a.n += n;
          if (r[4] < a.first) a.first = r[4];
          if (r[5] > a.last) a.last = r[5];
          a.epMap!.set(r[1], (a.epMap!.get(r[1]) ?? 0) + n);
          a.jobSet!.add(r[2]);
        }
      });
    }

    // ---- 2. group by normalised name ----
    const pd = processDict(db);
    const procById = new Map<number, ProcRow>();
    for (const id of acc.keys()) {
      procById.set(id, { id, name: pd.name[id]!, norm_name: pd.norm[id]!, path: pd.path[id] ?? null, sha256: pd.sha256[id] ?? null, parent_chain: pd.chain[id]! });
    }
    const groups = new Map<string, { name: string; count: number; pids: number[] }>();
    for (const [pid, a] of acc) {
      const p = procById.get(pid)!;
      let g = groups.get(p.norm_name);
      if (!g) {
        g = { name: p.norm_name, count: 0, pids: [] };
        groups.set(p.norm_name, g);
      }
      g.count += a.n;
      g.pids.push(pid);
      result.total_anomalies_scanned += a.n;
    }
    const all = [...groups.values()].sort((a, b) => b.count - a.count || cmp(a.name, b.name));
    const kept = all.filter((g) => g.count >= minCount);
    let start = 0;
    if (pageNo !== undefined) {
      start = (pageNo - 1) * limit;
      if (start > 0 && start >= kept.length) {
        throw new AnalysisError('invalid_input', `page ${pageNo} is past the end: ${kept.length} process group(s) make ${Math.ceil(kept.length / limit)} page(s) of ${limit}`);
      }
    }
    if (cursor) {
      start = kept.findIndex((g) => g.count < cursor.c || (g.count === cursor.c && g.name > cursor.p));
      if (start < 0) start = kept.length;
    }
    const page = kept.slice(start, start + limit);
    if (start + limit < kept.length) {
      const last = page[page.length - 1]!;
      result.next_cursor = encodeCursor({ c: last.count, p: last.name, f: fingerprint });
    }

    // ---- 3. details for the page ----
    const epById = endpointDict(db);
    const riskyIds = rules.repo.riskyEndpointIds();
    const jobs = jobDict(db, tenantId);
    const keys = coarse ? coarseKeys(db, tenantId, typeIds, statuses) : [];
    const epScratch = new IdCounter(epById.maxId + 1);
    const jobScratch = new IdCounter(jobs.maxId + 1);
    /** Per-variant details, loaded for the page's variants only. */
    const detail = (pid: number): VariantAcc => {
      const a = acc.get(pid)!;
      if (a.eps) return a;
      if (coarse) {
        coarseVariantRows(db, 'endpoint', tenantId, keys, pid, (id, n) => epScratch.add(id, n));
        coarseVariantRows(db, 'job', tenantId, keys, pid, (id, n) => jobScratch.add(id, n));
        [a.first, a.last] = variantFirstLast(db, tenantId, pid, typeIds, statuses, a.minDay, a.maxDay);
      } else {
        for (const [id, n] of a.epMap!) epScratch.add(id, n);
        for (const j of a.jobSet!) jobScratch.add(j, 1);
        a.epMap = null;
        a.jobSet = null;
      }
      a.eps = epScratch.take();
      a.jobs = jobScratch.take().ids;
      return a;
    };
    const ctx: DetailCtx = {
      store, rules, risky, riskyIds, tenant: input.tenant, tenantId, typeIds, statuses, since, until, filter, samples, base,
      primaryType: types[0]!, owner, repo, workflow: f.workflow, job: f.job, detail, epScratch, hostScratch: new IdCounter(epById.hostCount), jobs,
      // the set the rule guards use: the whole tenant's evidence, whatever this call's filters
      impostors: rules.repo.impostors(tenantId, stamp).set,
    };
    for (const g of page) {
      result.processes.push(buildGroup(ctx, g, procById, epById));
    }
    result.processes_returned = result.processes.length;
    const omitted = all.length - kept.length;
    const omittedCount = all.filter((g) => g.count < minCount).reduce((s, g) => s + g.count, 0);
    result.note =
      `Exact counts over all ${result.total_anomalies_scanned} matching detection(s) in ${all.length} process group(s), not a sample. ` +
      (omitted ? `${omitted} group(s) with fewer than ${minCount} detection(s) (${omittedCount} detection(s)) are omitted. ` : '') +
      'VPN verdicts are evidence-based per binary (sha256/path): destinations and parent chain, never the name alone. ' +
      'suggested_rule.impact is computed by the same matcher as rules preview/create.' +
      (result.next_cursor ? ' More groups: pass next_cursor.' : '');
    return result;
  }
}

interface DetailCtx {
  store: SqliteStore;
  rules: RulesService;
  risky: RiskyDestinations;
  riskyIds: Set<number>;
  tenant: string;
  tenantId: number;
  typeIds: number[];
  statuses: number[];
  since?: number;
  until?: number;
  filter: ScanFilter;
  samples: number;
  base: string;
  primaryType: string;
  owner?: string;
  repo?: string;
  workflow?: string | undefined;
  job?: string | undefined;
  detail: (pid: number) => VariantAcc;
  epScratch: IdCounter;
  hostScratch: IdCounter;
  jobs: JobDict;
  impostors: ImpostorSet;
}

/** The n largest entries by count, ties by key ascending; one pass, without sorting the whole map. */
function topN<K>(m: Map<K, number>, n: number, key: (k: K) => string): [K, number][] {
  const better = (a: [K, number], b: [K, number]) => a[1] > b[1] || (a[1] === b[1] && cmp(key(a[0]), key(b[0])) < 0);
  const top: [K, number][] = [];
  for (const e of m) {
    if (top.length === n) {
      const worst = top[n - 1]!;
      if (e[1] < worst[1] || !better(e, worst)) continue;
      top.pop();
    }
    let i = top.length;
    while (i > 0 && better(e, top[i - 1]!)) i--;
    top.splice(i, 0, e);
  }
  return top;
}

/** topN over Counts: the n largest (id, count) pairs, ties by key ascending. */
function topCounts(c: Counts, n: number, key: (id: number) => string): [number, number][] {
  const better = (a: [number, number], b: [number, number]) => a[1] > b[1] || (a[1] === b[1] && cmp(key(a[0]), key(b[0])) < 0);
  const top: [number, number][] = [];
  for (let i = 0; i < c.ids.length; i++) {
    const cnt = c.n[i]!;
    if (top.length === n) {
      const worst = top[n - 1]!;
      if (cnt < worst[1]) continue;
      const e: [number, number] = [c.ids[i]!, cnt];
      if (!better(e, worst)) continue;
      top.pop();
      insertSorted(top, e, better);
    } else insertSorted(top, [c.ids[i]!, cnt], better);
  }
  return top;
}

function insertSorted<T>(top: T[], e: T, better: (a: T, b: T) => boolean): void {
  let i = top.length;
  while (i > 0 && better(e, top[i - 1]!)) i--;
  top.splice(i, 0, e);
}

function addCount<K>(m: Map<K, number>, k: K, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

function buildGroup(
  ctx: DetailCtx,
  g: { name: string; count: number; pids: number[] },
  procById: Map<number, ProcRow>,
  epById: EndpointDict,
): ProcessGroupExt {
  const variants = g.pids.map(ctx.detail);
  const eps = mergeCounts(variants.map((v) => v.eps!), ctx.epScratch);
  let first = Infinity;
  let last = -Infinity;
  const repoSeen = new Uint8Array(ctx.jobs.repos);
  const ownerSeen = new Uint8Array(ctx.jobs.owners);
  let repos = 0;
  let owners = 0;
  for (const v of variants) {
    if (v.first < first) first = v.first;
    if (v.last > last) last = v.last;
    const js = v.jobs!;
    for (let i = 0; i < js.length; i++) {
      const r = ctx.jobs.repoIdx[js[i]!];
      if (r === undefined) continue;
      if (!repoSeen[r]) {
        repoSeen[r] = 1;
        repos++;
      }
      const o = ctx.jobs.ownerIdx[js[i]!]!;
      if (!ownerSeen[o]) {
        ownerSeen[o] = 1;
        owners++;
      }
    }
  }
  const riskyEps = new Map<string, number>();
  let riskyCount = 0;
  const hosts = ctx.hostScratch;
  for (let i = 0; i < eps.ids.length; i++) {
    const id = eps.ids[i]!;
    const n = eps.n[i]!;
    if (epById.isIp[id]) hosts.add(epById.hostId[id]!, n);
    if (ctx.riskyIds.has(id)) {
      riskyCount += n;
      addCount(riskyEps, epById.endpoint[id]!, n);
    }
  }
  const directIps = hosts.take();
  const epName = (id: number) => epById.endpoint[id]!;
  const acc = new Map<number, VariantAcc>(g.pids.map((pid, i) => [pid, variants[i]!]));

  // binaries: sha256 when known, else path
  const binaries = new Map<string, { sha256: string | null; paths: Map<string | null, number>; pids: number[]; count: number }>();
  const parents = new Map<string, number>();
  for (const pid of g.pids) {
    const p = procById.get(pid)!;
    const a = acc.get(pid)!;
    const key = p.sha256 ? `sha:${p.sha256}` : `path:${p.path ?? ''}`;
    let b = binaries.get(key);
    if (!b) {
      b = { sha256: p.sha256, paths: new Map(), pids: [], count: 0 };
      binaries.set(key, b);
    }
    b.pids.push(pid);
    b.count += a.n;
    addCount(b.paths, p.path, a.n);
    addCount(parents, formatChain(JSON.parse(p.parent_chain) as ParentLink[]) || '(none)', a.n);
  }

  const sig = vpnSignatureFor(g.name);
  const verdicts: (BinaryVerdict & { key: string })[] = [];
  for (const [key, b] of binaries) {
    const path = topN(b.paths, 1, (k) => k ?? '')[0]?.[0] ?? null;
    const v: BinaryVerdict & { key: string } = { key, sha256: b.sha256, path, count: b.count, verdict: 'unverified', supporting: [], contradicting: [] };
    if (sig) {
      evaluateBinary(ctx, sig, g.name, b, v, acc, procById, epById);
      // Evidence outside this view (another status, window or repo, or a call seen at ingest that left
      // no detection) flags the binary here too, so the analysis and the rule guards always agree.
      const flagged = ctx.impostors.get({ process: g.name, sha256: b.sha256, path });
      if (flagged && v.verdict !== 'impostor') {
        v.verdict = 'impostor';
        v.contradicting.push(`flagged from the tenant's other evidence: ${flagged.reason}`);
      }
    }
    verdicts.push(v);
  }
  verdicts.sort((a, b) => b.count - a.count || cmp(a.key, b.key));

  const warnings: string[] = [];
  const genuine = verdicts.filter((v) => v.verdict === 'genuine');
  const impostors = verdicts.filter((v) => v.verdict === 'impostor');
  const unverified = verdicts.filter((v) => v.verdict === 'unverified');
  const isVpnName = sig !== null;
  const candidate = isVpnName && genuine.length > 0;
  const impersonation = isVpnName && impostors.length > 0;
  const short = (s: string | null) => (s ? s.slice(0, 12) : 'unknown');
  for (const imp of impostors) {
    warnings.push(
      `name impersonation suspected: binary sha256 ${short(imp.sha256)} (${imp.path ?? 'unknown path'}) is named ${g.name} but ` +
        `${imp.contradicting.slice(0, 3).join('; ')}. Its ${imp.count} detection(s) must stay visible: never suppress "${g.name}" by name alone.`,
    );
  }
  if (riskyCount > 0) {
    warnings.push(
      `${riskyCount} detection(s) go to risky destinations (${topN(riskyEps, 5, (k) => k).map(([e]) => e).join(', ')}): investigate, they can never be suppressed`,
    );
  }

  let suggested: SuggestedRule | null = null;
  let noSuggestion: string | null = null;
  if (!isVpnName) {
    noSuggestion = `${g.name} is not a VPN/mesh daemon: a process-wide rule would hide everything else it calls; review each destination (see review)`;
  } else if (!candidate) {
    noSuggestion = impostors.length
      ? `every binary named ${g.name} contradicts ${sig!.daemon}'s signature: name impersonation suspected, no rule is suggested`
      : `no binary named ${g.name} shows ${sig!.daemon}'s network signature (ports, control-plane domains, peer ranges): the name alone proves nothing`;
  } else {
    // Every genuine binary with a hash goes into one rule (an upgraded daemon has one per version);
    // a condition value holds at most MAX_RULE_HASHES of them, the most frequent first.
    const hashed = genuine.filter((v) => v.sha256 !== null);
    const covered = hashed.slice(0, MAX_RULE_HASHES);
    const main = covered[0] ?? genuine[0]!;
    const conditions: RuleConditions = { process: g.name };
    if (covered.length) conditions.process_sha256 = covered.map((v) => v.sha256!).join('|');
    conditions.owner = ctx.owner ?? '*';
    conditions.repo = ctx.repo ?? '*';
    conditions.workflow = ctx.workflow ?? '*';
    conditions.job = ctx.job ?? '*';
    const others = genuine.filter((v) => !covered.includes(v));
    const excluded = [...impostors, ...unverified];
    const describe = (v: BinaryVerdict) => `sha256 ${short(v.sha256)} (${v.path ?? 'unknown path'})`;
    const rationale =
      (covered.length > 1
        ? `${covered.length} ${g.name} binaries (${covered.map(describe).join(', ')}: one per installed version) match ${sig!.daemon}'s signature `
        : `${g.name} binary ${describe(main)} matches ${sig!.daemon}'s signature `) +
      `(${(covered.length > 1 ? uniq(covered.flatMap((v) => v.supporting.slice(0, 2))) : main.supporting).slice(0, 4).join('; ')}) and nothing contradicts ${covered.length > 1 ? 'them' : 'it'}` +
      (covered.length ? `; the rule is narrowed to ${covered.length > 1 ? 'these hashes' : 'this hash'} so any other binary using the name stays visible` : '') +
      (excluded.length ? `; excluded: ${excluded.map((v) => `${short(v.sha256)} (${v.verdict}, ${v.count})`).join(', ')}` : '') +
      (others.length
        ? `; other genuine binaries need their own rule: ${others.map((v) => `${v.sha256 ? `process_sha256=${v.sha256}` : `path ${v.path ?? '?'} (no sha256)`} (${v.count})`).join(', ')}`
        : '') +
      '.';
    let blocked: string | null = null;
    if (!covered.length && excluded.length) {
      blocked = `the genuine binary has no sha256, so a rule cannot exclude the other binaries named ${g.name}`;
    } else if (!covered.length) {
      blocked = `the binary has no sha256: a name-only rule would also silence any future binary named ${g.name}; suppress by endpoint or scope instead`;
    }
    const preview = ctx.rules.previewCompiled(ctx.tenant, ctx.primaryType, compileRule(ctx.primaryType, conditions), 0, { countsOnly: true, impostors: ctx.impostors });
    if (!blocked && preview.refused_reason) blocked = preview.refused_reason;
    suggested = {
      detection_id: ctx.primaryType,
      conditions,
      severity_action: { type: 'ignore' },
      rationale,
      blocked_reason: blocked,
      impact: { would_suppress: preview.would_suppress, risky: preview.risky_matches },
    };
    if (blocked) noSuggestion = blocked;
  }

  const review: ProcessGroup['review'] = [];
  if (!candidate) {
    for (const [id, n] of topCounts(eps, 20, epName)) {
      const e = { endpoint: epById.endpoint[id]!, host: epById.host[id]!, is_ip: epById.isIp[id]! };
      const r = ctx.risky.matchHost(e.host);
      let rationale: string;
      if (r) rationale = `RISKY: ${r} is a known payload-staging / exfiltration destination; investigate the runs, never suppress`;
      else if (e.is_ip)
        rationale = `direct IP call (no DNS lookup) from ${g.name}: identify who owns ${e.host} before allowing it; if expected, allow endpoint=${e.endpoint} for the affected repos`;
      else
        rationale = `new destination for ${g.name}: if expected, allow endpoint=${e.endpoint} scoped to the affected owner/repo rather than silencing every call of ${g.name}`;
      review.push({ endpoint: e.endpoint, count: n, rationale });
    }
  }

  const evidence: ProcessGroupExt['vpn_evidence'] = {
    name_match: isVpnName,
    daemon: sig?.daemon ?? null,
    supporting: uniq(verdicts.flatMap((v) => (v.verdict === 'genuine' ? v.supporting : []))).slice(0, 12),
    contradicting: uniq(verdicts.flatMap((v) => v.contradicting)).slice(0, 12),
    binaries: isVpnName ? verdicts.map(({ key: _k, ...v }) => v) : [],
  };

  return {
    process: g.name,
    count: g.count,
    distinct_endpoints: eps.ids.length,
    distinct_direct_ips: directIps.ids.length,
    is_vpn_process_candidate: candidate,
    name_impersonation_suspected: impersonation,
    endpoints_sample: topCounts(eps, 10, epName).map(([id]) => epName(id)),
    direct_ips_sample: topCounts(directIps, 10, (h) => epById.hostName[h]!).map(([h]) => epById.hostName[h]!),
    risky_destinations_suppressed_by_process_rule: riskyCount,
    risky_destination_samples: topN(riskyEps, 10, (k) => k).map(([e]) => e),
    suggested_rule: suggested,
    sample_detections: loadSamples(ctx, g.pids, impostors.map((v) => v.key), procById),
    distinct_repos: repos,
    distinct_owners: owners,
    first_seen: new Date(first).toISOString(),
    last_seen: new Date(last).toISOString(),
    binaries: verdicts.map((v) => ({ sha256: v.sha256, path: v.path, count: v.count, genuine: isVpnName ? v.verdict === 'genuine' : null })),
    parents: topN(parents, 5, (k) => k).map(([chain, count]) => ({ chain, count })),
    vpn_evidence: evidence,
    review,
    warnings,
    no_suggestion_reason: noSuggestion,
  };
}

const NO_SIGNALS: readonly string[] = Object.freeze([]);
const signalCaches = new WeakMap<SqliteDatabase, Map<VpnSignature, (readonly string[])[]>>();

/**
 * signatureSignals per (daemon, endpoint id), cached per connection: endpoints are append-only and
 * immutable and the signatures are built in, so an entry never goes stale.
 */
function signalCache(db: SqliteDatabase, sig: VpnSignature, epById: EndpointDict): (id: number) => readonly string[] {
  let byDaemon = signalCaches.get(db);
  if (!byDaemon) {
    byDaemon = new Map();
    signalCaches.set(db, byDaemon);
  }
  let arr = byDaemon.get(sig);
  if (!arr) {
    arr = [];
    byDaemon.set(sig, arr);
  }
  const cache = arr;
  return (id) => {
    let s = cache[id];
    if (s === undefined) {
      const got = signatureSignals(sig, epById.host[id]!, epById.port[id] ?? null, epById.isIp[id] === 1);
      s = got.length ? got : NO_SIGNALS;
      cache[id] = s;
    }
    return s;
  };
}

function uniq(a: string[]): string[] {
  return [...new Set(a)];
}

/**
 * Evidence for one binary. Supporting: a destination inside the daemon's signature. Contradicting:
 * a risky destination; a domain destination outside the signature (neither its domains nor its
 * ports); a parent chain through a package manager / interpreter; and a binary with contradicting
 * traffic and no supporting traffic at all ("hash seen only with such traffic").
 */
function evaluateBinary(
  ctx: DetailCtx,
  sig: VpnSignature,
  name: string,
  b: { sha256: string | null; pids: number[]; count: number },
  v: BinaryVerdict,
  acc: Map<number, VariantAcc>,
  procById: Map<number, ProcRow>,
  epById: EndpointDict,
): void {
  const support = new Map<string, number>();
  const contra = new Map<string, number>();
  const eps = mergeCounts(b.pids.map((pid) => acc.get(pid)!.eps!), ctx.epScratch);
  const signals = signalCache(ctx.store.db, sig, epById);
  for (let i = 0; i < eps.ids.length; i++) {
    const id = eps.ids[i]!;
    const n = eps.n[i]!;
    if (ctx.riskyIds.has(id)) {
      addCount(contra, `risky destination ${epById.endpoint[id]}`, n);
      continue;
    }
    const s = signals(id);
    for (let k = 0; k < s.length; k++) addCount(support, s[k]!, n);
    if (s.length === 0 && epById.isIp[id] !== 1) addCount(contra, `domain outside ${sig.daemon}'s signature: ${epById.endpoint[id]}`, n);
  }
  for (const pid of b.pids) {
    const p = procById.get(pid)!;
    const chain = JSON.parse(p.parent_chain) as ParentLink[];
    const bad = suspiciousParent(chain);
    if (bad) addCount(contra, `started through ${bad}: ${name} < ${formatChain(chain)}`, acc.get(pid)!.n);
  }
  v.supporting = topN(support, 10, (k) => k).map(([s, n]) => `${s} (${n})`);
  v.contradicting = topN(contra, 10, (k) => k).map(([s, n]) => `${s} (${n})`);
  if (contra.size > 0 && support.size === 0) {
    v.contradicting.push(`binary ${b.sha256 ? `sha256 ${b.sha256.slice(0, 12)}` : 'with unknown hash'} is seen only with such traffic (${b.count})`);
  }
  v.verdict = contra.size > 0 ? 'impostor' : support.size > 0 ? 'genuine' : 'unverified';
}

interface SampleRow {
  id: number;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  run_id: string;
  gh_job_id: string | null;
  endpoint: string;
  host: string;
  is_ip: number;
  ip: string | null;
  direct_ip: number;
  ts: number;
  sha256: string | null;
  process_id: number;
}

function loadSamples(ctx: DetailCtx, pids: number[], impostorKeys: string[], procById: Map<number, ProcRow>): SampleDetection[] {
  if (ctx.samples === 0) return [];
  const parts = ['d.tenant_id = ?', 'd.process_id = ?', `d.type_id IN (${ctx.typeIds.join(',')})`, `coalesce((SELECT ds.status FROM detection_status ds WHERE ds.id = d.id), 0) IN (${ctx.statuses.join(',')})`];
  const params: unknown[] = [];
  if (ctx.since !== undefined) {
    parts.push('d.ts >= ?');
    params.push(ctx.since);
  }
  if (ctx.until !== undefined) {
    parts.push('d.ts < ?');
    params.push(ctx.until);
  }
  let jobParams: unknown[] = [];
  if (ctx.filter.jobFilterSql) {
    parts.push(`d.job_ref IN (${ctx.filter.jobFilterSql.sql})`);
    jobParams = ctx.filter.jobFilterSql.params;
  }
  const stmt = ctx.store.db.prepare(
    `SELECT d.id, j.owner, j.repo, j.workflow, j.job, r.run_id, r.gh_job_id, e.endpoint, e.host, e.is_ip, i.ip, d.direct_ip, d.ts, p.sha256, d.process_id
     FROM detections d INDEXED BY detections_by_process
     JOIN jobs j ON j.id = d.job_ref JOIN runs r ON r.id = d.run_ref JOIN endpoints e ON e.id = d.endpoint_id
     JOIN processes p ON p.id = d.process_id LEFT JOIN ips i ON i.id = d.ip_id
     WHERE ${parts.join(' AND ')} ORDER BY d.ts DESC, d.id DESC LIMIT ?`,
  );
  const rows: SampleRow[] = [];
  for (const pid of pids) rows.push(...(stmt.all(ctx.tenantId, pid, ...params, ...jobParams, ctx.samples) as SampleRow[]));
  rows.sort((a, b) => b.ts - a.ts || b.id - a.id);
  let chosen = rows.slice(0, ctx.samples);
  // Make sure each suspected impostor binary shows at least one sample.
  const keyOf = (r: SampleRow) => {
    const p = procById.get(r.process_id)!;
    return p.sha256 ? `sha:${p.sha256}` : `path:${p.path ?? ''}`;
  };
  for (const k of impostorKeys) {
    if (chosen.some((r) => keyOf(r) === k)) continue;
    const extra = rows.find((r) => keyOf(r) === k);
    if (!extra) continue;
    const replace = [...chosen].reverse().find((r) => !impostorKeys.includes(keyOf(r)));
    if (replace) chosen = chosen.filter((r) => r !== replace);
    if (chosen.length < ctx.samples) chosen.push(extra);
  }
  chosen.sort((a, b) => b.ts - a.ts || b.id - a.id);
  return chosen.map((r) => ({
    id: String(r.id),
    owner: r.owner,
    repo: r.repo,
    workflow: r.workflow,
    run_id: r.run_id,
    job: r.job,
    endpoint: r.endpoint,
    direct_ip: r.direct_ip ? (r.ip ?? r.host) : null,
    timestamp: new Date(r.ts).toISOString(),
    process_sha256: r.sha256,
    dashboard_url: dashboardUrl(ctx.base, { owner: r.owner, repo: r.repo, run_id: r.run_id, job_id: r.gh_job_id }),
  }));
}
