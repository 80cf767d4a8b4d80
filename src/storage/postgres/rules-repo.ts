import { transaction, writeMeta, type PgClient, type PgPool } from './pool.js';
import { ensureTenant } from './tenants.js';
import { tenantStamp } from './analysis-stamps.js';
import { ensureTypeId, excluding, observedImpostors, Params, processIdsOf, riskyIdsOf, rulePredicate, tenantImpostors, typeIdOf, type PgPredicate } from './rules-match.js';
import { binaryKey, type SuspectedImpostor } from '../../analysis/impostor.js';
import type { RiskyDestinations } from '../../analysis/risky-destinations.js';
import type { CompiledRule } from '../../rules/matcher.js';
import { ImpostorSet } from '../../rules/guards.js';
import type { RuleConditions } from '../../rules/types.js';
import {
  riskySample,
  type DetectionState,
  type Impostors,
  type NewRule,
  type RuleAuditRow,
  type RiskyAuditRow,
  type RuleAuditWrite,
  type RuleMatchCounts,
  type RuleMatchOptions,
  type RuleSelection,
  type RulesPort,
  type RulesReader,
  type RulesWriter,
  type StoredRule,
} from '../rules-port.js';
import { storedRule, type RuleRecord } from '../rule-row.js';

type Db = PgPool | PgClient;

const ROLLUP_KEY = 'tenant_id, type_id, status, rule_id, day, job_ref, process_id, endpoint_id, ip_id';

/**
 * The rules port on PostgreSQL. A detection's status and rule are those of its group (one per fine
 * key and state, detection-groups.ts), and detection_rollup is keyed by them, so a move is one
 * set-based statement over rows per key, never per detection: UPDATE the matching groups, and take
 * their count off the rollup rows of the old state and add it to the new one. Every query names the
 * tenant.
 *
 * A write transaction first locks the rules_version row of meta: an ingest write checks that row
 * FOR SHARE before it stores detections evaluated against the rules it knew, so it either commits
 * before the rule change reads (and the change sees its detections) or waits, finds a new version,
 * and evaluates again with the new rules. Rule changes are serialised by the same lock.
 */
export class PgRulesRepo implements RulesPort {
  constructor(
    readonly pool: PgPool,
    readonly risky: RiskyDestinations,
  ) {}

  tenantId(tenant: string): Promise<number | undefined> {
    return reader(this.pool, this.risky).tenantId(tenant);
  }

  /** The tenant's change counter, bumped by triggers in every writer's transaction (analysis-stamps.ts). */
  commitStamp(tenantId: number): Promise<number | null> {
    return tenantStamp(this.pool, tenantId);
  }

  impostors(tenantId: number): Promise<Impostors> {
    return reader(this.pool, this.risky).impostors(tenantId);
  }

  activeRules(tenantId: number): Promise<StoredRule[]> {
    return reader(this.pool, this.risky).activeRules(tenantId);
  }

  ruleByUid(tenantId: number, uid: string): Promise<StoredRule | undefined> {
    return reader(this.pool, this.risky).ruleByUid(tenantId, uid);
  }

  matchCounts(tenantId: number, type: string, rule: CompiledRule, opts: RuleMatchOptions): Promise<RuleMatchCounts> {
    return reader(this.pool, this.risky).matchCounts(tenantId, type, rule, opts);
  }

  auditLog(tenantId: number, uid?: string): Promise<RuleAuditRow[]> {
    return reader(this.pool, this.risky).auditLog(tenantId, uid);
  }

  riskyEntries(): Promise<string[]> {
    return reader(this.pool, this.risky).riskyEntries();
  }

  riskyAudit(): Promise<RiskyAuditRow[]> {
    return reader(this.pool, this.risky).riskyAudit();
  }

  tenantIds(): Promise<number[]> {
    return reader(this.pool, this.risky).tenantIds();
  }

  verdictRevision(): Promise<number> {
    return reader(this.pool, this.risky).verdictRevision();
  }

  async write<T>(fn: (tx: RulesWriter) => Promise<T>): Promise<T> {
    return transaction(this.pool, async (c) => {
      await c.query("SELECT value FROM meta WHERE key = 'rules_version' FOR UPDATE");
      return fn(new PgRulesWriter(c, this.risky));
    });
  }
}

