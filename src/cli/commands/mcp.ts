import { Command, Option } from 'commander';
import { dashboardUrlFor, withPorts, withStoreOptions, type PortsContext, type StoreOptions } from '../common.js';
import { policyFileExit, UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import type { ConfigFile } from '../../config/config-file.js';
import { loadGrantsOption } from '../grants-option.js';
import { parseStateOption, STATE_OPTION_HELP } from './gateway.js';
import { PolicyStateUnavailableError } from '../../storage/policy-state.js';
import { dashboardFactory, SECURE_COOKIES_HELP } from './dashboard.js';

interface McpCliOptions extends StoreOptions {
  dashboardUrl?: string;
  listen?: string;
  policy?: string;
  auditFile?: string;
  identity?: string;
  actor?: string;
  grants?: string;
  allowedHost?: string[];
  maxMessageBytes?: string;
  state?: string;
  secureCookies?: boolean;
}

function common(cmd: Command): Command {
  withStoreOptions(cmd, { json: false });
  return cmd
    .addOption(new Option('--dashboard-url <url>', 'base URL of every dashboard_url (env EGRESS_TRIAGE_DASHBOARD_URL, default http://127.0.0.1:8787)'))
    .addOption(new Option('--policy <file>', 'enforce this policy (YAML/JSON) on every tools/call through the built-in gateway'))
    .addOption(new Option('--audit-file <path>', 'with --policy: JSONL audit file (default policy-audit.jsonl next to the DB)'))
    .addOption(new Option('--identity <name>', 'with --policy: identity for rate limits and the audit log (default "local")'))
    .addOption(new Option('--state <url>', `with --policy: ${STATE_OPTION_HELP}`))
    .addOption(new Option('--actor <name>', 'recorded as created_by of rules written through MCP (default "mcp")'));
}

/**
 * --audit-file, --identity and --state only say how the built-in gateway enforces --policy. Given
 * without it, the server would start with nothing enforced, audited or shared while its command
 * line says otherwise: that is refused (exit 2), never ignored.
 */
function requirePolicyForItsOptions(opts: McpCliOptions): void {
  if (opts.policy) return;
  const given = (['auditFile', 'identity', 'state'] as const).filter((k) => opts[k] !== undefined);
  if (given.length === 0) return;
  const flags = given.map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  throw new UserError(`${flags.join(', ')}: only with --policy (without a policy nothing is enforced or audited)`);
}

function policyOptions(opts: McpCliOptions, dbPath: string) {
  if (!opts.policy) return undefined;
  return { policyPath: opts.policy, dbPath, auditFile: opts.auditFile, identity: opts.identity, stateUrl: parseStateOption(opts.state) };
}


/** Options shared by the stdio and HTTP servers. */
function serverOptions(opts: McpCliOptions, ctx: PortsContext) {
  return {
    store: ctx.ports,
    tenant: ctx.tenant,
    dashboardUrl: dashboardUrlFor(opts.dashboardUrl, ctx.config),
    actor: opts.actor,
    riskyDestinations: ctx.config.risky_destinations,
    policy: policyOptions(opts, ctx.location.target),
  };
}

async function wrapPolicyErrors<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof PolicyStateUnavailableError) throw new UserError(`${e.flag}: ${e.message}`, EXIT.IO);
    if ((e as Error)?.name === 'PolicyLoadError' || (e as { issues?: unknown })?.issues !== undefined) {
      throw new UserError(`--policy: ${(e as Error).message}`, policyFileExit(e as { readErrno?: string }));
    }
    if ((e as NodeJS.ErrnoException)?.code === 'EADDRINUSE') throw new UserError(`--listen: address already in use (${(e as Error).message})`, EXIT.IO);
    if ((e as NodeJS.ErrnoException)?.code === 'EADDRNOTAVAIL' || (e as NodeJS.ErrnoException)?.code === 'EACCES') {
      throw new UserError(`--listen: ${(e as Error).message}`, EXIT.IO);
    }
    throw e;
  }
}

