import { McpServer, type Transport } from '@modelcontextprotocol/server';
import { keepProtoKeys } from './args.js';
import type { OpenStore } from '../storage/open-store.js';
import { VERSION } from '../version.js';
import { makeContext, type ToolPolicyView } from './context.js';
import { serverInstructions } from './instructions.js';
import { CONFIRM_TTL_SECONDS, confirmStateCodec } from './request-state.js';
import { registerPrompts } from './prompts.js';
import { registerAnalysisTools } from './tools/analysis.js';
import { registerDetectionTools } from './tools/detections.js';
import { registerInventoryTools } from './tools/inventory.js';
import { registerMetaTools, SERVER_NAME } from './tools/meta.js';
import { registerRuleTools } from './tools/rules.js';

export interface EgressTriageServerOptions {
  /** the store's ports, on whichever backend (storage/open-store.ts) */
  store: OpenStore;
  tenant: string;
  /** base URL used for every dashboard_url */
  dashboardUrl: string;
  /** recorded as created_by / audit actor of rule changes (default "mcp") */
  actor?: string;
  /** extra never-suppress destination patterns from the config file (passed to analysis) */
  riskyDestinations?: string[];
  /**
   * Set when a policy gateway sits in front (`--policy`, a grant's policy): the policy in force, read
   * at each call. describe_capabilities leaves out the tools it hides and flags those it denies
   * outright, as the gateway does to tools/list and tools/call. It also declares tools.listChanged:
   * a hot reload that changes the hidden tools changes the tool list the client sees, and the gateway
   * then sends notifications/tools/list_changed. Without one, the lists are fixed for the life of the process.
   */
  toolPolicy?: () => ToolPolicyView;
}

/**
 * How long a 2026-07-28 client may reuse a tools/list or prompts/list result (`ttlMs`). The lists
 * are fixed for the life of the process, so the hint only bounds how late a client sees a new
 * version after an upgrade. 2025-11-25 results carry no hint.
 */
export const LIST_TTL_MS = 5 * 60_000;

/**
 * Our McpServer: it sees every message as the transport delivers it, before the SDK parses it (see
 * keepProtoKeys in args.ts: the parse loses what a tool's schema must refuse). Every way a server is
 * served (serveStdio, the HTTP sessions and per-request handler, the policy gateway's in-memory pair,
 * a library caller) goes through connect().
 *
 * The SDK's connect() keeps a handler already set on the transport and calls it with each message,
 * synchronously, before its own dispatch (Protocol.connect), so setting one here is enough and works
 * whatever the transport does with the property (the Node HTTP transport forwards it to an inner
 * one). test/mcp/strict-args.test.ts fails if an SDK upgrade stops calling it.
 */
class EgressTriageMcpServer extends McpServer {
  override async connect(transport: Transport): Promise<void> {
    const prior = transport.onmessage;
    transport.onmessage = (message, extra) => {
      keepProtoKeys(message);
      prior?.(message, extra);
    };
    return super.connect(transport);
  }
}

/**
 * Builds one MCP server: the factory the SDK calls per stdio connection, per 2025-11-25 HTTP session
 * and per 2026-07-28 HTTP request (an McpServer serves one of them). Stores and services are shared,
 * so building one is cheap; every tool is tenant-scoped to `opts.tenant`.
 */
export function createEgressTriageServer(opts: EgressTriageServerOptions): McpServer {
  const server = new EgressTriageMcpServer(
    { name: SERVER_NAME, title: 'egress-triage', version: VERSION },
    {
      instructions: serverInstructions(opts.toolPolicy?.()),
      // listChanged only where the list can change (the SDK would otherwise declare true): a client
      // told "it changes" keeps a 2026-07-28 subscriptions/listen stream open for nothing.
      capabilities: { tools: { listChanged: opts.toolPolicy !== undefined }, prompts: { listChanged: false } },
      // bounds the work one tools/call can ask of the validator
      maxToolInputElements: 2000,
      // 'private': a hint per client, never for a shared cache in front of several identities
      cacheHints: {
        'tools/list': { ttlMs: LIST_TTL_MS, cacheScope: 'private' },
        'prompts/list': { ttlMs: LIST_TTL_MS, cacheScope: 'private' },
      },
      // the confirmation state comes back from the client: only a state we sealed is accepted (confirm.ts)
      requestState: { verify: confirmStateCodec().verify },
      // the same human-paced window for a 2025-11-25 confirmation dialog as for a 2026-07-28 one
      inputRequired: { roundTimeoutMs: CONFIRM_TTL_SECONDS * 1000 },
    },
  );
  const ctx = makeContext(server, opts);
  registerAnalysisTools(ctx);
  registerDetectionTools(ctx);
  registerRuleTools(ctx);
  registerInventoryTools(ctx);
  registerMetaTools(ctx);
  registerPrompts(server, opts.tenant, opts.toolPolicy);
  return server;
}
