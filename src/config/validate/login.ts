/**
 * The hosted login of a project (`projects[].login`): signup mode, the public
 * URL mail links are built from, branding, the emailed links' lifetime, and
 * the failed-login throttle per account and per client IP.
 */
import { DEFAULT_BRAND_COLOR, DEFAULT_BURST_AFTER, DEFAULT_BURST_REQUIRE, DEFAULT_BURST_WITHIN_MS, DEFAULT_RESET_TTL_MS, MAX_LOCK_MS, defaultAccountThrottle, defaultIpThrottle } from '../defaults.js';
import type { AdaptiveConfig, FailureBurstConfig, LoginConfig, NewDeviceDemand, SignupMode, ThrottleLimits } from '../types.js';
import { checkKeys, describe, formatMs, isMapping, own, validateDuration, validateInt, validateName, type Problems } from './fields.js';

const LOGIN_KEYS = ['signup', 'public_url', 'branding', 'reset_ttl', 'throttle', 'adaptive'];
const ADAPTIVE_KEYS = ['new_device', 'new_network', 'failure_burst'];
const FAILURE_BURST_KEYS = ['after', 'within', 'require'];
const NEW_DEVICE_DEMANDS: readonly NewDeviceDemand[] = ['totp', 'webauthn', 'none'];
const BRANDING_KEYS = ['name', 'color', 'logo_url'];
const THROTTLE_KEYS = ['account', 'ip'];
const THROTTLE_LIMIT_KEYS = ['delay_after', 'lock_after', 'lock', 'window'];
const SIGNUP_MODES: readonly SignupMode[] = ['open', 'invite', 'disabled'];

export function validateLogin(v: unknown, at: string, problems: Problems): LoginConfig | null {
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { signup: open, public_url: https://app.example.com }; got ${describe(v)}` });
    return null;
  }
  const before = problems.length;
  checkKeys(v, LOGIN_KEYS, at, problems);
  let signup: SignupMode = 'disabled';
  const rawSignup = own(v, 'signup');
  if (rawSignup !== undefined && rawSignup !== null) {
    if (typeof rawSignup === 'string' && (SIGNUP_MODES as readonly string[]).includes(rawSignup)) signup = rawSignup as SignupMode;
    else problems.push({ at: `${at}.signup`, message: `must be one of ${SIGNUP_MODES.join(', ')} (default disabled); got ${describe(rawSignup)}` });
  }
  const publicUrl = validatePublicUrl(own(v, 'public_url'), `${at}.public_url`, problems);
  const branding = validateBranding(own(v, 'branding'), `${at}.branding`, problems);
  const resetTtlMs = validateDuration(own(v, 'reset_ttl'), `${at}.reset_ttl`, `${DEFAULT_RESET_TTL_MS / 1000}s`, problems);
  if (resetTtlMs !== null && resetTtlMs > 86_400_000) {
    problems.push({ at: `${at}.reset_ttl`, message: `must be at most 24h: an emailed link should not stay usable for days; got ${formatMs(resetTtlMs)}` });
  }
  const throttle = validateThrottle(own(v, 'throttle'), `${at}.throttle`, problems);
  const adaptive = validateAdaptive(own(v, 'adaptive'), `${at}.adaptive`, problems);
  if (problems.length !== before || branding === null || resetTtlMs === null || throttle === null) return null;
  return adaptive === undefined ? { signup, publicUrl, branding, resetTtlMs, throttle } : { signup, publicUrl, branding, resetTtlMs, throttle, adaptive };
}

/**
 * `adaptive: { new_device, new_network: totp | webauthn | none, failure_burst: { after, within, require } }`;
 * undefined when absent or wrong. Every signal is off unless written: turning
 * one on changes who must use which factor, which a project decides.
 */
