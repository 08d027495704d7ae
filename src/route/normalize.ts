/**
 * Request-path normalization: the one place that decides which path the
 * authorizer sees. The application behind the Warpgate must end up serving
 * the same resource the route rules were evaluated against, so every input
 * two parsers could read differently is rejected, not guessed at (auth proxies
 * have had advisories exactly there: `/admin/..;/`, `%2e%2e`, `%2f`, `%c0%ae`,
 * full-width `．．`, `/ADMIN` against a case-insensitive router).
 *
 * Two results come out of an accepted path:
 * - `path`: the normalized path, what is forwarded (and what `key` is made of);
 * - `key`: what route rules are matched against. It is `path` with ASCII
 *   letters lower-cased and one trailing slash removed, because the most common
 *   application routers treat those spellings as the same resource (Express,
 *   Koa, ASP.NET and IIS match case-insensitively; Express, Spring and Rails
 *   accept a trailing slash). Matching the folded key means `/ADMIN/` is judged
 *   by the `/admin/*` rule whatever the origin does with case and slashes.
 *   Rule paths are folded the same way when the config is compiled (`routeKey`).
 *
 * docs/SECURITY.md ("Paths") states the whole normalization.
 */

export type NormalizeResult = { ok: true; path: string; key: string } | { ok: false; reason: string };

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
const SEMICOLON = failure('";" in path (servlet containers strip ";params", other origins keep them)');
const BAD_ESCAPE = failure('malformed percent-escape in path');
const ENCODED_SLASH = failure('encoded "/" (%2F) in path');
const ENCODED_BACKSLASH = failure('encoded "\\" (%5C) in path');
const ENCODED_CONTROL = failure('encoded control character in path');
const ENCODED_SEMICOLON = failure('encoded ";" (%3B) in path');
const BAD_UTF8 = failure('escaped bytes in path are not valid UTF-8 (overlong, surrogate or truncated sequence)');
const CONFUSABLE = failure('escaped character in path that normalization or case mapping turns into ASCII (full-width or look-alike)');
const ABOVE_ROOT = failure('".." climbs above the root');

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
const C_UPPER = 10;

const CLASS = new Uint8Array(0x7f);
for (let c = 0; c < 0x20; c++) CLASS[c] = C_CONTROL;
for (let c = 0x41; c <= 0x5a; c++) CLASS[c] = C_UPPER;
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
 * space, `#`, `?`, `;` and bytes above 0x7E; escaped `/` (`%2F`), `\`
 * (`%5C`), `;` (`%3B`) and control characters (`%00`–`%1F`, `%7F`); malformed
 * escapes; escaped bytes ≥ 0x80 that are not strict UTF-8 (overlong forms such
 * as `%C0%AE`, surrogates, truncated sequences) or that decode to a character
 * which NFKC, case mapping or a Windows "best fit" code page turns into ASCII
 * (`%EF%BC%8E` full-width dot, `%E2%88%95` division slash, `%E2%84%AA` Kelvin
 * sign); a `..` that would climb above the root.
 *
 * Otherwise: decodes escapes of unreserved characters and upper-cases the hex
 * of every other escape (RFC 3986 §6.2.2.1–2), merges repeated slashes,
 * removes dot-segments (§5.2.4) and keeps a trailing slash.
 *
 * Fast path: a path with no `%`, `//`, `/.`, upper-case letter or trailing
 * slash is returned as the same string for both `path` and `key`, with only
 * the result object allocated.
 */