export function register(program: Command): void {
  const mcp = program
    .command('mcp')
    .description('Serve the triage tools to an AI agent over MCP stdio (stdout carries only JSON-RPC; logs go to stderr)');
  common(mcp)
    .addOption(new Option('--max-message-bytes <size>', 'largest JSON-RPC message read from stdin, e.g. 16MiB (env EGRESS_TRIAGE_MAX_MESSAGE_BYTES; default 16MiB)'))
    .action(async (opts: McpCliOptions) => {
      requirePolicyForItsOptions(opts);
      const { resolveMaxMessageBytes } = await import('../../mcp/message-limit.js');
      const { confirmStateCodec } = await import('../../mcp/request-state.js');
      let maxMessageBytes: number;
      try {
        maxMessageBytes = resolveMaxMessageBytes(opts.maxMessageBytes);
        confirmStateCodec();
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      await withPorts(opts, async (ctx) => {
        // a tenant whose calls this store's policy audits is one of its tenants: another tenant's
        // dashboard then shows only its own records (dashboard/policy-tenants.ts)
        if (opts.policy) await ctx.ports.registerTenant(ctx.tenant);
        const { runStdioServer } = await import('../../mcp/stdio.js');
        const handle = await wrapPolicyErrors(() => runStdioServer({ ...serverOptions(opts, ctx), maxMessageBytes }));
        const stop = () => void handle.close();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
        await handle.closed;
        await handle.close();
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      });
    });

  const serve = program
    .command('serve')
    .description('Serve MCP over Streamable HTTP at /mcp (2025-11-25 clients in sessions, 2026-07-28 requests statelessly) and the web dashboard at / (binds 127.0.0.1:8787 by default)');
  common(serve)
    .addOption(new Option('--listen <host:port>', 'address to listen on; port 0 picks a free port (printed to stderr)').default('127.0.0.1:8787'))
    .addOption(new Option('--grants <file>', 'bearer tokens mapping to identities (same file as gateway --grants); required for a non-loopback --listen'))
    .addOption(
      new Option('--allowed-host <name>', 'host name clients may use in Host/Origin besides loopback names and the listen address (repeatable)').argParser(
        (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
      ),
    )
    .addOption(new Option('--secure-cookies', SECURE_COOKIES_HELP))
    .action(async (opts: McpCliOptions) => {
      requirePolicyForItsOptions(opts);
      const { confirmStateCodec } = await import('../../mcp/request-state.js');
      try {
        confirmStateCodec();
      } catch (e) {
        throw new UserError((e as Error).message);
      }
      await withPorts(opts, async (ctx) => {
        const { startHttpServer, parseListen } = await import('../../mcp/http.js');
        const { listenDecision } = await import('../../http/listen.js');
        const { allowedHostNames } = await import('../../http/host-origin.js');
        let addr: { host: string; port: number };
        try {
          addr = parseListen(opts.listen ?? '127.0.0.1:8787');
          allowedHostNames(addr.host, opts.allowedHost ?? []);
        } catch (e) {
          throw new UserError((e as Error).message);
        }
        const grants = await loadGrantsOption(opts.grants);
        // A tenant whose calls this store's policy audits is one of its tenants, a grant's own policy
        // included (a grants-only tenant was invisible: found by review): another tenant's dashboard
        // then shows only its own records (dashboard/policy-tenants.ts).
        if (opts.policy || grants.some((g) => g.policy !== undefined)) await ctx.ports.registerTenant(ctx.tenant);
        if (grants.length > 0 && opts.actor) throw new UserError('--actor cannot be combined with --grants: rule changes are recorded as mcp:<identity> of the bearer token');
        if (grants.length > 0 && opts.identity) throw new UserError('--identity cannot be combined with --grants: the bearer token names the identity');
        const decision = listenDecision(addr.host, grants.length);
        if (!decision.ok) throw new UserError(`--listen: ${decision.message}`, EXIT.REFUSED);
        const dashboard = await dashboardFactory(ctx, grants, Boolean(opts.secureCookies));
        const app = await wrapPolicyErrors(() =>
          startHttpServer({
            ...serverOptions(opts, ctx),
            host: addr.host,
            port: addr.port,
            grants,
            policyDbPath: ctx.location.target,
            policyStateUrl: parseStateOption(opts.state),
            allowedHosts: opts.allowedHost ?? [],
            dashboard,
          }),
        );
        if (opts.policy && grants.length === 0) {
          process.stderr.write(
            'egress-triage serve: the dashboard is read-only: without --grants it cannot tell a person from the agent that --policy governs ' +
              '(decide approvals with "egress-triage approvals approve|deny ID")\n',
          );
        }
        await new Promise<void>((resolve) => {
          const stop = (sig: string) => {
            process.stderr.write(`egress-triage serve: ${sig}, shutting down\n`);
            void app.close().then(resolve, resolve);
          };
          process.once('SIGINT', () => stop('SIGINT'));
          process.once('SIGTERM', () => stop('SIGTERM'));
        });
      });
    });
}
