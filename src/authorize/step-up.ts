/**
 * Step-up rules per route (`step_up: { max_age, factors }`): the session must
 * have used one of the rule's factors within `max_age`, or the request is
 * refused with the RFC 9470 challenge (API clients) or sent to the hosted
 * step-up page (browsers). Only reached for rules that have one: a route
 * without `step_up` pays one null test on its compiled Policy (handler.ts).
 */
import type { SessionRecord } from '../store/index.js';
import type { StepUpRule } from '../config/index.js';

/**
 * True when the session satisfies the rule at `now`: a listed factor used no
 * longer than `max_age` ago. `otp` is the time of the last TOTP or recovery
 * code, `hwk` of the last passkey (RFC 8176 method names, as in `amr`).
 */
export function stepUpSatisfied(rule: StepUpRule, s: Readonly<SessionRecord>, now: number): boolean {
  const ft = s.factorTimes;
  if (ft == null) return false;
  if (rule.totp) {
    const t = ft.otp;
    if (t !== undefined && now - t <= rule.maxAgeMs) return true;
  }
  if (rule.webauthn) {
    const t = ft.hwk;
    if (t !== undefined && now - t <= rule.maxAgeMs) return true;
  }
  return false;
}