export function normalizePath(raw: string): NormalizeResult {
  const len = raw.length;
  if (len === 0 || raw.charCodeAt(0) !== 0x2f) return NOT_ABSOLUTE;
  let slow = false;
  let upper = false;
  let prev = 0x2f;
  for (let i = 1; i < len; i++) {
    const c = raw.charCodeAt(i);
    if (c > 0x7e) return c === 0x7f ? CONTROL : NON_ASCII;
    switch (CLASS[c]) {
      case C_OK:
        break;
      case C_UPPER:
        upper = true;
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
      case C_SEMI:
        return SEMICOLON;
      case C_PERCENT:
        slow = true;
        break;
      case C_SLASH:
      case C_DOT:
        if (prev === 0x2f) slow = true;
        break;
    }
    prev = c;
  }
  if (slow) return normalizeSlow(raw);
  // Already normal; only the key may differ (case, trailing slash).
  if (!upper && (prev !== 0x2f || len === 1)) return { ok: true, path: raw, key: raw };
  return { ok: true, path: raw, key: foldKey(raw) };
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
      const v = escapeAt(raw, i);
      if (v < 0) return BAD_ESCAPE;
      if (v < 0x20 || v === 0x7f) return ENCODED_CONTROL;
      if (v === 0x2f) return ENCODED_SLASH;
      if (v === 0x5c) return ENCODED_BACKSLASH;
      if (v === 0x3b) return ENCODED_SEMICOLON;
      decoded += raw.slice(last, i);
      if (v >= 0x80) {
        // A whole UTF-8 sequence of escapes: validated, then kept escaped (upper-case hex).
        const end = utf8SequenceEnd(raw, i, v);
        if (end < 0) return end === CONFUSABLE_CODE ? CONFUSABLE : BAD_UTF8;
        for (let j = i; j < end; j += 3) decoded += '%' + HEX_UPPER[escapeAt(raw, j) >> 4] + HEX_UPPER[escapeAt(raw, j) & 15];
        last = end;
      } else {
        decoded += isUnreserved(v) ? String.fromCharCode(v) : '%' + HEX_UPPER[v >> 4] + HEX_UPPER[v & 15];
        last = i + 3;
      }
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
      out.push(seg);
    }
    if (isLast) {
      // `/a/b/`, `/a/b/.` and `/a/b/c/..` all name a directory: keep the slash.
      trailing = seg.length === 0 || seg === '.' || seg === '..';
      break;
    }
    pos = end + 1;
  }
  if (out.length === 0) return { ok: true, path: '/', key: '/' };
  let path = '/' + out.join('/') + (trailing ? '/' : '');
  if (path === raw) path = raw;
  return { ok: true, path, key: foldKey(path) };
}

/** Value of the escape `%XY` at `i`, or -1 when it is malformed. */
function escapeAt(s: string, i: number): number {
  const hi = hexValue(s.charCodeAt(i + 1));
  const lo = hexValue(s.charCodeAt(i + 2));
  return hi < 0 || lo < 0 ? -1 : (hi << 4) | lo;
}

const CONFUSABLE_CODE = -2;

/**
 * The escape at `i` holds `lead` ≥ 0x80: the start of a UTF-8 sequence that
 * must continue in escapes. Returns the index after the sequence, -1 when it
 * is not strict UTF-8 (RFC 3629 §4: no overlong forms, no surrogates, nothing
 * above U+10FFFF), or CONFUSABLE_CODE when the character folds to ASCII.
 */
function utf8SequenceEnd(s: string, i: number, lead: number): number {
  let need: number;
  let cp: number;
  let min = 0x80;
  let max = 0xbf; // allowed range of the first continuation byte
  if (lead >= 0xc2 && lead <= 0xdf) {
    need = 1;
    cp = lead & 0x1f;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    need = 2;
    cp = lead & 0x0f;
    if (lead === 0xe0) min = 0xa0; // overlong
    else if (lead === 0xed) max = 0x9f; // surrogates
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    need = 3;
    cp = lead & 0x07;
    if (lead === 0xf0) min = 0x90; // overlong
    else if (lead === 0xf4) max = 0x8f; // above U+10FFFF
  } else {
    return -1; // 0x80–0xC1 (continuation or overlong lead), 0xF5–0xFF
  }
  let j = i + 3;
  for (let k = 0; k < need; k++, j += 3) {
    if (s.charCodeAt(j) !== 0x25) return -1;
    const b = escapeAt(s, j);
    if (b < 0) return -1;
    if (k === 0 ? b < min || b > max : b < 0x80 || b > 0xbf) return -1;
    cp = (cp << 6) | (b & 0x3f);
  }
  return foldsToAscii(cp) ? CONFUSABLE_CODE : j;
}

