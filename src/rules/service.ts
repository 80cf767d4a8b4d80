import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import type { SqliteStore } from '../storage/sqlite/sqlite-store.js';
import { ensureTenant } from '../storage/sqlite/ingest-session.js';
import { SqliteRulesRepo, type MatchPredicate, type RuleRow } from '../storage/sqlite/rules-repo.js';
import { riskyDestinations, type RiskyDestinations } from '../analysis/risky-destinations.js';
import {
  RuleError,
  compileRule,
  hasEffectiveCondition,
  validateConditions,
  validateDetectionType,
  type CompiledRule,
} from './matcher.js';
import type { RuleChangeResult, RuleConditions, RuleInput, RulePreview, SuppressionRule } from './types.js';
import { describeBinary } from '../analysis/impostor.js';
import { ImpostorSet } from './guards.js';

export { RuleError } from './matcher.js';

export interface RulesServiceOptions {
  /** extra risky destinations (egress-triage.yaml `risky_destinations`) */
  extraRiskyDestinations?: string[];
}

export interface DeleteOptions {
  /** turn the detections this rule suppressed back into `new` (default false: keep them suppressed) */
  restore?: boolean;
}

export function defaultActor(): string {
  try {
    return `cli:${userInfo().username}`;
  } catch {
    return 'cli:unknown';
  }
}

const NEW = { status: 0, rule: 0 };

/**
 * Suppression rules for one store. Every write runs in one IMMEDIATE transaction: validation, the
 * never-suppress check, the rule row, the retroactive status move (rollup + detections), the audit
 * row and the rules_version bump commit together or not at all.
 */
export class RulesService {
  readonly repo: SqliteRulesRepo;
  readonly risky: RiskyDestinations;

  constructor(
    readonly store: SqliteStore,
    opts: RulesServiceOptions = {},
  ) {
    this.risky = riskyDestinations(opts.extraRiskyDestinations);
    this.repo = new SqliteRulesRepo(store.db, this.risky);
  }

  async list(tenant: string): Promise<SuppressionRule[]> {
    const tid = this.repo.tenantId(tenant);
    if (tid === undefined) return [];
    return this.repo.activeRules(tid).map(toRule);
  }

  async get(tenant: string, ruleId: string): Promise<SuppressionRule> {
    return toRule(this.mustFind(tenant, ruleId));
  }

  async preview(tenant: string, input: RuleInput): Promise<RulePreview> {
    const { type, rule } = this.compileInput(input);
    return this.previewCompiled(tenant, type, rule);
  }

