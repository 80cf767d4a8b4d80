/**
 * What the audit says about a refused message, for every place that refuses one: the policy proxy, the
 * stdio reader (through the proxy) and the HTTP gateway's own refusals. One labelling, so a refusal
 * reads the same in the audit whichever layer answered it.
 */

import { clip } from '../domain/clip.js';
import { auditedToolName } from '../policy/canonical.js';

/** Method and tool names are quoted in the audit up to this length. */
const NAME_CLIP = 200;

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface RefusalSubject {
  /** the tool a `tools/call` names, else `method:<name>`, `<batch>` or `<invalid message>` */
  tool: string;
  /** the arguments of a `tools/call` (hashed in the record), else empty */
  args: Record<string, unknown>;
  reason: string;
}

/**
 * The subject of a refused message. `method` is the caller's reading of it (for an oversize line, the
 * method recovered from its head). A batch is one refusal: what its members asked for, methods and
 * tool names but never arguments, is added to the reason.
 */
export function refusalSubject(m: unknown, method: string | undefined, reason: string): RefusalSubject {
  if (Array.isArray(m)) return { tool: '<batch>', args: {}, reason: `${reason} ${batchSummary(m)}` };
  const p = isObj(m) ? m.params : undefined;
  // a name past the longest a call may give is recorded by its head and length, as the policy path does
  if (method === 'tools/call' && isObj(p) && typeof p.name === 'string') return { tool: auditedToolName(p.name), args: isObj(p.arguments) ? p.arguments : {}, reason };
  return { tool: method === undefined ? '<invalid message>' : `method:${clip(method, NAME_CLIP)}`, args: {}, reason };
}

/** What a refused batch asked for, e.g. `(2 messages: tools/call "delete_repo", ping)`: the first ten. */
function batchSummary(members: unknown[]): string {
  const what = members.slice(0, 10).map((x) => {
    if (!isObj(x) || typeof x.method !== 'string') return isObj(x) && ('result' in x || 'error' in x) ? 'a response' : 'not a message';
    const p = x.params;
    return x.method === 'tools/call' && isObj(p) && typeof p.name === 'string' ? `tools/call ${JSON.stringify(clip(p.name, NAME_CLIP))}` : clip(x.method, NAME_CLIP);
  });
  return `(${members.length} message${members.length === 1 ? '' : 's'}${what.length ? `: ${what.join(', ')}` : ''}${members.length > 10 ? ', …' : ''})`;
}
