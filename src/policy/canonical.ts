import { createHmac } from 'node:crypto';
import { clip } from '../domain/clip.js';

/**
 * The most a tool call may nest its arguments, and the longest tool name it may give. Far beyond
 * what a tool takes (MCP names tools in 1-128 characters), far below what breaks the audit: a call
 * whose arguments nested 4,300 objects deep was hashed and decided, then could not be written as JSON
 * (JSON.stringify runs out of stack near 4,100), so its record vanished; arrays 2,100 deep broke the
 * hash. A name as long as a message (16 MiB) filled the policy's name cache and the audit table.
 */
export const MAX_ARGS_DEPTH = 256;
export const MAX_TOOL_NAME_LENGTH = 256;

/** A tool name as the audit records it: whole up to MAX_TOOL_NAME_LENGTH, else its head and its length. */
export function auditedToolName(name: string): string {
  return name.length <= MAX_TOOL_NAME_LENGTH ? name : `${clip(name, 64)} (${name.length} characters)`;
}

/** True when `value` nests objects or arrays deeper than `max` levels. Iterative: any depth is safe to ask about. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, depth] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (depth > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v as Record<string, unknown>)) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** JSON with object keys sorted at every level, so equal arguments always hash the same. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v === undefined ? null : v)).join(',')}]`;
  const keys = Object.keys(value as Record<string, unknown>).sort();
  const parts: string[] = [];
  for (const k of keys) {
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) continue;
    parts.push(`${JSON.stringify(k)}:${canonicalJson(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/**
 * Keyed hash of a tool's arguments. A plain SHA-256 of small values ("yes", a 6-digit code) is
 * reversible by brute force; a per-install secret key makes the audit log useless for that.
 */
export function hashArgs(key: Buffer, args: unknown): string {
  return createHmac('sha256', key).update(canonicalJson(args ?? {})).digest('hex').slice(0, 32);
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return canonicalJson(a) === canonicalJson(b);
}
