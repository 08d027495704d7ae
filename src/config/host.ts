/**
 * Host-header normalization: the key a request's project is looked up by.
 * Config hosts are stored in the same form, so a host matches exactly when
 * `normalizeHost(header) === configuredHost`.
 */

const MAX_HOST_LENGTH = 260; // 253 for the name, plus `:65535` and a trailing dot

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
  if (len === 0 || len > MAX_HOST_LENGTH) return null;
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
