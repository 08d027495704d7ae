/**
 * Request-body limits in the config: `max_body` on a project (its default for
 * every route) and on a route. A body longer than the limit of the rule that
 * matched gets 413 and the connection is closed (docs/SECURITY.md, "Bodies").
 */

/**
 * Default `max_body`: 10 MiB. Large enough for form posts, JSON APIs and most
 * uploads; a route that takes larger uploads says so with its own `max_body`.
 * (nginx defaults to 1 MiB; Cloudflare's free plan stops at 100 MB.)
 */
export const DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024;

/** Upper bound of `max_body`: 1 TiB. Above that a limit is a typo, not a policy. */
export const MAX_MAX_BODY_BYTES = 1024 ** 4;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1000,
  mb: 1000 ** 2,
  gb: 1000 ** 3,
  tb: 1000 ** 4,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
  tib: 1024 ** 4,
};

/**
 * A byte size: a non-negative integer (bytes) or a number with a unit, such
 * as `512KiB`, `10MiB`, `1.5GB` (units are case-insensitive; `KiB` = 1024,
 * `kB` = 1000). Returns null when the text is not a size.
 */
export function parseSize(v: unknown): number | null {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? v : null;
  if (typeof v !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(v);
  if (m === null) return null;
  const unit = UNITS[m[2]!.toLowerCase()];
  if (unit === undefined) return null;
  const n = Math.round(Number(m[1]) * unit);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * WebSocket limits of a route (docs/SECURITY.md, "WebSockets"). `max_message`
 * bounds one client message (1009 past it); uWS reassembles a fragmented
 * message before the edge sees it, and refuses (closing without a close
 * frame, 1006) a frame header announcing more than MAX_MAX_MESSAGE_BYTES, so
 * a message between the route's limit and that ceiling is buffered once by
 * uWS and then refused with 1009.
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
export const MAX_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
/** `idle_timeout`: no message either way for this long closes the socket (1001). nginx's proxy_read_timeout is 60 s; a chat client idles longer. */
export const DEFAULT_WS_IDLE_MS = 5 * 60_000;
/** `max_sockets`: open WebSockets one session or key may hold on a rule, edge-wide (each worker takes its share). Browsers open one or two per tab. */
export const DEFAULT_MAX_SOCKETS = 32;
export const MAX_MAX_SOCKETS = 100_000;
