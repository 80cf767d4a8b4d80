import { resolve } from 'node:path';
import { DEFAULT_DB_PATH } from '../config/paths.js';

// Where the store is, and which backend that names. Apart from the pickers (open-store.ts,
// open-policy-state.ts) so that a command can name its store without loading any backend.

export type StoreBackend = 'sqlite' | 'postgres';

export interface StoreLocation {
  backend: StoreBackend;
  /** the resolved SQLite path or the full URL (with its password: never print it) */
  target: string;
  /** what to show a person: the path, or the URL without its password */
  display: string;
  /** where it came from, for messages */
  from: '--db' | 'EGRESS_TRIAGE_DB' | 'the default location';
}

/** --db, then EGRESS_TRIAGE_DB, then ./.egress-triage/egress.db */
export function resolveStoreLocation(flag?: string, env: NodeJS.ProcessEnv = process.env): StoreLocation {
  const raw = flag ?? (env.EGRESS_TRIAGE_DB || undefined) ?? DEFAULT_DB_PATH;
  const from = flag !== undefined ? '--db' : env.EGRESS_TRIAGE_DB ? 'EGRESS_TRIAGE_DB' : 'the default location';
  if (isPostgresUrl(raw)) return { backend: 'postgres', target: raw, display: redactUrl(raw), from };
  const path = raw === ':memory:' ? raw : resolve(raw);
  return { backend: 'sqlite', target: path, display: path, from };
}

/** True for a postgres:// or postgresql:// URL: the store is PostgreSQL. */
export function isPostgresUrl(location: string): boolean {
  return /^postgres(ql)?:\/\//i.test(location);
}

/**
 * The URL without its password, for messages and `db status`: the one in its user part and the one
 * the driver also takes as a query parameter (`?password=`), however the parameter is cased or escaped.
 */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    for (const key of [...u.searchParams.keys()]) if (key.toLowerCase() === 'password') u.searchParams.set(key, '***');
    return u.toString();
  } catch {
    // unparsable, often for a password holding "/", ":" or "#": every part that could hold it goes
    return maskUserinfo(url).replace(/([?&](?:%70|p)(?:%61|a)(?:%73|s)(?:%73|s)(?:%77|w)(?:%6f|o)(?:%72|r)(?:%64|d)=)[^&#]*/gi, '$1***');
  }
}

/**
 * A URL's password masked as text, for one no parser takes: all between the user name and the last
 * "@" goes (a password may hold "/", ":", "@" or "#"; masking too much is harmless).
 */
export function maskUserinfo(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(.*)@/i.exec(url);
  if (!m) return url;
  const userinfo = m[2]!;
  const colon = userinfo.indexOf(':');
  if (colon < 0 && !/[/?#]/.test(userinfo)) return url;
  return `${m[1]}${colon < 0 ? '' : userinfo.slice(0, colon)}:***@${url.slice(m[0].length)}`;
}
