import { writeMeta, type SqliteDatabase } from './db.js';
import { ensureTenant } from './ingest-session.js';
import { beganWrite, endedWrite, SqliteRulesRepo, type MatchPredicate, type RuleRow } from './rules-repo.js';
import type { CompiledRule } from '../../rules/matcher.js';
import { ImpostorSet } from '../../rules/guards.js';
import type { RuleConditions } from '../../rules/types.js';
import type { RiskyDestinations } from '../../analysis/risky-destinations.js';
import type { SuspectedImpostor } from '../../analysis/impostor.js';
import type {
  DetectionState,
  Impostors,
  NewRule,
  RuleAuditRow,
  RiskyAuditRow,
  RuleAuditWrite,
  RuleMatchCounts,
  RuleMatchOptions,
  RuleSelection,
  RulesPort,
  RulesWriter,
  StoredRule,
} from '../rules-port.js';
import { storedRule } from '../rule-row.js';

/** One write at a time per connection: a second write waits for the first to commit or roll back. */
const WRITE_QUEUES = new WeakMap<SqliteDatabase, Promise<unknown>>();

/**
 * The rules port on SQLite, over SqliteRulesRepo (the SQL: id sets in TEMP tables, the status side
 * table and the held rollups). Every method does its work synchronously when called and returns a
 * settled promise, so a write's steps run back to back on the connection, as they did before the
 * port was async.
 */
export class SqliteRulesPort implements RulesPort, RulesWriter {
  readonly repo: SqliteRulesRepo;

  constructor(
    readonly db: SqliteDatabase,
    readonly risky: RiskyDestinations,
  ) {
    this.repo = new SqliteRulesRepo(db, risky);
  }

  async tenantId(tenant: string): Promise<number | undefined> {
    return this.repo.tenantId(tenant);
  }

  async commitStamp(): Promise<number | null> {
    return this.repo.commitStamp();
  }

  async impostors(tenantId: number, stampBeforeSnapshot?: number | null): Promise<Impostors> {
    const v = this.repo.impostors(tenantId, stampBeforeSnapshot);
    return { set: v.set, files: v.files, hashless: v.hashless, hashedDaemons: v.hashedDaemons };
  }

  async activeRules(tenantId: number): Promise<StoredRule[]> {
    return this.repo.activeRules(tenantId).map(storedRule);
  }

  async ruleByUid(tenantId: number, uid: string): Promise<StoredRule | undefined> {
    const r = this.repo.ruleByUid(tenantId, uid);
    return r && storedRule(r);
  }

  async matchCounts(tenantId: number, type: string, rule: CompiledRule, opts: RuleMatchOptions): Promise<RuleMatchCounts> {
    const pred = this.repo.buildPredicate(tenantId, this.repo.typeId(type), rule);
    const counts = this.repo.previewCounts(pred, opts.sampleLimit, opts.countsOnly);
    // the same predicate, then the impostor guard over the ids it matched
    const impostorHits: RuleMatchCounts['impostorHits'] = [];
    for (const b of opts.impostors.list()) {
      const n = [...this.repo.newCountsOf(pred, this.repo.processIdsOf(new ImpostorSet([b]))).values()].reduce((a, x) => a + x, 0);
      if (n > 0) impostorHits.push({ binary: b, count: n });
    }
    return { ...counts, impostorHits };
  }

  async riskyEntries(): Promise<string[]> {
    return this.db.prepare('SELECT entry FROM risky_destinations ORDER BY added_at, entry').pluck().all() as string[];
  }

  async tenantIds(): Promise<number[]> {
    return this.db.prepare('SELECT id FROM tenants ORDER BY id').pluck().all() as number[];
  }

  async verdictRevision(): Promise<number> {
    return Number(this.db.prepare("SELECT value FROM meta WHERE key = 'verdict_revision'").pluck().get() ?? 0);
  }

  async setVerdictRevision(revision: number): Promise<void> {
    writeMeta(this.db, 'verdict_revision', String(revision));
  }

  async riskyAudit(): Promise<RiskyAuditRow[]> {
    return this.db.prepare('SELECT entry, action, actor, at FROM risky_audit ORDER BY id DESC').all() as RiskyAuditRow[];
  }

