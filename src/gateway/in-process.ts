/**
 * Built-in policy mode for egress-triage's own MCP server (`egress-triage mcp|serve --policy FILE`).
 *
 *   createPolicyGatewayForServer(opts: {
 *     policyPath: string;                 // YAML/JSON policy; an invalid file throws PolicyLoadError
 *     dbPath: string;                     // state DB (approvals + audit); ':memory:' allowed
 *     serverFactory?: McpServerFactory;   // builds the server; served with serveStdio, so both protocol
 *                                         // revisions (2025-11-25 and 2026-07-28) work through the gateway
 *     server?: { connect(transport: Transport): Promise<void> };  // or: an McpServer/Server, not yet connected
 *                                         // (it speaks whatever its own connect() speaks); one of the two
 *     clientTransport: Transport;         // the real agent-facing transport (stdio, or one HTTP session's)
 *     identity?: string;                  // "client" rate-limit scope + audit identity (default "local")
 *     sessionId?: string;                 // session key; default clientTransport.sessionId, else random
 *     auditFile?: string | false;         // default <dbdir>/policy-audit.jsonl
 *     stateUrl?: string;                  // redis://host:port[/db]: counters and approvals shared by replicas
 *     runtime?: PolicyRuntime;            // share one loaded policy/state across many HTTP sessions
 *     relateDownstream?: boolean;         // true for Streamable HTTP client transports (default: auto)
 *     modernSession?: ProxyOptions['modernSession'];  // "session" scope key of 2026-07-28 requests
 *     upstreamName?: string;              // written into every audit record
 *   }): Promise<{ proxy: PolicyProxy; runtime: PolicyRuntime; close(): Promise<void> }>
 *
 * The server is served on one end of an InMemoryTransport pair and the policy proxy sits between
 * the other end and `clientTransport`. Do not call `clientTransport.start()` yourself; close() closes
 * both sides and (unless a shared runtime was passed in) the policy state.
 */
import { randomUUID } from 'node:crypto';
import { InMemoryTransport, type McpServerFactory, type Transport } from '@modelcontextprotocol/server';
import { serveStdio, type StdioServerHandle } from '@modelcontextprotocol/server/stdio';
import { PolicyProxy, type ProxyOptions } from './proxy.js';
import { argReadingsFor, policyArgs } from '../mcp/tool-aliases.js';
import { createPolicyRuntime, modernSessionFor, type PolicyRuntime } from './runtime.js';

export interface InProcessGatewayOptions {
  policyPath: string;
  dbPath: string;
  serverFactory?: McpServerFactory;
  server?: { connect(transport: Transport): Promise<void> };
  clientTransport: Transport;
  identity?: string;
  sessionId?: string;
  auditFile?: string | false;
  stateUrl?: string;
  runtime?: PolicyRuntime;
  relateDownstream?: boolean;
  modernSession?: ProxyOptions['modernSession'];
  upstreamName?: string;
  /** The tenant of the server behind the gateway: its held calls are recorded as that tenant's. */
  tenant?: string;
}

export interface InProcessGateway {
  proxy: PolicyProxy;
  runtime: PolicyRuntime;
  close(): Promise<void>;
}

export async function createPolicyGatewayForServer(opts: InProcessGatewayOptions): Promise<InProcessGateway> {
  if (!opts.serverFactory === !opts.server) throw new Error('createPolicyGatewayForServer: pass exactly one of serverFactory and server');
  const ownRuntime = !opts.runtime;
  const runtime = opts.runtime ?? createPolicyRuntime({ policyPath: opts.policyPath, dbPath: opts.dbPath, auditFile: opts.auditFile, stateUrl: opts.stateUrl, tenant: opts.tenant });
  try {
    await runtime.state.ready();
  } catch (e) {
    if (ownRuntime) runtime.close();
    throw e;
  }
  const [gatewaySide, serverSide] = InMemoryTransport.createLinkedPair();
  const fallbackSession = `inproc-${randomUUID()}`;
  let closed = false;
  let served: StdioServerHandle | undefined;
  const proxy = new PolicyProxy({
    downstream: opts.clientTransport,
    upstream: gatewaySide,
    holder: runtime.holder,
    state: runtime.state,
    session: () => opts.sessionId ?? opts.clientTransport.sessionId ?? fallbackSession,
    identity: opts.identity ?? 'local',
    // Without a resolver of its own, a 2026-07-28 session is the identity plus the request's session handle, capped.
    modernSession: opts.modernSession ?? modernSessionFor(runtime, opts.identity ?? 'local', opts.tenant),
    upstreamName: opts.upstreamName,
    tenant: opts.tenant,
    // egress-triage's own prompts are fixed templates over its own tools: safe to serve unpoliced.
    passMethods: ['prompts/get'],
    // its own tools' other argument names: a condition on `args.owner` holds for `orgScope` too
    policyArgs,
    // ...and compares owner, repo, process, ... ignoring case and read as the tools read them
    argReadings: argReadingsFor,
    relateDownstream: opts.relateDownstream ?? 'handleRequest' in opts.clientTransport,
    log: (l) => process.stderr.write(`egress-triage policy: ${l}\n`),
    onClose: () => {
      if (closed) return;
      closed = true;
      void served?.close();
      if (ownRuntime) runtime.close();
    },
  });
  try {
    // serveStdio pins the era from the opening message on the pair (initialize: 2025-11-25; an
    // enveloped request or server/discover: 2026-07-28), as it does on a real stdin/stdout.
    if (opts.serverFactory) served = serveStdio(opts.serverFactory, { transport: serverSide, onerror: (e) => process.stderr.write(`egress-triage policy: server error: ${e.message}\n`) });
    else await opts.server!.connect(serverSide);
    await proxy.start();
  } catch (e) {
    if (ownRuntime) runtime.close();
    throw e;
  }
  return {
    proxy,
    runtime,
    close: () => proxy.close(),
  };
}
