/**
 * Step-up rules per route (`step_up: { max_age, factors, device }`): the
 * session must have used one of the rule's factors within `max_age` (and be on
 * a known device when the rule says `device: known`), or the request is
 * refused with the RFC 9470 challenge (API clients) or sent to the hosted
 * step-up page (browsers). Only reached for rules that have one: a route
 * without `step_up` pays one null test on its compiled Policy (handler.ts).
 */
import type { SessionRecord } from '../store/index.js';
import type { StepUpRule } from '../config/index.js';

/**
 * True when the session satisfies the rule at `now`: a listed factor used no
 * longer than `max_age` ago (`otp`: the last TOTP or recovery code, `hwk`: the
 * last passkey; RFC 8176 method names, as in `amr`), and for `device: known`
 * a known device. `deviceId` is the id in the request's device cookie ('' when
 * none; the handler reads it only for rules with `device`).
 */
export function stepUpSatisfied(rule: StepUpRule, s: Readonly<SessionRecord>, now: number, deviceId: string): boolean {
  // The device the session signed in (or stepped up) on, known then, and this request from it. The
  // id is 128 random bits the session recorded: a match needs the cookie itself, so the request path
  // compares it without checking the cookie's MAC (the hosted pages check it before recording it).
  if (rule.device && (s.deviceKnown !== true || s.deviceId === undefined || deviceId !== s.deviceId)) return false;
  return now <= stepUpEndsAt(rule, s);
}

/**
 * Until when the session's factors satisfy the rule's: the latest use of a
 * listed factor plus `max_age` (Infinity for a rule that names no factor or
 * has no `max_age` once one was used; -Infinity when none was used). An open
 * WebSocket or stream is ended then (src/authorize/live.ts).
 */
export function stepUpEndsAt(rule: StepUpRule, s: Readonly<SessionRecord>): number {
  if (!rule.totp && !rule.webauthn) return Infinity;
  const ft = s.factorTimes;
  if (ft == null) return -Infinity;
  let end = -Infinity;
  if (rule.totp && ft.otp !== undefined) end = Math.max(end, ft.otp + rule.maxAgeMs);
  if (rule.webauthn && ft.hwk !== undefined) end = Math.max(end, ft.hwk + rule.maxAgeMs);
  return end;
}

/** The device id of a device cookie value (`<id>.<mac>`), '' when it has no such shape. */
export function deviceIdOf(cookieValue: string): string {
  const dot = cookieValue.indexOf('.');
  return dot <= 0 ? '' : cookieValue.slice(0, dot);
}