function reader(db: Db, risky: RiskyDestinations): PgRulesReader {
  return new PgRulesReader(db, risky);
}

class PgRulesReader implements RulesReader {
  constructor(
    readonly db: Db,
    readonly risky: RiskyDestinations,
  ) {}

  async tenantId(tenant: string): Promise<number | undefined> {
    return (await this.db.query<{ tenant_id: number }>('SELECT tenant_id FROM tenants WHERE name = $1', [tenant])).rows[0]?.tenant_id;
  }

  async impostors(tenantId: number): Promise<Impostors> {
    const v = await tenantImpostors(this.db, tenantId, this.risky);
    return { set: v.set, files: v.files, hashless: v.hashless, hashedDaemons: v.hashedDaemons };
  }

  async activeRules(tenantId: number): Promise<StoredRule[]> {
    const r = await this.db.query<RuleRecord>('SELECT * FROM rules WHERE tenant_id = $1 AND deleted_on IS NULL ORDER BY id', [tenantId]);
    return r.rows.map(storedRule);
  }

  async ruleByUid(tenantId: number, uid: string): Promise<StoredRule | undefined> {
    const r = await this.db.query<RuleRecord>('SELECT * FROM rules WHERE tenant_id = $1 AND rule_uid = $2 AND deleted_on IS NULL', [tenantId, uid]);
    return r.rows[0] && storedRule(r.rows[0]);
  }

  /**
   * Exact counts of the currently-new detections the rule matches, from detection_rollup (status 0,
   * rule 0): its key holds every dimension a rule tests, so a rule matches whole rollup rows.
   */
  async matchCounts(tenantId: number, type: string, rule: CompiledRule, opts: RuleMatchOptions): Promise<RuleMatchCounts> {
    const out: RuleMatchCounts = { total: 0, risky: 0, byProcess: [], byRepo: [], riskySamples: [], sampleIds: [], impostorHits: [] };
    const pred = await rulePredicate(this.db, tenantId, await typeIdOf(this.db, type), rule);
    if (!pred.possible) return out;
    const risky = await riskyIdsOf(this.db, tenantId, this.risky);
    const where = (p: Params) => `tenant_id = ${p.add(tenantId)} AND status = 0 AND rule_id = 0 AND ${pred.sql(p)}`;
    // risky by destination, or by the address a named call went to (a configured range)
    const p = new Params();
    const rows = (
      await this.db.query<{ job_ref: number; process_id: number; risky: boolean; n: number }>(
        `SELECT job_ref, process_id, ${risky.row(p)} AS risky, sum(n)::bigint AS n
         FROM detection_rollup WHERE ${where(p)} GROUP BY 1, 2, 3`,
        p.values,
      )
    ).rows;
    for (const r of rows) {
      out.total += r.n;
      if (r.risky) out.risky += r.n;
    }
    // counts only (suggestion impact): no breakdown, unless a risky detection matches
    const breakdown = !opts.countsOnly || out.risky > 0;
    if (breakdown && rows.length > 0) await this.breakdown(tenantId, rows, out);
    if (out.risky > 0) {
      const q = new Params();
      // the address too when the call is risky by it alone (its destination is not on the list)
      out.riskySamples = (
        await this.db.query<{ endpoint: string; process: string; address: string | null; count: number }>(
          `SELECT * FROM (
             SELECT e.endpoint, p.norm_name AS process,
               CASE WHEN r.endpoint_id = ANY(${q.add(risky.endpoints)}::bigint[]) THEN NULL ELSE i.ip END AS address, sum(r.n)::bigint AS count
             FROM (SELECT endpoint_id, process_id, ip_id, n FROM detection_rollup WHERE ${where(q)} AND ${risky.row(q)}) r
             JOIN endpoints e ON e.tenant_id = ${q.add(tenantId)} AND e.id = r.endpoint_id
             JOIN processes p ON p.tenant_id = e.tenant_id AND p.id = r.process_id
             LEFT JOIN ips i ON i.tenant_id = e.tenant_id AND i.id = r.ip_id
             GROUP BY 1, 2, 3) s
           ORDER BY count DESC, endpoint COLLATE "C", address COLLATE "C" NULLS FIRST, process COLLATE "C" LIMIT 20`,
          q.values,
        )
      ).rows.map(riskySample);
    }
    const sampleLimit = opts.countsOnly ? 0 : opts.sampleLimit;
    if (sampleLimit > 0 && out.total > 0) {
      const q = new Params();
      out.sampleIds = (
        await this.db.query<{ id: number }>(`SELECT id FROM detections WHERE ${where(q)} ORDER BY id LIMIT ${q.add(sampleLimit)}`, q.values)
      ).rows.map((r) => r.id);
    }
    if (opts.impostors.size > 0 && out.total > 0) out.impostorHits = await this.impostorHits(tenantId, pred, opts.impostors);
    return out;
  }

