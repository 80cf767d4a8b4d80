/**
 * Process events of one ECS source, remembered by `process.entity_id` so that Elastic Defend
 * network events, which name their parents only by entity id (`process.parent.entity_id`,
 * `process.Ext.ancestry`, nearest first), get a parent chain with names, paths and hashes.
 *
 * Bounded: at most MAX_PROCESSES entries; the oldest is forgotten first. An entity id is unique
 * per host and process start, so one table per source is enough.
 */
import type { ProcessInfo } from '../../domain/types.js';
import type { RecordContext } from './types.js';
import type { F as Fields } from './ecs.js';
import { MAX_PARENT_DEPTH, UNKNOWN_TOOL, chainCut, executableName, makeProcess, optNonNegInt, optString, readSha256, type Obj } from './validate.js';

export const MAX_PROCESSES = 16_384;

export interface KnownProcess {
  name: string;
  executable: string | undefined;
  sha256: string | undefined;
  pid: number | undefined;
  /** nearest ancestor first */
  parentId: string | undefined;
}

export class ProcessTable {
  private readonly byId = new Map<string, KnownProcess>();

  get(entityId: string): KnownProcess | undefined {
    return this.byId.get(entityId);
  }

  /** Remembers a process event; one without an entity id or a name is of no use and ignored. */
  remember(doc: Obj, f: typeof Fields, rc: RecordContext): void {
    const id = optString(f.entityId.get(doc), 'process.entity_id');
    if (id === undefined) return;
    const executable = optString(f.procExe.get(doc), 'process.executable');
    const name = executableName(optString(f.procName.get(doc), 'process.name'), executable);
    if (!name) return;
    const ancestry = f.ancestry.get(doc);
    const first = Array.isArray(ancestry) && typeof ancestry[0] === 'string' && ancestry[0] !== '' ? ancestry[0] : undefined;
    const p: KnownProcess = {
      name,
      executable,
      sha256: readSha256(f.procSha.get(doc), 'process.hash.sha256', rc),
      pid: optNonNegInt(f.procPid.get(doc), 'process.pid'),
      parentId: optString(f.parentEntityId.get(doc), 'process.parent.entity_id') ?? first,
    };
    this.byId.delete(id);
    this.byId.set(id, p);
    if (this.byId.size > MAX_PROCESSES) this.byId.delete(this.byId.keys().next().value!);
  }

  /**
   * The parent chain for ancestor ids (nearest first), continued through remembered parents. The
   * first ancestor not remembered ends the chain as one "Unknown" link: unknown, not empty.
   */
  chain(ids: readonly string[], rc: RecordContext): ProcessInfo {
    const links: (KnownProcess | null)[] = [];
    const seen = new Set<string>();
    let i = 0;
    let next: string | undefined = ids[0];
    while (next !== undefined && links.length < MAX_PARENT_DEPTH && !seen.has(next)) {
      seen.add(next);
      const p = this.byId.get(next);
      if (!p) {
        links.push(null);
        break;
      }
      links.push(p);
      i++;
      next = i < ids.length ? ids[i] : p.parentId;
    }
    // ancestors past the last link kept: it stands for them (chainCut)
    let parent: ProcessInfo | null = links.length === MAX_PARENT_DEPTH && next !== undefined && !seen.has(next) ? chainCut(rc) : null;
    if (parent !== null) links.pop();
    for (let k = links.length - 1; k >= 0; k--) {
      const l = links[k]!;
      parent = l === null
        ? makeProcess(UNKNOWN_TOOL, undefined, undefined, undefined, null)
        : makeProcess(l.name, l.executable, l.sha256, l.pid, parent);
    }
    return parent!;
  }
}
