import { existsSync } from 'node:fs';
import { openPolicyState } from '../../src/storage/open-policy-state.js';
import { isPostgresUrl } from '../../src/storage/location.js';

/**
 * The policy audit table of a store, newest first, as `egress-triage audit --json --limit N` prints it:
 * the same query, read in this process. The adversarial tests poll it after every attack, and a CLI
 * process per poll was most of their CPU; the command itself is tested by test/gateway (its filters,
 * its output) and test/cli.
 */
export async function readPolicyAudit(db: string, limit = 1000): Promise<Record<string, any>[]> {
  // as the command does: the audit of a store that does not exist is an error, and nothing is created
  if (!isPostgresUrl(db) && !existsSync(db)) throw new Error(`no store at ${db}`);
  const st = openPolicyState({ dbPath: db, auditFile: false });
  try {
    await st.ready();
    // through JSON, as the command's output is read: undefined fields drop out
    return JSON.parse(JSON.stringify(await st.audit.query({ limit }))) as Record<string, any>[];
  } finally {
    await st.close();
  }
}
