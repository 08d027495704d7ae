/**
 * Retention: what the request path and the hosted pages write and nothing
 * ever reads again is deleted, so the store does not grow without bound.
 *
 * - Sessions past their absolute or idle lifetime (the same test as
 *   src/session/authenticate.ts; a refresh is written at most once a minute,
 *   so the stored `lastSeenAt` is what the request path judges by too).
 *   Sessions of a project the config no longer has are kept until the
 *   longest lifetime a config could have given them (`ORPHAN_SESSION_MS`):
 *   a project removed by mistake and put back finds its users signed in.
 * - Failed-login counters that would start over at the next attempt
 *   (store ThrottleStore.sweep).
 * - Login history older than `historyMs` (default 90 days). Failures are
 *   recorded for unknown emails too (enumeration resistance), so without a
 *   limit a client could grow the store at the throttle's pace forever.
 * - Emailed tokens past their expiry.
 * - Development outbox mail (no `--smtp`) older than a day: its reset and
 *   signup links are dead by then (reset_ttl is at most 24 h), and a copy of
 *   the store should not keep a growing archive of them.
 * - Change-feed entries older than ten minutes (src/store/changes.ts): every
 *   reader polls it several times a second.
 *
 * One edge worker sweeps (src/login/setup.ts). Every sweep deletes in small
 * write transactions and re-checks each record inside them, so it never
 * undoes a concurrent login, refresh or revoke, and a second sweeper (another
 * edge on the same store) is harmless.
 */
import type { Store, SessionRecord } from '../store/index.js';
import { DEVICE_COOKIE_MAX_AGE_S } from './device.js';
import { defaultAccountThrottle, defaultIpThrottle, type CompiledConfig } from '../config/index.js';
import { CONSOLE_PROJECT, CONSOLE_SESSION_ABSOLUTE_MS, CONSOLE_SESSION_IDLE_MS } from '../control/index.js';

/** Login history kept by default: a quarter of a year, enough for an incident review. */
export const DEFAULT_HISTORY_MS = 90 * 24 * 3600_000;
/** Sessions of a project that is no longer configured are kept this long after their last use. */
export const ORPHAN_SESSION_MS = 30 * 24 * 3600_000;
/** Development outbox mail kept: a day, the longest an emailed link may live (reset_ttl ≤ 24 h). */
export const OUTBOX_MS = 24 * 3600_000;
/** Throttle window assumed when no config is loaded: the longest a config may set (src/config/validate/login.ts). */
const FALLBACK_WINDOW_MS = 24 * 3600_000;

export interface RetentionOptions {
  historyMs?: number;
}

export interface SweepCounts {
  sessions: number;
  throttle: number;
  history: number;
  tokens: number;
  outbox: number;
  /** Change-feed entries older than FEED_KEEP_MS (src/store/changes.ts). */
  changes: number;
  /** Devices not seen for longer than a device cookie lives (src/login/device.ts). */
  devices: number;
}

/** Whether a session is over at `now` under the config (or the Console's fixed lifetimes). */
export function sessionExpired(cfg: CompiledConfig | null, s: SessionRecord, now: number): boolean {
  let absoluteMs: number;
  let idleMs: number;
  if (s.projectId === CONSOLE_PROJECT) {
    absoluteMs = CONSOLE_SESSION_ABSOLUTE_MS;
    idleMs = CONSOLE_SESSION_IDLE_MS;
  } else {
    const p = cfg?.projects.get(s.projectId);
    if (p === undefined) return now >= s.lastSeenAt + ORPHAN_SESSION_MS;
    absoluteMs = p.sessionAbsoluteMs;
    idleMs = p.sessionIdleMs;
  }
  return now >= s.createdAt + absoluteMs || now >= s.lastSeenAt + idleMs;
}

/**
 * The longest failed-login window of any project (account or IP), and never
 * shorter than the defaults the Console's own login uses (its counters share
 * the store).
 */
export function longestThrottleWindow(cfg: CompiledConfig | null): number {
  if (cfg === null) return FALLBACK_WINDOW_MS;
  let w = Math.max(defaultAccountThrottle().windowMs, defaultIpThrottle().windowMs);
  for (const p of cfg.projects.values()) w = Math.max(w, p.login.throttle.account.windowMs, p.login.throttle.ip.windowMs);
  return w;
}

/** One pass over everything retention covers. */
export async function sweepExpired(store: Store, cfg: CompiledConfig | null, now: number, opts: RetentionOptions = {}): Promise<SweepCounts> {
  const historyMs = opts.historyMs ?? DEFAULT_HISTORY_MS;
  return {
    sessions: await store.sessions.sweep((s) => sessionExpired(cfg, s, now)),
    throttle: await store.throttle.sweep(now, longestThrottleWindow(cfg)),
    history: await store.loginHistory.sweep(now - historyMs),
    tokens: await store.emailTokens.sweep(now),
    outbox: await store.outbox.sweep(now - OUTBOX_MS),
    changes: await store.changes.prune(now),
    devices: await store.devices.sweep(now - DEVICE_COOKIE_MAX_AGE_S * 1000),
  };
}