  private async breakdown(tenantId: number, rows: { job_ref: number; process_id: number; n: number }[], out: RuleMatchCounts): Promise<void> {
    const jobs = new Map(
      (await this.db.query<{ id: number; owner: string; repo: string }>('SELECT id, owner, repo FROM jobs WHERE tenant_id = $1 AND id = ANY($2::bigint[])', [tenantId, [...new Set(rows.map((r) => r.job_ref))]])).rows.map(
        (j) => [j.id, j],
      ),
    );
    const procs = new Map(
      (await this.db.query<{ id: number; norm_name: string }>('SELECT id, norm_name FROM processes WHERE tenant_id = $1 AND id = ANY($2::bigint[])', [tenantId, [...new Set(rows.map((r) => r.process_id))]])).rows.map(
        (p) => [p.id, p.norm_name],
      ),
    );
    const byProc = new Map<string, number>();
    const byRepo = new Map<string, { owner: string; repo: string; count: number }>();
    for (const r of rows) {
      const j = jobs.get(r.job_ref)!;
      const p = procs.get(r.process_id)!;
      byProc.set(p, (byProc.get(p) ?? 0) + r.n);
      const k = `${j.owner}/${j.repo}`;
      const e = byRepo.get(k) ?? { owner: j.owner, repo: j.repo, count: 0 };
      e.count += r.n;
      byRepo.set(k, e);
    }
    out.byProcess = [...byProc].map(([process, count]) => ({ process, count })).sort((a, b) => b.count - a.count || cmp(a.process, b.process));
    out.byRepo = [...byRepo.values()].sort((a, b) => b.count - a.count || cmp(`${a.owner}/${a.repo}`, `${b.owner}/${b.repo}`));
  }

  private async impostorHits(tenantId: number, pred: PgPredicate, set: ImpostorSet): Promise<RuleMatchCounts['impostorHits']> {
    const names = [...new Set(set.list().map((b) => b.process))];
    const procs = (
      await this.db.query<{ id: number; norm_name: string; path: string | null; sha256: string | null }>(
        // by name, and by hash under any name (ImpostorSet.get: one file is one binary whatever it is called)
        'SELECT id, norm_name, path, sha256 FROM processes WHERE tenant_id = $1 AND (norm_name = ANY($2::text[]) OR lower(sha256) = ANY($3::text[]))',
        [tenantId, names, set.hashes()],
      )
    ).rows;
    const binaryOf = new Map<number, SuspectedImpostor>();
    for (const p of procs) {
      // counted under the binary the set holds, as SQLite counts them (its copies under other names included)
      const b = set.flagOf({ process: p.norm_name, sha256: p.sha256, path: p.path });
      if (b) binaryOf.set(p.id, b);
    }
    if (binaryOf.size === 0) return [];
    const q = new Params();
    const counts = await this.db.query<{ process_id: number; n: number }>(
      `SELECT process_id, sum(n)::bigint AS n FROM detection_rollup
       WHERE tenant_id = ${q.add(tenantId)} AND status = 0 AND rule_id = 0 AND ${pred.sql(q)} AND process_id = ANY(${q.add([...binaryOf.keys()])}::bigint[])
       GROUP BY process_id`,
      q.values,
    );
    const byBinary = new Map<string, number>();
    for (const r of counts.rows) {
      const k = binaryKey(binaryOf.get(r.process_id)!);
      byBinary.set(k, (byBinary.get(k) ?? 0) + r.n);
    }
    // in the set's order, as SQLite reports them
    return set
      .list()
      .map((b) => ({ binary: b, count: byBinary.get(binaryKey(b)) ?? 0 }))
      .filter((h) => h.count > 0);
  }

