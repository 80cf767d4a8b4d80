import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { ListenRefusedError } from '../../http/listen.js';
import { PolicyLoadError } from '../../policy/load.js';
import { runStdioGateway } from '../../gateway/stdio.js';
import { startHttpGateway } from '../../gateway/http.js';
import { loadGrants, type Grant } from '../../http/grants.js';
import { parseListen as parseListenAddress } from '../../http/listen.js';
import { resolveMaxMessageBytes } from '../../mcp/message-limit.js';
import { PolicyStateUnavailableError } from '../../storage/policy-state.js';
import { checkStateUrl, resolveStoreLocation } from '../../storage/open-store.js';

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
  policy: string;
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

export function register(program: Command): void {
  program
    .command('gateway')
    .description(
      'Enforce a policy on every MCP tool call in front of any MCP server.\n' +
        '  stdio:  egress-triage gateway --policy FILE -- <command> [args...]\n' +
        '  HTTP:   egress-triage gateway --policy FILE --upstream URL [--listen 127.0.0.1:PORT]',
    )
    .requiredOption('--policy <file>', 'policy file (YAML or JSON); reloaded when it changes')
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
      const dbPath = resolveStoreLocation(opts.db).target;
      const auditFile = opts.auditFile;
      const stateUrl = parseStateOption(opts.state);
      try {
        if (opts.upstream) {
          if (command.length) throw new UserError('give either --upstream URL or "-- <command>", not both');
          if (opts.upstreamRevision !== undefined) throw new UserError('--upstream-revision is for a stdio upstream ("-- <command>")');
          const { host, port } = parseListen(opts.listen ?? '127.0.0.1:8787');
          let grants: Grant[] = [];
          if (opts.grants) {
            try {
              grants = loadGrants(opts.grants);
            } catch (e) {
              throw new UserError(`--grants ${(e as Error).message}`);
            }
          }
          const headers: Record<string, string> = Object.fromEntries(opts.upstreamHeader.map(parseHeader));
          if (opts.upstreamTokenEnv) {
            const t = process.env[opts.upstreamTokenEnv];
            if (!t) throw new UserError(`--upstream-token-env: ${opts.upstreamTokenEnv} is not set`);
            headers.Authorization = `Bearer ${t}`;
          }
          let gw;
          try {
            gw = await startHttpGateway({ policyPath: opts.policy, dbPath, auditFile, stateUrl, upstreamUrl: opts.upstream, host, port, grants, allowedHosts: opts.allowedHost, upstreamHeaders: headers });
          } catch (e) {
            if (e instanceof PolicyLoadError || e instanceof PolicyStateUnavailableError) throw e;
            if (e instanceof ListenRefusedError) throw new UserError(e.message, EXIT.REFUSED);
            const errno = (e as NodeJS.ErrnoException).code;
            throw new UserError((e as Error).message, errno === 'EADDRINUSE' || errno === 'EADDRNOTAVAIL' || errno === 'EACCES' ? EXIT.IO : EXIT.USAGE);
          }
          process.stderr.write(`egress-triage gateway: listening on ${gw.url} -> ${opts.upstream}\n`);
          await new Promise<void>((resolve) => {
            const stop = () => resolve();
            process.once('SIGINT', stop);
            process.once('SIGTERM', stop);
          });
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
        const code = await runStdioGateway({
          policyPath: opts.policy,
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
        if (e instanceof PolicyLoadError) throw new UserError(e.message, EXIT.REJECTED);
        if (e instanceof PolicyStateUnavailableError) throw new UserError(`${e.flag}: ${e.message}`, EXIT.IO);
        const err = e as NodeJS.ErrnoException;
        if (typeof err.syscall === 'string' && err.syscall.startsWith('spawn')) {
          throw new UserError(`cannot start the upstream command "${command[0]}": ${err.code ?? err.message}`, err.code === 'ENOENT' ? EXIT.NOT_FOUND : EXIT.IO);
        }
        throw e;
      }
    });
}
