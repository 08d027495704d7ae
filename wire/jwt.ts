/**
 * EdDSA (Ed25519) JWTs for the identity assertion (RFC 8037, RFC 7519).
 * Minting happens once per session (and on refresh), never per request: an
 * Ed25519 signature costs tens of µs, which alone would exceed the edge's
 * per-request budget (docs/ARCHITECTURE.md, "Budgets").
 */
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, randomBytes, type KeyObject } from 'node:crypto';
import type { AssertionClaims, Jwk, Jwks } from './contract.js';

export interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicX: string;
  /** Precomputed base64url of the JWT header for this kid. */
  headerB64: string;
}

export function generateSigningKeyPem(): { kid: string; privateKeyPem: string; publicX: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const jwk = publicKey.export({ format: 'jwk' }) as { x: string };
  return {
    kid: randomBytes(9).toString('base64url'),
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }) as string,
    publicX: jwk.x,
  };
}

export function loadSigningKey(kid: string, privateKeyPem: string, publicX: string): SigningKey {
  return {
    kid,
    privateKey: createPrivateKey(privateKeyPem),
    publicX,
    headerB64: b64json({ alg: 'EdDSA', kid, typ: 'JWT' }),
  };
}

export function jwkOf(kid: string, publicX: string): Jwk {
  return { kty: 'OKP', crv: 'Ed25519', x: publicX, kid, alg: 'EdDSA', use: 'sig' };
}

export function mintJwt(key: SigningKey, claims: AssertionClaims): string {
  const input = `${key.headerB64}.${b64json(claims)}`;
  const sig = sign(null, Buffer.from(input), key.privateKey);
  return `${input}.${sig.toString('base64url')}`;
}

function b64json(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

export type VerifyResult = { ok: true; claims: AssertionClaims } | { ok: false; reason: string };

/** Public keys of a JWKS, imported once. */
export class KeySet {
  private readonly keys = new Map<string, KeyObject>();
  constructor(jwks: Jwks) {
    for (const k of jwks.keys) {
      if (k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || typeof k.kid !== 'string') continue;
      this.keys.set(k.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x }, format: 'jwk' }));
    }
  }
  get size(): number {
    return this.keys.size;
  }
  /**
   * Verifies signature and structure only; audience, issuer and time are the
   * caller's (they depend on its context and clock).
   */
  verify(token: string): VerifyResult {
    const d1 = token.indexOf('.');
    const d2 = d1 < 0 ? -1 : token.indexOf('.', d1 + 1);
    if (d1 <= 0 || d2 <= d1 + 1 || d2 === token.length - 1 || token.indexOf('.', d2 + 1) !== -1) return { ok: false, reason: 'malformed' };
    let header: { alg?: unknown; kid?: unknown; typ?: unknown };
    let claims: AssertionClaims;
    try {
      header = JSON.parse(Buffer.from(token.slice(0, d1), 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(token.slice(d1 + 1, d2), 'base64url').toString('utf8'));
    } catch {
      return { ok: false, reason: 'malformed' };
    }
    if (header === null || typeof header !== 'object' || header.alg !== 'EdDSA' || typeof header.kid !== 'string') return { ok: false, reason: 'bad header' };
    const key = this.keys.get(header.kid);
    if (key === undefined) return { ok: false, reason: 'unknown kid' };
    const sigText = token.slice(d2 + 1);
    const sig = Buffer.from(sigText, 'base64url');
    // Node's base64url decoder skips stray characters and ignores spare bits; insist on the
    // one canonical spelling so an assertion has exactly one text (the Warpgate caches by it).
    if (sig.length !== 64 || sig.toString('base64url') !== sigText) return { ok: false, reason: 'bad signature' };
    if (!verify(null, Buffer.from(token.slice(0, d2)), key, sig)) return { ok: false, reason: 'bad signature' };
    if (claims === null || typeof claims !== 'object' || typeof claims.sub !== 'string' || typeof claims.exp !== 'number' || typeof claims.iat !== 'number' || typeof claims.aud !== 'string') {
      return { ok: false, reason: 'bad claims' };
    }
    return { ok: true, claims };
  }
}
