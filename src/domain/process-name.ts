/** Last component of a POSIX or Windows path. */
export function basenameOf(path: string): string {
  const slash = Math.max(path.lastIndexOf('/'), path.lastIndexOf('\\'));
  return slash >= 0 ? path.slice(slash + 1) : path;
}

/** Process-name normalisation used for grouping: basename, `.exe` stripped, lower case. */
export function normalizeProcessName(raw: string): string {
  let name = basenameOf(raw.trim()).toLowerCase();
  if (name.endsWith('.exe')) name = name.slice(0, -4);
  return name === '' ? 'unknown' : name;
}

import type { ParentLink, ProcessInfo } from './types.js';

/** Flattens the recursive parent structure into a nearest-first chain (bounded to avoid cycles). */
export function parentChain(process: ProcessInfo, maxDepth = 16): ParentLink[] {
  const chain: ParentLink[] = [];
  let p = process.parent ?? null;
  while (p && chain.length < maxDepth) {
    const link: ParentLink = { name: p.name };
    if (p.path) link.path = p.path;
    if (p.sha256) link.sha256 = p.sha256;
    chain.push(link);
    p = p.parent ?? null;
  }
  return chain;
}

/** "node < npm < bash": readable chain for tables and evidence. */
export function formatChain(chain: ParentLink[]): string {
  return chain.map((l) => l.name).join(' < ');
}
