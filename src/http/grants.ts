import { createHash } from 'node:crypto';
import { readErrno, readErrorText } from '../config/read-error.js';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { issuePath, readYamlText } from '../config/yaml-file.js';
import { z } from 'zod';

/** A bearer token and what it grants. Only the token's SHA-256 is kept in memory. */
export interface Grant {
  identity: string;
  tokenSha256: string;
  /** Policy file for this identity instead of the gateway's default one. */
  policy?: string;
  /** May decide approvals through the HTTP approvals API. */
  admin: boolean;
  /**
   * What the holder may do in the web dashboard after signing in with the token. `read` sees every
   * page; `write` changes rules and baselines; `approve` decides held tool calls. Always includes
   * `read` unless it is empty (no dashboard access).
   */
  dashboard: DashboardPermission[];
}

export const DASHBOARD_PERMISSIONS = ['read', 'write', 'approve'] as const;
export type DashboardPermission = (typeof DASHBOARD_PERMISSIONS)[number];

/**
 * A grant's dashboard permissions. Without a `dashboard` key a token may read (it can read the same
 * data over MCP), and `admin: true` keeps meaning "decides approvals". `write` and `approve` imply
 * `read`; `dashboard: []` keeps the token out of the dashboard.
 *
 * A grant with a policy of its own (`ownPolicy`) gets no dashboard unless its `dashboard` key lists
 * it: that policy governs only its MCP calls, and a default `read` let an agent whose policy denies
 * every read sign in and export the whole tenant as CSV, unaudited (found by review).
 */
export function dashboardPermissions(listed: readonly DashboardPermission[] | undefined, admin: boolean, ownPolicy = false): DashboardPermission[] {
  if (listed === undefined && ownPolicy) return [];
  const set = new Set<DashboardPermission>(listed ?? ['read']);
  if (admin && (listed === undefined || listed.length > 0)) set.add('approve');
  if (set.size > 0) set.add('read');
  return DASHBOARD_PERMISSIONS.filter((p) => set.has(p));
}

const grantSchema = z
  .strictObject({
    identity: z.string().min(1),
    token: z.string().min(16).optional(),
    token_env: z.string().min(1).optional(),
    token_sha256: z.string().regex(/^[0-9a-f]{64}$/).optional(),
    policy: z.string().min(1).optional(),
    admin: z.boolean().optional(),
    dashboard: z.array(z.enum(DASHBOARD_PERMISSIONS, { error: `use read, write or approve` })).optional(),
  })
  .refine((g) => [g.token, g.token_env, g.token_sha256].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of token, token_env or token_sha256',
  });
const fileSchema = z.strictObject({ grants: z.array(grantSchema).min(1) });

export const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

/**
 * Grants file (YAML/JSON):
 *   grants:
 *     - { identity: ci-agent, token_env: CI_AGENT_TOKEN, policy: ./ci-policy.yaml }
 *     - { identity: alice, token_sha256: <hex>, admin: true }
 *     - { identity: bob, token_env: BOB_TOKEN, dashboard: [read, write] }
 */
export function loadGrants(path: string, env: NodeJS.ProcessEnv = process.env): Grant[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    // the errno rides along, so a missing file is told from an unreadable one (exit 3 and 5)
    throw Object.assign(new Error(`${path}: cannot read the grants file: ${readErrorText(e)}`), { readErrno: readErrno(e) });
  }
  // Read apart from parsing: a YAML error's code (BAD_INDENT) was taken for an errno, and a syntax
  // error reported as a file that cannot be read (exit 5), with no line.
  const file = readYamlText(text, path);
  const res = fileSchema.safeParse(file.value);
  if (!res.success) {
    const i = res.error.issues[0]!;
    throw new Error(`${path}${file.lineOf(i.path)}: invalid grants file: ${issuePath(i.path)}: ${i.message}`);
  }
  const seen = new Set<string>();
  return res.data.grants.map((g, i) => {
    let hash = g.token_sha256;
    if (g.token !== undefined) hash = sha256Hex(g.token);
    if (g.token_env !== undefined) {
      const v = env[g.token_env];
      if (!v || v.length < 16) throw new Error(`${path}: grants[${i}]: environment variable ${g.token_env} is unset or shorter than 16 characters`);
      hash = sha256Hex(v);
    }
    if (seen.has(hash!)) throw new Error(`${path}: grants[${i}]: duplicate token`);
    seen.add(hash!);
    return {
      identity: g.identity,
      tokenSha256: hash!,
      policy: g.policy ? resolve(dirname(path), g.policy) : undefined,
      admin: g.admin ?? false,
      dashboard: dashboardPermissions(g.dashboard, g.admin ?? false, g.policy !== undefined),
    };
  });
}

export type AuthResult =
  | { kind: 'open' } // no grants configured: only allowed on loopback (see listenDecision)
  | { kind: 'granted'; grant: Grant }
  /** `token`: whether a bearer token was given (and is unknown) */
  | { kind: 'denied'; token: boolean; message: string };

/** Looks up the bearer token of an `Authorization` header. With grants configured, no token is a denial. */
export function authenticate(authorization: string | undefined, grants: ReadonlyMap<string, Grant>): AuthResult {
  if (grants.size === 0) return { kind: 'open' };
  const m = typeof authorization === 'string' ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  if (!m) return { kind: 'denied', token: false, message: 'missing bearer token' };
  const grant = grants.get(sha256Hex(m[1]!));
  return grant ? { kind: 'granted', grant } : { kind: 'denied', token: true, message: 'unknown bearer token' };
}

/** Grants keyed by token hash, for authenticate(). */
export function indexGrants(grants: readonly Grant[]): Map<string, Grant> {
  return new Map(grants.map((g) => [g.tokenSha256, g]));
}