/**
 * Characters that Windows "best fit" code-page conversion maps onto `/`, `\`,
 * `.` or `;` without any Unicode normalization (WorstFit, 2025): `¥` and `₩`
 * become `\` in the Japanese and Korean code pages, the math and fraction
 * slashes become `/`.
 */
const BEST_FIT = new Set([0x00a5, 0x20a9, 0x2044, 0x2215, 0x2216, 0x2024, 0x2025, 0x29f5, 0x29f8, 0x29f9, 0x3002, 0xfe52, 0xfe68, 0xff61]);

/**
 * True when the character is a best-fit look-alike, when NFKC yields any
 * ASCII character (`．` → `.`, `ﬁ` → `fi`, NBSP → space), or when its simple
 * case mapping is an ASCII letter (Kelvin sign → `k`, `ſ` → `S`, `ı` → `I`,
 * `İ` → `i` plus a combining dot): case-insensitive routers in Java and .NET
 * compare with simple mappings, so `/%E2%84%AAey` would be their `/key`.
 * Full mappings that expand to several letters (`ß` → `SS`) are not simple
 * mappings and stay allowed.
 */
function foldsToAscii(cp: number): boolean {
  if (BEST_FIT.has(cp)) return true;
  const ch = String.fromCodePoint(cp);
  return hasAscii(ch.normalize('NFKC')) || caseMapsToAscii(ch.toLowerCase()) || caseMapsToAscii(ch.toUpperCase());
}

const COMBINING_ONLY = /^\p{M}*$/u;

/** An ASCII character, alone or followed only by combining marks. */
function caseMapsToAscii(mapped: string): boolean {
  return mapped.length > 0 && mapped.charCodeAt(0) < 0x80 && COMBINING_ONLY.test(mapped.slice(1));
}

function hasAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) < 0x80) return true;
  return false;
}

/**
 * The match key of a normalized path: ASCII letters lower-cased (the hex
 * digits of escapes kept upper-case) and one trailing slash removed, except
 * for `/` itself.
 */
function foldKey(path: string): string {
  let end = path.length;
  if (end > 1 && path.charCodeAt(end - 1) === 0x2f) end--;
  let out = '';
  let last = 0;
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x25) {
      i += 2; // escape hex stays as it is
    } else if (c >= 0x41 && c <= 0x5a) {
      out += path.slice(last, i) + String.fromCharCode(c | 0x20);
      last = i + 1;
    }
  }
  if (last === 0) return end === path.length ? path : path.slice(0, end);
  return out + path.slice(last, end);
}

/**
 * The match key of a rule path as written in the config (`/API/v1/*`,
 * `/health/`): the same folding the request path gets, applied to the part
 * before a trailing `/*`. Config paths are validated as normalized paths, so
 * folding is all that is left to do.
 */
export function routeKey(rulePath: string): string {
  if (rulePath.endsWith('/*')) {
    const base = rulePath.slice(0, -2);
    return (base === '' ? '' : foldKey(base)) + '/*';
  }
  return foldKey(rulePath);
}

/**
 * The raw query (after `?`) must be printable ASCII without `#`: uWS hands
 * the edge bytes above 0x7E as Latin-1 characters and keeps a `#`, which an
 * origin would read as the start of a fragment and drop what follows.
 * Returns true when the query may be forwarded as it is.
 */
export function isForwardableQuery(query: string): boolean {
  for (let i = 0; i < query.length; i++) {
    const c = query.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x23) return false;
  }
  return true;
}
