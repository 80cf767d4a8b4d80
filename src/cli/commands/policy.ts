import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { argReadingsFor, policyArgs } from '../../mcp/tool-aliases.js';
import { dirname } from 'node:path';
import type { Command } from 'commander';
import { fileExit, policyFileExit, policyStoreError, UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { parseIntOption, requireExistingStore, storeLocation } from '../common.js';
import { parseAuditFilter } from '../../policy/audit-filter.js';
import { FilterError } from '../../domain/filter.js';
import { starterPolicy } from '../../policy/init.js';
import { APPROVALS_LIST_MAX, decisionReasonProblem, type ApprovalRow, type AuditFilter, type PolicyStateBackend } from '../../storage/policy-state.js';
import { checkStateUrl, openPolicyState } from '../../storage/open-policy-state.js';
import { revealInvisible } from '../../domain/reveal-invisible.js';

// The policy schema, the gateway config and the MCP client are loaded by the subcommands that use
// them: `audit` and `approvals`, which tests and operators run most, never pay for them.

/**
 * `policy init --config`: every registered upstream at once. They are asked concurrently and fail
 * independently: each that answers gets its starter policy at the path the config names, each that
 * does not is reported, and the command exits 5 (I/O) if any failed (after writing the others).
 */
async function initFromConfig(configPath: string, force: boolean): Promise<void> {
  const [{ GatewayConfigError, loadGatewayConfig }, { listUpstreamTools }] = await Promise.all([import('../../gateway/config.js'), import('../../gateway/connect.js')]);
  let config;
  try {
    config = loadGatewayConfig(configPath);
  } catch (e) {
    throw new UserError((e as Error).message, fileExit(e instanceof GatewayConfigError ? e.readErrno : undefined, EXIT.REJECTED));
  }
  const existing = config.upstreams.filter((u) => existsSync(u.policy));
  if (existing.length && !force) throw new UserError(`${existing.map((u) => u.policy).join(', ')} exist(s) (use --force to overwrite)`);
  const results = await Promise.allSettled(
    config.upstreams.map((u) =>
      listUpstreamTools(u.url ? { url: u.url, headers: u.headers } : { command: u.command![0]!, args: u.command!.slice(1) }),
    ),
  );
  const failed: string[] = [];
  results.forEach((r, i) => {
    const u = config.upstreams[i]!;
    if (r.status === 'rejected') {
      failed.push(u.name);
      process.stderr.write(`${u.name}: cannot list tools: ${(r.reason as Error).message}\n`);
      return;
    }
    mkdirSync(dirname(u.policy), { recursive: true });
    writeFileSync(u.policy, starterPolicy(r.value, `upstream "${u.name}" (${u.url ?? u.command!.join(' ')})`));
    process.stderr.write(`${u.name}: wrote ${u.policy} (${r.value.length} tools)\n`);
  });
  // a server that cannot be reached is the system refusing, as a store's server is (exit 5)
  if (failed.length) throw new UserError(`could not learn ${failed.length} of ${config.upstreams.length} upstream(s): ${failed.join(', ')}`, EXIT.IO);
}

/**
 * The policy file loaded, or the load error of one that was read but is invalid (its issues are
 * `policy validate`'s verdict). A file that cannot be read is no verdict: thrown as a UserError.
 */
async function loadPolicy(file: string) {
  const { formatIssue, loadPolicyFile, PolicyLoadError } = await import('../../policy/load.js');
  try {
    return { loaded: loadPolicyFile(file) };
  } catch (e) {
    if (!(e instanceof PolicyLoadError)) throw e;
    if (e.readErrno !== undefined) throw new UserError(e.message, policyFileExit(e));
    const said = new UserError(`${e.issues.length} error(s) in ${file}:\n${e.issues.map((i) => formatIssue(file, i)).join('\n')}`, policyFileExit(e));
    return { invalid: e, said };
  }
}

async function loadOrFail(file: string) {
  const r = await loadPolicy(file);
  if (r.loaded === undefined) throw r.said;
  return r.loaded;
}

/**
 * `policy validate`. With --json the verdict is the data, so an invalid policy is a document too (its
 * errors, each with path, line and column), and the exit code still says it (1).
 */
async function validatePolicy(file: string, json: boolean): Promise<void> {
  const r = await loadPolicy(file);
  if (r.loaded === undefined) {
    if (!json) throw r.said;
    const errors = r.invalid.issues.map((i) => ({ path: i.path, line: i.line ?? null, col: i.col ?? null, message: i.message }));
    process.stdout.write(JSON.stringify({ file, valid: false, errors }, null, 2) + '\n');
    process.exitCode = policyFileExit(r.invalid);
    return;
  }
  const { engine } = r.loaded;
  const summary = { default: engine.default, tool_entries: Object.keys(engine.file.tools ?? {}).length, hidden: (engine.file.hide ?? []).length };
  process.stdout.write(
    json
      ? JSON.stringify({ file, valid: true, ...summary }, null, 2) + '\n'
      : `${file}: ok (default ${summary.default}, ${summary.tool_entries} tool entries, ${summary.hidden} hidden)\n`,
  );
}

/** The most records one `audit` prints: the rows are held in memory before they are written. */
const AUDIT_LIMIT_MAX = 1_000_000;

/**
 * The policy state the gateways use: the store, or with `--state redis://...` the shared Redis (where
 * approvals live then; the audit always stays in the store).
 */
async function openState(db?: string, stateUrl?: string): Promise<PolicyStateBackend> {
  if (stateUrl !== undefined) {
    try {
      checkStateUrl(stateUrl);
    } catch (e) {
      throw new UserError(`--state ${(e as Error).message}`);
    }
    // Approvals only: the store is not needed (and is not created).
    return readyState(
      () => openPolicyState({ dbPath: ':memory:', auditFile: false, stateUrl }),
      (e) => new UserError(`--state: ${(e as Error).message}`, EXIT.IO),
    );
  }
  // The audit JSONL file is only written by gateways; the CLI reads the table.
  const loc = storeLocation(db);
  // Only gateways create the state; a missing SQLite store here is a mistyped --db.
  if (loc.backend !== 'postgres') requireExistingStore(loc.target, loc.from);
  // A store that cannot be used (no store, damaged, newer) is named; on SQLite it fails as the state opens.
  return readyState(
    () => openPolicyState({ dbPath: loc.target, auditFile: false }),
    (e) => policyStoreError(e, loc) ?? (loc.backend === 'postgres' ? new UserError((e as Error).message, EXIT.IO) : e),
  );
}

/** Opens a policy state and waits until it can answer; on failure it is closed and `explain` says why. */
async function readyState(open: () => PolicyStateBackend, explain: (e: unknown) => unknown): Promise<PolicyStateBackend> {
  let st: PolicyStateBackend | undefined;
  try {
    st = open();
    await st.ready();
    return st;
  } catch (e) {
    await st?.close();
    throw explain(e);
  }
}

const STATE_HELP = 'shared policy state of the gateways, redis://host:port[/db] (default: the store)';

function fmtApproval(r: ApprovalRow): string {
  const exp = new Date(r.expires_at).toISOString();
  const upstream = r.upstream_name ? `upstream=${r.upstream_name} ` : '';
  // the administrator decides for every tenant of the store: say whose server held the call
  const tenant = r.tenant !== null ? `tenant=${r.tenant} ` : '';
  // every stored string as text: a caller chose the tool name and the reason (an elicitation answer)
  const t = revealInvisible;
  return `${r.id}  ${r.status.padEnd(8)}  ${t(r.tool)}  ${t(tenant)}${t(upstream)}identity=${t(r.identity)} session=${t(r.session)}  expires=${exp}\n    args: ${t(r.args_preview)}${r.reason ? `\n    reason: ${t(r.reason)}` : ''}`;
}

export function register(program: Command): void {
  const policy = program.command('policy').description('Policy files for MCP tool calls: validate, explain, init (a starter policy from a server’s tools)');

  policy
    .command('validate')
    .description('Check a policy file; every error is reported with its path and line (exit 1 if any)')
    .argument('<file>')
    .option('--json', 'machine-readable output: the verdict, and an invalid file\'s errors with their path and line (still exit 1)')
    .action((file: string, o: { json?: boolean }) => validatePolicy(file, o.json === true));

  policy
    .command('explain')
    .description('Print the decision for one call and the rule behind it')
    .argument('<file>')
    .requiredOption('--tool <name>', 'tool name')
    .option('--args <json>', 'arguments as a JSON object', '{}')
    .option('--built-in', "judge the arguments as egress-triage's own tools read them, as `mcp|serve --policy` does (aliases, case, blanks, a rule's left-out conditions); without it, as sent, as the stand-alone gateway does")
    .option('--json', 'machine-readable output')
    .action(async (file: string, o: { tool: string; args: string; builtIn?: boolean; json?: boolean }) => {
      const p = await loadOrFail(file);
      let args: unknown;
      try {
        args = JSON.parse(o.args);
      } catch (e) {
        throw new UserError(`--args is not valid JSON: ${(e as Error).message}`);
      }
      if (typeof args !== 'object' || args === null || Array.isArray(args)) throw new UserError('--args must be a JSON object');
      const d = o.builtIn
        ? p.engine.decide(o.tool, policyArgs(o.tool, args as Record<string, unknown>), argReadingsFor(o.tool))
        : p.engine.decide(o.tool, args);
      if (o.json) {
        process.stdout.write(
          JSON.stringify({ tool: o.tool, action: d.action, rule: d.rule, line: d.line ?? null, reason: d.reason ?? null,
            approval_timeout: d.action === 'require_approval' ? d.approvalTimeoutMs / 1000 : null,
            approval_elicitation: d.action === 'require_approval' ? d.elicitation : null,
            rate_limits: d.limits.map((l) => ({ rule: l.rule, line: l.line ?? null, max: l.max, window: l.windowMs / 1000, scope: l.scope, cost_from: l.costPath ? `args.${l.costPath.join('.')}` : null })) }, null, 2) + '\n',
        );
        return;
      }
      const lines = [`decision: ${d.action}`, `rule:     ${d.rule}${d.line ? ` (${file}:${d.line})` : ''}`];
      if (d.reason) lines.push(`reason:   ${d.reason}`);
      if (d.action === 'require_approval') {
        lines.push(`approval: waits up to ${d.approvalTimeoutMs / 1000}s for a human, then denies`);
        lines.push(
          d.elicitation
            ? "approver: a human outside the agent, or the agent's own client (approval_elicitation: true)"
            : 'approver: a human outside the agent (approvals approve, or the HTTP approvals API)',
        );
      }
      for (const l of d.action === 'deny' ? [] : d.limits) {
        lines.push(`limit:    max ${l.max} per ${l.windowMs / 1000}s, scope ${l.scope}${l.costPath ? `, cost from args.${l.costPath.join('.')}` : ''}  (${l.rule}${l.line ? `, ${file}:${l.line}` : ''})`);
      }
      process.stdout.write(lines.join('\n') + '\n');
    });

  policy
    .command('init')
    .description('Connect to an MCP server, list its tools and write a starter policy from their annotations')
    .option('--upstream <url>', 'Streamable HTTP MCP endpoint')
    .option('--upstream-header <header>', 'header for the upstream, "Name: value" (repeatable)', (v: string, p: string[]) => [...p, v], [])
    .option('--config <file>', 'gateway config: learn every registered upstream at once and write each its policy file')
    .option('-o, --out <file>', 'write here instead of stdout')
    .option('--force', 'overwrite --out (or, with --config, the policy files) if they exist')
    .argument('[command...]', 'stdio server command after "--"')
    .action(async (command: string[], o: { upstream?: string; upstreamHeader: string[]; config?: string; out?: string; force?: boolean }) => {
      if (o.config) {
        if (o.upstream || command.length || o.out) throw new UserError('--config names the upstreams and where their policies go: give no --upstream, command or --out with it');
        return initFromConfig(o.config, o.force === true);
      }
      if (!o.upstream && command.length === 0) throw new UserError('give --upstream URL, "-- <command> [args...]" or --config FILE');
      if (o.upstream && command.length) throw new UserError('give either --upstream or a command, not both');
      if (o.out && existsSync(o.out) && !o.force) throw new UserError(`${o.out} exists (use --force to overwrite)`);
      const [{ listUpstreamTools }, { parseHeader }] = await Promise.all([import('../../gateway/connect.js'), import('./gateway.js')]);
      let tools;
      try {
        tools = await listUpstreamTools(
          o.upstream
            ? { url: o.upstream, headers: Object.fromEntries(o.upstreamHeader.map(parseHeader)) }
            : { command: command[0]!, args: command.slice(1) },
        );
      } catch (e) {
        throw new UserError(`cannot list tools from the server: ${(e as Error).message}`, EXIT.IO);
      }
      const text = starterPolicy(tools, o.upstream ?? command.join(' '));
      if (o.out) {
        writeFileSync(o.out, text);
        process.stderr.write(`wrote ${o.out} (${tools.length} tools)\n`);
      } else process.stdout.write(text);
    });

  const approvals = program.command('approvals').description('Human decisions on tool calls held by require_approval');
  approvals
    .command('list')
    .description('Pending approvals (or all recent ones with --all)')
    .option('--db <path>', 'the store: a SQLite path or postgres://... URL')
    .option('--state <url>', STATE_HELP)
    .option('--all', 'include decided, expired and used approvals')
    .option('--json', 'machine-readable output')
    .action(async (o: { db?: string; state?: string; all?: boolean; json?: boolean }) => {
      const st = await openState(o.db, o.state);
      try {
        const rows = await st.approvals.list({ status: o.all ? 'all' : 'pending' });
        if (o.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        else process.stdout.write(rows.length ? rows.map(fmtApproval).join('\n') + '\n' : 'no pending approvals\n');
        // the list stops at the newest APPROVALS_LIST_MAX: say so, or older held calls go unseen
        if (rows.length >= APPROVALS_LIST_MAX) {
          process.stderr.write(`egress-triage: only the newest ${APPROVALS_LIST_MAX} are shown; ${o.all ? 'older ones are left out' : 'older ones may be pending too (each expires at its approval_timeout)'}\n`);
        }
      } finally {
        await st.close();
      }
    });
  for (const verb of ['approve', 'deny'] as const) {
    approvals
      .command(verb)
      .description(verb === 'approve' ? 'Let the held call through (once)' : 'Refuse the held call')
      .argument('<id>')
      .option('--db <path>', 'the store: a SQLite path or postgres://... URL')
      .option('--state <url>', STATE_HELP)
      .option('--reason <text>', 'shown to the agent (deny) and recorded')
      .option('--json', 'machine-readable output: the decided approval, as `approvals list --json` shows it')
      .action(async (id: string, o: { db?: string; state?: string; reason?: string; json?: boolean }) => {
        const problem = decisionReasonProblem(o.reason);
        if (problem) throw new UserError(`--reason: ${problem}`);
        const st = await openState(o.db, o.state);
        try {
          const by = `cli:${process.env.USER ?? 'unknown'}`;
          const row = await st.approvals.decide(id, verb === 'approve' ? 'approved' : 'denied', by, o.reason);
          process.stdout.write(o.json ? JSON.stringify(row, null, 2) + '\n' : `${row.id} ${row.status} (${row.tool})\n`);
        } catch (e) {
          throw new UserError((e as Error).message, /^no approval/.test((e as Error).message) ? EXIT.NOT_FOUND : EXIT.USAGE);
        } finally {
          await st.close();
        }
      });
  }

  program
    .command('audit')
    .description('Query the policy audit log (every tool-call decision)')
    .option('--db <path>', 'the store: a SQLite path or postgres://... URL')
    .option('--since <when>', 'ISO time or duration (30m, 2h, 7d)')
    .option('--tool <name>', 'only this tool')
    .option('--decision <d>', 'allow | deny | rate_limited | approved | approval_denied | approval_expired | approval_cancelled | approval_requested | policy_change')
    .option('--session <id>', 'only this session')
    .option('--tenant <name>', "only the decisions of this tenant's servers (mcp, serve)")
    .option('--limit <n>', `most recent N records (1 to ${AUDIT_LIMIT_MAX})`, parseIntOption('--limit', 1, AUDIT_LIMIT_MAX), 1000)
    .option('--json', 'machine-readable output: one JSON document, an array of the records (empty when nothing matches)')
    .option('--jsonl', 'JSON lines: one record per line, nothing when nothing matches (for line-by-line tools)')
    .action(async (o: { db?: string; since?: string; tool?: string; decision?: string; session?: string; tenant?: string; limit: number; json?: boolean; jsonl?: boolean }) => {
      if (o.json && o.jsonl) throw new UserError('give --json or --jsonl, not both');
      const flags = { since: '--since', tool: '--tool', decision: '--decision', session: '--session', tenant: '--tenant' } as const;
      let filter: AuditFilter;
      try {
        filter = parseAuditFilter(o, { now: Date.now(), names: flags });
      } catch (e) {
        if (e instanceof FilterError) throw new UserError(e.message);
        throw e;
      }
      const st = await openState(o.db);
      try {
        const rows = await st.audit.query({ ...filter, limit: o.limit });
        if (o.json) process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
        else if (o.jsonl) process.stdout.write(rows.map((r) => JSON.stringify(r)).join('\n') + (rows.length ? '\n' : ''));
        else {
          for (const r of rows) {
            process.stdout.write(
              // a refused tool name is recorded as the caller sent it: written as text, never as terminal control
              `${r.ts}  ${r.decision.padEnd(16)} ${revealInvisible(r.tool)}  upstream=${revealInvisible(r.upstream)} ${r.latency_ms}ms  ${r.tenant !== undefined ? `tenant=${revealInvisible(r.tenant)} ` : ''}identity=${revealInvisible(r.identity)} session=${revealInvisible(r.session)}  rule=${revealInvisible(r.rule)}${r.reason ? `  reason=${revealInvisible(JSON.stringify(r.reason))}` : ''}\n`,
            );
          }
          if (!rows.length) process.stdout.write('no audit records\n');
        }
      } finally {
        await st.close();
      }
    });
}
