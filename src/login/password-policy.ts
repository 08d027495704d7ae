/**
 * Password rules (NIST SP 800-63B §5.1.1.2): at least 8 characters, up to
 * 256 accepted (NIST asks to accept at least 64), compared exactly as typed (no
 * trimming, no case folding, no Unicode normalization: the UTF-8 bytes are
 * hashed), refused when on a list of common passwords, no composition rules.
 *
 * The list is the `passwords-common` dictionary of @zxcvbn-ts/language-common
 * (~49 000 passwords from public breach corpora); only entries of 8 or more
 * characters can matter, ~18 000, kept in a Set per process (~1 MB), loaded on
 * first use.
 */
export const MIN_PASSWORD_CHARS = 8;
export const MAX_PASSWORD_CHARS = 256;

export type PasswordVerdict = 'ok' | 'too_short' | 'too_long' | 'common' | 'like_email';

let common: Set<string> | null = null;

function commonSet(): Set<string> {
  if (common === null) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const m = require('@zxcvbn-ts/language-common') as { dictionary: Record<string, string[]> };
    const all = m.dictionary['passwords-common'] ?? [];
    common = new Set<string>();
    for (const p of all) if ([...p].length >= MIN_PASSWORD_CHARS) common.add(p.toLowerCase());
  }
  return common;
}

/** How many passwords the shipped list holds (those long enough to matter). */
export function commonListSize(): number {
  return commonSet().size;
}

export function checkNewPassword(password: string, email: string): PasswordVerdict {
  const chars = [...password].length;
  if (chars < MIN_PASSWORD_CHARS) return 'too_short';
  if (chars > MAX_PASSWORD_CHARS) return 'too_long';
  const lower = password.toLowerCase();
  if (commonSet().has(lower)) return 'common';
  const e = email.toLowerCase();
  if (lower === e || lower === e.split('@')[0]) return 'like_email';
  return 'ok';
}

export function describeVerdict(v: PasswordVerdict): string {
  switch (v) {
    case 'too_short': return `Use at least ${MIN_PASSWORD_CHARS} characters.`;
    case 'too_long': return `Use at most ${MAX_PASSWORD_CHARS} characters.`;
    case 'common': return 'This password is on a list of common passwords. Choose another one.';
    case 'like_email': return 'Do not use your email address as your password.';
    case 'ok': return '';
  }
}
