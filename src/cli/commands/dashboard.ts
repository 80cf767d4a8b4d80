import { Command, Option } from 'commander';
import { withPorts, withStoreOptions, type PortsContext } from '../common.js';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import type { Grant } from '../../http/grants.js';
import { loadGrantsOption } from '../grants-option.js';
import type { Dashboard } from '../../dashboard/app.js';
import type { DashboardShared } from '../../dashboard/store.js';
import type { PolicyStateBackend } from '../../storage/policy-state.js';

interface DashboardCliOptions {
  db?: string;
  tenant?: string;
  config?: string;
  listen?: string;
  grants?: string;
  allowedHost?: string[];
  secureCookies?: boolean;
}

export const SECURE_COOKIES_HELP = 'TLS terminates in front of this server: session cookies get the Secure flag (the browser then sends them over https only)';

export function listenOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--listen <host:port>', 'address to listen on; port 0 picks a free port (printed to stderr)').default('127.0.0.1:8787'))
    .addOption(new Option('--grants <file>', 'bearer tokens mapping to identities (same file as gateway --grants); required for a non-loopback --listen'))
    .addOption(
      new Option('--allowed-host <name>', 'host name clients may use in Host/Origin besides loopback names and the listen address (repeatable)').argParser(
        (v: string, prev: string[] | undefined) => [...(prev ?? []), v],
      ),
    );
}

/** The dashboard of an open store; its client bundle must have been built (`npm run build`). */
export async function dashboardFactory(ctx: PortsContext, grants: readonly Grant[], secureCookies: boolean) {
  const { createDashboard } = await import('../../dashboard/app.js');
  const { loadAssets } = await import('../../dashboard/assets.js');
  let assets;
  try {
    assets = loadAssets();
  } catch (e) {
    throw new UserError((e as Error).message, EXIT.IO);
  }
  const log = (l: string) => process.stderr.write(`egress-triage dashboard: ${l}\n`);
  const { analyze, rulesService } = await import('../../mcp/services.js');
  const { riskyDestinations } = await import('../../analysis/risky-destinations.js');
  const { rememberRiskyDestinations } = await import('../../rules/risky-memory.js');
  const risky = ctx.config.risky_destinations ?? [];
  return (shared: DashboardShared): Dashboard =>
    createDashboard({
      store: {
        detections: ctx.ports.detections,
        runCalls: ctx.ports.runCalls,
        overview: ctx.ports.overview,
        dashboard: ctx.ports.dashboard,
        baselines: ctx.ports.baselines,
        risky: async () => riskyDestinations((await rememberRiskyDestinations(ctx.ports, risky)).list),
        // the same analysis and rules service instances as MCP's tools (one guard, one risky-endpoint cache)
        processes: {
          analyze: (input) => analyze(ctx.ports, { ...input, extraRiskyDestinations: risky }, risky),
          rules: () => rulesService(ctx.ports, risky),
        },
        // this tenant's only, as the Approvals page lists them (policy-tenants.ts heldFor)
        pendingApprovals: shared.policyState ? async () => (await shared.policyState!.approvals.list({ status: 'pending', tenant: ctx.tenant })).length : undefined,
        policy: shared.policyState,
        policyFile: shared.policyFile,
        policyHolder: shared.policyHolder,
      },
      tenant: ctx.tenant,
      grants,
      underPolicy: shared.policyState !== undefined,
      secureCookies,
      assets,
      excludedPaths: shared.excludedPaths,
      onSignInRefused: shared.onSignInRefused,
      log,
    });
}

export function register(program: Command): void {
  const cmd = program
    .command('dashboard')
    .description('Serve the web dashboard alone (no MCP); `serve` serves it together with MCP (binds 127.0.0.1:8787 by default)');
  withStoreOptions(cmd, { json: false });
  listenOptions(cmd)
    .addOption(new Option('--secure-cookies', SECURE_COOKIES_HELP))
    .action(async (opts: DashboardCliOptions) => {
      await withPorts(opts, async (ctx) => {
        const { parseListen, listenDecision, ListenRefusedError } = await import('../../http/listen.js');
        const { allowedHostNames } = await import('../../http/host-origin.js');
        const { createMcpListener } = await import('../../http/mcp-listener.js');
        let addr: { host: string; port: number };
        try {
          addr = parseListen(opts.listen ?? '127.0.0.1:8787');
          allowedHostNames(addr.host, opts.allowedHost ?? []);
        } catch (e) {
          throw new UserError((e as Error).message);
        }
        const grants = await loadGrantsOption(opts.grants);
        const decision = listenDecision(addr.host, grants.length);
        if (!decision.ok) throw new UserError(`--listen: ${decision.message}`, EXIT.REFUSED);
        const log = (l: string) => process.stderr.write(`egress-triage dashboard: ${l}\n`);
        const make = await dashboardFactory(ctx, grants, Boolean(opts.secureCookies));
        let listener;
        try {
          listener = createMcpListener({
            host: addr.host,
            port: addr.port,
            grants,
            allowedHosts: opts.allowedHost ?? [],
            maxBodyBytes: 64 * 1024,
            // the dashboard alone: no path is an MCP endpoint
            mcpPath: () => undefined,
            displayPath: '/',
            onMcp: async () => undefined,
            browser: make({ policyState: undefined, excludedPaths: [] }),
            log,
          });
        } catch (e) {
          if (e instanceof ListenRefusedError) throw new UserError(`--listen: ${e.message}`, EXIT.REFUSED);
          throw e;
        }
        let url: string;
        try {
          url = await listener.listen();
        } catch (e) {
          const code = (e as NodeJS.ErrnoException).code;
          if (code === 'EADDRINUSE' || code === 'EADDRNOTAVAIL' || code === 'EACCES') throw new UserError(`--listen: ${(e as Error).message}`, EXIT.IO);
          throw e;
        }
        log(`listening on ${url} (tenant "${ctx.tenant}", ${grants.length ? 'sign-in with a grants token' : 'open: loopback without grants'})`);
        await new Promise<void>((resolve) => {
          const stop = (sig: string) => {
            log(`${sig}, shutting down`);
            void listener.close().then(resolve, resolve);
          };
          process.once('SIGINT', () => stop('SIGINT'));
          process.once('SIGTERM', () => stop('SIGTERM'));
        });
      });
    });
}
