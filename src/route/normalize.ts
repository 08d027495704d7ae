/**
 * Request-path normalization: the one place that decides which path the
 * authorizer sees. The application behind the Warpgate must end up serving
 * the same resource the route rules were evaluated against, so every input
 * two parsers could read differently is rejected, not guessed at (auth proxies
 * have had advisories exactly there: `/admin/..;/`, `%2e%2e`, `%2f`).
 *
 * The result is what route rules are matched against and what is forwarded.
 */

export type NormalizeResult = { ok: true; path: string } | { ok: false; reason: string };

type Failure = { readonly ok: false; readonly reason: string };

// Failures are prebuilt: a rejected request allocates nothing here.
function failure(reason: string): Failure {
  return Object.freeze({ ok: false as const, reason });
}
const NOT_ABSOLUTE = failure('path must start with "/"');
const CONTROL = failure('control character in path');
const BACKSLASH = failure('backslash in path');
const SPACE = failure('space in path');
const NON_ASCII = failure('non-ASCII byte in path');
const FRAGMENT = failure('"#" in path');
const QUERY = failure('"?" in path (the query must be split off before normalizing)');
const BAD_ESCAPE = failure('malformed percent-escape in path');
const ENCODED_SLASH = failure('encoded "/" (%2F) in path');
const ENCODED_BACKSLASH = failure('encoded "\\" (%5C) in path');
const ENCODED_CONTROL = failure('encoded control character in path');
const ABOVE_ROOT = failure('".." climbs above the root');
const DOT_PARAMS = failure('dot-segment with ";" parameters in path');

// Character classes for 0x00–0x7E (above that: rejected before lookup).
const C_OK = 0;
const C_CONTROL = 1;
const C_BACKSLASH = 2;
const C_SPACE = 3;
const C_HASH = 4;
const C_QUERY = 5;
const C_PERCENT = 6;
const C_SLASH = 7;
const C_DOT = 8;
const C_SEMI = 9;

const CLASS = new Uint8Array(0x7f);
for (let c = 0; c < 0x20; c++) CLASS[c] = C_CONTROL;
CLASS[0x20] = C_SPACE;
CLASS[0x23] = C_HASH;
CLASS[0x25] = C_PERCENT;
CLASS[0x2e] = C_DOT;
CLASS[0x2f] = C_SLASH;
CLASS[0x3b] = C_SEMI;
CLASS[0x3f] = C_QUERY;
CLASS[0x5c] = C_BACKSLASH;

const HEX_UPPER = '0123456789ABCDEF';

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1; // also for NaN (past the end of the string)
}

/** RFC 3986 §2.3 unreserved: ALPHA / DIGIT / "-" / "." / "_" / "~". */
function isUnreserved(c: number): boolean {
  return (
    (c >= 0x41 && c <= 0x5a) ||
    (c >= 0x61 && c <= 0x7a) ||
    (c >= 0x30 && c <= 0x39) ||
    c === 0x2d ||
    c === 0x2e ||
    c === 0x5f ||
    c === 0x7e
  );
}

/**
 * Normalize a request-target path as received (no query).
 *
 * Rejects: no leading `/`; NUL and every control character; literal `\`,
 * space, `#`, `?` and bytes above 0x7E; escaped `/` (`%2F`), `\` (`%5C`) and
 * control characters (`%00`–`%1F`, `%7F`); malformed escapes; a `..` that
 * would climb above the root; a segment that is `.` or `..` once its
 * `;params` are removed (servlet containers strip them and would traverse).
 *
 * Otherwise: decodes escapes of unreserved characters and upper-cases the hex
 * of every other escape (RFC 3986 §6.2.2.1–2), merges repeated slashes,
 * removes dot-segments (§5.2.4) and keeps a trailing slash.
 *
 * Fast path: a path with no `%`, `//`, `/.` or `;` is returned as the same
 * string, with only the result object allocated.
 */
export function normalizePath(raw: string): NormalizeResult {
  const len = raw.length;
  if (len === 0 || raw.charCodeAt(0) !== 0x2f) return NOT_ABSOLUTE;
  let slow = false;
  let prev = 0x2f;
  for (let i = 1; i < len; i++) {
    const c = raw.charCodeAt(i);
    if (c > 0x7e) return c === 0x7f ? CONTROL : NON_ASCII;
    switch (CLASS[c]) {
      case C_OK:
        break;
      case C_CONTROL:
        return CONTROL;
      case C_BACKSLASH:
        return BACKSLASH;
      case C_SPACE:
        return SPACE;
      case C_HASH:
        return FRAGMENT;
      case C_QUERY:
        return QUERY;
      case C_PERCENT:
      case C_SEMI:
        slow = true;
        break;
      case C_SLASH:
      case C_DOT:
        if (prev === 0x2f) slow = true;
        break;
    }
    prev = c;
  }
  if (!slow) return { ok: true, path: raw };
  return normalizeSlow(raw);
}

/** Every character is already known to be allowed; escapes are not yet checked. */
function normalizeSlow(raw: string): NormalizeResult {
  // 1. Escapes first, so `%2e%2E` is a dot-segment by the time segments are read.
  let decoded = raw;
  let i = raw.indexOf('%');
  if (i !== -1) {
    decoded = '';
    let last = 0;
    while (i !== -1) {
      const hi = hexValue(raw.charCodeAt(i + 1));
      const lo = hexValue(raw.charCodeAt(i + 2));
      if (hi < 0 || lo < 0) return BAD_ESCAPE;
      const v = (hi << 4) | lo;
      if (v < 0x20 || v === 0x7f) return ENCODED_CONTROL;
      if (v === 0x2f) return ENCODED_SLASH;
      if (v === 0x5c) return ENCODED_BACKSLASH;
      decoded += raw.slice(last, i);
      decoded += isUnreserved(v)
        ? String.fromCharCode(v)
        : '%' + HEX_UPPER[hi] + HEX_UPPER[lo];
      last = i + 3;
      i = raw.indexOf('%', last);
    }
    decoded += raw.slice(last);
  }

  // 2. Segments: drop empty ones (merged slashes) and `.`, pop on `..`.
  const out: string[] = [];
  const n = decoded.length;
  let trailing = false;
  let pos = 1;
  for (;;) {
    let end = decoded.indexOf('/', pos);
    const isLast = end === -1;
    if (isLast) end = n;
    const seg = decoded.slice(pos, end);
    if (seg === '..') {
      if (out.length === 0) return ABOVE_ROOT;
      out.pop();
    } else if (seg.length !== 0 && seg !== '.') {
      const semi = seg.indexOf(';');
      if (semi !== -1) {
        const name = seg.slice(0, semi);
        if (name === '.' || name === '..') return DOT_PARAMS;
      }
      out.push(seg);
    }
    if (isLast) {
      // `/a/b/`, `/a/b/.` and `/a/b/c/..` all name a directory: keep the slash.
      trailing = seg.length === 0 || seg === '.' || seg === '..';
      break;
    }
    pos = end + 1;
  }
  if (out.length === 0) return { ok: true, path: '/' };
  const path = '/' + out.join('/') + (trailing ? '/' : '');
  return { ok: true, path: path === raw ? raw : path };
}
