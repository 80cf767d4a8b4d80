/**
 * What a binary's sha256 is, for every face that reads one: ingest (a producer's hash field), the
 * detection filter (--sha256, `sha256`) and a rule's process_sha256. A store keeps only this form, 64
 * lower-case hex characters, so anything else can match nothing: a filter or a rule given less (the
 * 12 characters a table shows) is refused, where it would have listed or suppressed nothing in silence.
 */
const DIGEST = /^(?:sha256:)?([0-9a-fA-F]{64})$/;

/** The canonical digest (lower-case hex, no "sha256:" prefix), or null when `value` is none. */
export function canonicalSha256(value: string): string | null {
  const m = DIGEST.exec(value);
  return m ? m[1]!.toLowerCase() : null;
}

/** Why `value` is no digest, for an error message: says how long it is when it looks like a shortened one. */
export function notADigest(value: string): string {
  const hexPrefix = /^[0-9a-fA-F]{1,63}$/.test(value);
  return hexPrefix
    ? `expected the whole sha256 digest (64 hex characters), got ${value.length}: tables shorten digests, take the whole one from --json output or the detection`
    : 'expected a sha256 digest (64 hex characters)';
}
