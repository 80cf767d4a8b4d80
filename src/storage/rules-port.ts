import type { BinaryRef } from '../analysis/impostor.js';
import type { CompiledRule } from '../rules/matcher.js';
import type { ImpostorSet } from '../rules/guards.js';
import type { RiskySample, RuleConditions } from '../rules/types.js';
import type { SuspectedImpostor } from '../analysis/impostor.js';
import type { RiskyDestinations } from '../analysis/risky-destinations.js';

/**
 * The rules port: what the rules service (src/rules/service.ts) and the ingest-time suppressor
 * need of a store, in domain terms. A backend evaluates a compiled rule (rules/matcher.ts) over its
 * own data however it likes (SQLite: id sets over its dictionaries and rollups; PostgreSQL:
 * set-based UPDATEs); the service decides what to move where, and the guards stay pure.
 *
 * Detection state: a detection is `new` ({ status: 0, rule: 0 }) or suppressed by a rule
 * ({ status: 1, rule: id }). While a rule's conditions change, its former suppressions are parked
 * under { status: 1, rule: -id } so each following step moves an exact, disjoint set.
 *
 * Every method is async, so a networked store implements it; a tenant id is the store's handle of
 * a tenant, and every query of a backend is limited to the tenant it is given.
 */

export interface DetectionState {
  status: number;
  rule: number;
}

export const NEW_STATE: DetectionState = { status: 0, rule: 0 };

/** A stored, active rule. `id` is the store's internal id (detections refer to it), `uid` the public id. */
export interface StoredRule {
  id: number;
  tenantId: number;
  uid: string;
  detectionType: string;
  name: string;
  description: string;
  conditions: RuleConditions;
  createdBy: string;
  createdOn: string;
  updatedOn: string;
}

/** A rule to store: a stored rule's fields before the store gives it an id, created and updated `at` (ISO time). */
export type NewRule = Omit<StoredRule, 'id' | 'createdOn' | 'updatedOn'> & { at: string };

/** Which detections a move takes, among those in its `from` state. */
export type RuleSelection =
  /**
   * those the compiled rule matches; `guarded`: minus every detection to a risky destination and
   * every detection of a suspected impostor binary (the never-suppress guard, rules/guards.ts)
   */
  | { kind: 'match'; rule: CompiledRule; guarded: boolean }
  /** all of them, of any type (restore, parking) */
  | { kind: 'all' };

/** A risky sample as a backend reads it: the address is kept only when the risk is by it. */
export function riskySample(r: { endpoint: string; process: string; address: string | null; count: number | string }): RiskySample {
  const base = { endpoint: r.endpoint, process: r.process, count: Number(r.count) };
  return r.address === null ? base : { endpoint: r.endpoint, address: r.address, process: r.process, count: base.count };
}

/** Exact counts of the currently-new detections a rule matches (rules preview). */
export interface RuleMatchCounts {
  total: number;
  /** of those, to risky destinations */
  risky: number;
  byProcess: { process: string; count: number }[];
  byRepo: { owner: string; repo: string; count: number }[];
  riskySamples: RiskySample[];
  sampleIds: number[];
  /** of those, per suspected impostor binary of the `impostors` given (binaries with none are left out) */
  impostorHits: { binary: SuspectedImpostor; count: number }[];
}

export interface RuleMatchOptions {
  /** how many ids of matching detections to return */
  sampleLimit: number;
  /** totals only (no per-process / per-repo breakdown) unless a risky detection matches */
  countsOnly: boolean;
  /** the suspected impostors to count matches of */
  impostors: ImpostorSet;
}

export interface RuleAuditRow {
  rule_id: string;
  action: string;
  actor: string;
  at: string;
  before: unknown;
  after: unknown;
  affected: number;
}

/**
 * One change to the store-wide risky list (rules/risky-memory.ts). The list is the store's, not a
 * tenant's, so its audit is too: every tenant's rules are judged by it.
 */
export interface RiskyAuditRow {
  entry: string;
  /** remember: a config named it first; forget: `risky forget` dropped it */
  action: 'remember' | 'forget';
  actor: string;
  at: string;
}

/** The actor of an entry remembered before the risky-list audit existed (each backend's migration fills it in). */
export const UNRECORDED_ACTOR = 'unknown (remembered before the risky-list audit)';

export interface RuleAuditWrite {
  tenantId: number;
  uid: string;
  action: string;
  actor: string;
  at: string;
  before: unknown;
  after: unknown;
  affected: number;
}

/** The tenant's suspected impostors, and the files they were seen at (analysis/impostor-links.ts). */
export interface Impostors {
  set: ImpostorSet;
  /** fileKey of every stored variant of a suspected impostor that has a path */
  files: readonly string[];
  /** fileKey of every stored variant of a daemon-named binary with a path and no readable hash */
  hashless: readonly string[];
  /** the stored daemon-named binaries with a readable hash: ingest flags them when their file makes a risky call under another name */
  hashedDaemons: readonly BinaryRef[];
}

