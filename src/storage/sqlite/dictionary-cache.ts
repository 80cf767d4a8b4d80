import type { SqliteDatabase } from './db.js';
import { githubNameKey } from '../../domain/github-name.js';
import type { ParentLink } from '../../domain/types.js';
import type { EndpointDictionary } from '../analysis-port.js';

/**
 * In-process read cache of the shared value dictionaries (endpoints, processes). They are
 * append-only and a connection only ever sees committed rows, so an id, once read, never changes
 * meaning: the cache only needs to fetch rows with ids above the highest one it holds.
 */
/** The port's endpoint dictionary, cached per connection (same shape: the analysis reads it directly). */
export type EndpointDict = EndpointDictionary;

/**
 * A tenant's jobs. Rows are append-only and owner/repo never change, so the cache is incremental too.
 * ownerIdx / repoIdx are dense per-tenant ids of the owner and the owner/repo pair, without ASCII
 * case (githubNameKey): `Acme/API` and `acme/api` are one repository, as every filter reads them.
 */
export interface JobDict {
  owner: string[];
  repo: string[];
  ownerIdx: number[];
  repoIdx: number[];
  owners: number;
  repos: number;
  maxId: number;
}

export interface ProcessDict {
  name: string[];
  norm: string[];
  path: (string | null)[];
  sha256: (string | null)[];
  chain: string[];
  /** parent_chain parsed once per variant: the analysis reads it for every variant of a page */
  parents: ParentLink[][];
}

interface Cache {
  ep: EndpointDict;
  epMax: number;
  hosts: Map<string, number>;
  jobs: Map<number, JobDict & { ownerMap: Map<string, number>; repoMap: Map<string, number> }>;
  proc: ProcessDict;
  procMax: number;
}

const caches = new WeakMap<SqliteDatabase, Cache>();

function cacheFor(db: SqliteDatabase): Cache {
  let c = caches.get(db);
  if (!c) {
    c = {
      ep: { endpoint: [], host: [], hostId: [], hostName: [], port: [], isIp: [], maxId: 0, hostCount: 0 },
      epMax: 0,
      hosts: new Map(),
      jobs: new Map(),
      proc: { name: [], norm: [], path: [], sha256: [], chain: [], parents: [] },
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
    let h = c.hosts.get(host);
    if (h === undefined) {
      h = c.hosts.size;
      c.hosts.set(host, h);
      c.ep.hostName[h] = host;
    }
    c.ep.hostId[id] = h;
    c.ep.port[id] = port;
    c.ep.isIp[id] = isIp;
    c.epMax = id;
  }
  c.ep.maxId = c.epMax;
  c.ep.hostCount = c.hosts.size;
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
    c.proc.parents[id] = JSON.parse(chain) as ParentLink[];
    c.procMax = id;
  }
  return c.proc;
}

export function jobDict(db: SqliteDatabase, tenantId: number): JobDict {
  const c = cacheFor(db);
  let j = c.jobs.get(tenantId);
  if (!j) {
    j = { owner: [], repo: [], ownerIdx: [], repoIdx: [], owners: 0, repos: 0, maxId: 0, ownerMap: new Map(), repoMap: new Map() };
    c.jobs.set(tenantId, j);
  }
  const rows = db.prepare('SELECT id, owner, repo FROM jobs WHERE tenant_id = ? AND id > ? ORDER BY id').raw().all(tenantId, j.maxId) as [number, string, string][];
  for (const [id, owner, repo] of rows) {
    j.owner[id] = owner;
    j.repo[id] = repo;
    // one owner or repository however its spellings are cased, as filters and job identity read them
    const ok = githubNameKey(owner);
    let o = j.ownerMap.get(ok);
    if (o === undefined) {
      o = j.ownerMap.size;
      j.ownerMap.set(ok, o);
    }
    const rk = `${ok}/${githubNameKey(repo)}`;
    let r = j.repoMap.get(rk);
    if (r === undefined) {
      r = j.repoMap.size;
      j.repoMap.set(rk, r);
    }
    j.ownerIdx[id] = o;
    j.repoIdx[id] = r;
    j.maxId = id;
  }
  j.owners = j.ownerMap.size;
  j.repos = j.repoMap.size;
  return j;
}
