import { resolve } from 'node:path';
import { BUILTIN_RISKY_DESTINATIONS, riskyDestinations } from '../analysis/risky-destinations.js';
import type { RulesStore } from '../storage/rules-port.js';
import { isReadOnlyStoreError, isWriteRefusedForNow } from '../storage/read-only.js';
import { cleanActor, defaultActor } from './service.js';
import { rejudgeStoredBinaries } from './verdict-revision.js';

/**
 * The store remembers every risky destination a config has named (egress-triage.yaml
 * `risky_destinations`), and every command judges risk by the built-in list plus all of them. A
 * config is read from the working directory of each command, so without this a rule created from
 * another directory (or by an MCP server started elsewhere) would see none of them, and could
 * silence the very calls the config was written to keep in sight. The list only grows: an entry
 * is never forgotten because a later config leaves it out.
 *
 * When an entry is first remembered, the detections that rules suppressed before and that it now
 * covers come back as new, in the same transaction: a crash cannot leave an entry remembered and
 * its detections still hidden.
 */
export interface RememberedRisky {
  /** the extra list to judge with: every remembered entry, oldest first */
  list: string[];
  /** entries this call remembered for the first time */
  added: string[];
  /** detections that those entries made new again */
  released: number;
  /** configured entries a read-only store could not remember (judged by all the same) */
  unremembered: string[];
  /**
   * detections of binaries that this version's impostor verdict flags and an older one did not, made
   * new again when the store was judged by the older one (rules/verdict-revision.ts)
   */
  rejudged: number;
}

/** An entry the store remembers that does not parse (a store edited by hand): judged as nothing, it would fail open. */
export class StoredRiskyListError extends Error {}

/** Why an entry cannot be forgotten: it is built in, or the store does not remember it. */
export class ForgetRiskyError extends Error {
  constructor(
    message: string,
    readonly reason: 'built-in' | 'not-remembered',
  ) {
    super(message);
  }
}

/**
 * Forgets one remembered entry (`egress-triage risky forget`): from then on no command judges by it
 * unless its own config names it, which makes the store remember it again. Detections it made new
 * stay new; rules that match them suppress them only from their next ingest or re-application.
 */
export async function forgetRiskyDestination(store: RulesStore, entry: string, actor: string, now: Date = new Date()): Promise<void> {
  const key = riskyEntryKey(entry);
  if (BUILTIN_RISKY_DESTINATIONS.includes(key.replace(/^\*\./, ''))) {
    throw new ForgetRiskyError(`${entry} is on the built-in list: it is always risky and cannot be forgotten`, 'built-in');
  }
  const who = cleanActor(actor);
  const forgotten = await store.rulesPort(riskyDestinations()).write(async (tx) => {
    // the audit row is written with the delete, in its transaction (storage/rules-port.ts)
    if (!(await tx.forgetRisky(key, now.toISOString(), who))) return false;
    // running ingests rebuild their suppressor, with the shorter list
    await tx.bumpRulesVersion();
    return true;
  });
  if (!forgotten) throw new ForgetRiskyError(`the store does not remember ${entry}: \`egress-triage risky list\` shows what it remembers`, 'not-remembered');
}

/** One entry as remembered: entries are compared without case and surrounding blanks. */
export function riskyEntryKey(entry: string): string {
  return entry.trim().toLowerCase();
}

/**
 * The list to judge by, without writing: what the store remembers, then the configured entries it
 * does not (for a store that cannot be written, see rememberRiskyDestinations).
 */
async function rememberedRiskyList(store: RulesStore, configured: readonly string[] = []): Promise<{ list: string[]; fresh: string[] }> {
  const stored = await store.rulesPort(riskyDestinations()).riskyEntries();
  const known = new Set(stored);
  const fresh = [...new Set(configured.map(riskyEntryKey))].filter((e) => e !== '' && !known.has(e));
  const list = [...stored, ...fresh];
  try {
    riskyDestinations(list);
  } catch (err) {
    // An entry the store holds that no longer parses (an earlier version took spellings it matched
    // nothing with, such as "203.0.113.7:443."): fail closed, saying where it came from and how to remove it.
    const bad = stored.find((e) => !parses(e));
    const how = bad === undefined ? '' : `; remove it with \`egress-triage risky forget '${bad.replaceAll("'", "'\\''")}' --yes\`, then name it again in a config in a form it takes`;
    throw new StoredRiskyListError(`the risky destinations the store remembers: ${(err as Error).message}${how}`);
  }
  return { list, fresh };
}

function parses(entry: string): boolean {
  try {
    riskyDestinations([entry]);
    return true;
  } catch {
    return false;
  }
}

/** Who the risky audit names for entries a command's config brings in: the OS user, and the config by its full path. */
export function configActor(configPath: string | null): string {
  return configPath === null ? defaultActor() : `${defaultActor()} with config ${resolve(configPath)}`;
}

/**
 * `actor` is who the risky audit names for an entry this call remembers first: the config that named
 * it, when the caller knows its path.
 */
export async function rememberRiskyDestinations(store: RulesStore, configured: readonly string[] = [], actor: string = defaultActor(), now: Date = new Date()): Promise<RememberedRisky> {
  const { list, fresh } = await rememberedRiskyList(store, configured);
  // By the entries the store remembered before this command: what the fresh ones bring back is
  // theirs to release and report (releaseRisky, below).
  const remembered = store.rulesPort(riskyDestinations(fresh.length === 0 ? list : list.filter((e) => !fresh.includes(e))));
  let rejudged = 0;
  try {
    rejudged = await rejudgeStoredBinaries(remembered);
  } catch (err) {
    // Read-only, busy, or a role that may only read: every verdict of this command is still this
    // version's, only the stored statuses lag, until a command that can write judges the store.
    if (!isReadOnlyStoreError(err) && !isWriteRefusedForNow(err)) throw err;
  }
  if (fresh.length === 0) return { list, added: [], released: 0, unremembered: [], rejudged };
  try {
    return await store.rulesPort(riskyDestinations(list)).write(async (tx) => {
      const added = await tx.rememberRisky(fresh, now.toISOString(), actor);
      if (added.length === 0) return { list, added, released: 0, unremembered: [], rejudged };
      const released = await tx.releaseRisky();
      // running ingests rebuild their suppressor before their next write
      await tx.bumpRulesVersion();
      return { list, added, released, unremembered: [], rejudged };
    });
  } catch (err) {
    // A store no one can write here (a read-only file, a standby): the caller judges by the entries
    // all the same, and whatever would write through it fails on its own write.
    if (isReadOnlyStoreError(err)) return { list, added: [], released: 0, unremembered: fresh, rejudged };
    throw err;
  }
}

/** What a command says on stderr when the store was judged anew (RememberedRisky.rejudged). */
export function rejudgedMessage(n: number): string | null {
  return n > 0
    ? `egress-triage: this version judges stored binaries by a newer impostor verdict: ${n} detection(s) of suspected impostors that were suppressed or resolved are new again\n`
    : null;
}
