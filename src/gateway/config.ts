/**
 * The multi-upstream gateway's config file (`egress-triage gateway --config gateway.yaml`):
 *
 *   upstreams:
 *     - name: triage                 # [a-z0-9-]+, served at /s/triage/mcp
 *       command: [node, dist/bundle/cli/main.js, mcp, --db, demo.db]   # a stdio upstream, or:
 *       # url: http://127.0.0.1:9000/mcp   with optional headers: {Authorization: "Bearer ..."}
 *       policy: policies/triage.yaml
 *
 * Relative `policy` paths are resolved against the config file's folder, so the file works from
 * anywhere. Every problem is reported as `file:line: where: what` (the CLI exits 1).
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { readErrno, readErrorText } from '../config/read-error.js';

export interface UpstreamConfig {
  name: string;
  /** stdio upstream: the command and its arguments */
  command?: string[];
  /** Streamable HTTP upstream */
  url?: string;
  /** headers sent to a URL upstream (its credentials; the agent's never pass) */
  headers?: Record<string, string>;
  /** absolute path of this upstream's policy file */
  policy: string;
}

export interface GatewayConfig {
  path: string;
  upstreams: UpstreamConfig[];
}

export class GatewayConfigError extends Error {
  /** the errno of a file that could not be read (absent: it was read, and is invalid) */
  constructor(
    message: string,
    readonly readErrno?: string,
  ) {
    super(message);
  }
}

const NAME = /^[a-z0-9](?:[a-z0-9-]{0,62})$/;

const upstreamSchema = z
  .strictObject({
    name: z.string().regex(NAME, 'use lower-case letters, digits and "-" (at most 63), e.g. "triage"; it becomes the path /s/<name>/mcp'),
    command: z.array(z.string().min(1)).min(1, 'give the program and its arguments, e.g. [node, server.js]').optional(),
    url: z
      .string()
      .url()
      // zod runs this even when .url() failed: URL.canParse first, or `new URL` throws past the schema
      .refine((u) => URL.canParse(u) && /^https?:$/.test(new URL(u).protocol), 'must be an http:// or https:// URL')
      .optional(),
    headers: z.record(z.string(), z.string()).optional(),
    policy: z.string().min(1),
  })
  .refine((u) => (u.command === undefined) !== (u.url === undefined), { message: 'give exactly one of command (stdio) or url (Streamable HTTP)' })
  .refine((u) => u.headers === undefined || u.url !== undefined, { message: 'headers apply to a url upstream only', path: ['headers'] });

const fileSchema = z.strictObject({ upstreams: z.array(upstreamSchema).min(1, 'register at least one upstream') });

/** Reads and checks a gateway config file; throws GatewayConfigError naming file and line. */
export function loadGatewayConfig(path: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new GatewayConfigError(`${path}: cannot read the gateway config: ${readErrorText(e)}`, readErrno(e));
  }
  return parseGatewayConfig(text, path);
}

export function parseGatewayConfig(text: string, path: string): GatewayConfig {
  const lc = new LineCounter();
  // prettyErrors off: the message is the flaw alone; its place is said once, as file:line:col
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new GatewayConfigError(`${path}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`);
  }
  const lineOf = (p: readonly PropertyKey[]): string => {
    // The deepest node that exists on the path carries the line (a missing key: its parent's).
    for (let n = p.length; n >= 0; n--) {
      const node = (n === 0 ? doc.contents : doc.getIn(p.slice(0, n) as (string | number)[], true)) as { range?: [number, number, number] } | null | undefined;
      if (node?.range) return `:${lc.linePos(node.range[0]).line}`;
    }
    return '';
  };
  const where = (p: readonly PropertyKey[]) => p.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('') || '(top level)';
  const parsed = fileSchema.safeParse(doc.toJS() ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new GatewayConfigError(`${path}${lineOf(issue.path)}: ${where(issue.path)}: ${issue.message}`);
  }
  const seen = new Set<string>();
  const base = dirname(resolve(path));
  const upstreams = parsed.data.upstreams.map((u, i): UpstreamConfig => {
    if (seen.has(u.name)) throw new GatewayConfigError(`${path}${lineOf(['upstreams', i, 'name'])}: upstreams[${i}].name: "${u.name}" is registered twice`);
    seen.add(u.name);
    return { name: u.name, command: u.command, url: u.url, headers: u.headers, policy: resolve(base, u.policy) };
  });
  return { path, upstreams };
}
