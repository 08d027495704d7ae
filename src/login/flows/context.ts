/**
 * What every hosted-page flow works with: the pages' paths, the request
 * snapshot and the response value, the deps, the per-request context, the
 * shape of a flow (its GET and its POST), and small pure helpers.
 */
import type { CompiledConfig, CompiledProject } from '../../config/index.js';
import type { Store } from '../../store/index.js';
import { findCookie } from '../../session/index.js';
import type { ErrorCode } from '../../errors/index.js';
import type { Argon2Params } from '../../../native/sodium.js';
import type { Clock } from '../../runtime/index.js';
import { clientIp } from '../../config/index.js';
import type { Csrf } from '../csrf.js';
import type { PasswordHasher } from '../hasher.js';
import type { Mailer } from '../mail.js';
import type { Challenges } from '../factors/webauthn.js';
import type { DeviceCookies } from '../device.js';

export const PAGES = {
  login: '/_mezu/login',
  logout: '/_mezu/logout',
  signup: '/_mezu/signup',
  signupConfirm: '/_mezu/signup/confirm',
  forgot: '/_mezu/forgot',
  reset: '/_mezu/reset',
  password: '/_mezu/password',
  secondFactor: '/_mezu/login/otp',
  stepUp: '/_mezu/step-up',
  security: '/_mezu/account/security',
  /** POST: a passkey made on the security page. */
  passkeyEnrol: '/_mezu/account/passkey',
  /** POST: passwordless sign-in with a passkey (the button on the login page). */
  passkeyLogin: '/_mezu/login/passkey',
  /** The hosted pages' one script (factors/script.ts); pages.ts SCRIPT_PATH. */
  script: '/_mezu/webauthn.js',
} as const;

/** A request to a hosted page, copied out of uWS. */
export interface PageRequest {
  method: string;
  path: string;
  query: string;
  hostHeader: string;
  cookie: string;
  origin: string;
  secFetchSite: string;
  userAgent: string;
  socketIp: string;
  forwardedFor: string;
  /** The urlencoded form (POST), '' otherwise. */
  body: string;
}

export interface PageResponse {
  status: number;
  headers: Array<[string, string]>;
  body: string;
  /** Error code of the outcome, also sent as `x-mezu-error-code`; null on success. */
  code: ErrorCode | null;
}

export interface LoginDeps {
  store: Store;
  hasher: PasswordHasher;
  mailer: Mailer;
  csrf: Csrf;
  scheme: 'http' | 'https';
  sessionCookie: string;
  csrfCookie: string;
  clock: Clock;
  /** Passkey challenges (factors/webauthn.ts); null where passkeys are not offered (the Console's own sign-in). */
  challenges: Challenges | null;
  /** Device cookies (../device.ts); null where devices are not tracked (the Console's own sign-in). */
  devices: DeviceCookies | null;
  deviceCookie: string;
  log(msg: string): void;
  /** Counts a history event (metrics: mezu_edge_login_events_total); the reason is one of a fixed set. */
  onEvent?(project: string, type: string, reason: string | null): void;
}

/** RFC 5321 §4.5.3.1.3: a path of 256 octets holds an address of at most 254. */
const MAX_EMAIL = 254;
const EMAIL_RE = /^[^\s@<>"',;]+@[^\s@<>"',;]+\.[^\s@<>"',;]+$|^[^\s@<>"',;]+@localhost$/;
/** Logged when a background send fails (the page answered already). */
export const MAIL_FAILED: ErrorCode = 'MEZU_MAIL_FAILED';

/** Per-request working state. */
export class Ctx {
  readonly setCookies: string[] = [];
  csrfValue: string;
  readonly ip: string;
  readonly form: URLSearchParams;
  readonly params: URLSearchParams;
  constructor(
    readonly req: PageRequest,
    readonly project: CompiledProject,
    readonly cfg: CompiledConfig,
    csrfCookie: string,
  ) {
    this.csrfValue = findCookie(req.cookie, csrfCookie);
    this.ip = clientIp(cfg, req.socketIp, req.forwardedFor);
    this.form = new URLSearchParams(req.body);
    this.params = new URLSearchParams(req.query);
  }

  field(name: string): string {
    return this.form.get(name) ?? '';
  }
}


/** One hosted page: its form (the answer to GET and HEAD), and what a POST that passed the CSRF checks submits. */
export interface Flow {
  form(c: Ctx): PageResponse | Promise<PageResponse>;
  submit(c: Ctx): Promise<PageResponse>;
}

export function withRetry(r: PageResponse, s: number): PageResponse {
  r.headers.push(['retry-after', String(s)]);
  return r;
}

export function argon(cfg: CompiledConfig): Argon2Params {
  return { memoryBytes: cfg.passwords.memoryBytes, iterations: cfg.passwords.iterations };
}

export function normEmail(s: string): string {
  return s.trim().slice(0, MAX_EMAIL + 1);
}

export function validEmail(e: string): boolean {
  return e.length > 0 && e.length <= MAX_EMAIL && EMAIL_RE.test(e);
}

export function escText(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

export function fmtWait(s: number): string {
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}
