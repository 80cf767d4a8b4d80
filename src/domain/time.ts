/**
 * The one time parser for user-supplied instants (CLI options, MCP arguments, library input).
 *
 * Accepted forms:
 * - epoch milliseconds, as a number or a string of digits;
 * - an RFC 3339 / ISO 8601 date or date-time: `2026-11-01`, `2026-11-01T08:00:00Z`,
 *   `2026-11-01T10:00:00+02:00`; a date-time without an offset is read as UTC (never as the
 *   machine's local zone, so the same argument means the same instant everywhere);
 * - a relative age counted back from `now`: `30s`, `15m`, `1.5h`, `24h`, `7d`, `2w`.
 * Anything else (including `Date.parse` leniencies such as "Nov 1" or "2026-02-31") is refused.
 */

export class TimeParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TimeParseError';
  }
}

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
const RELATIVE = /^(\d{1,9}(?:\.\d{1,6})?)([smhdw])$/;
const ISO = /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?([Zz]|[+-]\d{2}:?\d{2})?)?$/;

export const TIME_FORMS = 'an RFC 3339 time (2026-11-01T00:00:00Z), a date (2026-11-01), epoch milliseconds, or a relative age (30m, 24h, 7d, 2w)';

/** The largest instant a JavaScript Date holds (±100,000,000 days from 1970): beyond it there is no time to compare. */
export const MAX_INSTANT_MS = 8_640_000_000_000_000;

/**
 * Epoch ms for `value`, or undefined when it is absent (undefined or null). An empty or blank string
 * is not absent: it is refused like any other value that is not a time (every filter refuses an
 * empty value; a caller that reads empty form fields as "not given" drops them first). So is an
 * instant beyond what a Date holds. Throws TimeParseError.
 */
export function parseInstant(value: string | number | undefined | null, now: number): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TimeParseError(`not a finite number; expected ${TIME_FORMS}`);
    return inRange(Math.trunc(value), String(value));
  }
  if (typeof value === 'string' && value.trim() === '') throw new TimeParseError('is empty; give a value or leave the argument out');
  if (typeof value !== 'string') throw new TimeParseError(`expected a string or a number, got ${typeof value}`);
  const v = value.trim();
  if (/^\d{1,16}$/.test(v)) return inRange(Number(v), value);
  const rel = RELATIVE.exec(v);
  if (rel) return inRange(now - Math.round(Number(rel[1]) * UNIT_MS[rel[2] as keyof typeof UNIT_MS]), value);
  const m = ISO.exec(v);
  if (m) {
    const [, y, mo, d, hh, mi, ss, zone] = m;
    const hasTime = hh !== undefined;
    const text = hasTime ? (zone ? v : `${v}Z`) : `${v}T00:00:00Z`;
    const t = Date.parse(text.replace(' ', 'T'));
    // Date.parse rolls 2026-02-31 over to March; refuse calendar dates that do not exist.
    const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
    const realDate = day.getUTCFullYear() === Number(y) && day.getUTCMonth() === Number(mo) - 1 && day.getUTCDate() === Number(d);
    const realTime = !hasTime || (Number(hh) < 24 && Number(mi) < 60 && (ss === undefined || Number(ss) < 60));
    if (!Number.isNaN(t) && realDate && realTime) return t;
  }
  throw new TimeParseError(`"${value}" is not a time; expected ${TIME_FORMS}`);
}

/** True for a relative age ("24h", "7d"): its instant depends on the clock it is read against. */
export function isRelativeTime(value: unknown): boolean {
  return typeof value === 'string' && RELATIVE.test(value.trim());
}

function inRange(t: number, value: string): number {
  if (Math.abs(t) > MAX_INSTANT_MS) {
    throw new TimeParseError(`"${value}" is out of range: a time must lie within ${MAX_INSTANT_MS} ms (about 273,790 years) of 1970`);
  }
  return t;
}
