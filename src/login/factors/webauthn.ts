/**
 * Passkeys (W3C WebAuthn Level 2) with `@simplewebauthn/server`: options for
 * the browser, verification of what it answers, and the challenges.
 *
 * Relying party. The RP id is the host name the page was served on (one of
 * the project's configured hosts: the edge matched it before any hosted page
 * runs), the expected origin that host with the edge's scheme and port. A
 * passkey is therefore scoped to that host name (L2 §5.1.3: a credential is
 * usable only under the RP id it was created for); an IP address is not a
 * valid RP id (L2 §5.1.3 takes a "valid domain"), so passkeys need a name.
 *
 * Challenges (L2 §13.4.3: at least 16 random bytes, made by the RP, used
 * once). Ours are stateless until answered, so showing a login page writes
 * nothing to the store: 16 random bytes, the expiry, and an HMAC under an
 * edge secret over those, the ceremony's purpose and a binding — the SHA-256
 * of the session token (enrolment, step-up), of the pending sign-in's token
 * (second factor after the password) or of the CSRF cookie (passwordless
 * sign-in). A challenge therefore only verifies for the browser, session and
 * step it was made for, until it expires; the first answer records its random
 * part in the store until then (EmailTokenStore.claim), so it is answered once.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { PasskeyRecord } from '../../store/index.js';

/**
 * How long a challenge is good for. L2 §5.4 (`timeout`) recommends 300 s to
 * 600 s when user verification is asked; the browser is told 300 s, and the
 * challenge lives a minute longer for the form post that carries the answer.
 */
export const CEREMONY_TIMEOUT_MS = 300_000;
export const CHALLENGE_TTL_MS = CEREMONY_TIMEOUT_MS + 60_000;

/** What a challenge is for: making a passkey, or using one (after the password, for a step-up, or alone). */
export type CeremonyPurpose = 'register' | 'second_factor' | 'step_up' | 'passwordless';

const VERSION = 1;
const RANDOM_BYTES = 16;
const MAC_BYTES = 16;
const HEAD_BYTES = 1 + 6 + RANDOM_BYTES;
const CHALLENGE_BYTES = HEAD_BYTES + MAC_BYTES;

/** The binding of a challenge to a token or cookie value: its SHA-256, so the MAC never takes a secret in clear. */
export function bindingOf(value: string): string {
  return createHash('sha256').update(value).digest('base64url');
}

export class Challenges {
  constructor(private readonly secret: Buffer) {}

  /** A fresh challenge for `purpose`, bound to `binding` (bindingOf), good until `now + CHALLENGE_TTL_MS`. */
  make(purpose: CeremonyPurpose, binding: string, now: number): Uint8Array<ArrayBuffer> {
    const b = Buffer.alloc(CHALLENGE_BYTES);
    b[0] = VERSION;
    b.writeUIntBE(now + CHALLENGE_TTL_MS, 1, 6);
    randomBytes(RANDOM_BYTES).copy(b, 7);
    this.mac(purpose, binding, b.subarray(0, HEAD_BYTES)).copy(b, HEAD_BYTES);
    const out = new Uint8Array(CHALLENGE_BYTES);
    out.set(b);
    return out;
  }

  /**
   * The challenge's single-use id and expiry when `challenge` (base64url, as
   * in clientDataJSON) is one of ours for `purpose` and `binding` and has not
   * expired; null otherwise. The caller claims the id before accepting.
   */
  open(challenge: string, purpose: CeremonyPurpose, binding: string, now: number): { id: string; expiresAt: number } | null {
    if (typeof challenge !== 'string' || challenge.length > 128) return null;
    const b = Buffer.from(challenge, 'base64url');
    if (b.length !== CHALLENGE_BYTES || b[0] !== VERSION) return null;
    const want = this.mac(purpose, binding, b.subarray(0, HEAD_BYTES));
    if (!timingSafeEqual(want, b.subarray(HEAD_BYTES))) return null;
    const expiresAt = b.readUIntBE(1, 6);
    if (expiresAt <= now) return null;
    return { id: `webauthn:${b.subarray(7, HEAD_BYTES).toString('hex')}`, expiresAt };
  }

