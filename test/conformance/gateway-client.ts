/**
 * The client under test of the official conformance CLIENT scenarios: the policy gateway's upstream side.
 *
 * The conformance CLI runs `<this> <scenario-server-url>` once per scenario, with MCP_CONFORMANCE_SCENARIO,
 * MCP_CONFORMANCE_PROTOCOL_VERSION (the revision's wire) and, for some scenarios, MCP_CONFORMANCE_CONTEXT
 * (JSON). This driver starts the real gateway (`node dist/bundle/cli/main.js gateway --upstream <url>`, a child
 * process) with a policy that allows every tool and forwards every method a scenario needs, then an SDK v2
 * client connects to the gateway at the scenario's revision and does what the scenario asks of an agent
 * (list, call, answer a question). Every request the scenario server sees therefore comes from the
 * gateway: its era probe, its session, its headers, its relaying of questions and answers.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
// Small modules only: this runs once per scenario, dozens at a time (built-cli.ts says why).
import { CLI, kill } from '../helpers/built-cli.js';
import { TRANSPARENT_POLICY } from './transparent-policy.js';

type Json = Record<string, unknown>;
interface ToolCall {
  name: string;
  arguments: Json;
}

const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? '';
const revision = process.env.MCP_CONFORMANCE_PROTOCOL_VERSION ?? '2025-11-25';
const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? '{}') as { toolCalls?: ToolCall[] };

const started = Date.now();
const log = (line: string) => process.stderr.write(`gateway-client: +${Date.now() - started}ms ${line}\n`);

/**
 * The CLI starts every scenario of a revision at once. On a small machine a few dozen gateways and agents
 * starting together starve each other past the SDKs' request timeouts, so at most SLOTS of these drivers run
 * their gateway at a time: each holds a file `<n>` (its pid inside) in the folder the runner names in
 * EGRESS_TRIAGE_CONFORMANCE_SLOTS. A slot whose holder has died is taken over. Without the variable, no limit.
 */
const SLOTS = 4;

