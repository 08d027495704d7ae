/**
 * The Warpgate's second layer: verifies the edge's assertion (signature with
 * the JWKS the edge handed over the mTLS tunnel, audience, issuer, time) and
 * caches the result per token, so a session's requests cost one signature
 * check per assertion lifetime, not one per request.
 */
import { KeySet } from './jwt.js';
import { ASSERTION_CLOCK_SKEW_S, ASSERTION_MAX_TTL_S, IdentityHeader, type AssertionClaims, type Jwks } from './contract.js';

/**
 * A verified assertion, built once per token and returned as it is for every
 * request that carries it (no object per request). `identity` is the flat
 * [name, value, …] list of identity headers the application receives
 * (everything but the request id and the assertion); `lines` is the same
 * plus the assertion itself, serialized as HTTP/1.1 field lines
 * (`name: value\r\n` each) for the Warpgate's origin request. Every value is
 * visible ASCII (headerSafe), and the token is base64url and dots (its
 * signature verified), so the lines need no further checking.
 */
export interface Verified {
  readonly ok: true;
  readonly claims: AssertionClaims;
  readonly identity: readonly string[];
  readonly lines: string;
}

export type Verdict = Verified | { ok: false; reason: string };

/** Header values must be visible ASCII; anything else is percent-encoded so the app can decode it. */
export function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

function identityHeaders(c: AssertionClaims): readonly string[] {
  const h = [
    IdentityHeader.userId, headerSafe(c.sub),
    IdentityHeader.userEmail, headerSafe(c.email),
    IdentityHeader.userName, headerSafe(c.name),
    IdentityHeader.principalType, headerSafe(c.typ),
    IdentityHeader.authMethod, headerSafe(c.amr.join(',')),
    IdentityHeader.authTime, String(c.auth_time),
    IdentityHeader.roles, headerSafe(c.roles.join(',')),
    IdentityHeader.permissions, headerSafe(c.permissions.join(',')),
  ];
  // New optional claims (second factors): sent only when the edge put them in the assertion.
  if (typeof c.acr === 'string') h.push(IdentityHeader.authAcr, headerSafe(c.acr));
  if (typeof c.step_up_time === 'number' && Number.isFinite(c.step_up_time)) h.push(IdentityHeader.stepUpTime, String(Math.floor(c.step_up_time)));
  return Object.freeze(h);
}

const JWT_TEXT = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Bounded: when full, the cache is cleared (a re-verify costs ~60 µs, a leak costs the process). */
export const VERIFY_CACHE_MAX = 50_000;

export class AssertionVerifier {
  private keys: KeySet = new KeySet({ keys: [] });
  private issuer = '';
  private audiences = new Set<string>();
  private readonly cache = new Map<string, Verified>();

  constructor(private readonly now: () => number = Date.now) {}

  /** New trust material from a tunnel hello. Clears the cache when keys change. */
  update(jwks: Jwks, issuer: string, projects: string[]): void {
    const fp = JSON.stringify([jwks, issuer, projects]);
    if (fp === this.fingerprint) return;
    this.fingerprint = fp;
    this.keys = new KeySet(jwks);
    this.issuer = issuer;
    this.audiences = new Set(projects);
    this.cache.clear();
  }
  private fingerprint = '';

  get ready(): boolean {
    return this.keys.size > 0;
  }

  /** Verifies `token` for a request the edge said belongs to `project`. */
  verify(token: string, project: string): Verdict {
    const nowS = this.now() / 1000;
    let e = this.cache.get(token);
    if (e === undefined) {
      // Its text goes into the origin's request head verbatim (`lines`): base64url and dots only.
      if (!JWT_TEXT.test(token)) return { ok: false, reason: 'malformed' };
      const r = this.keys.verify(token);
      if (!r.ok) return r;
      const claims = r.claims;
      if (claims.iss !== this.issuer) return { ok: false, reason: 'wrong issuer' };
      if (!this.audiences.has(claims.aud)) return { ok: false, reason: 'audience not served here' };
      if (claims.exp - claims.iat > ASSERTION_MAX_TTL_S) return { ok: false, reason: 'lifetime too long' };
      if (claims.iat > nowS + ASSERTION_CLOCK_SKEW_S) return { ok: false, reason: 'issued in the future' };
      if (!Array.isArray(claims.roles) || !Array.isArray(claims.permissions) || !Array.isArray(claims.amr)) return { ok: false, reason: 'bad claims' };
      const identity = identityHeaders(claims);
      let lines = '';
      for (let i = 0; i < identity.length; i += 2) lines += `${identity[i]!}: ${identity[i + 1]!}\r\n`;
      e = Object.freeze({ ok: true as const, claims, identity, lines: `${lines}${IdentityHeader.assertion}: ${token}\r\n` });
      if (this.cache.size >= VERIFY_CACHE_MAX) this.cache.clear();
      this.cache.set(token, e);
    }
    // Time and audience-vs-request are checked on every use, cached or not.
    if (e.claims.exp + ASSERTION_CLOCK_SKEW_S <= nowS) {
      this.cache.delete(token);
      return { ok: false, reason: 'expired' };
    }
    if (e.claims.aud !== project) return { ok: false, reason: 'audience mismatch' };
    return e;
  }

}
