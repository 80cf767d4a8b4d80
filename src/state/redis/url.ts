import { maskUserinfo } from '../../storage/location.js';
/** `redis://host:port[/db]`, the value of `--state`. Anything else is refused with the reason. */
export interface RedisAddress {
  host: string;
  port: number;
  db: number;
  /** For logs and denial reasons; never carries a password. */
  display: string;
}

export function parseRedisStateUrl(raw: string): RedisAddress {
  // what the refusals quote: a password in the URL is never echoed
  const s = maskUserinfo(raw);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new Error(`"${s}" is not a URL; expected redis://host:port[/db]`);
  }
  if (u.protocol !== 'redis:') throw new Error(`"${s}": only redis://host:port[/db] is supported`);
  if (u.username || u.password) throw new Error(`"${s}": credentials in the URL are not supported; run Redis on a private network or loopback`);
  if (u.search || u.hash) throw new Error(`"${s}": query strings and fragments are not supported`);
  const host = u.hostname.replace(/^\[(.*)\]$/, '$1');
  if (!host) throw new Error(`"${s}": the host is missing`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const path = u.pathname.replace(/^\//, '');
  if (path !== '' && !/^\d{1,2}$/.test(path)) throw new Error(`"${s}": the database must be a number like /0`);
  const db = path === '' ? 0 : Number(path);
  const hostForUrl = host.includes(':') ? `[${host}]` : host;
  return { host, port, db, display: `redis://${hostForUrl}:${port}/${db}` };
}
