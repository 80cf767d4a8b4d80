import type { Command } from 'commander';
import { fileExit, policyFileExit, policyStoreError, UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { ListenRefusedError } from '../../http/listen.js';
import { PolicyLoadError } from '../../policy/load.js';
import { GatewayConfigError, loadGatewayConfig } from '../../gateway/config.js';
import type { startHttpGateway as StartHttpGateway } from '../../gateway/http.js';
import { loadGrantsOption } from '../grants-option.js';
import { parseListen as parseListenAddress } from '../../http/listen.js';
import { resolveMaxMessageBytes } from '../../mcp/message-limit.js';
import { PolicyStateUnavailableError } from '../../storage/policy-state.js';
import { storeLocation } from '../common.js';
import type { StoreLocation } from '../../storage/location.js';
import { checkStateUrl } from '../../storage/open-policy-state.js';

// A gateway loads only its own transport's modules: the stdio gateway, which agents start once per
// session, never loads the HTTP server and client.
async function startHttp(o: Parameters<typeof StartHttpGateway>[0]): ReturnType<typeof StartHttpGateway> {
  const { startHttpGateway } = await import('../../gateway/http.js');
  return startHttpGateway(o);
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

export function parseHeader(h: string): [string, string] {
  const i = h.indexOf(':');
  if (i <= 0) throw new UserError(`--upstream-header "${h}": expected "Name: value"`);
  return [h.slice(0, i).trim(), h.slice(i + 1).trim()];
}

export function parseListen(s: string): { host: string; port: number } {
  try {
    return parseListenAddress(s);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
}

interface GatewayOpts {
  policy?: string;
  config?: string;
  db?: string;
  auditFile?: string;
  upstream?: string;
  listen?: string;
  grants?: string;
  allowedHost: string[];
  upstreamHeader: string[];
  upstreamTokenEnv?: string;
  identity?: string;
  sessionId?: string;
  maxMessageBytes?: string;
  state?: string;
  upstreamRevision?: string;
}

/** `--upstream-revision`: the protocol revision the stdio child speaks, or `auto` (found out on the first request). */
export function parseUpstreamRevision(v: string | undefined): 'legacy' | 'modern' | undefined {
  if (v === undefined || v === 'auto') return undefined;
  if (v === '2025-11-25') return 'legacy';
  if (v === '2026-07-28') return 'modern';
  throw new UserError(`--upstream-revision "${v}": expected 2025-11-25, 2026-07-28 or auto`);
}

/** `--state`, checked before anything starts: a bad URL is a usage error (exit 2). */
export function parseStateOption(url: string | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    checkStateUrl(url);
  } catch (e) {
    throw new UserError(`--state ${(e as Error).message}`);
  }
  return url;
}

export const STATE_OPTION_HELP =
  'share rate-limit counters and approvals with other replicas in Redis, redis://host:port[/db] (default: counters in this process, approvals in the store; the audit always stays in the store)';

/** An HTTP gateway that could not start: policy and state errors keep their own exit codes. */
function startError(e: unknown, store: StoreLocation): Error {
  if (e instanceof PolicyLoadError || e instanceof PolicyStateUnavailableError) return e;
  if (e instanceof ListenRefusedError) return new UserError(e.message, EXIT.REFUSED);
  const unusable = policyStoreError(e, store);
  if (unusable) return unusable;
  const errno = (e as NodeJS.ErrnoException).code;
  return new UserError((e as Error).message, errno === 'EADDRINUSE' || errno === 'EADDRNOTAVAIL' || errno === 'EACCES' ? EXIT.IO : EXIT.USAGE);
}

const untilSignal = () =>
  new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });

