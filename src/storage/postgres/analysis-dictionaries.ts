import type { ParentLink } from '../../domain/types.js';
import { githubNameKey } from '../../domain/github-name.js';
import type { EndpointDictionary, JobDictionary, VariantDictionary } from '../analysis-port.js';

/**
 * The analysis dictionaries of one tenant, cached per store. Refs are the rows' own ids: they come
 * from one sequence per table, so a tenant's ids are dense unless tenants ingest interleaved, and
 * never larger than the table. Rows are append-only and a snapshot sees every row an earlier
 * snapshot saw, so a cache is complete for a snapshot whose row count it has reached; a higher count
 * reloads it whole (rare: after an ingest that added values).
 */

type Query = <R extends unknown[]>(sql: string, params: unknown[]) => Promise<R[]>;

interface Cached<T> {
  count: number;
  value: T;
}

export class PgAnalysisDictionaries {
  private readonly variants = new Map<number, Cached<VariantDictionary>>();
  private readonly endpoints = new Map<number, Cached<EndpointDictionary>>();
  private readonly jobs = new Map<number, Cached<JobDictionary>>();

  private async cached<T>(cache: Map<number, Cached<T>>, q: Query, table: string, tenantId: number, load: () => Promise<T>): Promise<T> {
    const [[count]] = (await q<[number]>(`SELECT count(*) FROM ${table} WHERE tenant_id = $1`, [tenantId])) as [[number]];
    const hit = cache.get(tenantId);
    if (hit && hit.count >= count) return hit.value;
    const value = await load();
    cache.set(tenantId, { count, value });
    return value;
  }

  variantsOf(q: Query, tenantId: number): Promise<VariantDictionary> {
    return this.cached(this.variants, q, 'processes', tenantId, async () => {
      const d: VariantDictionary = { name: [], norm: [], path: [], sha256: [], parents: [] };
      const rows = await q<[number, string, string, string | null, string | null, string]>(
        'SELECT id, name, norm_name, path, sha256, parent_chain FROM processes WHERE tenant_id = $1 ORDER BY id',
        [tenantId],
      );
      for (const [id, name, norm, path, sha, chain] of rows) {
        d.name[id] = name;
        d.norm[id] = norm;
        d.path[id] = path;
        d.sha256[id] = sha;
        d.parents[id] = JSON.parse(chain) as ParentLink[];
      }
      return d;
    });
  }

  endpointsOf(q: Query, tenantId: number): Promise<EndpointDictionary> {
    return this.cached(this.endpoints, q, 'endpoints', tenantId, async () => {
      const d: EndpointDictionary = { endpoint: [], host: [], hostId: [], hostName: [], port: [], isIp: [], maxId: 0, hostCount: 0 };
      const hosts = new Map<string, number>();
      const rows = await q<[number, string, string, number | null, boolean]>('SELECT id, endpoint, host, port, is_ip FROM endpoints WHERE tenant_id = $1 ORDER BY id', [tenantId]);
      for (const [id, endpoint, host, port, isIp] of rows) {
        d.endpoint[id] = endpoint;
        d.host[id] = host;
        let h = hosts.get(host);
        if (h === undefined) {
          h = hosts.size;
          hosts.set(host, h);
          d.hostName[h] = host;
        }
        d.hostId[id] = h;
        d.port[id] = port;
        d.isIp[id] = isIp ? 1 : 0;
        d.maxId = id;
      }
      d.hostCount = hosts.size;
      return d;
    });
  }

  jobsOf(q: Query, tenantId: number): Promise<JobDictionary> {
    return this.cached(this.jobs, q, 'jobs', tenantId, async () => {
      const d: JobDictionary = { ownerIdx: [], repoIdx: [], owners: 0, repos: 0, maxId: 0 };
      const owners = new Map<string, number>();
      const repos = new Map<string, number>();
      for (const [id, owner, repo] of await q<[number, string, string]>('SELECT id, owner, repo FROM jobs WHERE tenant_id = $1 ORDER BY id', [tenantId])) {
        // one owner or repository however its spellings are cased (githubNameKey), as on SQLite
        const ok = githubNameKey(owner);
        let o = owners.get(ok);
        if (o === undefined) owners.set(ok, (o = owners.size));
        const rk = `${ok}/${githubNameKey(repo)}`;
        let r = repos.get(rk);
        if (r === undefined) repos.set(rk, (r = repos.size));
        d.ownerIdx[id] = o;
        d.repoIdx[id] = r;
        d.maxId = id;
      }
      d.owners = owners.size;
      d.repos = repos.size;
      return d;
    });
  }
}
