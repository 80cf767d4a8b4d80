import { z } from 'zod';
import type { CallToolResult, InputRequiredResult, McpServer, ServerContext, ToolAnnotations } from '@modelcontextprotocol/server';
import type { OpenStore } from '../storage/open-store.js';
import type { InventoryRepository } from '../storage/inventory-port.js';
import { TIME_FORMS } from '../domain/time.js';

/**
 * Everything a tool module needs. One per McpServer instance: per stdio connection, per 2025-11-25
 * HTTP session, per 2026-07-28 HTTP request. Nothing in it may be per-session state.
 */
export interface ToolContext {
  store: OpenStore;
  tenant: string;
  dashboardUrl: string;
  actor: string;
  riskyDestinations: string[];
  inventory: InventoryRepository;
  server: McpServer;
  /** the policy in force when a policy gateway sits in front (see ToolPolicyView) */
  toolPolicy?: () => ToolPolicyView;
}

/**
 * What the policy in force says about a tool, asked at call time (a hot reload swaps it). The policy
 * engine (src/policy/engine.ts) is the one owner of these answers and the gateway enforces them; the
 * server only asks, so that describe_capabilities lists what tools/list lists and flags what every call
 * would be denied.
 */
export interface ToolPolicyView {
  /** true when tools/list leaves the tool out and a call is refused */
  isHidden(tool: string): boolean;
  /** the reason when every call is denied whatever its arguments, else undefined */
  deniesEveryCall(tool: string): string | undefined;
}

/**
 * True when a plan (a prompt, the server instructions) may send the agent to `tool`: no policy, or
 * one that neither hides it nor denies every call of it.
 */
export function mayCall(policy: ToolPolicyView | undefined, tool: string): boolean {
  return !policy || (!policy.isHidden(tool) && policy.deniesEveryCall(tool) === undefined);
}

export function makeContext(
  server: McpServer,
  opts: { store: OpenStore; tenant: string; dashboardUrl: string; actor?: string; riskyDestinations?: string[]; toolPolicy?: () => ToolPolicyView },
): ToolContext {
  return {
    store: opts.store,
    tenant: opts.tenant,
    dashboardUrl: opts.dashboardUrl.replace(/\/+$/, ''),
    actor: opts.actor ?? 'mcp',
    riskyDestinations: opts.riskyDestinations ?? [],
    inventory: opts.store.inventory,
    server,
    toolPolicy: opts.toolPolicy,
  };
}

const definitions = new Map<string, object>();

/**
 * A tool's or prompt's definition (title, description, zod schemas, annotations), built on first use
 * and shared by every server of the process. A 2026-07-28 HTTP request gets a server of its own, and
 * building the zod schemas of 18 tools for each one cost about 4 ms of CPU per request; the handlers,
 * which hold the per-server context, are still bound per server. Definitions must not depend on it.
 */
export function definition<T extends object>(name: string, build: () => T): T {
  let found = definitions.get(name) as T | undefined;
  if (found === undefined) {
    found = build();
    definitions.set(name, found);
  }
  return found;
}

/** An error whose message is shown to the agent verbatim as an `isError` tool result. */
export class ToolInputError extends Error {}

/** Success: structuredContent plus a JSON text copy (for clients that ignore structured output). */
export function ok<T extends Record<string, unknown>>(data: T): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify(data) }], structuredContent: data };
}

/** Failure: an `isError` result whose text tells the agent what to change. Nothing was modified. */
export function fail(message: string): CallToolResult {
  return { content: [{ type: 'text', text: message }], isError: true };
}

export const READ_ONLY: ToolAnnotations = { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false };
export const WRITE_ADDITIVE: ToolAnnotations = { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false };
export const WRITE_DESTRUCTIVE: ToolAnnotations = { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false };

/** Known error classes (by name, so we need not import every module) become isError results. */
const USER_ERROR_NAMES = new Set(['ToolInputError', 'CursorError', 'InventoryError', 'AnalysisError', 'RuleError', 'UserError', 'FilterError']);

export function isUserError(e: unknown): e is Error {
  if (!(e instanceof Error)) return false;
  let proto: object | null = Object.getPrototypeOf(e) as object | null;
  while (proto && proto !== Error.prototype) {
    const name = (proto as { constructor?: { name?: string } }).constructor?.name;
    if (name && USER_ERROR_NAMES.has(name)) return true;
    proto = Object.getPrototypeOf(proto) as object | null;
  }
  return USER_ERROR_NAMES.has(e.name);
}

/**
 * Wraps a tool handler: user errors become isError results with their message; anything else is
 * logged to stderr and reported as an internal error without a stack trace. Never throws.
 */
export function guard<A, R extends CallToolResult | InputRequiredReturn = CallToolResult>(
  name: string,
  fn: (args: A, extra: ToolExtra) => Promise<R>,
): (args: A, extra: ToolExtra) => Promise<R | CallToolResult> {
  return async (args, extra) => {
    try {
      return await fn(args, extra);
    } catch (e) {
      if (isUserError(e)) return fail(e.message);
      process.stderr.write(`egress-triage mcp: ${name} failed: ${(e as Error)?.stack ?? String(e)}\n`);
      return fail(`${name} failed with an internal error (${(e as Error)?.message ?? String(e)}). Nothing was changed; retry, or report this if it persists.`);
    }
  };
}

/** The handler context argument of a tool callback. */
export type ToolExtra = ServerContext;

/** What a tool returns to ask the client for input first (multi-round-trip; see confirm.ts). */
export type InputRequiredReturn = InputRequiredResult;

// ----- shared zod fields -----

export const customerField = z
  .string()
  .optional()
  .describe(
    'Tenant (StepSecurity "customer") identifier. Optional: this server is bound to one tenant and uses it when omitted; passing a different tenant is an error.',
  );

/** Resolves the `customer` argument against the server's tenant. */
export function tenantOf(ctx: ToolContext, customer: string | undefined): string {
  if (customer === undefined || customer === '' || customer === ctx.tenant) return ctx.tenant;
  throw new ToolInputError(
    `unknown tenant "${customer}": this server serves tenant "${ctx.tenant}" only. Omit \`customer\` (or pass "${ctx.tenant}"); start another server with --tenant to reach a different tenant.`,
  );
}

export const timeField = (what: string) =>
  z.union([z.string(), z.number()]).optional().describe(`${what}: ${TIME_FORMS}.`);

export const cursorField = z
  .string()
  // an empty cursor is a client bug (a next_cursor lost on the way), not a request for the first page
  .min(1, 'cursor is empty: pass the next_cursor of the previous page, or omit cursor for the first page')
  .nullable()
  .optional()
  .describe('Opaque paging cursor: pass the `next_cursor` from the previous page; omit for the first page.');

export type AnyServer = McpServer;
