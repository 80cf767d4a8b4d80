import { isLoopbackIp } from '../domain/ip.js';

/** "127.0.0.1:8787", "[::1]:0", "localhost:8787", ":8787", "8787" -> host and port (default host 127.0.0.1). */
export function parseListen(value: string): { host: string; port: number } {
  const v = value.trim();
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d+)$/.exec(v) ?? /^()()(\d+)$/.exec(v);
  if (!m) throw new Error(`--listen "${value}": use host:port, e.g. 127.0.0.1:8787 (port 0 picks a free port)`);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`--listen "${value}": port must be 0-65535`);
  return { host: m[1] || m[2] || '127.0.0.1', port };
}

/** True only for addresses no other machine can reach: 127.0.0.0/8, ::1 (also IPv4-mapped) and "localhost". */
export function isLoopbackAddress(host: string): boolean {
  const h = host.replace(/^\[(.*)\]$/, '$1');
  if (h.toLowerCase() === 'localhost') return true;
  return isLoopbackIp(h);
}

/** Thrown when a server would listen where it must not; the CLI reports it as a safety refusal. */
export class ListenRefusedError extends Error {
  override readonly name = 'ListenRefusedError';
}

export type ListenDecision = { ok: true; authenticated: boolean } | { ok: false; message: string };

/**
 * May a server bind `host`? Loopback is always allowed. Any other address (0.0.0.0 included) is
 * reachable from other machines, so it needs bearer grants: without them anyone who can reach the
 * port could run write tools.
 */
export function listenDecision(host: string, grantCount: number): ListenDecision {
  if (grantCount > 0) return { ok: true, authenticated: true };
  if (isLoopbackAddress(host)) return { ok: true, authenticated: false };
  return {
    ok: false,
    message: `refusing to listen on non-loopback address ${host} without bearer tokens: give --grants FILE (see docs/policy.md, "HTTP identity"), or listen on 127.0.0.1`,
  };
}
