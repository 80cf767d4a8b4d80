import picomatch from 'picomatch';

/**
 * Case-insensitive `*` wildcard matching for hosts, endpoints and process names.
 * `*` spans dots (so `*.amazonaws.com` covers `a.b.amazonaws.com`); paths use globPathMatcher.
 */
export function globMatcher(pattern: string): (value: string) => boolean {
  if (pattern === '*') return () => true;
  if (!pattern.includes('*') && !pattern.includes('?')) {
    const p = pattern.toLowerCase();
    return (v) => v.toLowerCase() === p;
  }
  // Hosts and endpoints contain no "/", so picomatch's single-segment `*` spans the whole value.
  const escaped = pattern.replace(/[\[\]{}()!+@]/g, '\\$&');
  const m = picomatch(escaped, { dot: true, nocase: true, noextglob: true, nobrace: true });
  return (v) => !v.includes('/') && m(v);
}

/** Globs for file paths: `*` stops at "/", `**` crosses it. */
export function globPathMatcher(pattern: string): (value: string) => boolean {
  if (pattern === '*') return () => true;
  return picomatch(pattern, { dot: true, nocase: true });
}

export function isGlob(pattern: string): boolean {
  return pattern.includes('*') || pattern.includes('?');
}
