import { CSRF_FIELD } from './csrf.js';

/**
 * The one confirmation step every dashboard write goes through. A write form posts its fields; the
 * handler answers the first post with a confirmation page (pages/confirm.tsx) that states the exact
 * effect and re-posts the same fields with `confirm=yes`. Only that second post writes. A fetch()
 * caller does the same: without `confirm=yes` it gets the preview, not the change.
 */

export const CONFIRM_FIELD = 'confirm';

export function isConfirmed(form: URLSearchParams): boolean {
  return form.get(CONFIRM_FIELD) === 'yes';
}

/** The fields a confirmation page posts back: everything the first post had but the token and the flag. */
export function carriedFields(form: URLSearchParams): [string, string][] {
  return [...form.entries()].filter(([k]) => k !== CSRF_FIELD && k !== CONFIRM_FIELD);
}
