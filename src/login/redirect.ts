/**
 * `rd`: where to send the user after signing in. Only a relative path on the
 * same host is accepted; anything else falls back to `/`. Browsers read
 * `//evil.example` and `/\evil.example` as other hosts (WHATWG URL treats `\`
 * as `/` in special schemes), and tolerate tabs and newlines inside URLs, so
 * each of those is refused, in raw form and once percent-decoded (an
 * intermediate that decodes before redirecting would otherwise re-open it).
 */
import { RESERVED_PATH_PREFIX } from '../../wire/index.js';

export const DEFAULT_RETURN_PATH = '/';
const MAX_RD_LENGTH = 2048;
/** Hosted pages a sign-in may return to. */
const RETURNABLE: ReadonlySet<string> = new Set(['/_mezu/step-up', '/_mezu/account/security']);

/** The value to redirect to: `rd` when it is a safe same-host relative path, else `/`. */
export function safeReturnPath(rd: string | null | undefined): string {
  if (typeof rd !== 'string' || rd.length === 0 || rd.length > MAX_RD_LENGTH) return DEFAULT_RETURN_PATH;
  if (!isSafePath(rd)) return DEFAULT_RETURN_PATH;
  let decoded: string;
  try {
    decoded = decodeURIComponent(rd);
  } catch {
    return DEFAULT_RETURN_PATH;
  }
  if (decoded !== rd && !isSafeDecoded(decoded)) return DEFAULT_RETURN_PATH;
  // Never back into the hosted pages (a loop, or a logout after login), but for the two that send
  // a user through sign-in on purpose: the step-up page and the account's security page.
  if (decoded === '/_mezu' || decoded.startsWith(RESERVED_PATH_PREFIX)) return RETURNABLE.has(decoded.split('?')[0]!) ? rd : DEFAULT_RETURN_PATH;
  return rd;
}

function isSafePath(p: string): boolean {
  if (p.charCodeAt(0) !== 0x2f /* / */) return false;
  const c1 = p.charCodeAt(1);
  if (c1 === 0x2f || c1 === 0x5c /* \ */) return false;
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    // Controls (CR, LF, TAB, NUL…), space, DEL, backslash and anything non-ASCII.
    if (c <= 0x20 || c >= 0x7f || c === 0x5c) return false;
  }
  return true;
}

/** The decoded form may hold spaces and non-ASCII text (`/docs/a%20b`); never a host-changing start, a backslash or a control. */
function isSafeDecoded(p: string): boolean {
  const c1 = p.charCodeAt(1);
  if (p.charCodeAt(0) !== 0x2f || c1 === 0x2f || c1 === 0x5c) return false;
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x5c) return false;
  }
  return true;
}
