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

/** What ingest knows about one call's binary and destination (for the suspected-impostor verdict). */
export interface CallFacts {
  process: string;
  processSha256: string | null;
  processPath: string | null;
  parentChain: readonly { name: string; path?: string | null }[];
  host: string;
  port: number | null;
  isIp: boolean;
  /** the address the call went to, when known: a configured risky range covers named calls too */
  ip: string | null;
  /** the detection type an imported detection was filed under (a call seen by ingest has none) */
  detectionType?: string;
}

/** Returns the internal id of the first active rule that suppresses the subject, or 0. */
export interface Suppressor {
  match(subject: DetectionSubject): number;
  /**
   * Sees every new call before it is evaluated. Returns true when the call's binary is a suspected
   * impostor: such a call never teaches the baseline, and its detections are never suppressed.
   */
  observe?(call: CallFacts): boolean;
  /**
   * True when observe() can flag a binary of this name: the engine keeps such a binary's calls that
   * raised nothing while their run is in memory, to raise them should the binary be flagged later in
   * the run. Absent: no binary is ever flagged.
   */
  canFlag?(process: string): boolean;
  /** True when this binary is a suspected impostor already (stored or flagged by observe). */
  suspected?(binary: { process: string; sha256: string | null; path: string | null }): boolean;
  /**
   * Resolves when every store write that `observe` started (flagging an impostor, releasing its
   * past suppressions) is stored; rejects when one failed. Ingest awaits it before each write batch.
   */
  settle?(): Promise<void>;
  /**
   * After a write batch is stored: when a call since the last link() may have shown a flagged
   * binary's file under its other identity (a hash, or none, at the same path in one run), asks the
   * store's verdict, which links the two (analysis/impostor-links.ts); the linked binary is then a
   * suspected impostor here too. What rules suppressed of any suspected impostor is moved back to
   * `new`; resolves to the binaries whose detections were so released.
   */
  link?(): Promise<readonly { process: string; sha256: string | null; path: string | null }[]>;
  /**
   * True when this binary runs at a file a suspected impostor was seen at, so link() may yet find it
   * to be that file's other identity. A late call of a completed run counts towards the baseline at
   * once; such a binary's does not.
   */
  mayBeLinked?(binary: { process: string; sha256: string | null; path: string | null }): boolean;
  /**
   * What settle() and link() did since the last call: every binary they flagged or linked, with why,
   * and how many stored detections (suppressed or resolved before) they moved back to `new`. Ingest
   * says both in its summary: a renamed binary is named the moment it is suspected, and a binary
   * flagged now can bring back a whole rule's worth of detections.
   */
  takeReleases?(): Releases;
}

/** The binaries flagged as suspected impostors, and the detections their flags moved back to `new` (ingest summary). */
export interface Releases {
  released: number;
  /** each with the tenant it was flagged in: a source can write into several (records' own `tenant`) */
  binaries: { tenant: string; process: string; sha256: string | null; path: string | null; reason: string }[];
}

export const NO_SUPPRESSION: Suppressor = { match: () => 0 };
