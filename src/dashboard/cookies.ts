/** The dashboard's cookies: the session id (HttpOnly) and the colour theme the reader picked. */

export const SESSION_COOKIE = 'et_session';
export const THEME_COOKIE = 'et_theme';

export type Theme = 'auto' | 'light' | 'dark';
export const THEMES: readonly Theme[] = ['auto', 'light', 'dark'];

/** Cookie header -> name/value map (first occurrence wins; values are not decoded: ours are URL-safe). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim();
    if (name && !out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

/**
 * HttpOnly (no script reads it), SameSite=Strict (no other site's request carries it), Path=/; Secure
 * when TLS is in front (--secure-cookies): a Secure cookie is never sent over plain http.
 */
export function sessionCookie(id: string, secure: boolean): string {
  return `${SESSION_COOKIE}=${id}; HttpOnly; SameSite=Strict; Path=/${secure ? '; Secure' : ''}`;
}

export function clearedSessionCookie(secure: boolean): string {
  return `${SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0${secure ? '; Secure' : ''}`;
}

export function themeCookie(theme: Theme, secure: boolean): string {
  return `${THEME_COOKIE}=${theme}; SameSite=Strict; Path=/; Max-Age=31536000${secure ? '; Secure' : ''}`;
}

export function themeOf(cookies: Map<string, string>): Theme {
  const t = cookies.get(THEME_COOKIE);
  return (THEMES as readonly string[]).includes(t ?? '') ? (t as Theme) : 'auto';
}