  async tenantIds(): Promise<number[]> {
    return (await this.db.query<{ tenant_id: string }>('SELECT tenant_id FROM tenants ORDER BY tenant_id')).rows.map((r) => Number(r.tenant_id));
  }

  async verdictRevision(): Promise<number> {
    return Number((await this.db.query<{ value: string }>("SELECT value FROM meta WHERE key = 'verdict_revision'")).rows[0]?.value ?? 0);
  }

  async riskyEntries(): Promise<string[]> {
    return (await this.db.query<{ entry: string }>('SELECT entry FROM risky_destinations ORDER BY added_at, entry COLLATE "C"')).rows.map((r) => r.entry);
  }

  async riskyAudit(): Promise<RiskyAuditRow[]> {
    return (await this.db.query<RiskyAuditRow>('SELECT entry, action, actor, at FROM risky_audit ORDER BY id DESC')).rows;
  }

  async auditLog(tenantId: number, uid?: string): Promise<RuleAuditRow[]> {
    const r = await this.db.query<{ rule_uid: string; action: string; actor: string; at: string; before_json: string | null; after_json: string | null; affected: number }>(
      `SELECT rule_uid, action, actor, at, before_json, after_json, affected FROM rule_audit
       WHERE tenant_id = $1 ${uid ? 'AND rule_uid = $2' : ''} ORDER BY id DESC`,
      uid ? [tenantId, uid] : [tenantId],
    );
    return r.rows.map((x) => ({
      rule_id: x.rule_uid,
      action: x.action,
      actor: x.actor,
      at: x.at,
      before: x.before_json ? JSON.parse(x.before_json) : null,
      after: x.after_json ? JSON.parse(x.after_json) : null,
      affected: x.affected,
    }));
  }
}

/** The writes, on the connection of one open transaction. */
class PgRulesWriter extends PgRulesReader implements RulesWriter {
  constructor(
    readonly c: PgClient,
    risky: RiskyDestinations,
  ) {
    super(c, risky);
  }

  ensureTenant(tenant: string): Promise<number> {
    return ensureTenant(this.c, tenant);
  }

  async insertRule(r: NewRule): Promise<StoredRule> {
    const row = await this.c.query<RuleRecord>(
      `INSERT INTO rules (tenant_id, rule_uid, detection_type, name, description, conditions, severity_action, created_by, created_on, updated_on)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING *`,
      [r.tenantId, r.uid, r.detectionType, r.name, r.description, JSON.stringify(r.conditions), JSON.stringify({ type: 'ignore' }), r.createdBy, r.at],
    );
    return storedRule(row.rows[0]!);
  }

  async updateRule(tenantId: number, id: number, f: { detectionType: string; name: string; description: string; conditions: RuleConditions }, at: string): Promise<StoredRule> {
    const row = await this.c.query<RuleRecord>(
      'UPDATE rules SET detection_type = $3, name = $4, description = $5, conditions = $6, updated_on = $7 WHERE tenant_id = $1 AND id = $2 RETURNING *',
      [tenantId, id, f.detectionType, f.name, f.description, JSON.stringify(f.conditions), at],
    );
    return storedRule(row.rows[0]!);
  }

  async deleteRule(tenantId: number, id: number, at: string): Promise<void> {
    await this.c.query('UPDATE rules SET deleted_on = $3, updated_on = $3 WHERE tenant_id = $1 AND id = $2', [tenantId, id, at]);
  }

  async move(tenantId: number, sel: RuleSelection, from: DetectionState, to: DetectionState): Promise<number> {
    let pred: PgPredicate = await this.anyType();
    if (sel.kind === 'match') {
      pred = await rulePredicate(this.c, tenantId, await ensureTypeId(this.c, sel.rule.type), sel.rule);
      if (sel.guarded && pred.possible) {
        const imp = await tenantImpostors(this.c, tenantId, this.risky);
        const risky = await riskyIdsOf(this.c, tenantId, this.risky);
        pred = excluding(pred, risky.endpoints, imp.processIds, risky.ips);
      }
    }
    return this.moveWhere(tenantId, pred, from, to);
  }

