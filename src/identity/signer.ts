/**
 * Signing keys and assertion minting. Keys live in the store (every worker
 * signs with the same active key); retired keys stay published in the JWKS
 * for an overlap so assertions minted just before a rotation still verify.
 */
import type { AssertionClaims, Jwks, PrincipalType } from '../../wire/index.js';
import { ASSERTION_MAX_TTL_S } from '../../wire/index.js';
import type { SigningKeyStore } from '../store/index.js';
import { MezuError } from '../errors/index.js';
import { generateSigningKeyPem, jwkOf, loadSigningKey, mintJwt, type SigningKey } from '../../wire/index.js';

/** Retired keys stay in the JWKS this long: longer than any assertion lives (5 min) plus skew. */
export const RETIRED_KEY_OVERLAP_MS = 15 * 60 * 1000;

export interface PrincipalIdentity {
  type: PrincipalType;
  id: string;
  email: string;
  name: string;
  roles: string[];
  permissions: string[];
  amr: string[];
  authTime: number;
  /** Sessions: `pwd` or `mfa`; absent for keys. */
  acr?: string;
  /** Sessions: when a second factor was last used (ms), absent when never. */
  stepUpTime?: number;
  sid: string;
}

export class Signer {
  private active: SigningKey | null = null;
  private fingerprint = '';
  private jwksCache: Jwks = { keys: [] };
  private jwksJsonCache = '{"keys":[]}';

  constructor(private readonly store: SigningKeyStore, readonly issuer: string) {}

  /** Creates a first key when the store has none. */
  static async ensureKey(store: SigningKeyStore): Promise<void> {
    if (store.active() !== undefined) return;
    const k = generateSigningKeyPem();
    await store.add({ kid: k.kid, privateKeyPem: k.privateKeyPem, publicX: k.publicX, createdAt: Date.now(), retiredAt: null }, false);
  }

  /** Rotates: a new active key, the old one retired but still published for the overlap. */
  static async rotate(store: SigningKeyStore): Promise<string> {
    const k = generateSigningKeyPem();
    await store.add({ kid: k.kid, privateKeyPem: k.privateKeyPem, publicX: k.publicX, createdAt: Date.now(), retiredAt: null }, true);
    const now = Date.now();
    for (const old of store.all()) if (old.retiredAt !== null && now - old.retiredAt > RETIRED_KEY_OVERLAP_MS) await store.remove(old.kid);
    return k.kid;
  }

  /** Re-reads keys from the store; cheap when nothing changed. Returns true when the key set changed. */
  reload(now: number = Date.now()): boolean {
    const all = this.store.all().filter((k) => k.retiredAt === null || now - k.retiredAt <= RETIRED_KEY_OVERLAP_MS);
    const fp = all.map((k) => `${k.kid}:${k.retiredAt ?? ''}`).join(',');
    if (fp === this.fingerprint) return false;
    this.fingerprint = fp;
    const act = all.filter((k) => k.retiredAt === null).sort((a, b) => b.createdAt - a.createdAt)[0];
    this.active = act === undefined ? null : loadSigningKey(act.kid, act.privateKeyPem, act.publicX);
    this.jwksCache = { keys: all.map((k) => jwkOf(k.kid, k.publicX)) };
    this.jwksJsonCache = JSON.stringify(this.jwksCache);
    return true;
  }

  get activeKid(): string | null {
    return this.active === null ? null : this.active.kid;
  }
  jwks(): Jwks {
    return this.jwksCache;
  }
  jwksJson(): string {
    return this.jwksJsonCache;
  }

  /** Mints an assertion for `projectId`; throws MEZU_SIGNING_KEY_MISSING when there is no key (the caller denies). */
  mint(projectId: string, p: PrincipalIdentity, nowMs: number): { token: string; exp: number; kid: string } {
    const key = this.active;
    if (key === null) throw new MezuError('MEZU_SIGNING_KEY_MISSING');
    const iat = Math.floor(nowMs / 1000);
    const exp = iat + ASSERTION_MAX_TTL_S;
    const claims: AssertionClaims = {
      iss: this.issuer,
      aud: projectId,
      sub: p.id,
      typ: p.type,
      email: p.email,
      name: p.name,
      amr: p.amr,
      auth_time: Math.floor(p.authTime / 1000),
      ...(p.acr !== undefined ? { acr: p.acr } : {}),
      ...(p.stepUpTime !== undefined ? { step_up_time: Math.floor(p.stepUpTime / 1000) } : {}),
      roles: p.roles,
      permissions: p.permissions,
      sid: p.sid,
      iat,
      exp,
    };
    return { token: mintJwt(key, claims), exp: exp * 1000, kid: key.kid };
  }
}
