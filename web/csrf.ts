/**
 * fetch() for dashboard writes: sends the session's CSRF token (from <meta name="csrf-token">) in the
 * X-CSRF-Token header, which the server checks on every non-GET request.
 */
export function csrfToken(): string {
  return document.querySelector<HTMLMetaElement>('meta[name="csrf-token"]')?.content ?? '';
}

export function csrfFetch(input: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  headers.set('X-CSRF-Token', csrfToken());
  return fetch(input, { ...init, headers, credentials: 'same-origin' });
}
