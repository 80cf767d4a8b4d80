/**
 * The facts about one detection that a suppression condition can test. The rules matcher
 * evaluates conditions against this shape at ingest, in preview and on create, so all three agree.
 */
export interface DetectionSubject {
  type: string;
  owner: string;
  repo: string;
  workflow: string;
  job: string;
  /** "host:port" or "ip:port" */
  endpoint: string;
  host: string;
  port: number | null;
  /** the connection's IP, when known (direct or resolved) */
  ip: string | null;
  /** normalised process name */
  process: string;
  processSha256: string | null;
  processPath: string | null;
}

/** Returns the internal id of the first active rule that suppresses the subject, or 0. */
export interface Suppressor {
  match(subject: DetectionSubject): number;
}

export const NO_SUPPRESSION: Suppressor = { match: () => 0 };
