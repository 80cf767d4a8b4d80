import { Command } from 'commander';
import { withPorts, withStoreOptions, printJson, formatTable, type StoreOptions, type PortsContext } from '../common.js';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { RulesService, RuleError, changesNothing, defaultActor } from '../../rules/service.js';
import { isRuleRefusal } from '../../rules/matcher.js';
import { NEW_OUTBOUND } from '../../domain/types.js';
import type { RuleConditions, RulePreview, SuppressionRule } from '../../rules/types.js';

interface RuleOpts extends StoreOptions {
  detectionId?: string;
  condition?: string[];
  name?: string;
  description?: string;
  yes?: boolean;
  restore?: boolean;
  actor?: string;
}

/** Every rules command runs on SQLite and on PostgreSQL (the rules port, storage/rules-port.ts). */
const anyStore = (cmd: Command) => withStoreOptions(cmd);

const collect = (v: string, prev: string[] = []) => [...prev, v];

function parseConditions(list: string[] | undefined): RuleConditions {
  const out = new Map<string, string>();
  for (const raw of list ?? []) {
    const i = raw.indexOf('=');
    if (i <= 0) throw new UserError(`--condition "${raw}": expected key=value, e.g. --condition process=tailscaled`);
    const k = raw.slice(0, i).trim();
    if (out.has(k)) throw new UserError(`--condition: key "${k}" given twice`);
    out.set(k, raw.slice(i + 1));
  }
  // own properties whatever the key ("__proto__", "constructor"), so the rule service names an unknown one
  return Object.fromEntries(out) as RuleConditions;
}

function service(ctx: PortsContext): RulesService {
  try {
    return new RulesService(ctx.ports, { extraRiskyDestinations: ctx.config.risky_destinations });
  } catch (err) {
    throw new UserError((err as Error).message);
  }
}

async function run<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof RuleError) throw new UserError(err.message, ruleExitCode(err));
    throw err;
  }
}

function ruleExitCode(e: RuleError): number {
  if (e.code === 'not_found') return EXIT.NOT_FOUND;
  return isRuleRefusal(e) ? EXIT.REFUSED : EXIT.USAGE;
}

function conditionsText(c: RuleConditions): string {
  return Object.entries(c)
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
}

/** A rule as text: an empty description and an update time that is the creation time say nothing, and are left out (--json keeps every field). */
function printRule(r: SuppressionRule): void {
  process.stdout.write(
    [
      `rule_id:     ${r.rule_id}`,
      `detection:   ${r.id}`,
      `name:        ${r.name}`,
      ...(r.description ? [`description: ${r.description}`] : []),
      `conditions:  ${conditionsText(r.conditions)}`,
      `created:     ${r.created_on} by ${r.created_by}`,
      ...(r.updated_on !== r.created_on ? [`updated:     ${r.updated_on}`] : []),
    ].join('\n') + '\n',
  );
}

function printPreview(p: RulePreview): void {
  const out = [
    `detection:      ${p.detection_id}`,
    `conditions:     ${conditionsText(p.conditions)}`,
    `would suppress: ${p.would_suppress} new detection(s) (exact; same matcher as create and ingest)`,
    `risky matches:  ${p.risky_matches}`,
    `impostor hits:  ${p.impostor_matches}`,
  ];
  if (p.by_process.length) out.push('', formatTable(['process', 'count'], p.by_process.slice(0, 15).map((x) => [x.process, x.count])));
  if (p.by_repo.length) out.push('', formatTable(['repo', 'count'], p.by_repo.slice(0, 15).map((x) => [`${x.owner}/${x.repo}`, x.count])));
  if (p.risky_samples.length) out.push('', 'RISKY detections this rule would hide:', formatTable(['endpoint', 'process', 'count'], p.risky_samples.map((x) => [x.address ? `${x.endpoint} at ${x.address}` : x.endpoint, x.process, x.count])));
  for (const w of p.warnings) out.push(`warning: ${w}`);
  out.push(p.refused_reason ? `REFUSED: ${p.refused_reason}` : 'create would accept this rule');
  process.stdout.write(out.join('\n') + '\n');
}

