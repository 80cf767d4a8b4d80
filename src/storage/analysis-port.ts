import type { DetectionFilter } from '../domain/filter.js';
import type { ParentLink } from '../domain/types.js';

/**
 * Analysis-aggregates port: what analyze_anomalous_calls_by_process reads from a store, in domain
 * terms. Filters are the parsed DetectionFilter (never SQL); rows are plain typed records.
 *
 * Process variants, endpoints and jobs are named by opaque refs: dense non-negative integers handed
 * out by the backend and meaningful only through the dictionaries of the same port. They are small
 * integers, not strings, because the analysis counts millions of rows per call over typed arrays
 * indexed by them (bench/analysis.ts); a backend that has no dense ids of its own interns them.
 */

/** One process variant: a distinct (name, path, sha256, parent chain). */
export type VariantRef = number;
/** One destination "host:port". */
export type EndpointRef = number;
/** One (owner, repo, workflow, job) of the tenant. */
export type JobRef = number;

/**
 * A tenant and a filter, resolved once by the backend (names to its keys) and handed back to every
 * read of one analysis. Only the backend looks inside.
 */
export interface AnalysisScope {
  readonly tenant: string;
  readonly filter: Readonly<DetectionFilter>;
  /**
   * True when the coarse per-variant aggregates answer the scope exactly (no time window and no
   * owner / repo / workflow / job scope): read coarseTotals and coarseBreakdown. Otherwise scan.
   */
  readonly coarse: boolean;
}

export type ScopeResult = { ok: true; scope: AnalysisScope } | { ok: false; missing: 'tenant' | 'types' };

/** Per variant over the whole scope: exact count and the first / last day (epoch days, UTC) with a match. */
export interface VariantTotal {
  variant: VariantRef;
  n: number;
  firstDay: number;
  lastDay: number;
}

/** One aggregated row of a scan: variant, endpoint, job, count, first / last timestamp (epoch ms). */
export type ScanRow = [variant: VariantRef, endpoint: EndpointRef, job: JobRef, n: number, firstTs: number, lastTs: number];

/** The newest detections of one variant in the scope (sample_detections). */
export interface SampleRecord {
  /** the detection's id, as the product shows it (ordered: a higher id was stored later) */
  id: number;
  variant: VariantRef;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  runId: string;
  ghJobId: string | null;
  endpoint: string;
  host: string;
  /** the recorded IP, when there is one */
  ip: string | null;
  directIp: boolean;
  ts: number;
  sha256: string | null;
}

/** Detections of the scope that reached an address in a configured risky range: per variant, endpoint and address. */
export interface RiskyAddressRow {
  variant: VariantRef;
  endpoint: EndpointRef;
  ip: string;
  n: number;
}

/** What a backend reads of the risky list to find the addresses in its ranges (analysis/risky-destinations.ts). */
export interface RiskyRanges {
  /** false: the list holds no IP range, and no address is risky beyond its destination's name */
  readonly hasRanges: boolean;
  /** the list's entries, built-in ones included: equal entries, equal judgement */
  readonly entries: readonly string[];
  matchHost(host: string): string | null;
}

/** Process variants by ref. Append-only: a ref never changes meaning, so callers may cache by ref. */
export interface VariantDictionary {
  name: string[];
  /** normalised name (normalizeProcessName) */
  norm: string[];
  path: (string | null)[];
  sha256: (string | null)[];
  parents: ParentLink[][];
}

/** Endpoints by ref. Append-only like the variants. */
export interface EndpointDictionary {
  /** "host:port" */
  endpoint: string[];
  host: string[];
  /** interned host: endpoints with the same host share one (dense, from 0) */
  hostId: number[];
  /** host of each host id */
  hostName: string[];
  port: (number | null)[];
  /** 1 when the host is an IP literal */
  isIp: number[];
  /** highest endpoint ref held */
  maxId: number;
  /** number of distinct hosts (hostId < hostCount) */
  hostCount: number;
}

/** The scope tenant's jobs by ref: dense per-tenant indexes of the owner and of the owner/repo pair. */
export interface JobDictionary {
  ownerIdx: number[];
  repoIdx: number[];
  owners: number;
  repos: number;
  /** highest job ref held */
  maxId: number;
}

/** One row of a coarse breakdown: endpoint or job ref, and its count (a ref may repeat: add them up). */
export type BreakdownRow = readonly [ref: number, n: number];

/**
 * Every read is async (a networked store answers over a connection) and returns whole arrays or
 * chunks, never a row per call: the analysis counts millions of rows and awaits a few dozen times.
 */
export interface AnalysisAggregates {
  /**
   * Runs fn in one consistent read snapshot, so totals, breakdowns, first/last probes and samples
   * agree even while another process ingests or moves detections (SQLite: one read transaction;
   * PostgreSQL: one REPEATABLE READ, READ ONLY transaction on one connection). Inside a snapshot
   * already open on this store, fn simply runs in it.
   */
  readSnapshot<T>(fn: () => Promise<T>): Promise<T>;
  /** true inside readSnapshot (or, on SQLite, any other open transaction of this store) */
  inSnapshot(): boolean;

  /** Resolves the tenant and the filter (types, statuses, window, owner/repo/workflow/job). */
  scope(tenant: string, filter: DetectionFilter): Promise<ScopeResult>;
  /** The stored spelling of an owner or repo matched case-insensitively, when it is unique; else the value. */
  storedSpelling(scope: AnalysisScope, field: 'owner' | 'repo', value: string): Promise<string>;

  /** Coarse scopes only: per-variant totals. */
  coarseTotals(scope: AnalysisScope): Promise<VariantTotal[]>;
  /** Coarse scopes only: one variant's per-endpoint or per-job counts. */
  coarseBreakdown(scope: AnalysisScope, dim: 'endpoint' | 'job', variant: VariantRef): Promise<readonly BreakdownRow[]>;
  /** Coarse scopes only: exact first and last timestamps of a variant, given its first and last day. */
  firstLast(scope: AnalysisScope, variant: VariantRef, firstDay: number, lastDay: number): Promise<[first: number, last: number]>;
  /**
   * Every matching (variant, endpoint, job) aggregate of the scope, handed to onRows in chunks (a
   * chunk is a whole batch: onRows is synchronous); a key may repeat across chunks: add them up.
   * Resolves once every chunk was handed over.
   */
  scan(scope: AnalysisScope, onRows: (rows: readonly ScanRow[]) => void): Promise<void>;
  /** The newest `limit` matching detections of one variant, newest first (ts, then id). */
  samples(scope: AnalysisScope, variant: VariantRef, limit: number): Promise<SampleRecord[]>;

  /**
   * The scope's detections whose recorded address falls in a range of `risky`, whatever name the
   * call went by (a configured range covers named calls too), counted per variant, endpoint and
   * address, exactly. Empty, with no read, when the list holds no range.
   */
  riskyAddressCalls(scope: AnalysisScope, risky: RiskyRanges): Promise<RiskyAddressRow[]>;

  /** The process variants the scope's refs name (SQLite: the shared dictionary; PostgreSQL: the tenant's). */
  variants(scope: AnalysisScope): Promise<VariantDictionary>;
  /** The endpoints the scope's refs name. */
  endpoints(scope: AnalysisScope): Promise<EndpointDictionary>;
  jobs(scope: AnalysisScope): Promise<JobDictionary>;
}
