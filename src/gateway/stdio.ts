import { randomUUID } from 'node:crypto';
import { userInfo } from 'node:os';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { LineStdioServerTransport } from './stdio-transport.js';
import { PolicyProxy } from './proxy.js';
import { createPolicyRuntime } from './runtime.js';

export interface StdioGatewayOptions {
  policyPath: string;
  dbPath: string;
  auditFile?: string | false;
  command: string;
  args: string[];
  /** "client" rate-limit scope key and audit identity; default `local:<os user>`. */
  identity?: string;
  /**
   * Session key for "session" scope and approval binding. Random per run by default; set it to let an
   * agent restarted with the same value pick up approvals filed before a gateway restart.
   */
  sessionId?: string;
  input?: NodeJS.ReadableStream;
  output?: NodeJS.WritableStream;
}

/** Runs one stdio session: our stdin/stdout <-> policy <-> a spawned child. Resolves with an exit code. */
export async function runStdioGateway(o: StdioGatewayOptions): Promise<number> {
  const runtime = createPolicyRuntime({ policyPath: o.policyPath, dbPath: o.dbPath, auditFile: o.auditFile });
  const session = o.sessionId ?? `stdio-${randomUUID()}`;
  let identity = o.identity;
  if (!identity) {
    try {
      identity = `local:${userInfo().username}`;
    } catch {
      identity = 'local';
    }
  }
  const upstream = new StdioClientTransport({
    command: o.command,
    args: o.args,
    // A transparent wrapper: the server sees the environment it would see without us.
    env: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string')),
    stderr: 'inherit',
  });
  const downstream = new LineStdioServerTransport(
    (o.input ?? process.stdin) as import('node:stream').Readable,
    (o.output ?? process.stdout) as import('node:stream').Writable,
  );
  let closedBy: 'upstream' | 'downstream' | undefined;
  return new Promise<number>((resolve, reject) => {
    const proxy = new PolicyProxy({
      downstream,
      upstream,
      holder: runtime.holder,
      state: runtime.state,
      session: () => session,
      identity: identity!,
      log: (l) => process.stderr.write(`egress-triage gateway: ${l}\n`),
      onClose: () => {
        runtime.close();
        resolve(closedBy === 'upstream' ? 1 : 0);
      },
    });
    proxy.start().then(
      () => {
        // Remember which side ended the session for the exit code.
        const up = upstream.onclose;
        upstream.onclose = () => {
          closedBy ??= 'upstream';
          up?.();
        };
        const down = downstream.onclose;
        downstream.onclose = () => {
          closedBy ??= 'downstream';
          down?.();
        };
      },
      (e) => {
        runtime.close();
        reject(e);
      },
    );
  });
}
