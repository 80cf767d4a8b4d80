import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { OpenStore } from '../storage/open-store.js';
import { VERSION } from '../version.js';
import { makeContext } from './context.js';
import { SERVER_INSTRUCTIONS } from './instructions.js';
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
}

/**
 * Builds one MCP server (one per client session: an McpServer holds one transport). Stores and
 * services are shared; every tool is tenant-scoped to `opts.tenant`.
 */
export function createEgressTriageServer(opts: EgressTriageServerOptions): McpServer {
  const server = new McpServer(
    { name: SERVER_NAME, title: 'egress-triage', version: VERSION },
    {
      instructions: SERVER_INSTRUCTIONS,
      capabilities: { tools: {}, prompts: {} },
      // bounds the work one tools/call can ask of the validator
      maxToolInputElements: 2000,
    },
  );
  const ctx = makeContext(server, opts);
  registerAnalysisTools(ctx);
  registerDetectionTools(ctx);
  registerRuleTools(ctx);
  registerInventoryTools(ctx);
  registerMetaTools(ctx);
  registerPrompts(server, opts.tenant);
  return server;
}