function validateAdaptive(v: unknown, at: string, problems: Problems): AdaptiveConfig | undefined {
  if (v === undefined || v === null) return undefined;
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { new_device: totp, new_network: totp, failure_burst: { after: 5, within: 15m, require: totp } }; got ${describe(v)}` });
    return undefined;
  }
  const before = problems.length;
  checkKeys(v, ADAPTIVE_KEYS, at, problems);
  const newDevice = validateDemand(own(v, 'new_device'), `${at}.new_device`, 'a sign-in from a new device', problems);
  const newNetwork = validateDemand(own(v, 'new_network'), `${at}.new_network`, 'a sign-in from a network the user has not signed in from', problems);
  const failureBurst = validateFailureBurst(own(v, 'failure_burst'), `${at}.failure_burst`, problems);
  if (problems.length !== before || newDevice === null || newNetwork === null || failureBurst === undefined) return undefined;
  return { newDevice, newNetwork, failureBurst };
}

/** One signal's demand: `totp`, `webauthn` or `none` (the default when absent); null when wrong. */
function validateDemand(raw: unknown, at: string, what: string, problems: Problems): NewDeviceDemand | null {
  if (raw === undefined || raw === null) return 'none';
  if (typeof raw !== 'string' || !(NEW_DEVICE_DEMANDS as readonly string[]).includes(raw)) {
    problems.push({ at, message: `must be one of ${NEW_DEVICE_DEMANDS.join(', ')}: the second factor ${what} must use; got ${describe(raw)}` });
    return null;
  }
  return raw as NewDeviceDemand;
}

/**
 * `failure_burst: { after: 5, within: 15m, require: totp }`; null when absent
 * (off), undefined when wrong. `after` at least 2: one mistyped password is
 * not a burst. `within` at most 24h: older failures say little about this
 * sign-in, and the login history they are counted from is kept longer than
 * that (90 days by default).
 */
function validateFailureBurst(v: unknown, at: string, problems: Problems): FailureBurstConfig | null | undefined {
  if (v === undefined || v === null) return null;
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { after: 5, within: 15m, require: totp }; got ${describe(v)}` });
    return undefined;
  }
  const before = problems.length;
  checkKeys(v, FAILURE_BURST_KEYS, at, problems);
  const after = validateInt(own(v, 'after'), `${at}.after`, DEFAULT_BURST_AFTER, 2, 1000, problems);
  const withinMs = validateDuration(own(v, 'within'), `${at}.within`, `${DEFAULT_BURST_WITHIN_MS / 60_000}m`, problems);
  if (withinMs !== null && (withinMs < 60_000 || withinMs > 86_400_000)) {
    problems.push({ at: `${at}.within`, message: `must be from 1m to 24h: the window in which failed sign-ins make a burst; got ${formatMs(withinMs)}` });
  }
  const rawRequire = own(v, 'require');
  const require = rawRequire === undefined || rawRequire === null ? DEFAULT_BURST_REQUIRE : validateDemand(rawRequire, `${at}.require`, 'the next sign-in after a burst of failures', problems);
  if (problems.length !== before || after === null || withinMs === null || require === null) return undefined;
  return { after, withinMs, require };
}

/** An origin for links in mail; the Host header is never used for them. */
function validatePublicUrl(v: unknown, at: string, problems: Problems): string | null {
  if (v === undefined || v === null) return null;
  const hint = 'must be an http(s) origin such as https://app.example.com (no path, query or credentials)';
  if (typeof v !== 'string') {
    problems.push({ at, message: `${hint}; got ${describe(v)}` });
    return null;
  }
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    problems.push({ at, message: `${hint}; got ${describe(v)}` });
    return null;
  }
  if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '' || (u.pathname !== '/' && u.pathname !== '')) {
    problems.push({ at, message: `${hint}; got ${describe(v)}` });
    return null;
  }
  return u.origin;
}

