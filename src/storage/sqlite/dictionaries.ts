import type { SqliteDatabase } from './db.js';
import type { ProcessVariant } from '../store.js';
import { splitEndpoint, isIpLiteral } from '../../domain/endpoint.js';
import type { Statement } from 'better-sqlite3';

import { processVariantKey } from '../ingest-port.js';

export { processVariantKey };

/** Expected-endpoint samples whose ids are remembered (cleared when full). */
const SAMPLE_CACHE = 4_096;

/**
 * Get-or-create id caches for value dictionaries. Ids never change once committed, but a rolled
 * back transaction can hand out ids that vanish, so callers reset after a rollback.
 */
export class Dictionaries {
  private endpoints = new Map<string, number>();
  private ips = new Map<string, number>();
  private processes = new Map<string, number>();
  private types = new Map<string, number>();
  private samples = new Map<string, number>();
  private readonly sel: Record<string, Statement>;
  private readonly ins: Record<string, Statement>;

  constructor(private readonly db: SqliteDatabase) {
    this.sel = {
      endpoint: db.prepare('SELECT id FROM endpoints WHERE endpoint = ?').pluck(),
      ip: db.prepare('SELECT id FROM ips WHERE ip = ?').pluck(),
      process: db.prepare('SELECT id FROM processes WHERE variant_key = ?').pluck(),
      type: db.prepare('SELECT id FROM detection_types WHERE name = ?').pluck(),
      sample: db.prepare('SELECT id FROM expected_samples WHERE sample = ?').pluck(),
    };
    this.ins = {
      endpoint: db.prepare('INSERT INTO endpoints (endpoint, host, port, is_ip) VALUES (?, ?, ?, ?)'),
      ip: db.prepare('INSERT INTO ips (ip) VALUES (?)'),
      process: db.prepare(
        'INSERT INTO processes (variant_key, name, norm_name, path, sha256, parent_chain) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      type: db.prepare('INSERT INTO detection_types (name) VALUES (?)'),
      sample: db.prepare('INSERT INTO expected_samples (sample) VALUES (?)'),
    };
  }

  reset(): void {
    this.endpoints.clear();
    this.ips.clear();
    this.processes.clear();
    this.types.clear();
    this.samples.clear();
  }

  endpointId(endpoint: string): number {
    let id = this.endpoints.get(endpoint);
    if (id !== undefined) return id;
    id = this.sel.endpoint!.get(endpoint) as number | undefined;
    if (id === undefined) {
      const { host, port } = splitEndpoint(endpoint);
      id = Number(this.ins.endpoint!.run(endpoint, host, port, isIpLiteral(host) ? 1 : 0).lastInsertRowid);
    }
    this.endpoints.set(endpoint, id);
    return id;
  }

  ipId(ip: string | null): number {
    if (!ip) return 0;
    let id = this.ips.get(ip);
    if (id !== undefined) return id;
    id = this.sel.ip!.get(ip) as number | undefined;
    if (id === undefined) id = Number(this.ins.ip!.run(ip).lastInsertRowid);
    this.ips.set(ip, id);
    return id;
  }

  processId(p: ProcessVariant, key = processVariantKey(p)): number {
    let id = this.processes.get(key);
    if (id !== undefined) return id;
    id = this.sel.process!.get(key) as number | undefined;
    if (id === undefined) {
      id = Number(
        this.ins.process!.run(key, p.name, p.normName, p.path, p.sha256, JSON.stringify(p.parentChain)).lastInsertRowid,
      );
    }
    this.processes.set(key, id);
    return id;
  }

  typeId(name: string): number {
    let id = this.types.get(name);
    if (id !== undefined) return id;
    id = this.sel.type!.get(name) as number | undefined;
    if (id === undefined) id = Number(this.ins.type!.run(name).lastInsertRowid);
    this.types.set(name, id);
    return id;
  }

  /** A run's expected-endpoint sample (its JSON text), stored once however many runs share it (core migration 9). */
  sampleId(text: string): number {
    let id = this.samples.get(text);
    if (id !== undefined) return id;
    id = this.sel.sample!.get(text) as number | undefined;
    if (id === undefined) id = Number(this.ins.sample!.run(text).lastInsertRowid);
    if (this.samples.size >= SAMPLE_CACHE) this.samples.clear();
    this.samples.set(text, id);
    return id;
  }
}
