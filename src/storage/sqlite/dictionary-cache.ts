import type { SqliteDatabase } from './db.js';

/**
 * In-process read cache of the shared value dictionaries (endpoints, processes). They are
 * append-only and a connection only ever sees committed rows, so an id, once read, never changes
 * meaning: the cache only needs to fetch rows with ids above the highest one it holds.
 */
export interface EndpointDict {
  endpoint: string[];
  host: string[];
  port: (number | null)[];
  isIp: number[];
}

export interface ProcessDict {
  name: string[];
  norm: string[];
  path: (string | null)[];
  sha256: (string | null)[];
  chain: string[];
}

interface Cache {
  ep: EndpointDict;
  epMax: number;
  proc: ProcessDict;
  procMax: number;
}

const caches = new WeakMap<SqliteDatabase, Cache>();

function cacheFor(db: SqliteDatabase): Cache {
  let c = caches.get(db);
  if (!c) {
    c = {
      ep: { endpoint: [], host: [], port: [], isIp: [] },
      epMax: 0,
      proc: { name: [], norm: [], path: [], sha256: [], chain: [] },
      procMax: 0,
    };
    caches.set(db, c);
  }
  return c;
}

export function endpointDict(db: SqliteDatabase): EndpointDict {
  const c = cacheFor(db);
  const rows = db.prepare('SELECT id, endpoint, host, port, is_ip FROM endpoints WHERE id > ? ORDER BY id').raw().all(c.epMax) as [number, string, string, number | null, number][];
  for (const [id, endpoint, host, port, isIp] of rows) {
    c.ep.endpoint[id] = endpoint;
    c.ep.host[id] = host;
    c.ep.port[id] = port;
    c.ep.isIp[id] = isIp;
    c.epMax = id;
  }
  return c.ep;
}

export function processDict(db: SqliteDatabase): ProcessDict {
  const c = cacheFor(db);
  const rows = db.prepare('SELECT id, name, norm_name, path, sha256, parent_chain FROM processes WHERE id > ? ORDER BY id').raw().all(c.procMax) as [
    number, string, string, string | null, string | null, string,
  ][];
  for (const [id, name, norm, path, sha, chain] of rows) {
    c.proc.name[id] = name;
    c.proc.norm[id] = norm;
    c.proc.path[id] = path;
    c.proc.sha256[id] = sha;
    c.proc.chain[id] = chain;
    c.procMax = id;
  }
  return c.proc;
}
