/**
 * Which protocol revision an MCP POST speaks, and whether its standard headers tell the truth.
 *
 * One place for `serve` and the HTTP `gateway`: a body whose `params._meta` carries the 2026-07-28
 * envelope is "modern" (served statelessly); anything else is "legacy" (2025-11-25 sessions, which
 * begin with `initialize`). The SDK's classifyInboundRequest decides the era and compares
 * `MCP-Protocol-Version` and `Mcp-Method` with the body; it does not require the headers, nor
 * compare `Mcp-Name` with `params.name`/`params.uri` (its own handler does that later, a raw relay
 * does not get it). A gateway that routes, logs or rate-limits on the headers would be fooled by a
 * header naming one tool over a body calling another, so for modern requests this module requires
 * all three headers and refuses any disagreement with 400 / -32020 (the gateway audits every refusal,
 * this one as the attempted policy bypass it is).
 */
import { classifyInboundRequest } from '@modelcontextprotocol/server';

export const MODERN_REVISION = '2026-07-28';
/** JSON-RPC code the SDK and the spec use for "headers and body disagree". */
export const HEADER_MISMATCH_CODE = -32020;

export type PostRoute =
  | { kind: 'legacy' }
  | { kind: 'modern'; method: string; isRequest: boolean }
  | { kind: 'reject'; status: number; code: number; message: string; data?: unknown };

type Headers = Record<string, string | string[] | undefined>;

const one = (h: Headers, name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

/** The body field each method's `Mcp-Name` header mirrors (SEP-2243). */
const NAME_SOURCE: Readonly<Record<string, 'name' | 'uri' | 'taskId'>> = {
  'tools/call': 'name',
  'prompts/get': 'name',
  'resources/read': 'uri',
  'tasks/get': 'taskId',
  'tasks/update': 'taskId',
  'tasks/cancel': 'taskId',
};

/** `=?base64?...?=` carries a non-ASCII value; anything else is the value itself. Undefined: malformed. */
export function decodeMcpName(value: string): string | undefined {
  const v = value.trim();
  if (!(v.startsWith('=?base64?') && v.endsWith('?='))) return v;
  const b64 = v.slice(9, -2);
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(b64)) return undefined;
  return Buffer.from(b64, 'base64').toString('utf8');
}

const mismatch = (message: string): PostRoute => ({
  kind: 'reject',
  status: 400,
  code: HEADER_MISMATCH_CODE,
  message: `Bad Request: the request headers and body disagree: ${message}`,
});

/** Classifies one parsed POST body with its headers. Pure. */
export function classifyPost(headers: Headers, body: unknown): PostRoute {
  const pv = one(headers, 'mcp-protocol-version');
  const methodHeader = one(headers, 'mcp-method');
  const nameHeader = one(headers, 'mcp-name');
  // The per-call hot path of a 2025-11-25 session: no envelope claim in the body and no 2026 header
  // is legacy whatever else it holds (the SDK's classifier answers the same, at several times the
  // cost); malformed messages are then refused by the session, as they always were.
  if ((pv === undefined || !pv.startsWith('2026-')) && !Array.isArray(body)) {
    const params = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as { params?: unknown }).params : undefined;
    const meta = typeof params === 'object' && params !== null ? (params as { _meta?: unknown })._meta : undefined;
    if (typeof meta !== 'object' || meta === null || !('io.modelcontextprotocol/protocolVersion' in meta)) {
      if (methodHeader === undefined && nameHeader === undefined) return { kind: 'legacy' };
    }
  }
  const c = classifyInboundRequest({ httpMethod: 'POST', protocolVersionHeader: pv, mcpMethodHeader: methodHeader, mcpNameHeader: nameHeader, body });
  if (c.kind === 'legacy') return { kind: 'legacy' };
  // `data` carries what the client needs to recover, e.g. the supported versions of -32022.
  if (c.kind === 'reject') return { kind: 'reject', status: c.httpStatus, code: c.code, message: c.message, data: c.data };
  const msg = c.message as { method: string; id?: unknown; params?: Record<string, unknown> };
  const isRequest = c.messageKind === 'request';
  if (isRequest) {
    if (pv === undefined) return mismatch('the body carries a 2026-07-28 envelope but the required MCP-Protocol-Version header is absent');
    if (methodHeader === undefined) return mismatch(`the body names method ${msg.method} but the required Mcp-Method header is absent`);
    const field = Object.hasOwn(NAME_SOURCE, msg.method) ? NAME_SOURCE[msg.method] : undefined;
    const raw = field && msg.params && typeof msg.params === 'object' ? msg.params[field] : undefined;
    const bodyValue = typeof raw === 'string' ? raw : undefined;
    if (field && bodyValue !== undefined) {
      if (nameHeader === undefined) return mismatch(`the body carries params.${field}=${JSON.stringify(bodyValue)} but the required Mcp-Name header is absent`);
      const decoded = decodeMcpName(nameHeader);
      if (decoded === undefined) return mismatch('the Mcp-Name header carries an invalid Base64 value');
      if (decoded !== bodyValue) return mismatch(`the body carries params.${field}=${JSON.stringify(bodyValue)} but the Mcp-Name header names ${JSON.stringify(decoded)}`);
    }
  }
  return { kind: 'modern', method: msg.method, isRequest };
}