  /**
   * A predicate tests only columns of the rollup key, so it matches whole rollup rows and whole
   * detection groups (detection-groups.ts; a group's key is the rollup's without the day). One
   * statement moves both: the rollup rows of `from` it matches go, as they are (count, first and
   * last time), to `to`, and the groups of `from` it matches take the state `to`; no detection row
   * is written. Every moved rollup key must have had a group moved (its detections changed state),
   * or the transaction is rolled back. Returns the number of detections moved, which the rollup
   * counts exactly.
   */
  private async moveWhere(tenantId: number, pred: PgPredicate, from: DetectionState, to: DetectionState): Promise<number> {
    if (!pred.possible) return 0;
    const p = new Params();
    const t = p.add(tenantId);
    const state = `tenant_id = ${t} AND status = ${p.add(from.status)} AND rule_id = ${p.add(from.rule)}`;
    const where = `${state} AND ${pred.sql(p)}`;
    const ts = p.add(to.status);
    const tr = p.add(to.rule);
    const key = 'type_id, job_ref, process_id, endpoint_id, ip_id';
    const r = await this.c.query<{ n: number; orphans: number }>(
      `WITH src AS (DELETE FROM detection_rollup WHERE ${where} RETURNING day, ${key}, n, first_ts, last_ts),
       ins AS (
         INSERT INTO detection_rollup (${ROLLUP_KEY}, n, first_ts, last_ts)
         SELECT ${t}, type_id, ${ts}, ${tr}, day, job_ref, process_id, endpoint_id, ip_id, n, first_ts, last_ts FROM src
         ON CONFLICT (${ROLLUP_KEY}) DO UPDATE SET n = detection_rollup.n + excluded.n,
           first_ts = least(detection_rollup.first_ts, excluded.first_ts), last_ts = greatest(detection_rollup.last_ts, excluded.last_ts)),
       grp AS (UPDATE detection_groups SET status = ${ts}, rule_id = ${tr} WHERE ${where} RETURNING ${key})
       SELECT (SELECT coalesce(sum(n), 0)::bigint FROM src) AS n,
              (SELECT count(*) FROM (SELECT ${key} FROM src EXCEPT SELECT ${key} FROM grp) x)::bigint AS orphans`,
      p.values,
    );
    const { n, orphans } = r.rows[0]!;
    if (Number(orphans) !== 0) {
      throw new Error(`rollup out of step: ${orphans} rollup keys moved without a detection group; transaction rolled back`);
    }
    return Number(n);
  }

  /**
   * "Of any type", spelled as the list of every type, so that the rollup is read by primary-key
   * ranges (tenant, type, status, rule) rather than over all of the tenant's rows.
   */
  private async anyType(): Promise<PgPredicate> {
    const ids = (await this.c.query<{ id: number }>('SELECT id FROM detection_types')).rows.map((r) => r.id);
    return { possible: ids.length > 0, sql: (p) => `type_id = ANY(${p.add(ids)}::int[])` };
  }

  async held(tenantId: number, state: DetectionState): Promise<number> {
    const r = await this.c.query('SELECT coalesce(sum(n), 0)::bigint AS n FROM detection_rollup WHERE tenant_id = $1 AND status = $2 AND rule_id = $3', [tenantId, state.status, state.rule]);
    return Number(r.rows[0].n);
  }

  async flagImpostor(tenantId: number, b: SuspectedImpostor): Promise<void> {
    await this.c.query(
      'INSERT INTO suspected_impostors (tenant_id, process, "binary", sha256, path, reason) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING',
      [tenantId, b.process, binaryKey(b), b.sha256, b.path, b.reason],
    );
  }

