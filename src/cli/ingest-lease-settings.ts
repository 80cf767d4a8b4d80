import { UserError } from './errors.js';
import { describeLeaseEvent } from '../storage/ingest-lease.js';
import { DEFAULT_INGEST_LEASE_TTL_MS, type IngestLeaseEvent } from '../storage/store.js';

/**
 * EGRESS_TRIAGE_INGEST_LEASE_MS: lifetime of the per-tenant ingest lease, i.e. how long after a
 * writer was killed the next one takes over. Default 30 s; tests set it short.
 */
export function ingestLeaseTtlMs(env: NodeJS.ProcessEnv): number {
  const raw = env.EGRESS_TRIAGE_INGEST_LEASE_MS;
  if (raw === undefined || raw === '') return DEFAULT_INGEST_LEASE_TTL_MS;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < 100) {
    throw new UserError(`EGRESS_TRIAGE_INGEST_LEASE_MS: expected a whole number of milliseconds >= 100, got "${raw}"`);
  }
  return n;
}

/** Waiting for another writer always goes to stderr: it explains a pause, and stdout stays the summary. */
export function reportLeaseEvent(e: IngestLeaseEvent): void {
  process.stderr.write(`egress-triage: ${describeLeaseEvent(e)}\n`);
}
