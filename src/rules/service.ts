import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { riskyDestinations, type RiskyDestinations } from '../analysis/risky-destinations.js';
import { ipv4Images, isEnumerable, parseIpRange } from '../domain/ip.js';
import {
  RuleError,
  compileRule,
  compileStoredRule,
  endpointHostPattern,
  hasEffectiveCondition,
  sameConditions,
  sameMatch,
  validateConditions,
  validateDetectionType,
  type CompiledRule,
} from './matcher.js';
import type { RuleChangeResult, RuleConditions, RuleInput, RulePreview, SuppressionRule } from './types.js';
import { describeBinary } from '../analysis/impostor.js';
import { namesServer, serverlessDaemonNames, unpinnedDaemonNames, type ImpostorSet } from './guards.js';
import { PORT_ONLY_PROCESS_NAMES, VPN_PROCESS_NAMES } from '../analysis/vpn-signatures.js';
import {
  NEW_STATE,
  type RuleAuditRow,
  type RuleMatchCounts,
  type RulesPort,
  type RulesReader,
  type RulesStore,
  type RulesWriter,
  type StoredRule,
} from '../storage/rules-port.js';

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

/** What the rules service needs of a store: its rules port (storage/rules-port.ts). */
export type { RulesStore } from '../storage/rules-port.js';

/**
 * Suppression rules for one store, over its rules port. Every write runs in one write transaction
 * of the port: validation, the never-suppress check, the rule row, the retroactive status move, the
 * audit row and the rules_version bump commit together or not at all.
 */
/** The preview's warning for a rule that would suppress nothing now (an update keeping suppressions drops it). */
const NO_NEW_MATCH = 'the rule matches no current new detection';

export class RulesService {
  readonly repo: RulesPort;
  readonly risky: RiskyDestinations;

  constructor(store: RulesStore, opts: RulesServiceOptions = {}) {
    this.risky = riskyDestinations(opts.extraRiskyDestinations);
    this.repo = store.rulesPort(this.risky);
  }

  async list(tenant: string): Promise<SuppressionRule[]> {
    const tid = await this.repo.tenantId(tenant);
    if (tid === undefined) return [];
    return (await this.repo.activeRules(tid)).map(toRule);
  }

  async get(tenant: string, ruleId: string): Promise<SuppressionRule> {
    return toRule(await this.mustFind(this.repo, tenant, ruleId));
  }

  /** `opts.exceptRule`: the id of the rule an update would change, which its new conditions may repeat. */
  async preview(tenant: string, input: RuleInput, opts: { exceptRule?: string } = {}): Promise<RulePreview> {
    const { type, rule } = this.compileInput(input);
    return (await this.previewWith(this.repo, tenant, type, rule, 10, { except: opts.exceptRule })).preview;
  }

  /**
   * Preview of an already compiled rule (also used by analysis for suggestion impact). The analysis
   * passes the impostor set it already holds for the same snapshot.
   */
  async previewCompiled(
    tenant: string,
    type: string,
    rule: CompiledRule,
    sampleLimit = 10,
    opts: { countsOnly?: boolean; impostors?: ImpostorSet } = {},
  ): Promise<RulePreview> {
    return (await this.previewWith(this.repo, tenant, type, rule, sampleLimit, opts)).preview;
  }

