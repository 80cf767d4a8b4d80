import type { RulesPort } from '../storage/rules-port.js';

/**
 * The revision of the suspected-impostor verdict (analysis/impostor.ts) this version judges by. It
 * goes up whenever a change can flag a binary that an older version did not: 1, a daemon's port no
 * longer vouching for a foreign domain (6c4e688); 2, names drawn like a daemon's (look-alikes); 3, a
 * name NFKC stored as drawn like none, read as the character it was folded from ("tai│scaled"); 4, a
 * name holding a character drawn blank (U+2800, U+1D159) read as the name it shows
 * ("tailscaled\u2800"); 5, private-use and unassigned code points read the same way
 * ("tailscaled\uE000"), and a name split or joined otherwise than a daemon's drawn like it ("tail
 * scaled", "wgquick"); 6, a name that extends a daemon's ("tailscaled-helper") judged by the
 * daemon's binary evidence (its path, its parents), which a rule over the daemon's glob covered; 7, a
 * name that contains a daemon's elsewhere ("my-tailscaled", "run_tailscaled") judged the same way,
 * which a rule over `*tailscaled*` covered. A store remembers the revision it was last judged by (its
 * meta `verdict_revision`; none before 2).
 */
export const VERDICT_REVISION = 7;

/**
 * Brings a store judged by an older verdict up to this one: every detection that a rule (or the
 * producer) suppressed or resolved of a binary this verdict flags is new again, as ingest releases
 * them when it flags a binary. Without it, a rule that an older version let hide such a binary kept
 * hiding it until that binary's next call was ingested, and for ever if none came. Returns how many
 * detections moved; 0 at once when the store is up to date (one read).
 */
export async function rejudgeStoredBinaries(port: RulesPort): Promise<number> {
  if ((await port.verdictRevision()) >= VERDICT_REVISION) return 0;
  return port.write(async (tx) => {
    // another process may have done it meanwhile; the write lock orders the two
    if ((await tx.verdictRevision()) >= VERDICT_REVISION) return 0;
    let released = 0;
    for (const tenantId of await tx.tenantIds()) released += await tx.releaseBinaries(tenantId, (await tx.impostors(tenantId)).set);
    await tx.setVerdictRevision(VERDICT_REVISION);
    // running ingests rebuild their suppressor before their next write
    if (released > 0) await tx.bumpRulesVersion();
    return released;
  });
}
