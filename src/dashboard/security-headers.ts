/**
 * Sent with every dashboard response. The CSP allows scripts and styles only from this server's own
 * files: no inline script, no inline style attribute, no eval, nothing from another origin.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "object-src 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
  "form-action 'self'",
].join('; ');

export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  // Not no-referrer: under it Chromium sends `Origin: null` on the dashboard's own form posts, which
  // the Host/Origin guard rightly refuses. same-origin still gives other sites no Referer at all.
  'referrer-policy': 'same-origin',
  'x-frame-options': 'DENY',
};
