/**
 * Hosts: the normalization of a Host header (the key a request's project is
 * looked up by) and the one check of a host a config names (`parseConfigHost`,
 * which stores it in the same form), so a host matches exactly when
 * `normalizeHost(header) === configuredHost`.
 */

/**
 * The longest host name, in characters: RFC 1035 §2.3.4 allows 255 octets on
 * the wire, where every label carries a length octet and the name ends with
 * the root's empty label; written with dots that is 253 characters (without
 * a trailing dot). RFC 1123 §2.1 asks hosts to handle "up to 255 characters",
 * which counts the same limit loosely: a longer name cannot be looked up in
 * DNS, so a config never names one.
 */
export const MAX_HOST_NAME_LENGTH = 253;
/** A Host header: the longest name, `:65535` and one trailing dot. */
const MAX_HOST_HEADER_LENGTH = MAX_HOST_NAME_LENGTH + ':65535'.length + '.'.length;
/** One label: 1 to 63 characters (RFC 1035 §2.3.4), letters, digits, `-` inside, and `_` as normalizeHost accepts it. */
const LABEL_RE = /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/;
const IPV6_LITERAL_RE = /^\[[0-9a-f:.]{2,45}\]$/;

/**
 * Lower-case, without `:port` and without one trailing dot; `[v6]` literals
 * keep their brackets (`[::1]:8080` → `[::1]`). Returns null for an empty or
 * malformed value: anything but letters, digits, `-`, `.` and `_` in a name
 * (so spaces, control characters, `@`, `/`, `%` are refused), a port that is
 * not 1–5 digits up to 65535, or an unterminated IPv6 literal.
 *
 * Already-normal input (the common case) is returned as the same string.
 */
export function normalizeHost(hostHeader: string): string | null {
  if (typeof hostHeader !== 'string') return null;
  const len = hostHeader.length;
  if (len === 0 || len > MAX_HOST_HEADER_LENGTH) return null;
  if (hostHeader.charCodeAt(0) === 0x5b /* [ */) return normalizeIpLiteral(hostHeader);
  let end = len;
  let upper = false;
  for (let i = 0; i < len; i++) {
    const c = hostHeader.charCodeAt(i);
    if (
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x2d ||
      c === 0x2e ||
      c === 0x5f
    ) {
      continue;
    }
    if (c >= 0x41 && c <= 0x5a) {
      upper = true;
      continue;
    }
    if (c === 0x3a /* : */) {
      if (!isPort(hostHeader, i + 1)) return null;
      end = i;
      break;
    }
    return null;
  }
  if (end > 0 && hostHeader.charCodeAt(end - 1) === 0x2e) end--;
  if (end === 0) return null;
  const host = end === len ? hostHeader : hostHeader.slice(0, end);
  return upper ? host.toLowerCase() : host;
}

/** `[` hex / `:` / `.` `]` with an optional `:port`. */
function normalizeIpLiteral(h: string): string | null {
  const close = h.indexOf(']');
  if (close < 3) return null; // `[]`, `[:]` and no `]` at all
  let upper = false;
  for (let i = 1; i < close; i++) {
    const c = h.charCodeAt(i);
    if ((c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || c === 0x3a || c === 0x2e) continue;
    if (c >= 0x41 && c <= 0x46) {
      upper = true;
      continue;
    }
    return null;
  }
  if (close !== h.length - 1) {
    if (h.charCodeAt(close + 1) !== 0x3a || !isPort(h, close + 2)) return null;
  }
  const host = close === h.length - 1 ? h : h.slice(0, close + 1);
  return upper ? host.toLowerCase() : host;
}

/** 1–5 digits from `start` to the end of `s`, at most 65535. */
function isPort(s: string, start: number): boolean {
  const digits = s.length - start;
  if (digits < 1 || digits > 5) return false;
  let v = 0;
  for (let i = start; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
    v = v * 10 + (c - 0x30);
  }
  return v <= 65535;
}

/**
 * A host as a config names it (`projects[].hosts[]`): the form `normalizeHost`
 * gives a Host header that matches it (lower-case, no trailing dot), or what
 * is wrong with it and how to fix it. No port, path, scheme or wildcard; a
 * name of valid labels within MAX_HOST_NAME_LENGTH, or a bracketed IPv6
 * literal.
 */
export function parseConfigHost(v: string): { host: string } | { problem: string } {
  let h = v.toLowerCase();
  if (h.endsWith('.')) h = h.slice(0, -1);
  if (h.length === 0) return { problem: 'must not be empty; write a host name such as app.example.com' };
  const got = JSON.stringify(v);
  if (h.includes('://')) return { problem: `must be a host name, not a URL: drop the scheme (and any path); got ${got}` };
  if (/\s/.test(h)) return { problem: `must not contain whitespace; got ${got}` };
  if (h.includes('*')) return { problem: `wildcards are not supported; list each host name separately; got ${got}` };
  if (h.includes('/')) return { problem: `must not contain a path: write the host name only; got ${got}` };
  if (h.startsWith('[')) {
    if (/\]:/.test(h)) return { problem: `must not contain a port: hosts are matched without their port; got ${got}` };
    if (!IPV6_LITERAL_RE.test(h) || normalizeHost(h) !== h) return { problem: `is not a valid IPv6 literal such as [::1]; got ${got}` };
    return { host: h };
  }
  if (h.includes(':')) return { problem: `must not contain a port: hosts are matched without their port; got ${got}` };
  if (h.length > MAX_HOST_NAME_LENGTH || normalizeHost(h) !== h || !h.split('.').every((label) => LABEL_RE.test(label))) {
    return { problem: `is not a valid host name (dot-separated labels of letters, digits, "-" and "_", each at most 63 characters); got ${got}` };
  }
  return { host: h };
}
