/**
 * Defaults of the hosted-login settings, in one place: validation fills them
 * into a partly written `login:` / `passwords:` section, and compilation
 * applies them when the section is absent.
 */
import type { LoginConfig, PasswordConfig, ThrottleLimits } from './types.js';

/** OWASP's argon2id minimum (m=19 MiB, t=2, p=1): ~17 ms of CPU per hash on the 2-core dev machine. */
export const DEFAULT_PASSWORD_MEMORY_BYTES = 19 * 1024 * 1024;
export const DEFAULT_PASSWORD_ITERATIONS = 2;
/** Per edge worker: with one hashing thread at ~17 ms a hash, 32 waiting tasks drain in ~0.6 s. */
export const DEFAULT_HASH_QUEUE = 32;

/** A lock is short by design: whoever can guess an email must not be able to shut its owner out for long. */
export const MAX_LOCK_MS = 60 * 60_000;

export function defaultPasswordConfig(): PasswordConfig {
  return { memoryBytes: DEFAULT_PASSWORD_MEMORY_BYTES, iterations: DEFAULT_PASSWORD_ITERATIONS, queue: DEFAULT_HASH_QUEUE };
}

/** Per account: 3 free failures, then 1 s, 2 s, 4 s … between attempts; the 10th failure locks for 15 minutes. */
export function defaultAccountThrottle(): ThrottleLimits {
  return { delayAfter: 3, lockAfter: 10, lockMs: 15 * 60_000, windowMs: 15 * 60_000 };
}

/** Per client IP (across accounts): room for a shared office NAT, still far below a guessing rate. */
export function defaultIpThrottle(): ThrottleLimits {
  return { delayAfter: 20, lockAfter: 100, lockMs: 15 * 60_000, windowMs: 15 * 60_000 };
}

export const DEFAULT_BRAND_COLOR = '#2563eb';
export const DEFAULT_RESET_TTL_MS = 30 * 60_000;
/**
 * `login.adaptive.failure_burst` when written without its keys: 5 failures
 * in 15 minutes (the account throttle's default window) since the last
 * success, then an authenticator code (recovery codes count; a user without
 * an app uses a passkey).
 */
export const DEFAULT_BURST_AFTER = 5;
export const DEFAULT_BURST_WITHIN_MS = 15 * 60_000;
export const DEFAULT_BURST_REQUIRE = 'totp' as const;

export function defaultLoginConfig(): LoginConfig {
  return {
    signup: 'disabled',
    publicUrl: null,
    branding: { name: null, color: DEFAULT_BRAND_COLOR, logoUrl: null },
    resetTtlMs: DEFAULT_RESET_TTL_MS,
    throttle: { account: defaultAccountThrottle(), ip: defaultIpThrottle() },
  };
}

/** The organization of projects whose config names none; it always exists. */
export const DEFAULT_ORGANIZATION = 'default';

/** Directory id of an organization-scoped directory (`org:acme`); a project-scoped directory's id is the project id. */
export function orgDirectoryId(organization: string): string {
  return `org:${organization}`;
}
