/**
 * stepUpSatisfied: a listed factor used within max_age satisfies the rule; a
 * stale one (max_age passed), none, or a session from before factors does not.
 */
import test from 'ava';
import { stepUpSatisfied } from '../../../src/authorize/index.js';
import { stepUpChallenge, type StepUpRule } from '../../../src/config/index.js';
import type { SessionRecord } from '../../../src/store/index.js';

const rule = (maxAgeMs: number, factors: Array<'totp' | 'webauthn'> = ['totp'], device = false): StepUpRule => ({ maxAgeMs, factors, totp: factors.includes('totp'), webauthn: factors.includes('webauthn'), device, acr: 'mfa', challenge: stepUpChallenge(maxAgeMs, 'mfa') });
function session(over: Partial<SessionRecord> = {}): SessionRecord {
  return { id: 'ses_1', principalType: 'user', userId: 'usr_1', projectId: 'demo', createdAt: 0, lastSeenAt: 0, authTime: 0, amr: ['pwd'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null, ...over };
}

test('within max_age → satisfied; a stale step-up → not (the user steps up again)', (t) => {
  const s = session({ amr: ['pwd', 'otp'], factorTimes: { pwd: 0, otp: 1_000_000 } });
  t.true(stepUpSatisfied(rule(600_000), s, 1_000_000, ''));
  t.true(stepUpSatisfied(rule(600_000), s, 1_600_000, ''), 'exactly max_age old');
  t.false(stepUpSatisfied(rule(600_000), s, 1_600_001, ''), 'older than max_age');
  t.true(stepUpSatisfied(rule(Infinity), s, 1e13, ''), 'no max_age: once in the session');
});

test('no second factor used, or a session written before factors existed → not satisfied', (t) => {
  t.false(stepUpSatisfied(rule(600_000), session({ factorTimes: { pwd: 5 } }), 10, ''));
  t.false(stepUpSatisfied(rule(600_000), session(), 10, ''));
  t.false(stepUpSatisfied(rule(Infinity), session(), 10, ''));
});

test('a passkey (hwk) satisfies a rule that lists webauthn, within max_age; not a totp-only rule; a code not a webauthn-only rule', (t) => {
  const pk = session({ amr: ['pwd', 'hwk'], factorTimes: { pwd: 0, hwk: 1_000_000 } });
  t.true(stepUpSatisfied(rule(600_000, ['webauthn', 'totp']), pk, 1_500_000, ''));
  t.true(stepUpSatisfied(rule(600_000, ['webauthn']), pk, 1_600_000, ''));
  t.false(stepUpSatisfied(rule(600_000, ['webauthn']), pk, 1_600_001, ''), 'stale');
  t.false(stepUpSatisfied(rule(600_000, ['totp']), pk, 1_000_000, ''), 'a passkey is not a TOTP code');
  const otp = session({ amr: ['pwd', 'otp'], factorTimes: { pwd: 0, otp: 1_000_000 } });
  t.false(stepUpSatisfied(rule(600_000, ['webauthn']), otp, 1_000_000, ''), 'a code is not a passkey');
  t.true(stepUpSatisfied(rule(600_000, ['webauthn', 'totp']), otp, 1_000_000, ''));
  // Passwordless sign-in: the passkey alone, no password time.
  t.true(stepUpSatisfied(rule(600_000, ['webauthn']), session({ amr: ['hwk', 'mfa'], factorTimes: { hwk: 2_000 } }), 3_000, ''));
});

test('device: known — the session signed in on a known device and the request carries that device cookie', (t) => {
  const known = session({ deviceId: 'dev-a', deviceKnown: true, factorTimes: { pwd: 0 } });
  t.true(stepUpSatisfied(rule(Infinity, [], true), known, 5, 'dev-a'), 'a device-only rule');
  t.false(stepUpSatisfied(rule(Infinity, [], true), known, 5, 'dev-b'), 'another browser with the session cookie');
  t.false(stepUpSatisfied(rule(Infinity, [], true), known, 5, ''), 'no device cookie');
  t.false(stepUpSatisfied(rule(Infinity, [], true), session({ deviceId: 'dev-a', deviceKnown: false }), 5, 'dev-a'), 'a new device');
  t.false(stepUpSatisfied(rule(Infinity, [], true), session(), 5, ''), 'a session from before devices');
  // With factors too: both must hold.
  const both = session({ deviceId: 'dev-a', deviceKnown: true, factorTimes: { pwd: 0, hwk: 1_000 } });
  t.true(stepUpSatisfied(rule(600_000, ['webauthn'], true), both, 2_000, 'dev-a'));
  t.false(stepUpSatisfied(rule(600_000, ['webauthn'], true), both, 2_000, 'dev-b'));
  t.false(stepUpSatisfied(rule(500, ['webauthn'], true), both, 2_000, 'dev-a'), 'stale factor on a known device');
});
