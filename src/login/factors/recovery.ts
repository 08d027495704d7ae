/**
 * Recovery codes: ten single-use codes shown once at enrolment, kept only as
 * hashes. Each is 12 characters of Crockford-style base32 (60 bits from the
 * CSPRNG), shown as `xxxx-xxxx-xxxx`. With 60 bits of entropy a fast keyed
 * hash is enough (nothing to brute-force offline in useful time, and guesses
 * online are throttled like sign-ins): SHA-256 over the user id and the code,
 * so equal codes of two users never hash alike.
 */
import { createHash, randomInt, timingSafeEqual } from 'node:crypto';

export const RECOVERY_CODES = 10;
/** No I, L, O, U: nothing to misread. */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';
const CODE_CHARS = 12;

export function newRecoveryCodes(n = RECOVERY_CODES): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = '';
    for (let k = 0; k < CODE_CHARS; k++) s += ALPHABET[randomInt(ALPHABET.length)]!;
    out.push(`${s.slice(0, 4)}-${s.slice(4, 8)}-${s.slice(8)}`);
  }
  return out;
}

/** The canonical form of what a user typed: lower case, no dashes or spaces, misreadable letters mapped. */
export function normalizeRecoveryCode(input: string): string {
  return input.toLowerCase().replace(/[\s-]/g, '').replace(/[il]/g, '1').replace(/o/g, '0');
}

export function looksLikeRecoveryCode(input: string): boolean {
  const c = normalizeRecoveryCode(input);
  return c.length === CODE_CHARS && [...c].every((ch) => ALPHABET.includes(ch));
}

export function hashRecoveryCode(userId: string, code: string): string {
  return createHash('sha256').update('mezusphere recovery code\u0000').update(userId).update('\u0000').update(normalizeRecoveryCode(code)).digest('base64url');
}

/** The index of `hash` among `hashes` (every entry compared, in constant time each), or -1. */
export function findRecoveryHash(hashes: readonly string[], hash: string): number {
  const b = Buffer.from(hash);
  let found = -1;
  for (let i = 0; i < hashes.length; i++) {
    const a = Buffer.from(hashes[i]!);
    if (a.length === b.length && timingSafeEqual(a, b) && found === -1) found = i;
  }
  return found;
}