/** What can be read, inside or outside a write. */
export interface RulesReader {
  /** the tenant's id, or undefined when the store has never seen it */
  tenantId(tenant: string): Promise<number | undefined>;
  /**
   * The tenant's suspected impostors: recorded ones and those the evidence of its detections shows
   * (any type, status or rule). `stampBeforeSnapshot`: see RulesPort.commitStamp.
   */
  impostors(tenantId: number, stampBeforeSnapshot?: number | null): Promise<Impostors>;
  /** active rules, in creation order */
  activeRules(tenantId: number): Promise<StoredRule[]>;
  ruleByUid(tenantId: number, uid: string): Promise<StoredRule | undefined>;
  /** exact counts of the tenant's currently-new detections of `type` that `rule` matches */
  matchCounts(tenantId: number, type: string, rule: CompiledRule, opts: RuleMatchOptions): Promise<RuleMatchCounts>;
  /** the audit trail of the tenant's rule changes (of one rule when `uid` is given), newest first */
  auditLog(tenantId: number, uid?: string): Promise<RuleAuditRow[]>;
  /** the risky destinations the store remembers (rules/risky-memory.ts), oldest first */
  riskyEntries(): Promise<string[]>;
  /** every tenant's id */
  tenantIds(): Promise<number[]>;
  /** the impostor verdict's revision the store was last judged by (rules/verdict-revision.ts); 0 when never */
  verdictRevision(): Promise<number>;
  /** every change to that list, newest first */
  riskyAudit(): Promise<RiskyAuditRow[]>;
}

/** What a write transaction can do on top of reading. */
export interface RulesWriter extends RulesReader {
  ensureTenant(tenant: string): Promise<number>;
  insertRule(r: NewRule): Promise<StoredRule>;
  /** replaces type, name, description and conditions of an active rule */
  updateRule(tenantId: number, id: number, fields: { detectionType: string; name: string; description: string; conditions: RuleConditions }, at: string): Promise<StoredRule>;
  /** soft-deletes the rule */
  deleteRule(tenantId: number, id: number, at: string): Promise<void>;
  /**
   * Moves the selected detections of the tenant from one state to another (detections and every
   * count kept with them); returns exactly how many moved. `match` selects among detections of the
   * rule's type; `all` among every detection in `from`.
   */
  move(tenantId: number, sel: RuleSelection, from: DetectionState, to: DetectionState): Promise<number>;
  /** how many of the tenant's detections are in `state` (from the rollups) */
  held(tenantId: number, state: DetectionState): Promise<number>;
  /** records a binary flagged at ingest (idempotent) */
  flagImpostor(tenantId: number, b: SuspectedImpostor): Promise<void>;
  /** moves every detection of these binaries that is not new back to new: suppressed by any rule, or suppressed or resolved upstream (imported) */
  releaseBinaries(tenantId: number, binaries: ImpostorSet): Promise<number>;
  audit(row: RuleAuditWrite): Promise<void>;
  /**
   * Remembers these risky destinations (normalised entries); returns those that were new. Each new
   * one gets its risky-audit row in the same transaction.
   */
  rememberRisky(entries: readonly string[], at: string, actor: string): Promise<string[]>;
  /**
   * Forgets a remembered risky destination (a normalised entry), with its risky-audit row in the
   * same transaction; false (and no row) when it was not remembered.
   */
  forgetRisky(entry: string, at: string, actor: string): Promise<boolean>;
  /**
   * Moves every detection, of every tenant, that the port's risky list covers (by destination, or by
   * address for a range) and that is not new back to new: suppressed by a rule, or suppressed or
   * resolved upstream (imported); and so is every such detection of a binary that the list makes a
   * suspected impostor (a daemon's name that called what the list covers). Returns how many moved.
   */
  releaseRisky(): Promise<number>;
  /** tells ingest processes that rules changed (they rebuild their suppressor before their next write) */
  bumpRulesVersion(): Promise<void>;
  /** records the verdict revision the store is now judged by */
  setVerdictRevision(revision: number): Promise<void>;
}

export interface RulesPort extends RulesReader {
  readonly risky: RiskyDestinations;
  /**
   * A number that changes whenever a commit changes anything the tenant's impostor verdict or the
   * exact counts of a rule over its detections (matchCounts) read, to pass to impostors() from a
   * read snapshot opened after taking it (the verdict is then reused while nothing committed); null
   * when the backend cannot tell (the verdict is then computed afresh each time). A backend may
   * change it more often (SQLite: on every commit to the store; PostgreSQL: per tenant).
   */
  commitStamp(tenantId: number): Promise<number | null>;
  /** Runs `fn` in one write transaction: it all commits, or (when fn throws) none of it. */
  write<T>(fn: (tx: RulesWriter) => Promise<T>): Promise<T>;
}

/** A store that holds rules. */
export interface RulesStore {
  rulesPort(risky: RiskyDestinations): RulesPort;
}
