/**
 * A GitHub owner or repo as a job's identity compares it: ASCII letters without case (GitHub names
 * are case-insensitive), every other character as it is. The same fold as SQLite's NOCASE and the
 * PostgreSQL store's asciiLower, so the engine's job keys and both stores' job lookups agree.
 *
 * Why: one job reported as `Acme/Web` by one producer and `acme/web` by another was two jobs, and the
 * second spelling began its own learning runs: their new endpoints went into its baseline without a
 * detection.
 */
export function githubNameKey(name: string): string {
  return HAS_UPPER.test(name) ? name.replace(UPPER, (m) => m.toLowerCase()) : name;
}

/**
 * A job's identity as one string: owner and repo folded (githubNameKey), workflow and job as they
 * are. The engine's job map and both stores' per-ingest job caches key by it, so they agree.
 */
export function jobIdentity(owner: string, repo: string, workflow: string, job: string): string {
  return `${githubNameKey(owner)}\u0001${githubNameKey(repo)}\u0001${workflow}\u0001${job}`;
}

const HAS_UPPER = /[A-Z]/;
const UPPER = /[A-Z]+/g;
