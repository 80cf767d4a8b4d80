import { createHash } from 'node:crypto';
import type { SqliteStore } from '../storage/sqlite/sqlite-store.js';
import { scanDetections, type ScanFilter } from '../storage/sqlite/analysis-repo.js';
import { endpointDict, processDict, type EndpointDict } from '../storage/sqlite/dictionary-cache.js';
import { DETECTION_STATUSES, DETECTION_TYPES, NEW_OUTBOUND, isDetectionType, type DetectionStatus, type ParentLink } from '../domain/types.js';
import { STATUS_CODE } from '../storage/store.js';
import { dashboardUrl, resolveDashboardUrl } from '../domain/dashboard.js';
import { formatChain } from '../domain/process-name.js';
import { riskyDestinations, type RiskyDestinations } from './risky-destinations.js';
import { signatureSignals, suspiciousParent, vpnSignatureFor, type VpnSignature } from './vpn-signatures.js';
import { RulesService } from '../rules/service.js';
import { compileRule } from '../rules/matcher.js';
import type { RuleConditions } from '../rules/types.js';
import type { AnalyzeInput, AnalyzeResult, BinaryVerdict, ProcessGroup, SampleDetection, SuggestedRule } from './types.js';

/**
 * analyze_anomalous_calls_by_process, exact and evidence-based (docs/analysis.md).
 *
 * 1. One streaming pass over the matching rollup rows (plus raw detections for partial edge days)
 *    accumulates, per process variant: count, first/last seen, per-endpoint counts and job set.
 * 2. Variants are grouped by normalised process name; totals are exact; groups are sorted by count
 *    descending then name, filtered by minCount and paged with an opaque cursor.
 * 3. Only the page's groups get details: samples, binaries, parents, VPN evidence per binary,
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

interface VariantAcc {
  n: number;
  first: number;
  last: number;
  eps: Map<number, number>;
  jobs: Set<number>;
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

function parseTime(name: string, v: string | number | undefined): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new AnalysisError('invalid_time', `${name}: not a finite epoch-ms number`);
    return Math.trunc(v);
  }
  if (/^\d{10,}$/.test(v)) return Number(v);
  const t = Date.parse(v);
  if (Number.isNaN(t) || !/^\d{4}-\d{2}-\d{2}/.test(v)) {
    throw new AnalysisError('invalid_time', `${name}: "${v}" is not an RFC 3339 time (e.g. 2026-11-01T00:00:00Z) or epoch milliseconds`);
  }
  return t;
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
  if (o.f !== fingerprint) throw bad('it was issued for a different query (tenant, types, status, window, owner/repo or minCount differ)');
  return o as Cursor;
}

export async function analyzeAnomalousCallsByProcess(store: SqliteStore, input: AnalyzeInput, opts: AnalyzeOptions = {}): Promise<AnalyzeResult> {
  if (!input || typeof input.tenant !== 'string' || input.tenant === '') throw new AnalysisError('invalid_input', 'tenant is required');
  const types = input.detectionTypes && input.detectionTypes.length ? [...new Set(input.detectionTypes)] : [NEW_OUTBOUND];
  for (const t of types) {
    if (!isDetectionType(t)) throw new AnalysisError('unknown_type', `unknown detection type "${t}": use one of ${DETECTION_TYPES.join(', ')}`);
  }
  const status = input.status ?? 'new';
  if (status !== 'all' && !DETECTION_STATUSES.includes(status as DetectionStatus)) {
    throw new AnalysisError('invalid_input', `status: expected new, suppressed, resolved or all, got "${String(status)}"`);
  }
  const statuses = status === 'all' ? [0, 1, 2] : [STATUS_CODE[status as DetectionStatus]];
  const since = parseTime('since', input.since);
  const until = parseTime('until', input.until);
  if (since !== undefined && until !== undefined && since >= until) throw new AnalysisError('invalid_time', 'since must be earlier than until');
  const minCount = intIn('minCount', input.minCount, DEFAULTS.minCount, 1, Number.MAX_SAFE_INTEGER);
  const limit = intIn('limit', input.limit, DEFAULTS.limit, 1, 1000);
  const samples = intIn('samples', input.samples, DEFAULTS.samples, 0, 100);
  let owner = input.owner?.trim() || undefined;
  let repo = input.repo?.trim() || undefined;
  if (repo && repo.includes('/')) {
    const [o, r] = repo.split('/', 2) as [string, string];
    if (owner && owner.toLowerCase() !== o.toLowerCase()) throw new AnalysisError('invalid_input', `repo "${repo}" is not in owner "${owner}"`);
    owner = o;
    repo = r;
  }
  const base = resolveDashboardUrl(input.dashboardUrl);
  const rules = opts.rules ?? new RulesService(store, { extraRiskyDestinations: input.extraRiskyDestinations });
  const risky = rules.risky;
  const fingerprint = createHash('sha256')
    .update(JSON.stringify([input.tenant, types, status, since ?? null, until ?? null, owner ?? null, repo ?? null, minCount]))
    .digest('base64url')
    .slice(0, 16);
  const cursor = input.cursor ? decodeCursor(input.cursor, fingerprint) : null;

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
  if (owner || repo) {
    const conds = ['tenant_id = ?'];
    const params: unknown[] = [tenantId];
    if (owner) {
      conds.push('owner = ? COLLATE NOCASE');
      params.push(owner);
    }
    if (repo) {
      conds.push('repo = ? COLLATE NOCASE');
      params.push(repo);
    }
    filter.jobFilterSql = { sql: `SELECT id FROM jobs WHERE ${conds.join(' AND ')}`, params };
  }
  const acc = new Map<number, VariantAcc>();
  const byPid: (VariantAcc | undefined)[] = [];
  scanDetections(db, filter, (rows) => {
    for (let i = 0; i < rows.length; i++) {
      const r = rows[i]!;
      const pid = r[0];
      let a = byPid[pid];
      if (!a) {
        a = { n: 0, first: Infinity, last: -Infinity, eps: new Map(), jobs: new Set() };
        byPid[pid] = a;
        acc.set(pid, a);
      }
      const n = r[3];
      a.n += n;
      if (r[4] < a.first) a.first = r[4];
      if (r[5] > a.last) a.last = r[5];
      a.eps.set(r[1], (a.eps.get(r[1]) ?? 0) + n);
      a.jobs.add(r[2]);
    }
  });

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
  const jobMeta = new Map<number, { owner: string; repo: string }>();
  for (const j of db.prepare('SELECT id, owner, repo FROM jobs WHERE tenant_id = ?').all(tenantId) as { id: number; owner: string; repo: string }[]) {
    jobMeta.set(j.id, j);
  }
  const ctx: DetailCtx = { store, rules, risky, riskyIds, tenant: input.tenant, tenantId, typeIds, statuses, since, until, filter, samples, base, primaryType: types[0]!, owner, repo };
  for (const g of page) {
    result.processes.push(buildGroup(ctx, g, acc, procById, epById, jobMeta));
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

function addCount<K>(m: Map<K, number>, k: K, n: number): void {
  m.set(k, (m.get(k) ?? 0) + n);
}

function buildGroup(
  ctx: DetailCtx,
  g: { name: string; count: number; pids: number[] },
  acc: Map<number, VariantAcc>,
  procById: Map<number, ProcRow>,
  epById: EndpointDict,
  jobMeta: Map<number, { owner: string; repo: string }>,
): ProcessGroupExt {
  const single = g.pids.length === 1 ? acc.get(g.pids[0]!)! : null;
  const eps = single ? single.eps : new Map<number, number>();
  const jobs = single ? single.jobs : new Set<number>();
  let first = Infinity;
  let last = -Infinity;
  for (const pid of g.pids) {
    const a = acc.get(pid)!;
    if (!single) {
      for (const [id, n] of a.eps) addCount(eps, id, n);
      for (const j of a.jobs) jobs.add(j);
    }
    if (a.first < first) first = a.first;
    if (a.last > last) last = a.last;
  }
  const repos = new Set<string>();
  const owners = new Set<string>();
  for (const j of jobs) {
    const m = jobMeta.get(j);
    if (!m) continue;
    repos.add(`${m.owner}/${m.repo}`);
    owners.add(m.owner);
  }
  const directIps = new Map<string, number>();
  const riskyEps = new Map<string, number>();
  let riskyCount = 0;
  for (const [id, n] of eps) {
    if (epById.isIp[id]) addCount(directIps, epById.host[id]!, n);
    if (ctx.riskyIds.has(id)) {
      riskyCount += n;
      addCount(riskyEps, epById.endpoint[id]!, n);
    }
  }
  const epName = (id: number) => epById.endpoint[id]!;

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
    if (sig) evaluateBinary(ctx, sig, g.name, b, v, acc, procById, epById);
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
      `${riskyCount} detection(s) go to risky destinations (${[...riskyEps.keys()].slice(0, 5).join(', ')}): investigate, they can never be suppressed`,
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
    const main = genuine[0]!;
    const conditions: RuleConditions = { process: g.name };
    if (main.sha256) conditions.process_sha256 = main.sha256;
    conditions.owner = ctx.owner ?? '*';
    conditions.repo = ctx.repo ?? '*';
    conditions.workflow = '*';
    conditions.job = '*';
    const others = genuine.slice(1);
    const excluded = [...impostors, ...unverified];
    const rationale =
      `${g.name} binary sha256 ${short(main.sha256)} (${main.path ?? 'unknown path'}) matches ${sig!.daemon}'s signature ` +
      `(${main.supporting.slice(0, 4).join('; ')}) and nothing contradicts it` +
      (main.sha256 ? '; the rule is narrowed to this hash so any other binary using the name stays visible' : '') +
      (excluded.length ? `; excluded: ${excluded.map((v) => `${short(v.sha256)} (${v.verdict}, ${v.count})`).join(', ')}` : '') +
      (others.length
        ? `; other genuine binaries need their own rule: ${others.map((v) => `process_sha256=${v.sha256 ?? '?'} (${v.count})`).join(', ')}`
        : '') +
      '.';
    let blocked: string | null = null;
    if (!main.sha256 && excluded.length) {
      blocked = `the genuine binary has no sha256, so a rule cannot exclude the other binaries named ${g.name}`;
    } else if (!main.sha256) {
      blocked = `the binary has no sha256: a name-only rule would also silence any future binary named ${g.name}; suppress by endpoint or scope instead`;
    }
    const preview = ctx.rules.previewCompiled(ctx.tenant, ctx.primaryType, compileRule(ctx.primaryType, conditions), 0, { countsOnly: true });
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
    for (const [id, n] of topN(eps, 20, epName)) {
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
    distinct_endpoints: eps.size,
    distinct_direct_ips: directIps.size,
    is_vpn_process_candidate: candidate,
    name_impersonation_suspected: impersonation,
    endpoints_sample: topN(eps, 10, epName).map(([id]) => epName(id)),
    direct_ips_sample: topN(directIps, 10, (k) => k).map(([ip]) => ip),
    risky_destinations_suppressed_by_process_rule: riskyCount,
    risky_destination_samples: topN(riskyEps, 10, (k) => k).map(([e]) => e),
    suggested_rule: suggested,
    sample_detections: loadSamples(ctx, g.pids, impostors.map((v) => v.key), procById),
    distinct_repos: repos.size,
    distinct_owners: owners.size,
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
  let eps: Map<number, number>;
  if (b.pids.length === 1) eps = acc.get(b.pids[0]!)!.eps;
  else {
    eps = new Map<number, number>();
    for (const pid of b.pids) for (const [id, n] of acc.get(pid)!.eps) addCount(eps, id, n);
  }
  for (const [id, n] of eps) {
    if (ctx.riskyIds.has(id)) {
      addCount(contra, `risky destination ${epById.endpoint[id]}`, n);
      continue;
    }
    const isIp = epById.isIp[id] === 1;
    const signals = signatureSignals(sig, epById.host[id]!, epById.port[id] ?? null, isIp);
    for (const s of signals) addCount(support, s, n);
    if (signals.length === 0 && !isIp) addCount(contra, `domain outside ${sig.daemon}'s signature: ${epById.endpoint[id]}`, n);
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
  const parts = ['d.tenant_id = ?', 'd.process_id = ?', `d.type_id IN (${ctx.typeIds.join(',')})`, `d.status IN (${ctx.statuses.join(',')})`];
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
