/**
 * The field checks every schema uses, and how problems are worded: a mapping
 * with known keys (an unknown one gets a "did you mean"), a list whose items
 * are each checked and collected, ids, display names, whole numbers and
 * durations. Every check pushes its problems (location and how to fix it)
 * and returns null (or undefined where null is a valid value) instead of
 * throwing, so one pass reports every problem.
 */
import type { ConfigProblem } from '../types.js';
import { parseDuration } from '../../runtime/index.js';

export type Problems = ConfigProblem[];
export type Mapping = Record<string, unknown>;

/** `at` for problems with the document as a whole. */
export const ROOT = '(root)';

const ID_RE = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ID_HINT =
  'lower-case letters, digits and "-", starting with a letter or digit, at most 63 characters';
const MAX_NAME_LENGTH = 200;
const DURATION_HINT =
  'must be a duration such as 30s, 30m, 24h, 7d or 1h30m (a bare number means seconds)';

/**
 * A list at `at`: `v` must be one (else "`shape.what`; got …"), and not
 * empty when `shape.empty` says why. Each item is checked at `at[i]` by
 * `item`, which sees the items accepted before it (to refuse a duplicate)
 * and returns the item, or null with its problem pushed. Returns every
 * accepted item, or null when the list or any item had a problem (all of
 * them reported).
 */
export function validateList<T>(
  v: unknown,
  at: string,
  problems: Problems,
  shape: { what: string; empty?: string },
  item: (x: unknown, itemAt: string, accepted: readonly T[]) => T | null,
): T[] | null {
  if (!Array.isArray(v)) {
    problems.push({ at, message: `${shape.what}; got ${describe(v)}` });
    return null;
  }
  if (v.length === 0 && shape.empty !== undefined) {
    problems.push({ at, message: shape.empty });
    return null;
  }
  const before = problems.length;
  const out: T[] = [];
  for (let i = 0; i < v.length; i++) {
    const x = item(v[i], `${at}[${i}]`, out);
    if (x !== null) out.push(x);
  }
  return problems.length === before ? out : null;
}

export function validateId(v: unknown, at: string, what: string, problems: Problems): string | null {
  if (v === undefined || v === null) {
    problems.push({ at, message: `is required: a ${what} (${ID_HINT})` });
    return null;
  }
  if (typeof v !== 'string' || !ID_RE.test(v)) {
    problems.push({ at, message: `must be ${ID_HINT}; got ${describe(v)}` });
    return null;
  }
  return v;
}

/** Returns the name, null when absent (default: the id), or undefined-as-null on a problem. */
export function validateName(v: unknown, at: string, problems: Problems): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== 'string' || v.trim().length === 0 || v.length > MAX_NAME_LENGTH) {
    problems.push({
      at,
      message: `must be a non-empty display name of at most ${MAX_NAME_LENGTH} characters, or be removed (it defaults to the id); got ${describe(v)}`,
    });
    return null;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) {
    problems.push({ at, message: 'must not contain control characters (newlines, tabs, …)' });
    return null;
  }
  return v;
}

export function validateInt(v: unknown, at: string, dflt: number, min: number, max: number, problems: Problems): number | null {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    problems.push({ at, message: `must be a whole number from ${min} to ${max}; got ${describe(v)}` });
    return null;
  }
  return v;
}

export function validateDuration(
  v: unknown,
  at: string,
  fallback: string,
  problems: Problems,
): number | null {
  if (v === undefined || v === null) return parseDuration(fallback);
  const ms = typeof v === 'string' || typeof v === 'number' ? parseDuration(v) : null;
  if (ms === null) {
    problems.push({ at, message: `${DURATION_HINT}; got ${describe(v)}` });
    return null;
  }
  if (ms <= 0) {
    problems.push({ at, message: `must be longer than 0; got ${describe(v)}` });
    return null;
  }
  return ms;
}

export function isMapping(v: unknown): v is Mapping {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Own property only: `constructor` or `__proto__` never read through the prototype. */
export function own(obj: Mapping, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
}

export function checkKeys(obj: Mapping, allowed: readonly string[], at: string, problems: Problems): void {
  for (const key of Object.keys(obj)) {
    if (allowed.includes(key)) continue;
    const keyAt = at === '' ? formatKey(key, true) : `${at}${formatKey(key, false)}`;
    const guess = closest(key, allowed);
    problems.push({
      at: keyAt,
      message:
        `unknown key${guess === null ? '' : `; did you mean "${guess}"?`}` +
        ` (allowed here: ${allowed.join(', ')})`,
    });
  }
}

function formatKey(key: string, first: boolean): string {
  if (/^[A-Za-z_$][\w$-]*$/.test(key)) return first ? key : `.${key}`;
  return `[${JSON.stringify(key)}]`;
}

/** The allowed key within edit distance 2 of `key`, if any (catches `rolse`, `hots`). */
function closest(key: string, allowed: readonly string[]): string | null {
  const lower = key.toLowerCase();
  let best: string | null = null;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = editDistance(lower, candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Damerau–Levenshtein (optimal string alignment): a swapped pair counts as one edit. */
function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2 || a.length > 64) return 3;
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) {
    rows.push(new Array<number>(b.length + 1).fill(0));
    rows[i]![0] = i;
  }
  for (let j = 0; j <= b.length; j++) rows[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(rows[i - 1]![j]! + 1, rows[i]![j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, rows[i - 2]![j - 2]! + 1);
      }
      rows[i]![j] = d;
    }
  }
  return rows[a.length]![b.length]!;
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') {
    return v.length > 60 ? `${JSON.stringify(v.slice(0, 60))}…` : JSON.stringify(v);
  }
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (isMapping(v)) return 'a mapping';
  return `a value of type ${typeof v === 'object' ? 'object' : typeof v}`;
}

export function formatMs(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

export function firstLine(s: string): string {
  const nl = s.indexOf('\n');
  return nl === -1 ? s : s.slice(0, nl);
}

export function errorMessage(err: unknown): string {
  try {
    return err instanceof Error ? err.message : String(err);
  } catch {
    return 'unknown error';
  }
}
