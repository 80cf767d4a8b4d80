/**
 * The one size limit for a single JSON-RPC message, the same in every direction: what an agent may send,
 * what an upstream may answer, and what plain `egress-triage mcp` reads on stdio. Exported so the HTTP
 * body limits can use the same setting.
 *
 * Set with `--max-message-bytes` (gateway, mcp) or EGRESS_TRIAGE_MAX_MESSAGE_BYTES; the option wins.
 */

/** 16 MiB: room for a large tool result, small enough that one message cannot exhaust memory. */
export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const MAX_MESSAGE_BYTES_ENV = 'EGRESS_TRIAGE_MAX_MESSAGE_BYTES';

const MIN = 1024;
const MAX = 1024 * 1024 * 1024;
const UNITS: Record<string, number> = { '': 1, k: 1024, kib: 1024, m: 1024 * 1024, mib: 1024 * 1024 };

/** Parses "1048576", "512KiB", "16MiB" (binary units). Throws an Error naming `where` on bad input. */
export function parseMessageBytes(text: string, where: string): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`${where}: "${text}" is not a size (use bytes, or a number with KiB or MiB)`);
  const n = Number(m[1]) * unit;
  if (!Number.isSafeInteger(n) || n < MIN || n > MAX) throw new Error(`${where}: ${text} is out of range (${MIN} bytes to 1 GiB)`);
  return n;
}

/** The limit in force: the CLI option, else the environment variable, else the default. */
export function resolveMaxMessageBytes(option: string | undefined, env: NodeJS.ProcessEnv = process.env): number {
  if (option !== undefined) return parseMessageBytes(option, '--max-message-bytes');
  const v = env[MAX_MESSAGE_BYTES_ENV];
  if (v !== undefined && v !== '') return parseMessageBytes(v, MAX_MESSAGE_BYTES_ENV);
  return DEFAULT_MAX_MESSAGE_BYTES;
}
