import { statSync } from 'node:fs';
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

const SSL_MODES = new Set(['disable', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify']);
/** Query parameters naming files the driver reads as it parses the URL. */
const FILE_PARAMS = ['sslcert', 'sslkey', 'sslrootcert'];
/** Query parameters the driver reads as whole numbers of seconds or counts. */
const WHOLE_NUMBER_PARAMS = ['connect_timeout', 'keepalives', 'keepalives_idle'];

/** What each file parameter holds, for the message that asks for it. */
const FILE_PARAM_HOLDS: Record<string, string> = { sslcert: 'the client certificate', sslkey: 'the client key', sslrootcert: 'the CA certificate' };

/**
 * What is wrong with a PostgreSQL URL's settings, or null. The driver reads them only on connecting,
 * and takes some it cannot use in silence: `?port=abc` made a connection that never started, and the
 * command ended with nothing said, `?connect_timeout=abc` no time-out at all; a missing `?sslcert=`
 * file was a bare ENOENT that named no setting.
 *
 * `usage` is a URL written wrong; `file` a file it names that is there but unusable, the environment's
 * doing as for any file given: a directory. The driver reads these files as it parses the URL, and
 * `?sslrootcert=` naming a directory was a bare "EISDIR: illegal operation on a directory", with no
 * word of the parameter. Other kinds are left to the driver: a pipe can be a real certificate
 * (`sslrootcert=<(vault ...)`). The first problem in the URL's order is the one told.
 */
export function postgresUrlProblem(url: string): { kind: 'usage' | 'file'; message: string } | null {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return { kind: 'usage', message: 'not a valid URL; write postgres://user@host:port/database' };
  }
  const usage = (message: string) => ({ kind: 'usage' as const, message });
  for (const [key, value] of u.searchParams) {
    const k = key.toLowerCase();
    if (k === 'port' && !(/^\d{1,5}$/.test(value) && Number(value) >= 1 && Number(value) <= 65535)) return usage(`?${key}=${value} is no port: give a number from 1 to 65535`);
    if (WHOLE_NUMBER_PARAMS.includes(k) && !/^\d{1,9}$/.test(value)) return usage(`?${key}=${value} is not a whole number`);
    if (k === 'sslmode' && !SSL_MODES.has(value)) return usage(`?${key}=${value} is no SSL mode: use one of ${[...SSL_MODES].join(', ')}`);
    if (!FILE_PARAMS.includes(key)) continue;
    let dir: boolean;
    try {
      dir = statSync(value).isDirectory();
    } catch {
      return usage(`?${key}=${value}: no such file`);
    }
    if (dir) return { kind: 'file', message: `?${key}=${value} is a directory; give the file of ${FILE_PARAM_HOLDS[key]!} in it` };
  }
  // libpq's verify-ca checks the chain only, so the driver wants the CA named (it refused at connect time, exit 5)
  if (u.searchParams.get('uselibpqcompat') === 'true' && u.searchParams.get('sslmode') === 'verify-ca' && !u.searchParams.has('sslrootcert')) {
    return usage('?sslmode=verify-ca with uselibpqcompat=true needs ?sslrootcert=, the CA the server\'s certificate must chain to (or use sslmode=verify-full)');
  }
  return null;
}
