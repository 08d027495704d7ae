/**
 * CSRF protection for every hosted form, the login form included (login CSRF
 * would sign a victim into the attacker's account). Signed double submit: a
 * pre-session cookie holds 256 random bits; each form carries
 * HMAC-SHA256(edge secret, cookie value). A POST passes only when the cookie
 * is present and the form's token is the HMAC of it, so a cross-site page,
 * which can neither read the cookie nor compute the HMAC, cannot forge one.
 * Cross-site POSTs are also refused outright from the browser's own
 * `Origin` / `Sec-Fetch-Site` headers. The cookie is replaced at every
 * sign-in, so a token seen before login is useless after it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const CSRF_COOKIE_SECURE = '__Host-mezu_csrf';
export const CSRF_COOKIE_PLAIN = 'mezu_csrf';
export const CSRF_FIELD = '_csrf';

export class Csrf {
  constructor(private readonly secret: Buffer) {}

  static newCookieValue(): string {
    return randomBytes(32).toString('base64url');
  }

  /** True when the cookie value looks like one we issued (else issue a new one). */
  static isCookieSyntax(v: string): boolean {
    return v.length === 43 && /^[A-Za-z0-9_-]+$/.test(v);
  }

  tokenFor(cookieValue: string): string {
    return createHmac('sha256', this.secret).update('mezu-csrf\u0000').update(cookieValue).digest('base64url');
  }

  /**
   * The token a script must send with a change to the Console's JSON API made
   * with the Console cookie (`X-CSRF-Token`): bound to the session (the SHA-256
   * of its token, as the store keys it), under its own label so a form token
   * is never one and the other way round.
   */
  sessionToken(sessionHash: string): string {
    return createHmac('sha256', this.secret).update('mezu-console-api\u0000').update(sessionHash).digest('base64url');
  }

  checkSession(sessionHash: string, token: string): boolean {
    if (token.length !== 43) return false;
    const a = Buffer.from(this.sessionToken(sessionHash));
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }

  /** Constant-time check of a submitted token against the cookie. */
  check(cookieValue: string, token: string): boolean {
    if (!Csrf.isCookieSyntax(cookieValue) || token.length !== 43) return false;
    const a = Buffer.from(this.tokenFor(cookieValue));
    const b = Buffer.from(token);
    return a.length === b.length && timingSafeEqual(a, b);
  }
}

/**
 * Fetch metadata and Origin: a browser says where a POST came from.
 * `Sec-Fetch-Site`, when sent, decides: only `same-origin` (or `none`, a
 * user-typed navigation) passes. It is also the only reliable signal on pages
 * served with `Referrer-Policy: no-referrer` (reset and signup links), whose
 * form posts carry `Origin: null`. Without it, the Origin must be one of ours.
 * Absent headers pass (old browsers, non-browser clients); the token check
 * still applies. `allowedOrigins`: the request's own origin and the project's public URL.
 */
export function sameOrigin(origin: string, secFetchSite: string, allowedOrigins: readonly string[]): boolean {
  if (secFetchSite !== '') {
    if (secFetchSite !== 'same-origin' && secFetchSite !== 'none') return false;
    return origin === '' || origin === 'null' || allowedOrigins.includes(origin.toLowerCase());
  }
  if (origin !== '' && !allowedOrigins.includes(origin.toLowerCase())) return false;
  return true;
}