function validateBranding(v: unknown, at: string, problems: Problems): LoginConfig['branding'] | null {
  const out: LoginConfig['branding'] = { name: null, color: DEFAULT_BRAND_COLOR, logoUrl: null };
  if (v === undefined || v === null) return out;
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { name: Acme, color: "#2563eb", logo_url: https://… }; got ${describe(v)}` });
    return null;
  }
  const before = problems.length;
  checkKeys(v, BRANDING_KEYS, at, problems);
  out.name = validateName(own(v, 'name'), `${at}.name`, problems);
  const color = own(v, 'color');
  if (color !== undefined && color !== null) {
    if (typeof color === 'string' && /^#[0-9a-fA-F]{6}$/.test(color)) out.color = color.toLowerCase();
    else problems.push({ at: `${at}.color`, message: `must be a colour written #rrggbb, e.g. "#2563eb" (quote it in YAML); got ${describe(color)}` });
  }
  const logo = own(v, 'logo_url');
  if (logo !== undefined && logo !== null) {
    let ok = false;
    if (typeof logo === 'string' && logo.length <= 2048) {
      try {
        const u = new URL(logo);
        ok = (u.protocol === 'https:' || u.protocol === 'http:') && u.username === '' && u.password === '' && !/["'<>\s]/.test(logo);
      } catch {
        ok = false;
      }
    }
    if (ok) out.logoUrl = logo as string;
    else problems.push({ at: `${at}.logo_url`, message: `must be an http(s) URL of an image without quotes, spaces or < >; got ${describe(logo)}` });
  }
  return problems.length === before ? out : null;
}

function validateThrottle(v: unknown, at: string, problems: Problems): LoginConfig['throttle'] | null {
  if (v === undefined || v === null) return { account: defaultAccountThrottle(), ip: defaultIpThrottle() };
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping with account and/or ip, e.g. { account: { lock_after: 10 } }; got ${describe(v)}` });
    return null;
  }
  checkKeys(v, THROTTLE_KEYS, at, problems);
  const account = validateThrottleLimits(own(v, 'account'), `${at}.account`, defaultAccountThrottle(), problems);
  const ip = validateThrottleLimits(own(v, 'ip'), `${at}.ip`, defaultIpThrottle(), problems);
  return account === null || ip === null ? null : { account, ip };
}

function validateThrottleLimits(v: unknown, at: string, dflt: ThrottleLimits, problems: Problems): ThrottleLimits | null {
  if (v === undefined || v === null) return dflt;
  if (!isMapping(v)) {
    problems.push({ at, message: `must be a mapping such as { delay_after: 3, lock_after: 10, lock: 15m, window: 15m }; got ${describe(v)}` });
    return null;
  }
  const before = problems.length;
  checkKeys(v, THROTTLE_LIMIT_KEYS, at, problems);
  const delayAfter = validateInt(own(v, 'delay_after'), `${at}.delay_after`, dflt.delayAfter, 0, 10_000, problems);
  const lockAfter = validateInt(own(v, 'lock_after'), `${at}.lock_after`, dflt.lockAfter, 1, 10_000, problems);
  const lockMs = validateDuration(own(v, 'lock'), `${at}.lock`, `${dflt.lockMs / 1000}s`, problems);
  const windowMs = validateDuration(own(v, 'window'), `${at}.window`, `${dflt.windowMs / 1000}s`, problems);
  if (lockMs !== null && lockMs > MAX_LOCK_MS) {
    problems.push({ at: `${at}.lock`, message: `must be at most 1h: a lock anyone can trigger with a guessed email must not shut its owner out for long; got ${formatMs(lockMs)}` });
  }
  if (windowMs !== null && windowMs > 86_400_000) {
    problems.push({ at: `${at}.window`, message: `must be at most 24h; got ${formatMs(windowMs)}` });
  }
  if (delayAfter !== null && lockAfter !== null && delayAfter > lockAfter) {
    problems.push({ at: `${at}.delay_after`, message: `must not be larger than lock_after (${delayAfter} > ${lockAfter}); delays come before the lock` });
  }
  if (problems.length !== before || delayAfter === null || lockAfter === null || lockMs === null || windowMs === null) return null;
  return { delayAfter, lockAfter, lockMs, windowMs };
}
