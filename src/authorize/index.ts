/**
 * Authorization: a compiled route policy against an authenticated principal.
 * Returns a verdict value; the caller maps it to a prebuilt response.
 */
import type { Policy } from '../config/types.js';
import type { Principal } from '../session/index.js';

export const enum Decision {
  Allow = 0,
  /** Principal kind not accepted on this route (e.g. a service-account key on a users-only route). */
  PrincipalNotAllowed = 1,
  /** Missing a role or a permission. */
  Forbidden = 2,
}

export function authorize(policy: Policy, p: Principal): Decision {
  if (p.type === 'user' ? !policy.allowUser : !policy.allowServiceAccount) return Decision.PrincipalNotAllowed;
  const roles = policy.roles;
  if (roles !== null) {
    let any = false;
    for (let i = 0; i < roles.length; i++) if (p.roles.includes(roles[i]!)) { any = true; break; }
    if (!any) return Decision.Forbidden;
  }
  const perms = policy.permissions;
  if (perms !== null) {
    for (let i = 0; i < perms.length; i++) if (!p.permissions.includes(perms[i]!)) return Decision.Forbidden;
  }
  return Decision.Allow;
}

export { stepUpSatisfied, stepUpEndsAt, deviceIdOf } from './step-up.js';
export { LiveRegistry, feedPoll, LIVE_TICK_MS, type LiveStream, type LiveDeps, type ChangePoll } from './live.js';