  async auditLog(tenantId: number, uid?: string): Promise<RuleAuditRow[]> {
    const rows = this.db
      .prepare(
        `SELECT rule_uid, action, actor, at, before_json, after_json, affected FROM rule_audit
         WHERE tenant_id = ? ${uid ? 'AND rule_uid = ?' : ''} ORDER BY id DESC`,
      )
      .all(...(uid ? [tenantId, uid] : [tenantId])) as { rule_uid: string; action: string; actor: string; at: string; before_json: string | null; after_json: string | null; affected: number }[];
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

  /**
   * BEGIN IMMEDIATE ... COMMIT around fn; inside an open transaction (ingest --strict), a savepoint
   * of it. Writes of this connection are queued, so two concurrent callers (MCP sessions) never
   * share one transaction.
   */
  write<T>(fn: (tx: RulesWriter) => Promise<T>): Promise<T> {
    const db = this.db;
    const run = async (): Promise<T> => {
      const nested = db.inTransaction;
      db.exec(nested ? 'SAVEPOINT rules_write' : 'BEGIN IMMEDIATE');
      try {
        if (!nested) beganWrite(db);
        const out = await fn(this);
        db.exec(nested ? 'RELEASE rules_write' : 'COMMIT');
        return out;
      } catch (err) {
        if (db.inTransaction) db.exec(nested ? 'ROLLBACK TO rules_write; RELEASE rules_write' : 'ROLLBACK');
        throw err;
      } finally {
        if (!nested) endedWrite(db);
      }
    };
    if (db.inTransaction) return run();
    const prev = WRITE_QUEUES.get(db) ?? Promise.resolve();
    const next = prev.then(run, run);
    WRITE_QUEUES.set(db, next.catch(() => undefined));
    return next;
  }

  // ---- RulesWriter (called inside write) ----

  async ensureTenant(tenant: string): Promise<number> {
    return ensureTenant(this.db, tenant);
  }

  async insertRule(r: NewRule): Promise<StoredRule> {
    this.db
      .prepare(
        `INSERT INTO rules (tenant_id, rule_uid, detection_type, name, description, conditions, severity_action, created_by, created_on, updated_on)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(r.tenantId, r.uid, r.detectionType, r.name, r.description, JSON.stringify(r.conditions), JSON.stringify({ type: 'ignore' }), r.createdBy, r.at, r.at);
    return storedRule(this.repo.ruleByUid(r.tenantId, r.uid)!);
  }

  async updateRule(
    tenantId: number,
    id: number,
    f: { detectionType: string; name: string; description: string; conditions: RuleConditions },
    at: string,
  ): Promise<StoredRule> {
    this.db
      .prepare('UPDATE rules SET detection_type = ?, name = ?, description = ?, conditions = ?, updated_on = ? WHERE tenant_id = ? AND id = ?')
      .run(f.detectionType, f.name, f.description, JSON.stringify(f.conditions), at, tenantId, id);
    const row = this.db.prepare('SELECT * FROM rules WHERE tenant_id = ? AND id = ?').get(tenantId, id) as RuleRow;
    return storedRule(row);
  }

  async deleteRule(tenantId: number, id: number, at: string): Promise<void> {
    this.db.prepare('UPDATE rules SET deleted_on = ?, updated_on = ? WHERE tenant_id = ? AND id = ?').run(at, at, tenantId, id);
  }

  async move(tenantId: number, sel: RuleSelection, from: DetectionState, to: DetectionState): Promise<number> {
    const repo = this.repo;
    if (sel.kind === 'all') {
      // one detection type at a time, so the rollup reads are primary-key ranges (rules-repo.ts)
      let moved = 0;
      for (const typeId of repo.ruleTypes(tenantId, from.rule)) moved += repo.move(repo.rulePredicate(tenantId, typeId), from, to);
      return moved;
    }
    let pred: MatchPredicate = repo.buildPredicate(tenantId, repo.ensureType(sel.rule.type), sel.rule);
    if (sel.guarded && pred.possible) pred = repo.excludeProcesses(repo.excludeRisky(pred), repo.impostors(tenantId).processIds);
    return repo.move(pred, from, to);
  }

  async held(tenantId: number, state: DetectionState): Promise<number> {
    return Number(
      this.db.prepare('SELECT coalesce(sum(n), 0) FROM rollup_process_day WHERE tenant_id = ? AND status = ? AND rule_id = ?').pluck().get(tenantId, state.status, state.rule),
    );
  }

  async flagImpostor(tenantId: number, b: SuspectedImpostor): Promise<void> {
    this.repo.flagImpostor(tenantId, b);
  }

  async releaseBinaries(tenantId: number, binaries: ImpostorSet): Promise<number> {
    return this.repo.releaseProcesses(tenantId, this.repo.processIdsOf(binaries));
  }

  async rememberRisky(entries: readonly string[], at: string, actor: string): Promise<string[]> {
    const ins = this.db.prepare('INSERT OR IGNORE INTO risky_destinations (entry, added_at) VALUES (?, ?)');
    const added = entries.filter((e) => ins.run(e, at).changes === 1);
    for (const e of added) this.riskyAuditRow(e, 'remember', at, actor);
    return added;
  }

  async forgetRisky(entry: string, at: string, actor: string): Promise<boolean> {
    if (this.db.prepare('DELETE FROM risky_destinations WHERE entry = ?').run(entry).changes !== 1) return false;
    this.riskyAuditRow(entry, 'forget', at, actor);
    return true;
  }

  private riskyAuditRow(entry: string, action: RiskyAuditRow['action'], at: string, actor: string): void {
    this.db.prepare('INSERT INTO risky_audit (entry, action, actor, at) VALUES (?, ?, ?, ?)').run(entry, action, actor, at);
  }

  async releaseRisky(): Promise<number> {
    let moved = this.repo.releaseRisky();
    // The list can make a daemon-named binary a suspected impostor (it called a destination the list
    // now covers, maybe in calls that left no detection: those are flagged here): what rules hid of
    // its other calls comes back too. Computed afresh: in the transaction.
    for (const tenantId of this.repo.tenantIds()) {
      for (const b of this.repo.observedImpostors(tenantId)) this.repo.flagImpostor(tenantId, b);
      const verdict = this.repo.impostors(tenantId);
      if (verdict.processIds.length > 0) moved += this.repo.releaseProcesses(tenantId, verdict.processIds);
    }
    return moved;
  }

  async audit(row: RuleAuditWrite): Promise<void> {
    this.repo.audit(row.tenantId, row.uid, row.action, row.actor, row.before, row.after, row.affected, row.at);
  }

  async bumpRulesVersion(): Promise<void> {
    this.repo.bumpRulesVersion();
  }
}