  /**
   * Synchronous preview of an already compiled rule (used by analysis for suggestion impact). The
   * analysis passes the impostor set it already holds for the same snapshot.
   */
  previewCompiled(
    tenant: string,
    type: string,
    rule: CompiledRule,
    sampleLimit = 10,
    opts: { countsOnly?: boolean; impostors?: ImpostorSet } = {},
  ): RulePreview {
    const targeted = this.targetsRisky(rule);
    const tid = this.repo.tenantId(tenant);
    const warnings: string[] = [];
    let counts = { total: 0, risky: 0, byProcess: [] as RulePreview['by_process'], byRepo: [] as RulePreview['by_repo'], riskySamples: [] as RulePreview['risky_samples'], sampleIds: [] as number[] };
    const impostorHits: { binary: string; reason: string; count: number }[] = [];
    if (tid !== undefined) {
      const pred = this.repo.buildPredicate(tid, this.repo.typeId(type), rule);
      counts = this.repo.previewCounts(pred, sampleLimit, opts.countsOnly ?? false);
      // Same single matcher, then the impostor guard over the ids it matched.
      const set = opts.impostors ?? this.repo.impostors(tid).set;
      for (const b of set.list()) {
        const n = [...this.repo.newCountsOf(pred, this.repo.processIdsOf(new ImpostorSet([b]))).values()].reduce((a, x) => a + x, 0);
        if (n > 0) impostorHits.push({ binary: describeBinary(b), reason: b.reason, count: n });
      }
    }
    const impostorCount = impostorHits.reduce((a, h) => a + h.count, 0);
    let refused: string | null = null;
    if (!hasEffectiveCondition(rule.conditions)) {
      refused = 'the rule has no condition other than "*": it would silence every detection of this type; add a process, process_sha256, endpoint, host, ip_address or scope condition';
    } else if (targeted) {
      refused = targeted;
    } else if (counts.risky > 0) {
      const hosts = [...new Set(counts.riskySamples.map((s) => s.endpoint))].slice(0, 5).join(', ');
      refused =
        `the rule would also suppress ${counts.risky} detection(s) to risky destinations (${hosts}); ` +
        'narrow it (e.g. add process_sha256, owner/repo, or an endpoint/host condition) so that it excludes them';
    }
    if (impostorCount > 0 && hasEffectiveCondition(rule.conditions) && !targeted) {
      refused = (refused ? `${refused}. Also: ` : '') +
        `the rule would suppress ${impostorCount} detection(s) of suspected impostor binaries (` +
        impostorHits.map((h) => `${h.binary}: ${h.count}, ${h.reason}`).join('; ') +
        '); a binary that impersonates a VPN daemon must stay visible whatever the rule\'s conditions: narrow it with process_sha256 of the genuine binary';
    }
    if (impostorCount > 0) warnings.push(`${impostorCount} matching detection(s) come from suspected impostor binaries and must stay visible`);
    if (counts.risky > 0) warnings.push(`${counts.risky} matching detection(s) go to risky destinations and must stay visible`);
    if (rule.impossible) warnings.push(`condition "${rule.impossible}" never matches network detections`);
    if (tid === undefined) warnings.push(`tenant "${tenant}" has no data`);
    if (counts.total === 0 && tid !== undefined) warnings.push('the rule matches no current new detection');
    return {
      detection_id: type,
      conditions: rule.conditions,
      would_suppress: counts.total,
      risky_matches: counts.risky,
      impostor_matches: impostorCount,
      risky_samples: counts.riskySamples,
      by_process: counts.byProcess,
      by_repo: counts.byRepo,
      sample_detection_ids: counts.sampleIds.map(String),
      warnings,
      refused_reason: refused,
    };
  }