function requireYes(opts: RuleOpts, what: string): void {
  if (!opts.yes) throw new UserError(`${what} changes stored detections: re-run with --yes to confirm (nothing was changed)`);
}

function writeOptions(cmd: Command): Command {
  return cmd
    .option('--yes', 'confirm the write')
    .option('--actor <who>', 'who is making the change, for the audit log (default cli:<os user>)');
}

export function register(program: Command): void {
  const rules = program.command('rules').description('Suppression rules: list, preview, create, update, delete (audited)');

  anyStore(rules.command('list').description('List active rules')).action(async (opts: RuleOpts) => {
    await withPorts(opts, async (ctx) => {
      const list = await run(() => service(ctx).list(ctx.tenant));
      if (ctx.json) return printJson({ tenant: ctx.tenant, rules: list });
      if (list.length === 0) return void process.stdout.write(`no rules in tenant "${ctx.tenant}"\n`);
      process.stdout.write(formatTable(['rule_id', 'detection', 'name', 'conditions', 'created'], list.map((r) => [r.rule_id, r.id, r.name, conditionsText(r.conditions), r.created_on.slice(0, 19)])) + '\n');
    }, 'read', { aboutTenant: true });
  });

  anyStore(rules.command('get').argument('<rule-id>').description('Show one rule')).action(async (id: string, opts: RuleOpts) => {
    await withPorts(opts, async (ctx) => {
      const r = await run(() => service(ctx).get(ctx.tenant, id));
      if (ctx.json) return printJson(r);
      printRule(r);
    });
  });

  const conditionOpts = (cmd: Command) =>
    cmd
      .option('--detection-id <type>', 'detection type the rule applies to', NEW_OUTBOUND)
      .option('--condition <key=value>', 'condition (repeatable): owner, repo, workflow, job, endpoint, ip_address, process, process_sha256, host, ...', collect);

  anyStore(conditionOpts(rules.command('preview').description('Exact impact of a rule, without changing anything'))).action(async (opts: RuleOpts) => {
    await withPorts(opts, async (ctx) => {
      const p = await run(() => service(ctx).preview(ctx.tenant, { detection_id: opts.detectionId!, conditions: parseConditions(opts.condition) }));
      if (ctx.json) return printJson(p);
      printPreview(p);
    }, 'read', { aboutTenant: true });
  });

  anyStore(
    writeOptions(conditionOpts(rules.command('create').description('Create a rule; suppresses matching new detections retroactively')))
      .option('--name <name>', 'rule name')
      .option('--description <text>', 'rule description'),
  ).action(async (opts: RuleOpts) => {
    await withPorts(opts, async (ctx) => {
      const svc = service(ctx);
      const input = { detection_id: opts.detectionId!, conditions: parseConditions(opts.condition), name: opts.name, description: opts.description };
      if (!opts.yes) {
        const p = await run(() => svc.preview(ctx.tenant, input));
        if (p.refused_reason) throw new UserError(`rule refused: ${p.refused_reason}`, EXIT.REFUSED);
        requireYes(opts, `this rule would suppress ${p.would_suppress} detection(s); it`);
      }
      const r = await run(() => svc.create(ctx.tenant, input, opts.actor ?? defaultActor()));
      // said on stderr with --json too: a script reading the rule still leaves its warnings in a log
      for (const w of r.warnings ?? []) process.stderr.write(`egress-triage: warning: ${w}\n`);
      if (ctx.json) return printJson(r);
      printRule(r.rule);
      process.stdout.write(`suppressed ${r.suppressed} detection(s)\n`);
    }, 'read', { aboutTenant: true });
  });

  anyStore(
    writeOptions(
      rules
        .command('update')
        .argument('<rule-id>')
        .description('Change a rule; new conditions apply retroactively to new detections')
        .option('--detection-id <type>', 'detection type')
        .option('--condition <key=value>', 'replace the conditions (repeatable)', collect),
    )
      .option('--name <name>', 'rule name')
      .option('--description <text>', 'rule description'),
  ).action(async (id: string, opts: RuleOpts) => {
    await withPorts(opts, async (ctx) => {
      const svc = service(ctx);
      const input = {
        detection_id: opts.detectionId,
        conditions: opts.condition ? parseConditions(opts.condition) : undefined,
        name: opts.name,
        description: opts.description,
      };
      // nothing to change is said before asking for --yes, as the service would refuse it anyway
      if (changesNothing(input)) {
        throw new UserError('nothing to change: give --name, --description, --detection-id or --condition', EXIT.USAGE);
      }
      // Only a change of what the rule matches moves detections, so only it asks for --yes: a new name
      // or description, or the same match written again (judged as the update judges it), does not.
      if (!opts.yes && (await run(() => svc.wouldChangeMatch(ctx.tenant, id, input)))) {
        const cur = await run(() => svc.get(ctx.tenant, id));
        const next = { detection_id: input.detection_id ?? cur.id, conditions: input.conditions ?? cur.conditions };
        const p = await run(() => svc.preview(ctx.tenant, next, { exceptRule: cur.rule_id }));
        if (p.refused_reason) throw new UserError(`rule refused: ${p.refused_reason}`, EXIT.REFUSED);
        requireYes(
          opts,
          `the updated rule (${p.detection_id}: ${conditionsText(p.conditions)}) would suppress ${p.would_suppress} more detection(s), and what it suppresses now that it no longer matches goes to another matching rule or back to new; the update`,
        );
      }
      const r = await run(() => svc.update(ctx.tenant, id, input, opts.actor ?? defaultActor()));
      for (const w of r.warnings ?? []) process.stderr.write(`egress-triage: warning: ${w}\n`);
      if (ctx.json) return printJson(r);
      printRule(r.rule);
      const handed = r.handed_to_other_rules ?? [];
      process.stdout.write(
        `suppressed ${r.suppressed} more detection(s); kept ${r.kept ?? 0}; released ${r.restored} to new` +
          `; handed ${handed.reduce((a, h) => a + h.count, 0)} to other rules${handed.length ? ` (${handed.map((h) => `${h.rule_id}: ${h.count}`).join(', ')})` : ''}\n`,
      );
    }, 'read', { aboutTenant: true });
  });

  anyStore(
    writeOptions(
      rules
        .command('delete')
        .argument('<rule-id>')
        .description('Delete a rule; past suppressions stay unless --restore')
        .option('--restore', 'turn the detections this rule suppressed back into new'),
    ),
  ).action(async (id: string, opts: RuleOpts) => {
    await withPorts(opts, async (ctx) => {
      const svc = service(ctx);
      if (!opts.yes) {
        await run(() => svc.get(ctx.tenant, id));
        requireYes(opts, 'delete');
      }
      const r = await run(() => svc.delete(ctx.tenant, id, { restore: Boolean(opts.restore) }, opts.actor ?? defaultActor()));
      if (ctx.json) return printJson(r);
      process.stdout.write(`deleted rule ${r.rule.rule_id}${opts.restore ? `; restored ${r.restored} detection(s) to new` : '; past suppressions kept'}\n`);
    }, 'read', { aboutTenant: true });
  });

  anyStore(rules.command('audit').argument('[rule-id]').description('Audit log of rule changes (who, when, before/after)')).action(
    async (id: string | undefined, opts: RuleOpts) => {
      await withPorts(opts, async (ctx) => {
        const rows = await run(() => service(ctx).audit(ctx.tenant, id));
        if (ctx.json) return printJson({ tenant: ctx.tenant, audit: rows });
        process.stdout.write(formatTable(['at', 'action', 'rule_id', 'actor', 'affected'], rows.map((a) => [a.at.slice(0, 19), a.action, a.rule_id, a.actor, a.affected])) + '\n');
      });
    },
  );
}
