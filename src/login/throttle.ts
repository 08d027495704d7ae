/**
 * Failed-login throttling, per account (the email, whether or not a user has
 * it, so the answer never tells) and per client IP. Every attempt is counted
 * as a failure before the password is checked, in one store transaction, so
 * a burst of parallel guesses cannot all slip past the check; a success then
 * clears the account's count and takes its own attempt back from the IP's.
 *
 * Failures 1..delayAfter are free; each further one makes the next attempt
 * wait 1 s, 2 s, 4 s … (capped at the lock time); failure `lockAfter` locks
 * for `lockMs` (≤ 1 h, enforced by config validation). After a lock expires
 * the count starts over. A lock cannot shut a user out for long: it is short,
 * it lifts by itself, and a password reset clears it.
 */
import type { ThrottleLimits } from '../config/index.js';
import type { ThrottleRecord, ThrottleStore } from '../store/index.js';

export type Attempt =
  | { allowed: true; lockedNow: boolean }
  | { allowed: false; retryAfterS: number };

/** Pure: the record after one more counted attempt, or the refusal. */
export function countAttempt(cur: ThrottleRecord | undefined, now: number, l: ThrottleLimits): { next: ThrottleRecord | null; result: Attempt } {
  if (cur !== undefined && now < cur.blockedUntil) {
    return { next: cur, result: { allowed: false, retryAfterS: Math.max(1, Math.ceil((cur.blockedUntil - now) / 1000)) } };
  }
  const fresh = cur === undefined || cur.locked || now - cur.lastAt > l.windowMs;
  const failures = fresh ? 1 : cur.failures + 1;
  const firstAt = fresh ? now : cur.firstAt;
  let blockedUntil = 0;
  let locked = false;
  if (failures >= l.lockAfter) {
    blockedUntil = now + l.lockMs;
    locked = true;
  } else if (failures > l.delayAfter) {
    blockedUntil = now + Math.min(1000 * 2 ** Math.min(failures - l.delayAfter - 1, 30), l.lockMs);
  }
  return { next: { failures, firstAt, lastAt: now, blockedUntil, locked }, result: { allowed: true, lockedNow: locked } };
}

/** Pure: gives one counted attempt back (a success, or an attempt the edge could not check). */
export function releaseAttempt(cur: ThrottleRecord | undefined, l: ThrottleLimits): ThrottleRecord | null {
  if (cur === undefined) return null;
  if (cur.locked) return cur;
  const failures = cur.failures - 1;
  if (failures <= 0) return null;
  return { ...cur, failures, blockedUntil: failures > l.delayAfter ? cur.blockedUntil : 0 };
}

export class Throttle {
  constructor(private readonly store: ThrottleStore) {}

  async attempt(key: string, now: number, l: ThrottleLimits): Promise<Attempt> {
    let result: Attempt = { allowed: true, lockedNow: false };
    await this.store.update(key, (cur) => {
      const r = countAttempt(cur, now, l);
      result = r.result;
      return r.next;
    });
    return result;
  }

  async release(key: string, l: ThrottleLimits): Promise<void> {
    await this.store.update(key, (cur) => releaseAttempt(cur, l));
  }

  async clear(key: string): Promise<void> {
    await this.store.clear(key);
  }
}

export const accountKey = (directory: string, email: string): string => `acct:${directory}:${email.toLowerCase()}`;
/**
 * Per client IP and user directory: limits are set per project, so one
 * project's strict IP lock must not shut an address (a whole office behind
 * one NAT) out of every other directory on the edge, the Console's included.
 */
export const ipKey = (directory: string, ip: string): string => `ip:${directory}:${ip}`;
/** Mail-sending forms (signup, forgot password) have their own counters: mail bombing is another abuse. */
export const mailAccountKey = (directory: string, email: string): string => `mail:${directory}:${email.toLowerCase()}`;
export const mailIpKey = (ip: string): string => `mailip:${ip}`;