  async releaseBinaries(tenantId: number, binaries: ImpostorSet): Promise<number> {
    const ids = await processIdsOf(this.c, tenantId, binaries);
    if (ids.length === 0) return 0;
    // every state but new: suppressed by a rule, suppressed or resolved upstream (see the SQLite store's releaseProcesses)
    const states = await this.c.query<{ status: number; rule_id: number }>(
      'SELECT DISTINCT status, rule_id FROM detection_rollup WHERE tenant_id = $1 AND status <> 0 AND process_id = ANY($2::bigint[]) AND n > 0',
      [tenantId, ids],
    );
    let moved = 0;
    const types = await this.anyType();
    const pred: PgPredicate = { possible: true, sql: (p) => `${types.sql(p)} AND process_id = ANY(${p.add(ids)}::bigint[])` };
    for (const { status, rule_id } of states.rows) moved += await this.moveWhere(tenantId, pred, { status, rule: rule_id }, { status: 0, rule: 0 });
    return moved;
  }

  async rememberRisky(entries: readonly string[], at: string, actor: string): Promise<string[]> {
    if (entries.length === 0) return [];
    const r = await this.c.query<{ entry: string }>(
      'INSERT INTO risky_destinations (entry, added_at) SELECT unnest($1::text[]), $2 ON CONFLICT (entry) DO NOTHING RETURNING entry',
      [[...entries], at],
    );
    const inserted = new Set(r.rows.map((x) => x.entry));
    const added = entries.filter((e) => inserted.has(e));
    for (const e of added) await this.riskyAuditRow(e, 'remember', at, actor);
    return added;
  }

  async forgetRisky(entry: string, at: string, actor: string): Promise<boolean> {
    if (((await this.c.query('DELETE FROM risky_destinations WHERE entry = $1', [entry])).rowCount ?? 0) !== 1) return false;
    await this.riskyAuditRow(entry, 'forget', at, actor);
    return true;
  }

  private async riskyAuditRow(entry: string, action: RiskyAuditRow['action'], at: string, actor: string): Promise<void> {
    await this.c.query('INSERT INTO risky_audit (entry, action, actor, at) VALUES ($1, $2, $3, $4)', [entry, action, actor, at]);
  }

  /** See the SQLite store's releaseRisky: what is not new and the list now covers goes back to new, per tenant. */
  async releaseRisky(): Promise<number> {
    let moved = 0;
    const types = await this.anyType();
    for (const { tenant_id: tid } of (await this.c.query<{ tenant_id: number }>('SELECT tenant_id FROM tenants ORDER BY tenant_id')).rows) {
      const risky = await riskyIdsOf(this.c, tid, this.risky);
      if (risky.endpoints.length === 0 && risky.ips.length === 0) continue;
      const q = new Params();
      // every state but new, as releaseBinaries
      const states = await this.c.query<{ status: number; rule_id: number }>(
        `SELECT DISTINCT status, rule_id FROM detection_rollup WHERE tenant_id = ${q.add(tid)} AND status <> 0 AND n > 0 AND ${risky.row(q)}`,
        q.values,
      );
      const pred: PgPredicate = { possible: true, sql: (p) => `${types.sql(p)} AND ${risky.row(p)}` };
      for (const { status, rule_id } of states.rows) moved += await this.moveWhere(tid, pred, { status: Number(status), rule: Number(rule_id) }, { status: 0, rule: 0 });
      // The list can make a daemon-named binary a suspected impostor (it called a destination the
      // list now covers, maybe in calls that left no detection: those are flagged here): what rules
      // hid of its other calls comes back too.
      for (const b of await observedImpostors(this.c, tid, this.risky, risky)) await this.flagImpostor(tid, b);
      const verdict = await tenantImpostors(this.c, tid, this.risky);
      if (verdict.set.size > 0) moved += await this.releaseBinaries(tid, verdict.set);
    }
    return moved;
  }

  async audit(a: RuleAuditWrite): Promise<void> {
    await this.c.query(
      'INSERT INTO rule_audit (tenant_id, rule_uid, action, actor, at, before_json, after_json, affected) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)',
      [a.tenantId, a.uid, a.action, a.actor, a.at, a.before === null ? null : JSON.stringify(a.before), a.after === null ? null : JSON.stringify(a.after), a.affected],
    );
  }

  async bumpRulesVersion(): Promise<void> {
    await this.c.query("UPDATE meta SET value = (value::bigint + 1)::text WHERE key = 'rules_version'");
  }

  async setVerdictRevision(revision: number): Promise<void> {
    await writeMeta(this.c, 'verdict_revision', String(revision));
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