  private mac(purpose: string, binding: string, head: Buffer): Buffer {
    return createHmac('sha256', this.secret).update('mezu-webauthn-challenge\u0000').update(purpose).update('\u0000').update(binding).update('\u0000').update(head).digest().subarray(0, MAC_BYTES);
  }
}

export interface RelyingParty {
  /** The RP id: the page's host name. */
  id: string;
  /** Shown by the browser when a passkey is made: the project's brand name. */
  name: string;
  /** The origin the browser must report in clientDataJSON (L2 §7.1 step 9, §7.2 step 13). */
  origin: string;
}

/** The relying party of a page served on `hostHeader` (a configured project host), or null when it is an IP address. */
export function relyingParty(scheme: 'http' | 'https', hostHeader: string, name: string): RelyingParty | null {
  const host = hostHeader.toLowerCase();
  const name0 = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  if (name0 === '' || isIP(name0) !== 0) return null;
  return { id: name0, name, origin: `${scheme}://${host}` };
}

/**
 * Options for making a passkey (L2 §5.4). A discoverable credential with user
 * verification required (L2 §5.4.6 `residentKey`, §5.4.4): the same passkey
 * then serves as a second factor and for passwordless sign-in, where the
 * account is found from the credential (its user handle) and UV is the second
 * factor. No attestation (`none`): the edge does not restrict authenticator
 * models, and asking for one would only add a privacy prompt. The user's
 * existing passkeys are excluded so an authenticator is not registered twice.
 */
export function registrationOptions(rp: RelyingParty, user: { id: string; email: string; name: string }, existing: readonly PasskeyRecord[], challenge: Uint8Array<ArrayBuffer>): Promise<PublicKeyCredentialCreationOptionsJSON> {
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    // The user handle: the opaque user id (L2 §14.6.1: not an email or a name).
    userID: new Uint8Array(Buffer.from(user.id, 'utf8')),
    userName: user.email,
    userDisplayName: user.name === '' ? user.email : user.name,
    challenge,
    timeout: CEREMONY_TIMEOUT_MS,
    attestationType: 'none',
    excludeCredentials: existing.filter((k) => k.rpId === rp.id).map((k) => ({ id: k.id, transports: k.transports as AuthenticatorTransportFuture[] })),
    authenticatorSelection: { residentKey: 'required', userVerification: 'required' },
  });
}

/**
 * Options for using a passkey (L2 §5.5). `allow`: the user's passkeys when the
 * user is known (after the password, a step-up); null for passwordless sign-in,
 * where the browser offers the discoverable credentials it has for this RP id.
 */
export function authenticationOptions(rp: RelyingParty, allow: readonly PasskeyRecord[] | null, userVerification: 'required' | 'preferred', challenge: Uint8Array<ArrayBuffer>): Promise<PublicKeyCredentialRequestOptionsJSON> {
  return generateAuthenticationOptions({
    rpID: rp.id,
    challenge,
    timeout: CEREMONY_TIMEOUT_MS,
    userVerification,
    ...(allow === null ? {} : { allowCredentials: allow.filter((k) => k.rpId === rp.id).map((k) => ({ id: k.id, transports: k.transports as AuthenticatorTransportFuture[] })) }),
  });
}

/** The form field the page script fills with the browser's answer (PublicKeyCredential as JSON). */
export const CREDENTIAL_FIELD = 'credential';

interface Answer {
  id: string;
  rawId: string;
  type: string;
  response: { clientDataJSON: string; [k: string]: unknown };
  clientExtensionResults?: unknown;
}

