/**
 * The one catalogue of error codes. Every code has an HTTP status (for codes
 * that reach a client) and a message. Match on `err.code` across processes and
 * threads, never on `instanceof` or message text. docs/ERRORS.md documents
 * every code; test/unit/errors checks that each is documented and used.
 *
 * Messages name the component (`edge:`, `tunnel:`, `config:`) so a log line
 * points at its source.
 */

export const Errors = {
  // ── request path (edge) ──
  MEZU_HOST_UNKNOWN: { status: 421, message: 'edge: this host is not served here' },
  MEZU_HOST_INVALID: { status: 400, message: 'edge: missing or malformed Host header' },
  MEZU_PATH_INVALID: { status: 400, message: 'edge: the request path is malformed or ambiguous' },
  MEZU_METHOD_NOT_ALLOWED: { status: 405, message: 'edge: this method is not accepted' },
  MEZU_LOGIN_REQUIRED: { status: 401, message: 'edge: authentication required' },
  MEZU_FORBIDDEN: { status: 403, message: 'edge: you are not allowed to access this resource' },
  MEZU_PRINCIPAL_NOT_ALLOWED: { status: 403, message: 'edge: this kind of principal may not access this route' },
  MEZU_ROUTE_DENIED: { status: 403, message: 'edge: this route is closed' },
  MEZU_NOT_FOUND: { status: 404, message: 'edge: no such reserved page' },
  MEZU_INTERNAL: { status: 503, message: 'edge: internal error; the request was denied' },
  MEZU_DRAINING: { status: 503, message: 'edge: shutting down; retry' },
  MEZU_FRAMING_INVALID: { status: 400, message: 'edge: the request framing is ambiguous or malformed' },
  MEZU_HEAD_TOO_LARGE: { status: 431, message: 'edge: the request head is too large' },
  MEZU_REQUEST_TOO_LARGE: { status: 413, message: 'edge: the request body is larger than this route accepts' },
  // ── hosted pages (login, signup, reset) ──
  MEZU_LOGIN_FAILED: { status: 401, message: 'login: incorrect email or password' },
  MEZU_LOGIN_THROTTLED: { status: 429, message: 'login: too many attempts; wait and try again' },
  MEZU_LOGIN_BUSY: { status: 503, message: 'login: too many sign-ins at once; try again in a moment' },
  MEZU_CSRF_FAILED: { status: 403, message: 'login: the form expired or came from another site; reload it and try again' },
  MEZU_FORM_INVALID: { status: 400, message: 'login: the form is malformed' },
  MEZU_FORM_TOO_LARGE: { status: 413, message: 'login: the form is too large' },
  MEZU_SIGNUP_CLOSED: { status: 403, message: 'login: sign-up is closed for this project' },
  MEZU_LINK_INVALID: { status: 400, message: 'login: this link is invalid, used or expired' },
  MEZU_PASSWORD_REJECTED: { status: 400, message: 'login: the new password does not meet the password rules' },
  MEZU_MAIL_FAILED: { status: 502, message: 'mail: the message could not be delivered' },
  MEZU_STEP_UP_REQUIRED: { status: 401, message: 'edge: this route needs a fresher or stronger sign-in' },
  MEZU_OTP_INVALID: { status: 401, message: 'login: the code is wrong, expired or was already used' },
  MEZU_PASSKEY_INVALID: { status: 401, message: 'login: the passkey answer did not verify' },
  // ── tunnel / Warpgate ──
  MEZU_NO_WARPGATE: { status: 502, message: 'tunnel: no Warpgate is connected for this project' },
  MEZU_CLIENT_BUSY: { status: 429, message: 'edge: too many requests from this client are in flight; retry shortly' },
  MEZU_ROUTE_BUSY: { status: 503, message: 'edge: this route has as many requests in flight as it allows; retry shortly' },
  MEZU_TUNNEL_FAILED: { status: 502, message: 'tunnel: the Warpgate connection failed during the request' },
  MEZU_UPSTREAM_TIMEOUT: { status: 504, message: 'tunnel: the Warpgate did not answer in time' },
  MEZU_ASSERTION_INVALID: { status: 403, message: 'warpgate: the identity assertion is missing or invalid' },
  MEZU_ORIGIN_UNREACHABLE: { status: 502, message: 'warpgate: the origin is unreachable' },
  MEZU_ORIGIN_TIMEOUT: { status: 504, message: 'warpgate: the origin did not answer in time' },
  MEZU_ORIGIN_FAILED: { status: 502, message: 'warpgate: the origin connection failed during the request' },
  MEZU_ORIGIN_BUSY: { status: 503, message: 'warpgate: every origin connection is busy; retry shortly' },
  // ── WebSockets and long-lived streams ──
  MEZU_WEBSOCKET_INVALID: { status: 400, message: 'edge: the WebSocket handshake is malformed' },
  MEZU_WEBSOCKET_NOT_ALLOWED: { status: 403, message: 'edge: WebSockets are not allowed on this route' },
  MEZU_WEBSOCKET_UNSUPPORTED: { status: 502, message: 'tunnel: the Warpgate of this project does not accept WebSockets' },
  MEZU_WEBSOCKET_LIMIT: { status: 429, message: 'edge: this session has as many WebSockets open as the route allows' },
  MEZU_WEBSOCKET_UPGRADE_FAILED: { status: 502, message: 'warpgate: the origin did not accept the WebSocket upgrade' },
  MEZU_WEBSOCKET_MESSAGE_TOO_BIG: { status: 413, message: 'edge: the WebSocket message is larger than this route accepts' },
  MEZU_WEBSOCKET_IDLE: { status: 408, message: 'edge: the WebSocket was idle for longer than this route allows' },
  MEZU_WEBSOCKET_BACKPRESSURE: { status: 503, message: 'edge: the WebSocket client sent faster than the application reads' },
  MEZU_ACCESS_REVOKED: { status: 403, message: 'edge: access ended while the connection was open' },
  // ── control plane, config, store, startup ──
  MEZU_CONFIG_INVALID: { status: 400, message: 'config: the configuration is invalid' },
  MEZU_CONFIG_STALE: { status: 409, message: 'config: another version was applied in between; reload and retry' },
  MEZU_CONFIG_MISSING: { status: 503, message: 'config: no configuration has been applied yet' },
  MEZU_USER_EXISTS: { status: 409, message: 'store: a user with this email already exists' },
  MEZU_USER_NOT_FOUND: { status: 404, message: 'store: no such user' },
  MEZU_SERVICE_ACCOUNT_NOT_FOUND: { status: 404, message: 'store: no such service account' },
  MEZU_STORE_UNAVAILABLE: { status: 503, message: 'store: the store cannot be opened' },
  MEZU_STORE_NOT_OWNED: { status: 503, message: 'store: the data directory belongs to another user' },
  MEZU_REPLICA_STALE: { status: 503, message: 'edge: this node has been cut off from the cluster for longer than its staleness bound; retry on another node' },
  MEZU_REPLICA_OFFLINE: { status: 503, message: 'replica: JetStream cannot be reached; the change was not made' },
  MEZU_REPLICA_CONFLICT: { status: 503, message: 'replica: the change kept racing changes made on other nodes; retry' },
  MEZU_REPLICA_GAP: { status: 500, message: 'replica: the stream no longer holds entries this replica needs' },
  MEZU_REPLICA_UNAVAILABLE: { status: 500, message: 'replica: the replication settings cannot be read' },
  MEZU_STORE_KEY_INVALID: { status: 503, message: 'store: the store key is missing or does not open the sealed secrets' },
  MEZU_NATIVE_UWS: { status: 500, message: 'native: uWebSockets.js native binary not loaded' },
  MEZU_SIGNING_KEY_MISSING: { status: 503, message: 'identity: no signing key is available' },
  MEZU_USAGE: { status: 400, message: 'cli: bad arguments' },
  MEZU_STATUS_TRANSITION: { status: 409, message: 'store: this status change is not allowed' },
  MEZU_SESSION_NOT_FOUND: { status: 404, message: 'store: no such session' },
  MEZU_KEY_NOT_FOUND: { status: 404, message: 'store: no such API key' },
  MEZU_KEY_NOT_LIVE: { status: 409, message: 'store: this key is revoked, expired or already rotated' },
  // ── Console: admin API and pages ──
  MEZU_CONSOLE_AUTH_REQUIRED: { status: 401, message: 'console: sign in to the Console or send a service-account key' },
  MEZU_CONSOLE_FORBIDDEN: { status: 403, message: 'console: your role or key does not allow this' },
  MEZU_API_NOT_FOUND: { status: 404, message: 'console: no such API route' },
  MEZU_API_METHOD_NOT_ALLOWED: { status: 405, message: 'console: this method is not allowed on this route' },
  MEZU_REQUEST_INVALID: { status: 400, message: 'console: the request is invalid' },
  MEZU_BODY_TOO_LARGE: { status: 413, message: 'console: the request body is too large' },
  MEZU_ALREADY_EXISTS: { status: 409, message: 'console: an object with this id already exists' },
  MEZU_PROJECT_NOT_FOUND: { status: 404, message: 'console: no such project' },
  MEZU_DIRECTORY_NOT_FOUND: { status: 404, message: 'console: no such user directory' },
  MEZU_KEY_INVALID: { status: 401, message: 'console: the API key is unknown or malformed' },
  MEZU_KEY_REVOKED: { status: 401, message: 'console: the API key was revoked' },
  MEZU_KEY_EXPIRED: { status: 401, message: 'console: the API key has expired' },
  MEZU_SERVICE_ACCOUNT_DISABLED: { status: 403, message: 'console: the service account of this key is disabled' },
  MEZU_GRANT_EXCEEDS_CALLER: { status: 403, message: 'console: a caller cannot grant roles or permissions it does not hold' },
  MEZU_SELF_EDIT_FORBIDDEN: { status: 403, message: 'console: a key cannot change its own service account' },
  // ── Warpgate enrollment ──
  MEZU_CSR_INVALID: { status: 400, message: 'console: the certificate signing request is invalid' },
  MEZU_ENROLL_FAILED: { status: 502, message: 'warpgate: enrollment failed; retrying' },
  MEZU_TUNNEL_CREDENTIAL_REVOKED: { status: 403, message: 'tunnel: the Warpgate key is revoked or expired; its tunnels are closed' },
} as const;

export type ErrorCode = keyof typeof Errors;

export class MezuError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  constructor(code: ErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? Errors[code].message, options);
    this.code = code;
    this.status = Errors[code].status;
    this.name = 'MezuError';
  }
}

/** The JSON body every error response carries: `{"error":{"code","message"}}` plus extra fields. */
export function errorBody(code: ErrorCode, extra?: Record<string, string>): string {
  return JSON.stringify({ error: { code, message: Errors[code].message, ...(extra ?? {}) } });
}

/** Code of any thrown value, for logs; `MEZU_INTERNAL` for faults without one. */
export function codeOf(err: unknown): string {
  if (err !== null && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string') return (err as { code: string }).code;
  return 'MEZU_INTERNAL';
}
