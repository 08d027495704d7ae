/**
 * Durations as operators write them, in config and on command lines (the
 * edge's, the Console's and the Warpgate's): `30s`, `30m`, `24h`, `7d`, or
 * combinations in descending order without repeats (`1h30m`, `1d12h`). A
 * bare number (or a string of digits) means seconds. Units are lower-case
 * only and there is no whitespace, so a typo such as `30 m` or `1m30m` is
 * rejected, not guessed.
 */

const DURATION_RE = /^(?:(\d{1,15})d)?(?:(\d{1,15})h)?(?:(\d{1,15})m)?(?:(\d{1,15})s)?$/;
const DIGITS_RE = /^\d{1,15}$/;

const MS_PER_S = 1_000;
const MS_PER_M = 60 * MS_PER_S;
const MS_PER_H = 60 * MS_PER_M;
const MS_PER_D = 24 * MS_PER_H;

/** Milliseconds for a duration, or null when `s` is not one (negative, NaN, malformed, too large). */
export function parseDuration(s: string | number): number | null {
  if (typeof s === 'number') {
    if (!Number.isFinite(s) || s < 0) return null;
    const ms = Math.round(s * MS_PER_S);
    return Number.isSafeInteger(ms) ? ms : null;
  }
  if (typeof s !== 'string' || s.length === 0) return null;
  if (DIGITS_RE.test(s)) {
    const ms = Number(s) * MS_PER_S;
    return Number.isSafeInteger(ms) ? ms : null;
  }
  const m = DURATION_RE.exec(s);
  if (m === null) return null;
  const ms =
    part(m[1], MS_PER_D) + part(m[2], MS_PER_H) + part(m[3], MS_PER_M) + part(m[4], MS_PER_S);
  return Number.isSafeInteger(ms) ? ms : null;
}

function part(digits: string | undefined, unit: number): number {
  return digits === undefined ? 0 : Number(digits) * unit;
}
