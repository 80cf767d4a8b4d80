import type { Transport } from '@modelcontextprotocol/server';
import { serveStdio, type StdioServerHandle } from '@modelcontextprotocol/server/stdio';
import { LineStdioServerTransport } from '../gateway/stdio-transport.js';
import { createEgressTriageServer, type EgressTriageServerOptions } from './server.js';
import type { InProcessGateway } from '../gateway/in-process.js';

export interface PolicyOptions {
  /** policy file (YAML/JSON); an invalid file refuses to start */
  policyPath: string;
  /** state DB for approvals, counters and audit (the store file is fine: separate tables) */
  dbPath: string;
  auditFile?: string | false;
  identity?: string;
  /** shared policy state, redis://host:port[/db]; without it, the store at dbPath */
  stateUrl?: string;
}

export interface StdioHandle {
  /** resolves when the client closes stdin or close() is called */
  closed: Promise<void>;
  close(): Promise<void>;
}

const log = (l: string) => process.stderr.write(`egress-triage mcp: ${l}\n`);

/**
 * Serves MCP over stdio. stdout carries nothing but JSON-RPC; every log line goes to stderr.
 * With `policy`, every tools/call passes the in-process policy gateway first.
 */
export async function runStdioServer(
  opts: EgressTriageServerOptions & { policy?: PolicyOptions; /** see src/mcp/message-limit.ts */ maxMessageBytes?: number },
): Promise<StdioHandle> {
  // serveStdio serves both protocol revisions on one connection: an `initialize` opening pins a
  // 2025-11-25 server, an enveloped request (or server/discover) a 2026-07-28 one. It builds the
  // server from this factory once the opening message has said which.
  // Under a policy, the servers read the policy in force from the gateway's runtime (a hot reload may
  // hide tools, and the gateway then sends list_changed). A tool runs only for a message the gateway
  // forwarded, so `gw` is set by then.
  let gw: InProcessGateway | undefined;
  const toolPolicy = opts.policy
    ? () => {
        if (!gw) throw new Error('the policy gateway has not started');
        return gw.runtime.holder.current.engine;
      }
    : undefined;
  const factory = () => createEgressTriageServer({ ...opts, toolPolicy });
  const onerror = (e: Error) => log(`protocol error: ${e.message}`);
  let resolveClosed!: () => void;
  const closed = new Promise<void>((r) => (resolveClosed = r));
  let close: () => Promise<void>;
  if (opts.policy) {
    const { createPolicyGatewayForServer } = await import('../gateway/in-process.js');
    const transport = new LineStdioServerTransport(process.stdin, process.stdout, { maxMessageBytes: opts.maxMessageBytes });
    let served: StdioServerHandle | undefined;
    gw = await createPolicyGatewayForServer({
      policyPath: opts.policy.policyPath,
      dbPath: opts.policy.dbPath,
      auditFile: opts.policy.auditFile,
      stateUrl: opts.policy.stateUrl,
      identity: opts.policy.identity,
      tenant: opts.tenant,
      // the server side of the gateway's in-memory pair
      server: {
        connect: async (serverSide) => {
          served = serveStdio(factory, { transport: serverSide as unknown as Transport, onerror });
        },
      },
      clientTransport: transport,
    });
    // The proxy owns the transport callbacks; watch stdin directly for the end of the session.
    process.stdin.once('end', () => resolveClosed());
    const started = gw;
    close = async () => {
      await started.close();
      await served?.close();
      resolveClosed();
    };
    log(`serving tenant "${opts.tenant}" over stdio with policy ${opts.policy.policyPath}`);
  } else {
    // Our own reader rather than the SDK's StdioServerTransport: ours caps each message at the one
    // limit shared with the gateway and answers an oversize or invalid line instead of dropping it.
    const transport = new LineStdioServerTransport(process.stdin, process.stdout, { maxMessageBytes: opts.maxMessageBytes, validate: true });
    const served = serveStdio(factory, { transport: transport as unknown as Transport, onerror });
    process.stdin.once('end', () => resolveClosed());
    close = async () => {
      await served.close();
      resolveClosed();
    };
    log(`serving tenant "${opts.tenant}" over stdio`);
  }
  return { closed, close };
}
