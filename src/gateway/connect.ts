import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { ToolInfo } from '../policy/init.js';
import { VERSION } from '../version.js';

export interface UpstreamSpec {
  url?: string;
  command?: string;
  args?: string[];
  headers?: Record<string, string>;
}

/**
 * Connects a plain MCP client to an upstream and lists all its tools. `listTools()` without a cursor
 * follows every page itself (a starter policy that silently misses tools would deny them without
 * saying why). The cap of 1000 pages
 * (the SDK's default is 64) stops a server whose cursor never ends, as the hand-written loop did.
 */
export async function listUpstreamTools(spec: UpstreamSpec): Promise<ToolInfo[]> {
  const client = new Client({ name: 'egress-triage-policy-init', version: VERSION }, { listMaxPages: 1000 });
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
    return (await client.listTools()).tools;
  } finally {
    await client.close();
  }
}
