/**
 * The media headers every MCP POST must carry, checked by the HTTP layer (src/http/mcp-listener.ts)
 * for both protocol revisions, in `serve` and in the `gateway`.
 *
 * Streamable HTTP (2025-11-25 and 2026-07-28 alike) says the client MUST send `Accept` listing both
 * `application/json` and `text/event-stream`, and its body is JSON. The SDK's session transport
 * enforces both for 2025-11-25 (406 and 415, JSON-RPC code -32000); its stateless 2026-07-28 handler
 * checks only Content-Type, and leaves that to any composition that serves the revision itself, as
 * the gateway and `serve --policy` do. Checked here, once, the two revisions get the same answers:
 * - a body not declared `application/json` could come from a browser form, which a page may send to
 *   a local server without a CORS preflight;
 * - a client that cannot take both may be unable to read the answer it gets: any request's answer
 *   turns into an SSE stream as soon as progress or an approval question comes first.
 * Wildcards (`*\/*`) are not taken for either type, as the SDK's transport does not take them.
 */
import { isJsonContentType } from '@modelcontextprotocol/server';

export interface MediaRefusal {
  status: 406 | 415;
  message: string;
}

/** The SDK session transport's own messages, so a refusal reads the same on both revisions. */
export const NOT_ACCEPTABLE = 'Not Acceptable: Client must accept both application/json and text/event-stream';
export const UNSUPPORTED_MEDIA_TYPE = 'Unsupported Media Type: Content-Type must be application/json';

type Headers = Record<string, string | string[] | undefined>;

/** The media types an Accept header accepts: lower-cased, parameters dropped, `q=0` entries left out. */
export function acceptedTypes(accept: string | string[] | undefined): Set<string> {
  const out = new Set<string>();
  for (const range of (Array.isArray(accept) ? accept.join(',') : (accept ?? '')).split(',')) {
    const [type, ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    if (!type) continue;
    // q=0 means "not acceptable" (RFC 9110 12.4.2): listing a type that way does not accept it.
    const q = params.find((p) => p.startsWith('q='));
    if (q !== undefined && !(Number(q.slice(2)) > 0)) continue;
    out.add(type);
  }
  return out;
}

/** Why this POST's media headers are refused (Accept first, as the SDK's transport orders them), or undefined. */
export function mediaRefusal(headers: Headers): MediaRefusal | undefined {
  const accepted = acceptedTypes(headers.accept);
  if (!accepted.has('application/json') || !accepted.has('text/event-stream')) return { status: 406, message: NOT_ACCEPTABLE };
  const type = headers['content-type'];
  if (typeof type !== 'string' || !isJsonContentType(type)) return { status: 415, message: UNSUPPORTED_MEDIA_TYPE };
  return undefined;
}