function holderAlive(file: string): boolean {
  try {
    process.kill(Number(readFileSync(file, 'utf8')), 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function takeSlot(): Promise<() => void> {
  const dir = process.env.EGRESS_TRIAGE_CONFORMANCE_SLOTS;
  if (!dir) return () => undefined;
  for (;;) {
    for (let n = 0; n < SLOTS; n++) {
      const file = join(dir, String(n));
      try {
        writeFileSync(file, String(process.pid), { flag: 'wx' });
        return () => unlinkSync(file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        if (!holderAlive(file)) unlinkSync(file);
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Starts the built gateway in front of `upstream`; resolves with its MCP endpoint once it listens. */
function startGateway(upstream: string, dir: string): Promise<{ url: string; child: ChildProcess }> {
  const policy = join(dir, 'policy.yaml');
  writeFileSync(policy, TRANSPARENT_POLICY);
  const args = [CLI, 'gateway', '--policy', policy, '--db', join(dir, 'gateway.db'), '--upstream', upstream, '--listen', '127.0.0.1:0'];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const on = (d: Buffer) => {
      // The gateway's own log goes to this process's stderr, which the CLI keeps as stderr.txt.
      process.stderr.write(d);
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1]!, child });
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => reject(new Error(`the gateway exited ${code} before listening:\n${out}`)));
  });
}

/**
 * Answers every question with "accept": a boolean without a default becomes true, every other field is
 * left out so the client's SEP-1034 defaults fill it in.
 */
function acceptAnswer(params: { requestedSchema?: { properties?: Record<string, { type?: string; default?: unknown }> } }): Json {
  const content: Json = {};
  for (const [key, field] of Object.entries(params.requestedSchema?.properties ?? {})) {
    if (field.type === 'boolean' && field.default === undefined) content[key] = true;
  }
  return { action: 'accept', content };
}

/** A value of each required parameter's type, for calling a tool the scenario gives no arguments for. */
function sampleArguments(tool: { inputSchema: unknown }): Json {
  const schema = tool.inputSchema as { properties?: Record<string, { type?: string } | null>; required?: string[] };
  const args: Json = {};
  const sample: Record<string, unknown> = { string: 'us-west1', number: 2, integer: 3, boolean: true, object: {}, array: [], null: null };
  for (const key of schema.required ?? []) args[key] = sample[schema.properties?.[key]?.type ?? 'string'] ?? 'x';
  return args;
}

/**
 * Per-request bound of the agent. The CLI runs every scenario of a revision at once, each with its own agent
 * and gateway process, so on a loaded machine one answer can take longer than the SDK's 60 s default; the
 * scenario's own timeout (runner.ts) still bounds the whole run.
 */
const SLOW = { timeout: 240_000 };

async function act(client: Client): Promise<void> {
  const { tools } = await client.listTools(undefined, SLOW);
  log(`tools: ${tools.map((t) => t.name).join(', ') || '(none)'}`);
  switch (scenario) {
    case 'json-schema-ref-no-deref':
    case 'request-metadata':
      return; // listing is the whole scenario
    case 'json-schema-2020-12-preservation': {
      // Echo back the schema as the gateway relayed it: the scenario diffs it against what it served.
      const focal = tools.find((t) => t.name === 'json_schema_2020_12_tool');
      if (!focal) throw new Error('json_schema_2020_12_tool is not listed');
      await client.callTool({ name: 'json_schema_echo', arguments: { schema: focal.inputSchema as Json } }, SLOW);
      return;
    }
    case 'sep-2322-client-request-state':
      // The SDK answers each input_required round through the elicitation handler and retries.
      for (const name of ['test_mrtr_echo_state', 'test_mrtr_unrelated', 'test_mrtr_no_state', 'test_mrtr_no_result_type']) {
        await client.callTool({ name, arguments: {} }, SLOW);
      }
      return;
    case 'http-custom-headers':
      for (const call of context.toolCalls ?? []) await client.callTool(call, SLOW);
      return;
    case 'http-standard-headers': {
      for (const t of tools) await client.callTool({ name: t.name, arguments: sampleArguments(t) }, SLOW);
      const { resources } = await client.listResources(undefined, SLOW);
      for (const r of resources) await client.readResource({ uri: r.uri }, SLOW);
      const { prompts } = await client.listPrompts(undefined, SLOW);
      for (const p of prompts) await client.getPrompt({ name: p.name }, SLOW);
      return;
    }
    case 'http-invalid-tool-headers':
    case 'elicitation-sep1034-client-defaults':
      // Every tool the client keeps is called; a conformant client keeps only the valid ones.
      for (const t of tools) await client.callTool({ name: t.name, arguments: sampleArguments(t) }, SLOW);
      return;
    default: {
      // initialize, tools_call, sse-retry and the auth scenarios: call the first tool with the suite's arguments.
      const first = tools[0];
      if (first) await client.callTool({ name: first.name, arguments: { a: 2, b: 3 } }, SLOW);
    }
  }
}

async function main(): Promise<number> {
  const upstream = process.argv[2];
  if (!upstream || !scenario) {
    log('usage: MCP_CONFORMANCE_SCENARIO=<scenario> gateway-client <scenario-server-url>');
    return 2;
  }
  const dir = mkdtempSync(join(tmpdir(), 'egress-triage-conformance-client-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  let gateway: ChildProcess | undefined;
  // The CLI ends a client that outlives its timeout with SIGTERM: the gateway must not outlive it.
  process.once('SIGTERM', () => {
    gateway?.kill('SIGTERM');
    cleanup();
    process.exit(143);
  });
  let release = () => undefined as void;
  try {
    release = await takeSlot();
    log('slot taken');
    const started = await startGateway(upstream, dir);
    gateway = started.child;
    const modern = revision === '2026-07-28';
    const client = new Client(
      { name: 'egress-triage-conformance-agent', version: '1.0.0' },
      {
        capabilities: { elicitation: { form: { applyDefaults: true } } },
        ...(modern ? { versionNegotiation: { mode: { pin: '2026-07-28' as const } } } : { supportedProtocolVersions: ['2025-11-25'] }),
      },
    );
    client.setRequestHandler('elicitation/create', async (req) => acceptAnswer(req.params as Parameters<typeof acceptAnswer>[0]) as never);
    await client.connect(new StreamableHTTPClientTransport(new URL(started.url)), SLOW);
    try {
      await act(client);
    } finally {
      log('closing the agent');
      await client.close();
    }
    // The marker test/conformance/gateway-client-target.ts looks for: every action of the scenario was done.
    log(`completed ${scenario}`);
    return 0;
  } catch (e) {
    log(`failed: ${(e as Error).stack ?? String(e)}`);
    return 1;
  } finally {
    log('stopping the gateway');
    if (gateway) await kill(gateway);
    release();
    cleanup();
    log('stopped');
  }
}

process.exitCode = await main();
