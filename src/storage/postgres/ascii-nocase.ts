/**
 * Owner and repo names match without case the way SQLite's NOCASE does: ASCII letters only, as
 * GitHub names are. PostgreSQL's lower() follows the database's collation, and on a UTF-8 locale it
 * folds other letters too (the Kelvin sign "K" becomes "k"), so a look-alike name picked another
 * owner's jobs, and the two stores disagreed (found by review). Under the "C" collation lower() folds
 * ASCII only, whatever the database's locale. The jobs index (migration 15) is on this expression.
 */
export function asciiLower(expr: string): string {
  return `lower((${expr})::text COLLATE "C")`;
}

/** `a` and `b` equal without ASCII case. */
export function asciiNocaseEq(a: string, b: string): string {
  return `${asciiLower(a)} = ${asciiLower(b)}`;
}
