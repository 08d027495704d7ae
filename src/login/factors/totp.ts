/**
 * TOTP (RFC 6238) over HOTP (RFC 4226) with the `otpauth` package: SHA-1, six
 * digits, 30-second steps — the parameters every authenticator app supports
 * (other choices are silently ignored by several apps, RFC 6238 §5.2 notwithstanding).
 *
 * A code is accepted for the current step and one step either side (RFC 6238
 * §5.2: "at most one time step" of network delay and clock drift), and only
 * for a step after the last one this user used (§5.2: "the verifier MUST NOT
 * accept the second attempt of the same OTP after the successful validation
 * has been issued for the first OTP") — the caller stores the step returned.
 */
import { randomBytes } from 'node:crypto';
import { HOTP, Secret, TOTP, URI } from 'otpauth';

export const TOTP_PERIOD_S = 30;
export const TOTP_DIGITS = 6;
/** Steps accepted either side of now. */
export const TOTP_WINDOW = 1;
/** 160 bits: RFC 4226 §4 R6 recommends the HMAC-SHA-1 output length. */
const SECRET_BYTES = 20;

/** A fresh secret, base32 (RFC 4648 §6, no padding) as authenticator apps take it. */
export function newTotpSecret(): string {
  return new Secret({ buffer: randomBytes(SECRET_BYTES).buffer as ArrayBuffer }).base32;
}

/** The step (RFC 6238 T) of `nowMs`. */
export function totpStep(nowMs: number): number {
  return Math.floor(nowMs / 1000 / TOTP_PERIOD_S);
}

function totp(secretB32: string, digits = TOTP_DIGITS, algorithm = 'SHA1'): TOTP {
  return new TOTP({ secret: Secret.fromBase32(secretB32), algorithm, digits, period: TOTP_PERIOD_S });
}

/** The code of `secret` at `nowMs` (tests, and the RFC 6238 Appendix B vectors with `digits` 8). */
export function totpCode(secretB32: string, nowMs: number, digits = TOTP_DIGITS, algorithm = 'SHA1'): string {
  return totp(secretB32, digits, algorithm).generate({ timestamp: nowMs });
}

/**
 * The step a code was made for, if it matches within the window and is later
 * than `lastStep` (the user's last accepted step; -1 when none), else null.
 * Each candidate step is compared in constant time by `otpauth`.
 */
export function verifyTotp(secretB32: string, code: string, nowMs: number, lastStep: number): number | null {
  const c = code.replace(/[\s-]/g, '');
  if (!/^\d{6}$/.test(c)) return null;
  const now = totpStep(nowMs);
  const t = totp(secretB32);
  // Oldest first, so of two matching steps (impossible in practice) the replay check sees the lower one.
  for (let d = -TOTP_WINDOW; d <= TOTP_WINDOW; d++) {
    const step = now + d;
    if (step <= lastStep) continue;
    if (HOTP.validate({ token: c, secret: t.secret, algorithm: 'SHA1', digits: TOTP_DIGITS, counter: step, window: 0 }) === 0) return step;
  }
  return null;
}

/** True when `code` would match within the window, ignoring replay (to tell a replay from a wrong code in the history). */
export function matchesIgnoringReplay(secretB32: string, code: string, nowMs: number): boolean {
  return verifyTotp(secretB32, code, nowMs, -1) !== null;
}

/** The `otpauth://totp/…` URI (Key Uri Format) an authenticator app scans. */
export function totpUri(secretB32: string, issuer: string, account: string): string {
  return URI.stringify(new TOTP({ issuer, label: account, secret: Secret.fromBase32(secretB32), algorithm: 'SHA1', digits: TOTP_DIGITS, period: TOTP_PERIOD_S }));
}