  /**
   * The preview, and the active rule it would duplicate (`except`: the rule an update changes). A
   * duplicate is refused like a guard's refusal, so a preview says "create would refuse" exactly
   * when create refuses, and an analysis never suggests a rule that is already in force.
   */
  private async previewWith(
    r: RulesReader,
    tenant: string,
    type: string,
    rule: CompiledRule,
    sampleLimit: number,
    opts: { countsOnly?: boolean; impostors?: ImpostorSet; except?: string } = {},
  ): Promise<{ preview: RulePreview; same: StoredRule | undefined }> {
    const targeted = this.targetsRisky(rule);
    const tid = await r.tenantId(tenant);
    const warnings: string[] = [];
    let counts: RuleMatchCounts = { total: 0, risky: 0, byProcess: [], byRepo: [], riskySamples: [], sampleIds: [], impostorHits: [] };
    if (tid !== undefined) {
      const impostors = opts.impostors ?? (await r.impostors(tid)).set;
      counts = await r.matchCounts(tid, type, rule, { sampleLimit, countsOnly: opts.countsOnly ?? false, impostors });
    }
    const impostorHits = counts.impostorHits.map((h) => ({ binary: describeBinary(h.binary), reason: h.binary.reason, count: h.count }));
    const impostorCount = impostorHits.reduce((a, h) => a + h.count, 0);
    let refused: string | null = null;
    if (!hasEffectiveCondition(rule.conditions)) {
      refused = 'the rule has no condition other than "*" or a pattern that names nothing ("?*", "*.*", a /0 range): it would silence every detection of this type; add a process, process_sha256, endpoint, host, ip_address or scope condition';
    } else if (targeted) {
      refused = targeted;
    } else if (counts.risky > 0) {
      const hosts = [...new Set(counts.riskySamples.map((s) => (s.address ? `${s.endpoint} at ${s.address} (in a risky range)` : s.endpoint)))].slice(0, 5).join(', ');
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
    const byName = unpinnedDaemonNames(rule, VPN_PROCESS_NAMES);
    if (byName.length > 0) {
      const names = byName.length > 3 ? `${byName.slice(0, 3).join(', ')} and ${byName.length - 3} more` : byName.join(', ');
      warnings.push(
        `the rule covers the VPN daemon name${byName.length > 1 ? 's' : ''} ${names} by name alone: it also silences any binary renamed to ${byName[0]} that has shown no contradicting call yet; add process_sha256 of the genuine binary (the analysis's suggested_rule pins it)`,
      );
    }
    // by the names it covers, and by the processes it matches today (a rule of hashes alone names none)
    const serverless = [...new Set([
      ...serverlessDaemonNames(rule, PORT_ONLY_PROCESS_NAMES),
      ...(namesServer(rule) ? [] : counts.byProcess.map((p) => p.process).filter((p) => PORT_ONLY_PROCESS_NAMES.includes(p))),
    ])];
    if (serverless.length > 0) {
      warnings.push(
        `${serverless.join(', ')} reach${serverless.length > 1 ? '' : 'es'} a server you choose, so ${serverless.length > 1 ? 'their port is all their' : 'its port is all its'} signature shows: ` +
          `without an endpoint condition naming a server the rule silences ${serverless.length > 1 ? 'their' : 'its'} calls to any server on that port, yours or another's; add endpoint=<your server>:<port>`,
      );
    }
    // A second identical rule would suppress nothing and only blur the audit trail. Refusing it also
    // makes a replayed confirmation of a create (an MCP client sending the same answer again) harmless.
    // After the guards: a rule that hides a risky call or an impostor is refused for that first.
    const same = refused === null && tid !== undefined
      ? (await r.activeRules(tid)).find((x) => x.uid !== opts.except && x.detectionType === type && sameMatch(x.conditions, rule.conditions))
      : undefined;
    if (same) refused = `the active rule ${same.uid} ("${same.name}") has the same detection type and conditions`;
    if (rule.impossible) warnings.push(`condition "${rule.impossible}" never matches network detections`);
    if (tid === undefined) warnings.push(`tenant "${tenant}" has no data`);
    if (counts.total === 0 && tid !== undefined) warnings.push(NO_NEW_MATCH);
    const preview: RulePreview = {
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
    return { preview, same };
  }

  async create(tenant: string, input: RuleInput, actor: string = defaultActor()): Promise<RuleChangeResult> {
    actor = cleanActor(actor);
    const { type, rule } = this.compileInput(input);
    // a blank name is no name: the rule gets the default one, as when none is given
    const name = cleanText('name', input.name) || defaultName(rule.conditions);
    const description = cleanText('description', input.description) ?? '';
    return this.repo.write(async (tx) => {
      const tid = await tx.ensureTenant(tenant);
      const { preview, same } = await this.previewWith(tx, tenant, type, rule, 0);
      if (same) throw new RuleError('duplicate', `rule refused: ${preview.refused_reason}; nothing was created`);
      if (preview.refused_reason) throw new RuleError(this.refusalCode(preview), `rule refused: ${preview.refused_reason}`);
      const now = new Date().toISOString();
      const row = await tx.insertRule({ tenantId: tid, uid: randomUUID(), detectionType: type, name, description, conditions: rule.conditions, createdBy: actor, at: now });
      const suppressed = await tx.move(tid, { kind: 'match', rule, guarded: false }, NEW_STATE, { status: 1, rule: row.id });
      if (suppressed !== preview.would_suppress) {
        throw new Error(`internal: preview counted ${preview.would_suppress} but create suppressed ${suppressed}; rolled back`);
      }
      const created = toRule(row);
      await tx.audit({ tenantId: tid, uid: row.uid, action: 'create', actor, at: now, before: null, after: created, affected: suppressed });
      await tx.bumpRulesVersion();
      return { rule: created, suppressed, restored: 0, warnings: preview.warnings };
    });
  }

  /**
   * Whether update() with this input would change what the rule matches, judged exactly as update()
   * judges it: the compiled new conditions against the stored ones. The CLI asks before it previews,
   * so the same conditions written again (keys in another order, blanks around a value) neither
   * preview a change nor ask to confirm one that update() would not make.
   */
  async wouldChangeMatch(tenant: string, ruleId: string, input: Partial<RuleInput>): Promise<boolean> {
    const current = await this.mustFind(this.repo, tenant, ruleId);
    const { type, rule } = this.askedMatch(current, input);
    return rule !== null && changesMatch(current, type, rule);
  }

  /** The detection type and compiled conditions an update asks for; no rule when it asks for no new match. */
  private askedMatch(current: StoredRule, input: Partial<RuleInput>): { type: string; rule: CompiledRule | null } {
    const type = input.detection_id !== undefined ? validateDetectionType(input.detection_id) : current.detectionType;
    // Only a new match is compiled: a rename must work on a stored rule that no longer compiles (compileStoredRule).
    const asked = input.detection_id !== undefined || input.conditions !== undefined;
    return { type, rule: asked ? compileRule(type, input.conditions !== undefined ? validateConditions(input.conditions) : current.conditions) : null };
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
    actor = cleanActor(actor);
    // a blank name keeps the rule's name, so it changes nothing by itself
    const name = cleanText('name', input.name) || undefined;
    const description = cleanText('description', input.description);
    if (changesNothing(input)) throw new RuleError('invalid_input', 'nothing to change: give a new name, description, detection type or conditions');
    const { type, rule } = this.askedMatch(await this.mustFind(this.repo, tenant, ruleId), input);
    return this.repo.write(async (tx) => {
      const row = await this.mustFind(tx, tenant, ruleId);
      const before = toRule(row);
      const changedMatch = rule !== null && changesMatch(row, type, rule) ? rule : null;
      let expected = 0;
      let warnings: string[] | undefined;
      if (changedMatch) {
        const { preview, same } = await this.previewWith(tx, tenant, type, changedMatch, 0, { except: row.uid });
        if (same) throw new RuleError('duplicate', `rule refused: ${preview.refused_reason}; nothing was changed`);
        if (preview.refused_reason) throw new RuleError(this.refusalCode(preview), `rule refused: ${preview.refused_reason}`);
        expected = preview.would_suppress;
        warnings = preview.warnings;
      }
      const now = new Date().toISOString();
      const conditions = rule?.conditions ?? row.conditions;
      let after = await tx.updateRule(row.tenantId, row.id, { detectionType: type, name: name ?? row.name, description: description ?? row.description, conditions }, now);
      const moved = { suppressed: 0, kept: 0, restored: 0, handed: [] as { rule_id: string; count: number }[] };
      if (changedMatch) Object.assign(moved, await this.reevaluate(tx, row, changedMatch, expected));
      // the preview counts new detections only: a rule that keeps suppressions of its own matches them
      if (moved.kept > 0) warnings = warnings?.filter((w) => w !== NO_NEW_MATCH);
      // the same match: everything the rule suppressed stays suppressed by it
      else moved.kept = await tx.held(row.tenantId, { status: 1, rule: row.id });
      after = (await tx.ruleByUid(row.tenantId, row.uid)) ?? after;
      const handedTotal = moved.handed.reduce((a, h) => a + h.count, 0);
      const changed = toRule(after);
      await tx.audit({ tenantId: row.tenantId, uid: row.uid, action: 'update', actor, at: now, before, after: changed, affected: moved.suppressed + moved.restored + handedTotal });
      await tx.bumpRulesVersion();
      return { rule: changed, suppressed: moved.suppressed, restored: moved.restored, kept: moved.kept, handed_to_other_rules: moved.handed, ...(warnings ? { warnings } : {}) };
    });
  }

  /**
   * Re-evaluates a rule's detections after its conditions changed (inside update's transaction). Its
   * former suppressions are first parked under a marker (status suppressed, rule = -id) so that each
   * following step moves an exact, disjoint set.
   */
  private async reevaluate(tx: RulesWriter, row: StoredRule, rule: CompiledRule, expected: number) {
    const tid = row.tenantId;
    const own = { status: 1, rule: row.id };
    const parked = { status: 1, rule: -row.id };
    await tx.move(tid, { kind: 'all' }, own, parked);
    const kept = await tx.move(tid, { kind: 'match', rule, guarded: true }, parked, own);
    const handed: { rule_id: string; count: number }[] = [];
    for (const other of await tx.activeRules(tid)) {
      if (other.id === row.id) continue;
      if ((await tx.held(tid, parked)) === 0) break;
      const compiled = compileStoredRule(other.detectionType, other.conditions);
      if (!compiled) continue;
      const n = await tx.move(tid, { kind: 'match', rule: compiled, guarded: true }, parked, { status: 1, rule: other.id });
      if (n > 0) handed.push({ rule_id: other.uid, count: n });
    }
    const restored = await tx.move(tid, { kind: 'all' }, parked, NEW_STATE);
    const suppressed = await tx.move(tid, { kind: 'match', rule, guarded: true }, NEW_STATE, own);
    if (suppressed !== expected) {
      throw new Error(`internal: preview counted ${expected} but update suppressed ${suppressed}; rolled back`);
    }
    return { suppressed, kept, restored, handed };
  }

  /** Soft-deletes the rule. Past suppressions stay unless `restore` is set. */
  async delete(tenant: string, ruleId: string, opts: DeleteOptions = {}, actor: string = defaultActor()): Promise<RuleChangeResult> {
    actor = cleanActor(actor);
    await this.mustFind(this.repo, tenant, ruleId);
    return this.repo.write(async (tx) => {
      const row = await this.mustFind(tx, tenant, ruleId);
      const before = toRule(row);
      let restored = 0;
      if (opts.restore) restored = await tx.move(row.tenantId, { kind: 'all' }, { status: 1, rule: row.id }, NEW_STATE);
      const now = new Date().toISOString();
      await tx.deleteRule(row.tenantId, row.id, now);
      // A restored detection that another active rule matches belongs to that rule, exactly as if it
      // were ingested now: re-apply the remaining rules in creation order.
      if (restored > 0) restored -= await this.reapplyActiveRules(tx, row.tenantId);
      await tx.audit({ tenantId: row.tenantId, uid: row.uid, action: opts.restore ? 'delete+restore' : 'delete', actor, at: now, before, after: null, affected: restored });
      await tx.bumpRulesVersion();
      return { rule: before, suppressed: 0, restored };
    });
  }

  /** Suppresses new detections matched by the tenant's active rules; returns how many moved. */
  private async reapplyActiveRules(tx: RulesWriter, tenantId: number): Promise<number> {
    let moved = 0;
    for (const r of await tx.activeRules(tenantId)) {
      const rule = compileStoredRule(r.detectionType, r.conditions);
      if (!rule) continue;
      // As at ingest, never-suppress destinations and suspected impostors stay new even under an older rule.
      moved += await tx.move(tenantId, { kind: 'match', rule, guarded: true }, NEW_STATE, { status: 1, rule: r.id });
    }
    return moved;
  }

  /**
   * The rule-change log of a tenant, or of one rule, newest first. A rule id no record names is not found (as in
   * get()): every rule has its create record, which outlives the rule's deletion.
   */
  async audit(tenant: string, ruleId?: string): Promise<RuleAuditRow[]> {
    const tid = await this.repo.tenantId(tenant);
    const rows = tid === undefined ? [] : await this.repo.auditLog(tid, ruleId);
    if (ruleId !== undefined && rows.length === 0) {
      throw new RuleError('not_found', `no rule "${ruleId}" in tenant "${tenant}", active or deleted: run \`rules list\` to see rule ids`);
    }
    return rows;
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
      // an address or CIDR range by overlap, a glob by the addresses it could match: sharing one
      // address with a never-suppress range is enough, in any spelling a transition prefix gives it
      // (64:ff9b::2d3d:880e is 45.61.136.14 through NAT64, as ingest and the suppressor read it)
      const own = parseIpRange(c.ip_address);
      for (const e of this.risky.cidrRanges()) {
        // A glob is tried on a transition spelling only where it can be enumerated: a 6to4 image is a
        // /48 at least, and "may match" there would refuse every IPv6 glob (2606:4700:*) for one
        // IPv4 entry. A wide image is judged on the stored calls, as ingest reads them.
        for (const r of [e, ...ipv4Images(e)]) {
          if (own ? own.overlaps(r) : (r === e || isEnumerable(r)) && r.mayMatch(rule.ip, c.ip_address)) {
            return `ip_address="${c.ip_address}" covers addresses of the never-suppress range ${e.source}${r === e ? '' : ` (as ${r.source})`}`;
          }
        }
      }
    }
    return null;
  }

  private refusalCode(p: RulePreview): 'too_broad' | 'refused_risky' | 'refused_impostor' {
    if (!hasEffectiveCondition(p.conditions)) return 'too_broad';
    return p.risky_matches === 0 && p.impostor_matches > 0 ? 'refused_impostor' : 'refused_risky';
  }

  private async mustFind(r: RulesReader, tenant: string, ruleId: string): Promise<StoredRule> {
    const tid = await r.tenantId(tenant);
    const row = tid === undefined ? undefined : await r.ruleByUid(tid, ruleId);
    if (!row) throw new RuleError('not_found', `no active rule "${ruleId}" in tenant "${tenant}": run \`rules list\` to see rule ids`);
    return row;
  }
}

/**
 * Control characters (terminal escapes, BEL, newlines), bidirectional controls and the line and
 * paragraph separators U+2028 and U+2029. A rule's name, description and actor are printed later to
 * terminals (`rules list`, `rules audit`) and pages, and may come from an agent over MCP, which also
 * shows them in the question asking a person to confirm its write: such characters there could clear
 * a screen, forge table rows or lines of that question (a separator is a line break to text layout),
 * or reorder what a person reads. Joiners stay allowed: emoji sequences need them.
 */
const UNPRINTABLE = /[\p{Cc}\p{Bidi_Control}\p{Zl}\p{Zp}]/u;

/**
 * A rule's name or description as it would be stored (trimmed), or a RuleError saying what is wrong:
 * for callers that show it to a person before writing it (the MCP confirmation question).
 */
export function cleanRuleText(field: 'name' | 'description', v: unknown): string | undefined {
  return cleanText(field, v);
}

function cleanText(field: string, v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new RuleError('invalid_input', `${field} must be a string`);
  const t = v.trim();
  if (t.length > 500) throw new RuleError('invalid_input', `${field} is longer than 500 characters`);
  const bad = UNPRINTABLE.exec(t);
  if (bad) {
    const code = `U+${bad[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;
    throw new RuleError('invalid_input', `${field} contains the unprintable character ${code} at character ${bad.index + 1}: rule text is shown to people, so control, bidirectional and line-separator characters are refused`);
  }
  return t;
}

/** An update that would change nothing: no field given, or only a blank name (which keeps the name). */
export function changesNothing(input: Partial<RuleInput>): boolean {
  const blankName = input.name === undefined || (typeof input.name === 'string' && input.name.trim() === '');
  return input.detection_id === undefined && input.conditions === undefined && blankName && input.description === undefined;
}

/** The actor recorded in an audit (rules, risky list): printable text like a name (cleanText), and not empty. */
export function cleanActor(actor: string): string {
  const a = cleanText('actor', actor);
  if (!a) throw new RuleError('invalid_input', 'actor is empty: say who makes the change');
  return a;
}

function defaultName(c: RuleConditions): string {
  const parts = Object.entries(c)
    .filter(([, v]) => v !== '*')
    .map(([k, v]) => `${k}=${k === 'process_sha256' ? v!.split('|').map((h) => h.slice(0, 12)).join('|') : v}`);
  return `suppress ${parts.join(' ')}`.slice(0, 200);
}

export function toRule(r: StoredRule): SuppressionRule {
  return {
    rule_id: r.uid,
    id: r.detectionType,
    name: r.name,
    description: r.description,
    conditions: r.conditions,
    severity_action: { type: 'ignore' },
    created_by: r.createdBy,
    created_on: r.createdOn,
    updated_on: r.updatedOn,
  };
}

/** A compiled match differs from a stored rule's: another detection type, or other conditions. */
function changesMatch(row: StoredRule, type: string, rule: CompiledRule): boolean {
  return type !== row.detectionType || !sameConditions(rule.conditions, row.conditions);
}