export function register(program: Command): void {
  program
    .command('gateway')
    .description(
      'Enforce a policy on every MCP tool call in front of any MCP server.\n' +
        '  stdio:  egress-triage gateway --policy FILE -- <command> [args...]\n' +
        '  HTTP:   egress-triage gateway --policy FILE --upstream URL [--listen 127.0.0.1:PORT]\n' +
        '  many:   egress-triage gateway --config gateway.yaml [--listen 127.0.0.1:PORT]   (each upstream at /s/{name}/mcp)',
    )
    .option('--policy <file>', 'policy file (YAML or JSON); reloaded when it changes')
    .option('--config <file>', 'gateway config registering several upstreams, each with its own policy (see docs/policy.md)')
    .option('--db <path>', 'the store of approvals and audit: a SQLite path or postgres://... URL (default: $EGRESS_TRIAGE_DB or ./.egress-triage/egress.db)')
    .option('--audit-file <path>', 'JSONL audit file (default: policy-audit.jsonl next to the DB)')
    .option('--upstream <url>', 'Streamable HTTP upstream MCP endpoint')
    .option('--listen <host:port>', 'where the HTTP gateway listens', '127.0.0.1:8787')
    .option('--grants <file>', 'bearer tokens mapping to identities (and optional per-identity policies)')
    .option('--allowed-host <name>', 'HTTP: host name clients may use in Host/Origin besides loopback names and the listen address (repeatable)', collect, [])
    .option('--upstream-header <header>', 'header sent to the upstream, "Name: value" (repeatable)', collect, [])
    .option('--upstream-token-env <var>', 'send "Authorization: Bearer $VAR" to the upstream')
    .option('--identity <name>', 'stdio mode: identity for the "client" scope and the audit log')
    .option('--session-id <id>', 'stdio mode: stable session key, so approvals filed before a restart still bind')
    .option('--state <url>', STATE_OPTION_HELP)
    .option('--max-message-bytes <size>', 'stdio mode: largest JSON-RPC message in either direction, e.g. 16MiB (env EGRESS_TRIAGE_MAX_MESSAGE_BYTES; default 16MiB)')
    .option('--upstream-revision <rev>', 'stdio mode: the protocol revision the child speaks, 2025-11-25, 2026-07-28 or auto (default auto: found out on the first request, translated when it differs from the agent\'s)')
    .argument('[command...]', 'stdio upstream command after "--"')
    .action(async (command: string[], opts: GatewayOpts) => {
      // the store of the policy state: a SQLite path, or a postgres:// URL kept as it is
      const store = storeLocation(opts.db);
      const dbPath = store.target;
      const auditFile = opts.auditFile;
      const stateUrl = parseStateOption(opts.state);
      try {
        if (opts.config) {
          if (opts.policy || opts.upstream || command.length) throw new UserError('--config registers the upstreams and their policies: give no --policy, --upstream or command with it');
          let config;
          try {
            config = loadGatewayConfig(opts.config);
          } catch (e) {
            // as --policy: an invalid file is rejected input (exit 1), one that cannot be read is not found or I/O
            throw new UserError((e as Error).message, fileExit(e instanceof GatewayConfigError ? e.readErrno : undefined, EXIT.REJECTED));
          }
          const { host, port } = parseListen(opts.listen ?? '127.0.0.1:8787');
          const grants = await loadGrantsOption(opts.grants);
          let gw;
          try {
            gw = await startHttp({ upstreams: config.upstreams, dbPath, auditFile, stateUrl, host, port, grants, allowedHosts: opts.allowedHost });
          } catch (e) {
            throw startError(e, store);
          }
          for (const u of config.upstreams) process.stderr.write(`egress-triage gateway: listening on ${gw.urlFor(u.name)} -> ${u.url ?? u.command!.join(' ')}\n`);
          await untilSignal();
          await gw.close();
          return;
        }
        if (!opts.policy) throw new UserError('give --policy FILE (or --config FILE for several upstreams)');
        if (opts.upstream) {
          if (command.length) throw new UserError('give either --upstream URL or "-- <command>", not both');
          if (opts.upstreamRevision !== undefined) throw new UserError('--upstream-revision is for a stdio upstream ("-- <command>")');
          // as a --config file's url: http(s) only (javascript: or ftp:// started a gateway that could only fail)
          if (!URL.canParse(opts.upstream) || !/^https?:$/.test(new URL(opts.upstream).protocol)) {
            throw new UserError(`--upstream: "${opts.upstream}" is not an http:// or https:// URL of an MCP endpoint`);
          }
          const { host, port } = parseListen(opts.listen ?? '127.0.0.1:8787');
          const grants = await loadGrantsOption(opts.grants);
          const headers: Record<string, string> = Object.fromEntries(opts.upstreamHeader.map(parseHeader));
          if (opts.upstreamTokenEnv) {
            const t = process.env[opts.upstreamTokenEnv];
            if (!t) throw new UserError(`--upstream-token-env: ${opts.upstreamTokenEnv} is not set`);
            headers.Authorization = `Bearer ${t}`;
          }
          let gw;
          try {
            gw = await startHttp({ policyPath: opts.policy, dbPath, auditFile, stateUrl, upstreamUrl: opts.upstream, host, port, grants, allowedHosts: opts.allowedHost, upstreamHeaders: headers });
          } catch (e) {
            throw startError(e, store);
          }
          process.stderr.write(`egress-triage gateway: listening on ${gw.url} -> ${opts.upstream}\n`);
          await untilSignal();
          await gw.close();
          return;
        }
        if (command.length === 0) throw new UserError('give an upstream: --upstream URL or "-- <command> [args...]"');
        const upstreamRevision = parseUpstreamRevision(opts.upstreamRevision);
        let maxMessageBytes: number;
        try {
          maxMessageBytes = resolveMaxMessageBytes(opts.maxMessageBytes);
        } catch (e) {
          throw new UserError((e as Error).message);
        }
        const { runStdioGateway } = await import('../../gateway/stdio.js');
        const code = await runStdioGateway({
          policyPath: opts.policy!,
          dbPath,
          auditFile,
          stateUrl,
          command: command[0]!,
          args: command.slice(1),
          identity: opts.identity,
          sessionId: opts.sessionId,
          maxMessageBytes,
          upstreamRevision,
        });
        process.exitCode = code;
      } catch (e) {
        if (e instanceof PolicyLoadError) throw new UserError(e.message, policyFileExit(e));
        if (e instanceof PolicyStateUnavailableError) throw new UserError(`${e.flag}: ${e.message}`, EXIT.IO);
        const unusable = policyStoreError(e, store);
        if (unusable) throw unusable;
        const err = e as NodeJS.ErrnoException;
        if (typeof err.syscall === 'string' && err.syscall.startsWith('spawn')) {
          throw new UserError(`cannot start the upstream command "${command[0]}": ${err.code ?? err.message}`, err.code === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.IO);
        }
        throw e;
      }
    });
}