/** The browser's answer parsed from the form, and the challenge its clientDataJSON names; null when malformed. */
export function parseAnswer(field: string): { answer: Answer; challenge: string } | null {
  if (field === '' || field.length > 12_000) return null;
  try {
    const a = JSON.parse(field) as Answer;
    if (typeof a !== 'object' || a === null || typeof a.id !== 'string' || typeof a.rawId !== 'string' || a.type !== 'public-key' || typeof a.response !== 'object' || a.response === null || typeof a.response.clientDataJSON !== 'string') return null;
    a.clientExtensionResults ??= {};
    const cd = JSON.parse(Buffer.from(a.response.clientDataJSON, 'base64url').toString('utf8')) as { challenge?: unknown };
    if (typeof cd.challenge !== 'string') return null;
    return { answer: a, challenge: cd.challenge };
  } catch {
    return null;
  }
}

export type Verified<T> = { ok: true; value: T } | { ok: false; reason: string };

/**
 * Verifies a registration (L2 §7.1: type, challenge, origin, RP id hash, user
 * presence and verification, the public key's algorithm). The challenge was
 * checked and claimed by the caller; it is compared again here.
 */
export async function verifyRegistration(rp: RelyingParty, answer: Answer, challenge: string, now: number): Promise<Verified<PasskeyRecord>> {
  try {
    const r = await verifyRegistrationResponse({
      response: answer as unknown as RegistrationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      requireUserVerification: true,
    });
    if (!r.verified) return { ok: false, reason: 'not_verified' };
    const c = r.registrationInfo.credential;
    return {
      ok: true,
      value: {
        id: c.id,
        publicKey: Buffer.from(c.publicKey).toString('base64url'),
        counter: c.counter,
        transports: (c.transports ?? []).map(String),
        rpId: rp.id,
        backedUp: r.registrationInfo.credentialBackedUp,
        createdAt: now,
        lastUsedAt: null,
      },
    };
  } catch {
    // The library throws on every check that fails; its message names the check, not a secret, but stays out of the history.
    return { ok: false, reason: 'invalid_response' };
  }
}

/**
 * Verifies an assertion by `pk` (L2 §7.2: type, challenge, origin, RP id hash,
 * user presence, user verification when `requireUV`, the signature over
 * authenticatorData and the clientDataJSON hash, the signature counter).
 * Returns the new counter, which the caller stores (FactorStore.usePasskey).
 */
export async function verifyAssertion(rp: RelyingParty, answer: Answer, challenge: string, pk: PasskeyRecord, requireUV: boolean): Promise<Verified<{ counter: number; userVerified: boolean }>> {
  if (pk.rpId !== rp.id) return { ok: false, reason: 'other_host' };
  try {
    const r = await verifyAuthenticationResponse({
      response: answer as unknown as AuthenticationResponseJSON,
      expectedChallenge: challenge,
      expectedOrigin: rp.origin,
      expectedRPID: rp.id,
      credential: { id: pk.id, publicKey: new Uint8Array(Buffer.from(pk.publicKey, 'base64url')), counter: pk.counter, transports: pk.transports as AuthenticatorTransportFuture[] },
      requireUserVerification: requireUV,
    });
    if (!r.verified) return { ok: false, reason: 'bad_signature' };
    if (requireUV && !r.authenticationInfo.userVerified) return { ok: false, reason: 'no_user_verification' };
    return { ok: true, value: { counter: r.authenticationInfo.newCounter, userVerified: r.authenticationInfo.userVerified } };
  } catch (err) {
    const m = (err as Error).message ?? '';
    if (/counter/i.test(m)) return { ok: false, reason: 'counter' };
    if (/user verification|verified/i.test(m)) return { ok: false, reason: 'no_user_verification' };
    return { ok: false, reason: 'invalid_response' };
  }
}

/** The user id in an assertion's user handle (passwordless sign-in), or ''. */
export function userHandleOf(answer: Answer): string {
  const h = answer.response['userHandle'];
  if (typeof h !== 'string' || h.length > 128) return '';
  return Buffer.from(h, 'base64url').toString('utf8');
}
