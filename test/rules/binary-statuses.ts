import { detectionsView, type StoreUnderTest } from '../helpers/each-store.js';
import type { ProcessInfo } from '../../src/domain/types.js';

/**
 * Status and rule of each detection, by binary (name and hash: one file may run under two names), as
 * the tests of rules over a daemon's glob read them. The store holds one tenant.
 */
export async function statusByBinary(at: StoreUnderTest): Promise<Map<string, { status: number; rule: number }[]>> {
  const rows = await at.rows<{ norm_name: string; sha256: string; status: number; rule_id: number }>(
    `SELECT p.norm_name, p.sha256, d.status, d.rule_id FROM ${detectionsView(at.backend)} d JOIN processes p ON p.id = d.process_id`,
  );
  const out = new Map<string, { status: number; rule: number }[]>();
  for (const r of rows) out.set(`${r.norm_name} ${r.sha256}`, [...(out.get(`${r.norm_name} ${r.sha256}`) ?? []), { status: r.status, rule: r.rule_id }]);
  return out;
}

/** The key of a binary in statusByBinary's map. */
export const binaryKeyOf = (p: ProcessInfo) => `${p.name} ${p.sha256}`;
