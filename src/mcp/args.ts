import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { ToolInputError } from './context.js';

/**
 * Tool input schemas. Every tool's arguments are a strict object: an argument name the tool does not
 * know is refused by name (a silently dropped `detectionId` or `page` once returned the wrong
 * detections). The SDK turns the validation failure into an `isError` tool result whose text is
 * "Input validation error: Invalid arguments for tool <name>: <our messages>", the messages joined
 * with ", "; the list of valid names is therefore bracketed, so it cannot run into the next message.
 *
 * Aliases accept StepSecurity MCP's spelling of a parameter beside ours. The alias is honoured (its
 * value is moved onto the canonical name before the handler runs, so handlers only see canonical
 * names), and giving both with different values is an error naming both.
 */

type Shape = z.ZodRawShape;

/**
 * `__proto__` as an argument name (or a condition key) is refused like any unknown name, never dropped.
 * JSON.parse makes it an own key, but the SDK parses tools/call params with a zod record, which skips
 * that key (assigning it would set the prototype instead), so the call used to run as if it had not
 * been given: no schema of ours could see it. The server therefore moves every own `__proto__` key in
 * the arguments to this stand-in name before the SDK parses the request (keepProtoKeys, installed in
 * server.ts); no schema accepts it, and refusals name it as sent (sentKey). `constructor` and
 * `prototype` need nothing: they stay own keys, and strict schemas refuse them as unknown.
 */
const PROTO_STANDIN = '\u0000__proto__';

/** An argument or condition name as the agent sent it, for refusals (see PROTO_STANDIN). */
export function sentKey(key: string): string {
  return key === PROTO_STANDIN ? '__proto__' : key;
}

/**
 * Renames each own `__proto__` key in a tools/call request's arguments, at any depth, to PROTO_STANDIN,
 * in place. Call it on the message as received, before the SDK parses it; anything else is left alone.
 */
export function keepProtoKeys(message: unknown): void {
  if (!isObject(message) || message.method !== 'tools/call' || !isObject(message.params)) return;
  // iterative, and each object once: a deeply nested or (in-process) cyclic argument cannot overflow the stack
  const seen = new Set<object>();
  const todo: unknown[] = [message.params.arguments];
  while (todo.length > 0) {
    const v = todo.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (Array.isArray(v)) {
      for (const x of v) todo.push(x);
      continue;
    }
    const o = v as Record<string, unknown>;
    if (Object.prototype.hasOwnProperty.call(o, '__proto__')) {
      const value = Object.getOwnPropertyDescriptor(o, '__proto__')?.value as unknown;
      delete o['__proto__']; // deletes the own key; the prototype is untouched
      o[PROTO_STANDIN] = value;
    }
    for (const x of Object.values(o)) todo.push(x);
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * A strict object schema for `shape`. `aliases` maps each alias to its canonical field; the alias field
 * is derived from the canonical one. A canonical field that is required stays required, but may be
 * given through its alias (checked after parsing, so the JSON Schema lists neither as required).
 */
export function strictInput<S extends Shape>(shape: S, aliases: Record<string, string> = {}): z.ZodObject<S, z.core.$strict> {
  // one alias table can serve a family of tools: pairs whose canonical field this tool lacks are skipped
  const pairs = Object.entries(aliases).filter(([, canonical]) => canonical in shape);
  const full = { ...shape } as unknown as Record<string, z.ZodType>;
  const required: string[] = [];
  for (const [alias, canonical] of pairs) {
    const field = shape[canonical as keyof S] as unknown as z.ZodType;
    if (!field.safeParse(undefined).success) {
      required.push(canonical);
      full[canonical] = field.optional().describe(`${field.description ?? ''} Required: give it here or as \`${alias}\`.`.trim());
    }
    full[alias] = field.optional().describe(`Alias of \`${canonical}\` (StepSecurity MCP compatibility).`);
  }
  const valid = Object.keys(full).sort();
  const schema = z
    .strictObject(full, {
      error: (iss) =>
        iss.code === 'unrecognized_keys'
          ? `unknown argument${iss.keys.length > 1 ? 's' : ''} ${iss.keys.map((k) => `"${sentKey(k)}"`).join(', ')}: ${valid.length ? `this tool accepts only [${valid.join(', ')}]` : 'this tool takes no arguments'}`
          : undefined,
    })
    .superRefine((v, ctx) => {
      const args = v as Record<string, unknown>;
      for (const [alias, canonical] of pairs) {
        if (args[alias] !== undefined && args[canonical] !== undefined && !isDeepStrictEqual(args[alias], args[canonical])) {
          ctx.addIssue({
            code: 'custom',
            path: [alias],
            message: `"${alias}" is an alias of "${canonical}" and the two disagree (${JSON.stringify(args[alias])} vs ${JSON.stringify(args[canonical])}): pass only one of them`,
          });
        }
      }
      for (const name of required) {
        const names = [name, ...pairs.filter(([, c]) => c === name).map(([a]) => a)];
        if (names.every((n) => args[n] === undefined)) {
          ctx.addIssue({ code: 'custom', path: [name], message: `"${name}" is required (or its alias ${names.slice(1).map((n) => `"${n}"`).join(', ')})` });
        }
      }
    })
    .overwrite((v) => {
      if (pairs.length === 0) return v;
      const out = { ...(v as Record<string, unknown>) };
      for (const [alias, canonical] of pairs) {
        if (out[alias] !== undefined && out[canonical] === undefined) out[canonical] = out[alias];
        delete out[alias];
      }
      return out as typeof v;
    });
  // The handler sees the canonical shape: aliases are folded in and required fields checked above.
  return schema as unknown as z.ZodObject<S, z.core.$strict>;
}

/** StepSecurity's 1-based page number; the page size is the tool's `limit`. */
export const pageField = z
  .number()
  .int()
  .min(1)
  .max(100_000)
  .optional()
  .describe('1-based page number (StepSecurity MCP compatibility); the page size is `limit`. An alternative to `cursor`: pass one or the other.');

/**
 * Reaches page `page` of a cursor-paged query by following next_cursor from the first page. Used where
 * the store pages by cursor only; the work is bounded by page x limit rows.
 */
export async function walkToPage<R extends { next_cursor: string | null }>(page: number, fetch: (cursor: string | null) => Promise<R>): Promise<R> {
  let r = await fetch(null);
  for (let p = 2; p <= page; p++) {
    if (r.next_cursor === null) throw new ToolInputError(`page ${page} is past the end: there are ${p - 1} page(s) at this limit`);
    r = await fetch(r.next_cursor);
  }
  return r;
}