  async create(tenant: string, input: RuleInput, actor: string = defaultActor()): Promise<RuleChangeResult> {
    const { type, rule } = this.compileInput(input);
    const name = cleanText('name', input.name) ?? defaultName(rule.conditions);
    const description = cleanText('description', input.description) ?? '';
    const db = this.store.db;
    return db.transaction(() => {
      const tid = ensureTenant(db, tenant);
      const preview = this.previewCompiled(tenant, type, rule, 0);
      if (preview.refused_reason) throw new RuleError(this.refusalCode(preview), `rule refused: ${preview.refused_reason}`);
      const now = new Date().toISOString();
      const uid = randomUUID();
      const id = Number(
        db
          .prepare(
            `INSERT INTO rules (tenant_id, rule_uid, detection_type, name, description, conditions, severity_action, created_by, created_on, updated_on)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(tid, uid, type, name, description, JSON.stringify(rule.conditions), JSON.stringify({ type: 'ignore' }), actor, now, now).lastInsertRowid,
      );
      const typeId = this.repo.ensureType(type);
      const pred = this.repo.buildPredicate(tid, typeId, rule);
      const suppressed = this.repo.move(pred, NEW, { status: 1, rule: id });
      if (suppressed !== preview.would_suppress) {
        throw new Error(`internal: preview counted ${preview.would_suppress} but create suppressed ${suppressed}; rolled back`);
      }
      const created = toRule(this.repo.ruleByUid(tid, uid)!);
      this.repo.audit(tid, uid, 'create', actor, null, created, suppressed);
      this.repo.bumpRulesVersion();
      return { rule: created, suppressed, restored: 0 };
    }).immediate();
  }

  /**
   * Changes a rule. Name/description changes move nothing. New conditions are validated and checked
   * like a create, then the rule keeps exactly what they match:
   *  - its former suppressions that the new conditions still match stay suppressed by it (`kept`);
   *  - the others go to the first other active rule (creation order) that matches them
   *    (`handed_to_other_rules`), or back to `new` (`restored`); risky destinations and suspected
   *    impostors always go back to `new`;
   *  - current new detections the new conditions match are suppressed (`suppressed`).
   */
  async update(tenant: string, ruleId: string, input: Partial<RuleInput>, actor: string = defaultActor()): Promise<RuleChangeResult> {
    const db = this.store.db;
    const current = this.mustFind(tenant, ruleId);
    const type = input.detection_id !== undefined ? validateDetectionType(input.detection_id) : current.detection_type;
    const conditions = input.conditions !== undefined ? validateConditions(input.conditions) : (JSON.parse(current.conditions) as RuleConditions);
    const rule = compileRule(type, conditions);
    const name = cleanText('name', input.name);
    const description = cleanText('description', input.description);
    return db.transaction(() => {
      const row = this.mustFind(tenant, ruleId);
      const before = toRule(row);
      const matchChanged = type !== row.detection_type || JSON.stringify(rule.conditions) !== JSON.stringify(JSON.parse(row.conditions));
      let expected = 0;
      if (matchChanged) {
        const preview = this.previewCompiled(tenant, type, rule, 0);
        if (preview.refused_reason) throw new RuleError(this.refusalCode(preview), `rule refused: ${preview.refused_reason}`);
        expected = preview.would_suppress;
      }
      db.prepare('UPDATE rules SET detection_type = ?, name = ?, description = ?, conditions = ?, updated_on = ? WHERE id = ?').run(
        type,
        name ?? row.name,
        description ?? row.description,
        JSON.stringify(rule.conditions),
        new Date().toISOString(),
        row.id,
      );
      const moved = { suppressed: 0, kept: 0, restored: 0, handed: [] as { rule_id: string; count: number }[] };
      if (matchChanged) Object.assign(moved, this.reevaluate(row, type, rule, expected));
      const after = toRule(this.repo.ruleByUid(row.tenant_id, row.rule_uid)!);
      const handedTotal = moved.handed.reduce((a, h) => a + h.count, 0);
      this.repo.audit(row.tenant_id, row.rule_uid, 'update', actor, before, after, moved.suppressed + moved.restored + handedTotal);
      this.repo.bumpRulesVersion();
      return { rule: after, suppressed: moved.suppressed, restored: moved.restored, kept: moved.kept, handed_to_other_rules: moved.handed };
    }).immediate();
  }

  /**
   * Re-evaluates a rule's detections after its conditions changed (inside update's transaction). Its
   * former suppressions are first parked under a marker (status suppressed, rule_id = -id) so that
   * each following step moves an exact, disjoint set, and rollups and detections move together.
   */
  private reevaluate(row: RuleRow, type: string, rule: CompiledRule, expected: number) {
    const tid = row.tenant_id;
    const own = { status: 1, rule: row.id };
    const parked = { status: 1, rule: -row.id };
    for (const typeId of this.repo.ruleTypes(tid, row.id)) this.repo.move(this.repo.rulePredicate(tid, typeId), own, parked);
    const typeId = this.repo.ensureType(type);
    const kept = this.repo.move(this.guarded(tid, this.repo.buildPredicate(tid, typeId, rule)), parked, own);
    const handed: { rule_id: string; count: number }[] = [];
    for (const other of this.repo.activeRules(tid)) {
      if (other.id === row.id) continue;
      if (this.repo.ruleTypes(tid, -row.id).length === 0) break;
      const compiled = compileRule(other.detection_type, JSON.parse(other.conditions) as RuleConditions);
      const pred = this.guarded(tid, this.repo.buildPredicate(tid, this.repo.ensureType(other.detection_type), compiled));
      const n = this.repo.move(pred, parked, { status: 1, rule: other.id });
      if (n > 0) handed.push({ rule_id: other.rule_uid, count: n });
    }
    let restored = 0;
    for (const t of this.repo.ruleTypes(tid, -row.id)) restored += this.repo.move(this.repo.rulePredicate(tid, t), parked, NEW);
    const suppressed = this.repo.move(this.guarded(tid, this.repo.buildPredicate(tid, typeId, rule)), NEW, own);
    if (suppressed !== expected) {
      throw new Error(`internal: preview counted ${expected} but update suppressed ${suppressed}; rolled back`);
    }
    return { suppressed, kept, restored, handed };
  }

  /** The predicate minus detections that must never be suppressed (risky destinations, suspected impostors). */
  private guarded(tenantId: number, pred: MatchPredicate): MatchPredicate {
    if (!pred.possible) return pred;
    const ids = this.repo.impostors(tenantId).processIds;
    return this.repo.excludeProcesses(this.repo.excludeRisky(pred), ids);
  }

  /**
   * Moves every suppressed detection of these binaries (process ids) back to `new`, whichever rule
   * suppressed it: used when ingest first sees a binary contradict the daemon it is named after.
   * Must run inside a write transaction. Returns how many moved.
   */
  releaseProcesses(tenantId: number, processIds: number[]): number {
    if (processIds.length === 0) return 0;
    const rows = this.store.db
      .prepare(
        `SELECT DISTINCT type_id, rule_id FROM rollup_process_day WHERE tenant_id = ? AND status = 1 AND rule_id <> 0
         AND process_id IN (${processIds.map(Number).join(',')})`,
      )
      .raw()
      .all(tenantId) as [number, number][];
    let moved = 0;
    for (const [typeId, ruleId] of rows) {
      this.repo.fillProcesses(processIds);
      const pred: MatchPredicate = {
        possible: true,
        sql: 'tenant_id = ? AND type_id = ? AND process_id IN (SELECT id FROM temp.rm_procs)',
        params: [tenantId, typeId],
        dims: { job: false, process: true, endpoint: false, ip: false },
      };
      moved += this.repo.move(pred, { status: 1, rule: ruleId }, NEW);
    }
    return moved;
  }

  /** Soft-deletes the rule. Past suppressions stay unless `restore` is set. */
  async delete(tenant: string, ruleId: string, opts: DeleteOptions = {}, actor: string = defaultActor()): Promise<RuleChangeResult> {
    const db = this.store.db;
    this.mustFind(tenant, ruleId);
    return db.transaction(() => {
      const row = this.mustFind(tenant, ruleId);
      const before = toRule(row);
      let restored = 0;
      if (opts.restore) {
        for (const typeId of this.repo.ruleTypes(row.tenant_id, row.id)) {
          restored += this.repo.move(this.repo.rulePredicate(row.tenant_id, typeId), { status: 1, rule: row.id }, NEW);
        }
      }
      db.prepare('UPDATE rules SET deleted_on = ?, updated_on = ? WHERE id = ?').run(new Date().toISOString(), new Date().toISOString(), row.id);
      // A restored detection that another active rule matches belongs to that rule, exactly as if it
      // were ingested now: re-apply the remaining rules in creation order.
      if (restored > 0) restored -= this.reapplyActiveRules(row.tenant_id);
      this.repo.audit(row.tenant_id, row.rule_uid, opts.restore ? 'delete+restore' : 'delete', actor, before, null, restored);
      this.repo.bumpRulesVersion();
      return { rule: before, suppressed: 0, restored };
    }).immediate();
  }

  /** Suppresses new detections matched by the tenant's active rules; returns how many moved. */
  private reapplyActiveRules(tenantId: number): number {
    const rows = this.store.db
      .prepare('SELECT id, detection_type, conditions FROM rules WHERE tenant_id = ? AND deleted_on IS NULL ORDER BY id')
      .all(tenantId) as { id: number; detection_type: string; conditions: string }[];
    let moved = 0;
    for (const r of rows) {
      const compiled = compileRule(r.detection_type, JSON.parse(r.conditions) as RuleConditions);
      const pred = this.repo.buildPredicate(tenantId, this.repo.ensureType(r.detection_type), compiled);
      // As at ingest, never-suppress destinations and suspected impostors stay new even under an older rule.
      moved += this.repo.move(this.guarded(tenantId, pred), NEW, { status: 1, rule: r.id });
    }
    return moved;
  }

  /** Audit trail of a tenant's rule changes, newest first. */
  async audit(tenant: string, ruleId?: string): Promise<{ rule_id: string; action: string; actor: string; at: string; before: unknown; after: unknown; affected: number }[]> {
    const tid = this.repo.tenantId(tenant);
    if (tid === undefined) return [];
    const rows = this.store.db
      .prepare(
        `SELECT rule_uid, action, actor, at, before_json, after_json, affected FROM rule_audit
         WHERE tenant_id = ? ${ruleId ? 'AND rule_uid = ?' : ''} ORDER BY id DESC`,
      )
      .all(...(ruleId ? [tid, ruleId] : [tid])) as { rule_uid: string; action: string; actor: string; at: string; before_json: string | null; after_json: string | null; affected: number }[];
    return rows.map((r) => ({
      rule_id: r.rule_uid,
      action: r.action,
      actor: r.actor,
      at: r.at,
      before: r.before_json ? JSON.parse(r.before_json) : null,
      after: r.after_json ? JSON.parse(r.after_json) : null,
      affected: r.affected,
    }));
  }

  compileInput(input: RuleInput): { type: string; rule: CompiledRule } {
    if (!input || typeof input !== 'object') throw new RuleError('invalid_input', 'rule input must be an object');
    const type = validateDetectionType(input.detection_id);
    return { type, rule: compileRule(type, input.conditions ?? {}) };
  }

  /**
   * A rule whose endpoint / host / ip_address pattern names or covers a risky destination is refused
   * outright, whatever the current data. Returns the reason, or null.
   */
  targetsRisky(rule: CompiledRule): string | null {
    const c = rule.conditions;
    for (const key of ['endpoint', 'host'] as const) {
      const v = c[key];
      if (v === undefined || v === '*') continue;
      const host = key === 'endpoint' ? endpointHostPattern(v) : v;
      // A literal that contains a risky host (webhook.site.evil.example) is refused as well: it reads
      // as targeting the risky host, and refusing it costs nothing.
      const literal = host.toLowerCase().replace(/[*?]/g, '');
      const named = this.risky.hostEntries().find((e) => literal.includes(e));
      const covered = named ?? this.risky.coveredBy(host);
      if (covered) {
        return `${key}="${v}" covers the never-suppress destination ${covered}: payload staging / exfiltration hosts must stay visible`;
      }
    }
    if (c.ip_address !== undefined && c.ip_address !== '*' && rule.ip) {
      for (const e of this.risky.cidrEntries()) {
        const base = e.split('/')[0]!;
        if (rule.ip(base)) return `ip_address="${c.ip_address}" covers the never-suppress range ${e}`;
      }
    }
    return null;
  }

  private refusalCode(p: RulePreview): 'too_broad' | 'refused_risky' | 'refused_impostor' {
    if (!hasEffectiveCondition(p.conditions)) return 'too_broad';
    return p.risky_matches === 0 && p.impostor_matches > 0 ? 'refused_impostor' : 'refused_risky';
  }

  private mustFind(tenant: string, ruleId: string): RuleRow {
    const tid = this.repo.tenantId(tenant);
    const row = tid === undefined ? undefined : this.repo.ruleByUid(tid, ruleId);
    if (!row) throw new RuleError('not_found', `no active rule "${ruleId}" in tenant "${tenant}": run \`rules list\` to see rule ids`);
    return row;
  }
}

/** The host part of an endpoint condition ("*.site:4*" -> "*.site", "[::1]:443" -> "::1"). */
function endpointHostPattern(v: string): string {
  const v6 = /^\[([^\]]+)\]/.exec(v);
  if (v6) return v6[1]!;
  const i = v.lastIndexOf(':');
  return i >= 0 ? v.slice(0, i) : v;
}

function cleanText(field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new RuleError('invalid_input', `${field} must be a string`);
  const t = v.trim();
  if (t.length > 500) throw new RuleError('invalid_input', `${field} is longer than 500 characters`);
  return t;
}

function defaultName(c: RuleConditions): string {
  const parts = Object.entries(c)
    .filter(([, v]) => v !== '*')
    .map(([k, v]) => `${k}=${k === 'process_sha256' ? v!.split('|').map((h) => h.slice(0, 12)).join('|') : v}`);
  return `suppress ${parts.join(' ')}`.slice(0, 200);
}

export function toRule(r: RuleRow): SuppressionRule {
  return {
    rule_id: r.rule_uid,
    id: r.detection_type,
    name: r.name,
    description: r.description,
    conditions: JSON.parse(r.conditions) as RuleConditions,
    severity_action: { type: 'ignore' },
    created_by: r.created_by,
    created_on: r.created_on,
    updated_on: r.updated_on,
  };
}
