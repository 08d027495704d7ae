/**
 * TOTP (RFC 6238) and recovery codes: the Appendix B vectors, the ±1 step
 * window, replay refusal by step, and the recovery codes' form and hashing.
 */
import test from 'ava';
import { totpCode, totpStep, verifyTotp, matchesIgnoringReplay, newTotpSecret, totpUri } from '../../../src/login/factors/totp.js';
import { findRecoveryHash, hashRecoveryCode, looksLikeRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from '../../../src/login/factors/recovery.js';

/** RFC 6238 Appendix B: the SHA-1 seed is the ASCII "12345678901234567890", base32 below. */
const RFC_SEED = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';

test('RFC 6238 Appendix B vectors (SHA-1, 8 digits, T0 = 0, X = 30)', (t) => {
  const vectors: Array<[number, string]> = [
    [59, '94287082'],
    [1111111109, '07081804'],
    [1111111111, '14050471'],
    [1234567890, '89005924'],
    [2000000000, '69279037'],
    [20000000000, '65353130'],
  ];
  for (const [s, code] of vectors) t.is(totpCode(RFC_SEED, s * 1000, 8), code, `T = ${s}`);
  // The six-digit codes the edge uses are the last six digits of the same values (RFC 4226 §5.3).
  t.is(totpCode(RFC_SEED, 59_000), '287082');
});

test('a code is accepted one step either side of now, not two', (t) => {
  const secret = newTotpSecret();
  const now = 1_700_000_015_000;
  const step = totpStep(now);
  t.is(verifyTotp(secret, totpCode(secret, now), now, -1), step);
  t.is(verifyTotp(secret, totpCode(secret, now - 30_000), now, -1), step - 1);
  t.is(verifyTotp(secret, totpCode(secret, now + 30_000), now, -1), step + 1);
  t.is(verifyTotp(secret, totpCode(secret, now - 60_000), now, -1), null);
  t.is(verifyTotp(secret, totpCode(secret, now + 60_000), now, -1), null);
  // Spaces and dashes as apps show them are fine; anything not six digits is not a code.
  const c = totpCode(secret, now);
  t.is(verifyTotp(secret, `${c.slice(0, 3)} ${c.slice(3)}`, now, -1), step);
  t.is(verifyTotp(secret, c.slice(1), now, -1), null);
  t.is(verifyTotp(secret, 'abcdef', now, -1), null);
});

test('replay: a code of a step at or before the last used one is refused; a later step is not', (t) => {
  const secret = newTotpSecret();
  const now = 1_700_000_015_000;
  const code = totpCode(secret, now);
  const step = verifyTotp(secret, code, now, -1)!;
  t.is(verifyTotp(secret, code, now, step), null, 'the same code again');
  t.is(verifyTotp(secret, totpCode(secret, now - 30_000), now, step), null, 'an older code after a newer one');
  t.true(matchesIgnoringReplay(secret, code, now), 'told apart from a wrong code');
  t.is(verifyTotp(secret, totpCode(secret, now + 30_000), now, step), step + 1, 'the next code');
});

test('secrets are 160-bit base32; the otpauth URI names issuer, account and parameters', (t) => {
  const s = newTotpSecret();
  t.regex(s, /^[A-Z2-7]{32}$/);
  t.not(newTotpSecret(), s);
  const uri = totpUri(s, 'Demo', 'ada@example.com');
  t.true(uri.startsWith('otpauth://totp/Demo:ada%40example.com?'));
  t.true(uri.includes(`secret=${s}`));
  t.true(uri.includes('issuer=Demo') && uri.includes('algorithm=SHA1') && uri.includes('digits=6') && uri.includes('period=30'));
});

test('recovery codes: ten, 60 bits each, xxxx-xxxx-xxxx; hashed per user; typed loosely', (t) => {
  const codes = newRecoveryCodes();
  t.is(codes.length, 10);
  t.is(new Set(codes).size, 10);
  for (const c of codes) t.regex(c, /^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$/);
  const c = codes[0]!;
  t.true(looksLikeRecoveryCode(c));
  t.true(looksLikeRecoveryCode(c.toUpperCase().replace(/-/g, ' ')));
  t.false(looksLikeRecoveryCode('123456'));
  t.is(normalizeRecoveryCode('AbCd-EfGh-0O1l'), 'abcdefgh0011');
  const h = hashRecoveryCode('usr_1', c);
  t.is(hashRecoveryCode('usr_1', c.toUpperCase()), h);
  t.not(hashRecoveryCode('usr_2', c), h, 'the same code of another user hashes differently');
  const hashes = codes.map((x) => hashRecoveryCode('usr_1', x));
  t.is(findRecoveryHash(hashes, hashRecoveryCode('usr_1', codes[3]!)), 3);
  t.is(findRecoveryHash(hashes, hashRecoveryCode('usr_1', 'zzzz-zzzz-zzzz')), -1);
});
