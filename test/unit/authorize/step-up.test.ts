/**
 * stepUpSatisfied: a listed factor used within max_age satisfies the rule; a
 * stale one (max_age passed), none, or a session from before factors does not.
 */
import test from 'ava';
import { stepUpSatisfied } from '../../../src/authorize/index.js';
import { stepUpChallenge, type StepUpRule } from '../../../src/config/index.js';
import type { SessionRecord } from '../../../src/store/index.js';

const rule = (maxAgeMs: number): StepUpRule => ({ maxAgeMs, factors: ['totp'], totp: true, acr: 'mfa', challenge: stepUpChallenge(maxAgeMs, 'mfa') });
function session(over: Partial<SessionRecord> = {}): SessionRecord {
  return { id: 'ses_1', principalType: 'user', userId: 'usr_1', projectId: 'demo', createdAt: 0, lastSeenAt: 0, authTime: 0, amr: ['pwd'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null, ...over };
}

test('within max_age → satisfied; a stale step-up → not (the user steps up again)', (t) => {
  const s = session({ amr: ['pwd', 'otp'], factorTimes: { pwd: 0, otp: 1_000_000 } });
  t.true(stepUpSatisfied(rule(600_000), s, 1_000_000));
  t.true(stepUpSatisfied(rule(600_000), s, 1_600_000), 'exactly max_age old');
  t.false(stepUpSatisfied(rule(600_000), s, 1_600_001), 'older than max_age');
  t.true(stepUpSatisfied(rule(Infinity), s, 1e13), 'no max_age: once in the session');
});

test('no second factor used, or a session written before factors existed → not satisfied', (t) => {
  t.false(stepUpSatisfied(rule(600_000), session({ factorTimes: { pwd: 5 } }), 10));
  t.false(stepUpSatisfied(rule(600_000), session(), 10));
  t.false(stepUpSatisfied(rule(Infinity), session(), 10));
});
