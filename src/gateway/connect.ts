import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { ToolInfo } from '../policy/init.js';
import { VERSION } from '../version.js';

export interface UpstreamSpec {
  url?: string;
  command?: string;
  args?: string[];
  headers?: Record<string, string>;
}

/** Connects a plain MCP client to an upstream and lists all its tools, following pagination. */
export async function listUpstreamTools(spec: UpstreamSpec): Promise<ToolInfo[]> {
  const client = new Client({ name: 'egress-triage-policy-init', version: VERSION });
  const transport = spec.url
    ? new StreamableHTTPClientTransport(new URL(spec.url), { requestInit: { headers: spec.headers ?? {} } })
    : new StdioClientTransport({
        command: spec.command!,
        args: spec.args ?? [],
        env: Object.fromEntries(Object.entries(process.env).filter((e): e is [string, string] => typeof e[1] === 'string')),
        stderr: 'inherit',
      });
  await client.connect(transport);
  try {
    const tools: ToolInfo[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 1000; page++) {
      const r = await client.listTools(cursor ? { cursor } : undefined);
      tools.push(...r.tools);
      cursor = r.nextCursor;
      if (!cursor) break;
    }
    return tools;
  } finally {
    await client.close();
  }
}
