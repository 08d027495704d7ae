/**
 * The hosted-page flows: login, signup (with an emailed confirmation link),
 * logout, forgot password, reset password, change password. Each takes a
 * plain request snapshot and returns a response value; `http.ts` does the
 * uWS side. Nothing here touches the proxied request path.
 *
 * Enumeration resistance: login, signup and forgot-password answer with the
 * same status, body and (up to the argon2 cost, which both sides pay) timing
 * whether or not the email has an account: an unknown email is verified
 * against a dummy hash, mail goes out in the background, the throttle
 * counts per email whether or not a user has it. Signup therefore always
 * answers "check your inbox": the account is created when the emailed link
 * is opened, which also proves the address belongs to whoever signs up (in
 * `invite` mode, knowing an invited address is not enough to claim it).
 */
import { randomBytes } from 'node:crypto';
import type { CompiledConfig, CompiledProject } from '../config/types.js';
import type { Store, UserRecord, LoginEventType, EmailTokenPurpose, EmailTokenRecord } from '../store/index.js';
import { findCookie, hashToken, isTokenSyntax, newId, newSessionToken } from '../session/index.js';
import { Errors, type ErrorCode } from '../errors/index.js';
import type { Argon2Params } from '../../native/sodium.js';
import { Csrf, CSRF_FIELD, sameOrigin } from './csrf.js';
import { safeReturnPath } from './redirect.js';
import { Throttle, accountKey, ipKey, mailAccountKey, mailIpKey, type Attempt } from './throttle.js';
import { clientIp } from '../config/client-ip.js';
import { checkNewPassword, describeVerdict, MAX_PASSWORD_CHARS } from './password-policy.js';
import { renderPage, cspOf, NEW_PASSWORD_HINT, type PageSpec } from './pages.js';
import type { PasswordHasher } from './hasher.js';
import type { Mailer } from './mail.js';
import type { Clock } from '../runtime/index.js';

export const PAGES = {
  login: '/_mezu/login',
  logout: '/_mezu/logout',
  signup: '/_mezu/signup',
  signupConfirm: '/_mezu/signup/confirm',
  forgot: '/_mezu/forgot',
  reset: '/_mezu/reset',
  password: '/_mezu/password',
} as const;
const PAGE_PATHS: ReadonlySet<string> = new Set(Object.values(PAGES));

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
  log(msg: string): void;
}

const MAX_EMAIL = 254;
const EMAIL_RE = /^[^\s@<>"',;]+@[^\s@<>"',;]+\.[^\s@<>"',;]+$|^[^\s@<>"',;]+@localhost$/;
const GENERIC_LOGIN_ERROR = 'Incorrect email or password.';
/** Logged when a background send fails (the page answered already). */
const MAIL_FAILED: ErrorCode = 'MEZU_MAIL_FAILED';

/** Per-request working state. */
class Ctx {
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

export class LoginService {
  private readonly throttle: Throttle;
  constructor(private readonly d: LoginDeps) {
    this.throttle = new Throttle(d.store.throttle);
  }

  static serves(path: string): boolean {
    return PAGE_PATHS.has(path);
  }

  async handle(req: PageRequest, project: CompiledProject, cfg: CompiledConfig): Promise<PageResponse> {
    const c = new Ctx(req, project, cfg, this.d.csrfCookie);
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (!get && req.method !== 'POST') return this.page(c, 405, 'MEZU_METHOD_NOT_ALLOWED', { title: 'Not allowed', error: 'This page accepts GET and POST only.' });
    if (!get) {
      // Every POST: the browser's own origin signals, then the signed double-submit token.
      const allowed = [`${this.d.scheme}://${req.hostHeader.toLowerCase()}`, project.login.publicUrl.toLowerCase()];
      if (!sameOrigin(req.origin, req.secFetchSite, allowed) || !this.d.csrf.check(c.csrfValue, c.field(CSRF_FIELD))) {
        return this.page(c, 403, 'MEZU_CSRF_FAILED', {
          title: 'Please try again',
          error: 'This form expired or was sent from another site. Reload the page and submit it again.',
          links: [{ href: `${req.path}${req.query === '' ? '' : `?${req.query}`}`, text: 'Reload the form' }],
        });
      }
    }
    switch (req.path) {
      case PAGES.login: return get ? this.loginForm(c, {}) : this.login(c);
      case PAGES.logout: return get ? this.logoutForm(c) : this.logout(c);
      case PAGES.signup: return get ? this.signupForm(c, {}) : this.signup(c);
      case PAGES.signupConfirm: return get ? this.confirmForm(c, c.params.get('token') ?? '', {}) : this.confirm(c);
      case PAGES.forgot: return get ? this.forgotForm(c, {}) : this.forgot(c);
      case PAGES.reset: return get ? this.resetForm(c, c.params.get('token') ?? '', {}) : this.reset(c);
      case PAGES.password: return get ? this.passwordForm(c, {}) : this.changePassword(c);
      default: return this.page(c, 404, 'MEZU_NOT_FOUND', { title: 'Not found', error: 'There is no such page.' });
    }
  }

  // ── login ──────────────────────────────────────────────────────────────

  private loginForm(c: Ctx, o: { email?: string; error?: string; notice?: string; status?: number; code?: ErrorCode; retryAfter?: number }): PageResponse {
    const rd = safeReturnPath(c.form.get('rd') ?? c.params.get('rd'));
    const q = rd === '/' ? '' : `?rd=${encodeURIComponent(rd)}`;
    const links = [{ href: `${PAGES.forgot}${q}`, text: 'Forgot your password?' }];
    if (c.project.login.signup !== 'disabled') links.push({ href: `${PAGES.signup}${q}`, text: 'No account yet? Create one' });
    const r = this.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Sign in',
      ...(o.error !== undefined ? { error: o.error } : {}),
      ...(o.notice !== undefined ? { notice: o.notice } : {}),
      form: {
        action: PAGES.login,
        submit: 'Sign in',
        csrf: this.csrfToken(c),
        fields: [
          { name: 'email', label: 'Email', type: 'email', value: o.email ?? '', autocomplete: 'username' },
          { name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' },
          { name: 'rd', label: '', type: 'hidden', value: rd },
        ],
      },
      links,
    });
    if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
    return r;
  }

  private async login(c: Ctx): Promise<PageResponse> {
    const email = normEmail(c.field('email'));
    const password = c.field('password');
    if (!validEmail(email)) return this.loginForm(c, { email, status: 400, code: 'MEZU_LOGIN_FAILED', error: 'Enter your email address, like name@example.com.' });
    if (password === '') return this.loginForm(c, { email, status: 400, code: 'MEZU_LOGIN_FAILED', error: 'Enter your password.' });
    if ([...password].length > MAX_PASSWORD_CHARS) return this.loginFailed(c, email, null, 'too_long');
    const p = c.project;
    const now = this.d.clock.now();
    const aKey = accountKey(p.directory, email);
    const iKey = ipKey(p.directory, c.ip);
    const blocked = await this.countAttempts(c, email, aKey, iKey, p.login.throttle, now);
    if (blocked !== null) {
      return this.loginForm(c, { email, status: 429, code: 'MEZU_LOGIN_THROTTLED', retryAfter: blocked, error: `Too many attempts. Wait ${fmtWait(blocked)} and try again, or reset your password.` });
    }
    const user = this.d.store.users.getByEmail(p.directory, email) ?? null;
    const cred = user === null ? undefined : this.d.store.credentials.get(user.id);
    const params = argon(c.cfg);
    const v = await this.d.hasher.verify(password, cred?.hash ?? null, params);
    if (v === null) {
      // Not checked: give the counted attempt back.
      await Promise.all([this.throttle.release(aKey, p.login.throttle.account), this.throttle.release(iKey, p.login.throttle.ip)]);
      return this.loginForm(c, { email, status: 503, code: 'MEZU_LOGIN_BUSY', retryAfter: 1, error: 'Too many people are signing in right now. Try again in a moment.' });
    }
    if (!v.ok || user === null || user.status !== 'active') {
      const reason = user === null ? 'unknown_user' : cred === undefined ? 'no_password' : !v.ok ? 'bad_password' : user.status;
      return this.loginFailed(c, email, user, reason);
    }
    await Promise.all([this.throttle.clear(aKey), this.throttle.release(iKey, p.login.throttle.ip)]);
    if (v.needsRehash && cred !== undefined) this.rehash(user.id, cred.hash, password, params);
    return this.signIn(c, user, 'login_success', safeReturnPath(c.field('rd')));
  }

  private loginFailed(c: Ctx, email: string, user: UserRecord | null, reason: string): PageResponse {
    this.event(c, 'login_failure', reason, user, email);
    return this.loginForm(c, { email, status: 401, code: 'MEZU_LOGIN_FAILED', error: GENERIC_LOGIN_ERROR });
  }

  /** Counts the attempt on both keys; returns seconds to wait when either refuses. */
  private async countAttempts(c: Ctx, email: string, aKey: string, iKey: string, t: CompiledProject['login']['throttle'], now: number): Promise<number | null> {
    const [a, i]: Attempt[] = await Promise.all([this.throttle.attempt(aKey, now, t.account), this.throttle.attempt(iKey, now, t.ip)]);
    if (a!.allowed && a!.lockedNow) this.event(c, 'lock', 'account', this.d.store.users.getByEmail(c.project.directory, email) ?? null, email);
    if (i!.allowed && i!.lockedNow) this.event(c, 'lock', 'ip', this.d.store.users.getByEmail(c.project.directory, email) ?? null, email);
    if (a!.allowed && i!.allowed) return null;
    // The refused key was not counted; give back the one that was.
    if (a!.allowed) await this.throttle.release(aKey, t.account);
    if (i!.allowed) await this.throttle.release(iKey, t.ip);
    return Math.max(a!.allowed ? 0 : a!.retryAfterS, i!.allowed ? 0 : i!.retryAfterS);
  }

  /**
   * A new session with a fresh token: whatever session cookie the browser
   * sent before is revoked, never promoted (session fixation), and the CSRF
   * cookie is replaced.
   */
  private async signIn(c: Ctx, user: UserRecord, type: LoginEventType, rd: string): Promise<PageResponse> {
    const now = this.d.clock.now();
    const old = findCookie(c.req.cookie, this.d.sessionCookie);
    if (old !== '' && isTokenSyntax(old)) await this.d.store.sessions.revoke(hashToken(old));
    const token = newSessionToken();
    await this.d.store.sessions.create(hashToken(token), {
      id: newId('ses_'), principalType: 'user', userId: user.id, projectId: c.project.id,
      createdAt: now, lastSeenAt: now, authTime: now, amr: ['pwd'],
      assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null,
    });
    this.d.store.users.update(user.id, { lastLoginAt: now }).catch((err: Error) => this.d.log(`login: last-login update failed: ${err.message}`));
    this.event(c, type, null, user, user.email);
    c.setCookies.push(this.cookie(this.d.sessionCookie, token, Math.floor(c.project.sessionAbsoluteMs / 1000)));
    c.csrfValue = Csrf.newCookieValue();
    c.setCookies.push(this.cookie(this.d.csrfCookie, c.csrfValue, null));
    return this.redirect(c, rd);
  }

  private rehash(userId: string, oldHash: string, password: string, params: Argon2Params): void {
    // After the response, and only if the password did not change meanwhile.
    this.d.hasher
      .hash(password, params)
      .then((h) => (h === null ? false : this.d.store.credentials.replaceIf(userId, oldHash, h)))
      .catch((err: Error) => this.d.log(`login: rehash failed: ${err.message}`));
  }

  // ── logout ─────────────────────────────────────────────────────────────

  private logoutForm(c: Ctx): PageResponse {
    const s = this.currentSession(c);
    if (s === null) {
      return this.page(c, 200, null, { title: 'Signed out', notice: 'You are not signed in.', links: [{ href: PAGES.login, text: 'Sign in' }] });
    }
    return this.page(c, 200, null, {
      title: 'Sign out',
      html: `<p>You are signed in as <strong>${escText(s.user.email)}</strong>.</p>`,
      form: { action: PAGES.logout, submit: 'Sign out', csrf: this.csrfToken(c), fields: [] },
    });
  }

  private async logout(c: Ctx): Promise<PageResponse> {
    const token = findCookie(c.req.cookie, this.d.sessionCookie);
    if (token !== '' && isTokenSyntax(token)) {
      const th = hashToken(token);
      const s = this.d.store.sessions.get(th);
      await this.d.store.sessions.revoke(th);
      if (s !== undefined) {
        const u = this.d.store.users.get(s.userId) ?? null;
        if (u !== null) this.event(c, 'logout', null, u, u.email);
      }
    }
    c.setCookies.push(this.cookie(this.d.sessionCookie, '', 0));
    return this.page(c, 200, null, { title: 'Signed out', notice: 'You have signed out.', links: [{ href: PAGES.login, text: 'Sign in again' }] });
  }

  // ── signup ─────────────────────────────────────────────────────────────

  private signupClosed(c: Ctx): PageResponse {
    return this.page(c, 403, 'MEZU_SIGNUP_CLOSED', { title: 'Sign-up is closed', error: 'New accounts cannot be created here. Ask an administrator for an invitation.', links: [{ href: PAGES.login, text: 'Sign in' }] });
  }

  private signupForm(c: Ctx, o: { email?: string; error?: string; status?: number; code?: ErrorCode; retryAfter?: number }): PageResponse {
    if (c.project.login.signup === 'disabled') return this.signupClosed(c);
    const rd = safeReturnPath(c.form.get('rd') ?? c.params.get('rd'));
    const r = this.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Create an account',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html: c.project.login.signup === 'invite' ? '<p>Sign-up is by invitation: use the address you were invited with.</p>' : '<p>We will email you a link to choose your password.</p>',
      form: {
        action: PAGES.signup,
        submit: 'Continue',
        csrf: this.csrfToken(c),
        fields: [
          { name: 'email', label: 'Email', type: 'email', value: o.email ?? '', autocomplete: 'email' },
          { name: 'rd', label: '', type: 'hidden', value: rd },
        ],
      },
      links: [{ href: `${PAGES.login}${rd === '/' ? '' : `?rd=${encodeURIComponent(rd)}`}`, text: 'Already have an account? Sign in' }],
    });
    if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
    return r;
  }

  private async signup(c: Ctx): Promise<PageResponse> {
    const mode = c.project.login.signup;
    if (mode === 'disabled') return this.signupClosed(c);
    const email = normEmail(c.field('email'));
    if (!validEmail(email)) return this.signupForm(c, { email, status: 400, code: 'MEZU_FORM_INVALID', error: 'Enter your email address, like name@example.com.' });
    const wait = await this.mailThrottle(c, email);
    if (wait !== null) return this.signupForm(c, { email, status: 429, code: 'MEZU_LOGIN_THROTTLED', retryAfter: wait, error: `Too many requests. Wait ${fmtWait(wait)} and try again.` });
    const rd = safeReturnPath(c.field('rd'));
    const user = this.d.store.users.getByEmail(c.project.directory, email) ?? null;
    // Same answer in every case; what happens is decided in the background.
    void this.afterSignupRequest(c, email, user, mode, rd).catch((err: Error) => this.d.log(`login: signup mail for ${c.project.id} failed (${MAIL_FAILED}): ${err.message}`));
    return this.checkInbox(c, email, 'signup');
  }

  private async afterSignupRequest(c: Ctx, email: string, user: UserRecord | null, mode: 'open' | 'invite', rd: string): Promise<void> {
    const p = c.project;
    if (user !== null && user.status !== 'active') {
      this.event(c, 'signup_requested', user.status, user, email);
      return;
    }
    if (user !== null && this.d.store.credentials.get(user.id) !== undefined) {
      this.event(c, 'signup_requested', 'already_registered', user, email);
      await this.d.mailer.send({
        projectId: p.id, to: user.email, subject: `Your ${p.login.branding.name} account`,
        text: `Someone (hopefully you) tried to create an account on ${p.login.branding.name} with this address, but you already have one.\n\n` +
          `Sign in: ${p.login.publicUrl}${PAGES.login}\nForgot your password? ${p.login.publicUrl}${PAGES.forgot}\n\nIf this was not you, you can ignore this message.\n`,
      });
      return;
    }
    if (user === null && mode === 'invite') {
      this.event(c, 'signup_requested', 'not_invited', null, email);
      return;
    }
    const token = await this.issueToken(c, 'signup', email, user, rd);
    this.event(c, 'signup_requested', null, user, email);
    await this.d.mailer.send({
      projectId: p.id, to: user?.email ?? email, subject: `Finish creating your ${p.login.branding.name} account`,
      text: `Open this link to choose your password and finish creating your account on ${p.login.branding.name}:\n\n` +
        `${p.login.publicUrl}${PAGES.signupConfirm}?token=${token}\n\nThe link works once and expires in ${fmtWait(Math.round(p.login.resetTtlMs / 1000))}. If you did not ask for an account, ignore this message.\n`,
    });
  }

  private confirmForm(c: Ctx, token: string, o: { name?: string; error?: string; passwordError?: string; status?: number; code?: ErrorCode }): PageResponse {
    const rec = this.peekToken(token, 'signup', c.project.id);
    if (rec === null) return this.linkInvalid(c, PAGES.signup);
    return this.noReferrer(this.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Choose your password',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html: `<p>Creating the account <strong>${escText(rec.email)}</strong>.</p>`,
      form: {
        action: PAGES.signupConfirm,
        submit: 'Create account',
        csrf: this.csrfToken(c),
        fields: [
          { name: 'name', label: 'Your name (optional)', type: 'text', value: o.name ?? '', autocomplete: 'name', required: false },
          { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', hint: NEW_PASSWORD_HINT, ...(o.passwordError !== undefined ? { error: o.passwordError } : {}) },
          { name: 'token', label: '', type: 'hidden', value: token },
        ],
      },
    }));
  }

  private async confirm(c: Ctx): Promise<PageResponse> {
    const token = c.field('token');
    const rec = this.peekToken(token, 'signup', c.project.id);
    if (rec === null) return this.linkInvalid(c, PAGES.signup);
    const name = c.field('name').trim().slice(0, 200).replace(/[\u0000-\u001f\u007f]/g, '');
    const password = c.field('password');
    const verdict = checkNewPassword(password, rec.email);
    if (verdict !== 'ok') return this.confirmForm(c, token, { name, status: 400, code: 'MEZU_PASSWORD_REJECTED', passwordError: describeVerdict(verdict) });
    const hash = await this.d.hasher.hash(password, argon(c.cfg));
    if (hash === null) return withRetry(this.confirmForm(c, token, { name, status: 503, code: 'MEZU_LOGIN_BUSY', error: 'Too many people are signing in right now. Try again in a moment.' }), 1);
    const taken = await this.d.store.emailTokens.consume(hashToken(token), this.d.clock.now());
    if (taken === undefined || taken.purpose !== 'signup') return this.linkInvalid(c, PAGES.signup);
    let user = this.d.store.users.getByEmail(taken.directory, taken.email) ?? null;
    if (user === null) {
      const now = this.d.clock.now();
      const display = name === '' ? taken.email.split('@')[0]! : name;
      user = { id: newId('usr_'), directory: taken.directory, email: taken.email, name: display, displayName: display, status: 'active', roles: [], permissions: [], version: 1, createdAt: now, updatedAt: now, lastLoginAt: null };
      try {
        await this.d.store.users.create(user);
      } catch {
        user = this.d.store.users.getByEmail(taken.directory, taken.email) ?? null;
      }
    } else if (name !== '' && user.name === user.email.split('@')[0]) {
      user = await this.d.store.users.update(user.id, { name, displayName: name });
    }
    // An account that got a password some other way since the link was sent is not overwritten by a signup link.
    if (user === null || user.status !== 'active' || this.d.store.credentials.get(user.id) !== undefined) return this.linkInvalid(c, PAGES.login);
    await this.d.store.credentials.set(user.id, hash);
    // The account has a password now: other signup links and any reset link sent before are void.
    await this.d.store.emailTokens.removeForUser(user.id, user.directory, [user.email]);
    this.event(c, 'signup_completed', null, user, user.email);
    return this.signIn(c, user, 'login_success', safeReturnPath(taken.rd));
  }

  // ── forgot / reset ─────────────────────────────────────────────────────

  private forgotForm(c: Ctx, o: { email?: string; error?: string; status?: number; code?: ErrorCode; retryAfter?: number }): PageResponse {
    const r = this.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Reset your password',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html: '<p>Enter the email address of your account. We will send you a link to choose a new password.</p>',
      form: { action: PAGES.forgot, submit: 'Send the link', csrf: this.csrfToken(c), fields: [{ name: 'email', label: 'Email', type: 'email', value: o.email ?? '', autocomplete: 'username' }] },
      links: [{ href: PAGES.login, text: 'Back to sign in' }],
    });
    if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
    return r;
  }

  private async forgot(c: Ctx): Promise<PageResponse> {
    const email = normEmail(c.field('email'));
    if (!validEmail(email)) return this.forgotForm(c, { email, status: 400, code: 'MEZU_FORM_INVALID', error: 'Enter your email address, like name@example.com.' });
    const wait = await this.mailThrottle(c, email);
    if (wait !== null) return this.forgotForm(c, { email, status: 429, code: 'MEZU_LOGIN_THROTTLED', retryAfter: wait, error: `Too many requests. Wait ${fmtWait(wait)} and try again.` });
    const user = this.d.store.users.getByEmail(c.project.directory, email) ?? null;
    void this.afterForgot(c, email, user).catch((err: Error) => this.d.log(`login: reset mail for ${c.project.id} failed (${MAIL_FAILED}): ${err.message}`));
    return this.checkInbox(c, email, 'reset');
  }

  private async afterForgot(c: Ctx, email: string, user: UserRecord | null): Promise<void> {
    const p = c.project;
    if (user === null || user.status !== 'active') {
      this.event(c, 'reset_requested', user === null ? 'unknown_user' : user.status, user, email);
      return;
    }
    const token = await this.issueToken(c, 'reset', user.email, user, '/');
    this.event(c, 'reset_requested', null, user, email);
    await this.d.mailer.send({
      projectId: p.id, to: user.email, subject: `Reset your ${p.login.branding.name} password`,
      text: `Someone (hopefully you) asked to reset the password of ${user.email} on ${p.login.branding.name}.\n\n` +
        `Choose a new password here:\n${p.login.publicUrl}${PAGES.reset}?token=${token}\n\n` +
        `The link works once and expires in ${fmtWait(Math.round(p.login.resetTtlMs / 1000))}. Using it signs you out everywhere. If you did not ask for this, ignore this message: your password stays as it is.\n`,
    });
  }

  private resetForm(c: Ctx, token: string, o: { error?: string; passwordError?: string; status?: number; code?: ErrorCode }): PageResponse {
    const rec = this.peekToken(token, 'reset', c.project.id);
    if (rec === null) return this.linkInvalid(c, PAGES.forgot);
    return this.noReferrer(this.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Choose a new password',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html: `<p>For <strong>${escText(rec.email)}</strong>. Every session of this account will be signed out.</p>`,
      form: {
        action: PAGES.reset,
        submit: 'Change password',
        csrf: this.csrfToken(c),
        fields: [
          // A hidden username helps password managers store the new password under the right account.
          { name: 'username', label: '', type: 'hidden', value: rec.email },
          { name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password', hint: NEW_PASSWORD_HINT, ...(o.passwordError !== undefined ? { error: o.passwordError } : {}) },
          { name: 'token', label: '', type: 'hidden', value: token },
        ],
      },
    }));
  }

  private async reset(c: Ctx): Promise<PageResponse> {
    const token = c.field('token');
    const rec = this.peekToken(token, 'reset', c.project.id);
    if (rec === null) return this.linkInvalid(c, PAGES.forgot);
    const password = c.field('password');
    const verdict = checkNewPassword(password, rec.email);
    if (verdict !== 'ok') return this.resetForm(c, token, { status: 400, code: 'MEZU_PASSWORD_REJECTED', passwordError: describeVerdict(verdict) });
    const hash = await this.d.hasher.hash(password, argon(c.cfg));
    if (hash === null) return withRetry(this.resetForm(c, token, { status: 503, code: 'MEZU_LOGIN_BUSY', error: 'Too many people are signing in right now. Try again in a moment.' }), 1);
    const taken = await this.d.store.emailTokens.consume(hashToken(token), this.d.clock.now());
    if (taken === undefined || taken.purpose !== 'reset' || taken.userId === null) return this.linkInvalid(c, PAGES.forgot);
    const user = this.d.store.users.get(taken.userId);
    // A link sent to an address the account no longer has is not the account's any more (an email change
    // voids such links; this also covers one issued while the change was being made).
    if (user === undefined || user.status !== 'active' || user.email.toLowerCase() !== taken.email.toLowerCase()) return this.linkInvalid(c, PAGES.forgot);
    await this.d.store.credentials.set(user.id, hash);
    const ended = await this.d.store.sessions.revokeAllForUser(user.id);
    await this.d.store.emailTokens.removeForUser(user.id, user.directory, [user.email]);
    await this.throttle.clear(accountKey(c.project.directory, user.email));
    this.event(c, 'password_reset', null, user, user.email);
    // Not signed in automatically: the user signs in with the new password (the link alone is not a login).
    return this.noReferrer(this.page(c, 200, null, {
      title: 'Password changed',
      notice: `Your password was changed${ended > 0 ? ' and every session was signed out' : ''}. Sign in with your new password.`,
      links: [{ href: PAGES.login, text: 'Sign in' }],
    }));
  }

  // ── change password (signed in) ────────────────────────────────────────

  private passwordForm(c: Ctx, o: { error?: string; currentError?: string; passwordError?: string; status?: number; code?: ErrorCode; notice?: string; retryAfter?: number }): PageResponse {
    const s = this.currentSession(c);
    if (s === null) return this.redirect(c, `${PAGES.login}?rd=${encodeURIComponent(PAGES.password)}`, true);
    const r = this.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Change your password',
      ...(o.error !== undefined ? { error: o.error } : {}),
      ...(o.notice !== undefined ? { notice: o.notice } : {}),
      html: `<p>Signed in as <strong>${escText(s.user.email)}</strong>. Your other sessions will be signed out.</p>`,
      form: {
        action: PAGES.password,
        submit: 'Change password',
        csrf: this.csrfToken(c),
        fields: [
          { name: 'username', label: '', type: 'hidden', value: s.user.email },
          { name: 'current', label: 'Current password', type: 'password', autocomplete: 'current-password', ...(o.currentError !== undefined ? { error: o.currentError } : {}) },
          { name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password', hint: NEW_PASSWORD_HINT, ...(o.passwordError !== undefined ? { error: o.passwordError } : {}) },
        ],
      },
      links: [{ href: '/', text: 'Back to the application' }, { href: PAGES.logout, text: 'Sign out' }],
    });
    if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
    return r;
  }

  private async changePassword(c: Ctx): Promise<PageResponse> {
    const s = this.currentSession(c);
    if (s === null) return this.redirect(c, `${PAGES.login}?rd=${encodeURIComponent(PAGES.password)}`, true);
    const current = c.field('current');
    const password = c.field('password');
    const verdict = checkNewPassword(password, s.user.email);
    if (verdict !== 'ok') return this.passwordForm(c, { status: 400, code: 'MEZU_PASSWORD_REJECTED', passwordError: describeVerdict(verdict) });
    const p = c.project;
    const aKey = accountKey(p.directory, s.user.email);
    const iKey = ipKey(p.directory, c.ip);
    const blocked = await this.countAttempts(c, s.user.email, aKey, iKey, p.login.throttle, this.d.clock.now());
    if (blocked !== null) return this.passwordForm(c, { status: 429, code: 'MEZU_LOGIN_THROTTLED', retryAfter: blocked, error: `Too many attempts. Wait ${fmtWait(blocked)} and try again.` });
    const cred = this.d.store.credentials.get(s.user.id);
    const v = await this.d.hasher.verify(current, cred?.hash ?? null, argon(c.cfg));
    if (v === null) {
      await Promise.all([this.throttle.release(aKey, p.login.throttle.account), this.throttle.release(iKey, p.login.throttle.ip)]);
      return this.passwordForm(c, { status: 503, code: 'MEZU_LOGIN_BUSY', retryAfter: 1, error: 'Too many people are signing in right now. Try again in a moment.' });
    }
    if (!v.ok) {
      this.event(c, 'login_failure', 'bad_password', s.user, s.user.email);
      return this.passwordForm(c, { status: 401, code: 'MEZU_LOGIN_FAILED', currentError: 'This is not your current password.' });
    }
    await Promise.all([this.throttle.clear(aKey), this.throttle.release(iKey, p.login.throttle.ip)]);
    const hash = await this.d.hasher.hash(password, argon(c.cfg));
    if (hash === null) return this.passwordForm(c, { status: 503, code: 'MEZU_LOGIN_BUSY', retryAfter: 1, error: 'Too many people are signing in right now. Try again in a moment.' });
    await this.d.store.credentials.set(s.user.id, hash);
    // Every other session ends; this one stays. Links mailed before (reset, signup) die with the old
    // password: one requested by whoever knew it must not undo the change.
    for (const o of this.d.store.sessions.listForUser(s.user.id)) if (o.tokenHash !== s.tokenHash) await this.d.store.sessions.revoke(o.tokenHash);
    await this.d.store.emailTokens.removeForUser(s.user.id, s.user.directory, [s.user.email]);
    this.event(c, 'password_changed', null, s.user, s.user.email);
    return this.page(c, 200, null, { title: 'Password changed', notice: 'Your password was changed. Your other sessions were signed out.', links: [{ href: '/', text: 'Back to the application' }] });
  }

  // ── shared pieces ──────────────────────────────────────────────────────

  private checkInbox(c: Ctx, email: string, kind: 'signup' | 'reset'): PageResponse {
    const what = kind === 'signup' ? 'finish creating your account' : 'choose a new password';
    return this.page(c, 200, null, {
      title: 'Check your inbox',
      notice: `If ${email} can ${kind === 'signup' ? 'sign up here' : 'sign in here'}, we sent it a link to ${what}. The link expires in ${fmtWait(Math.round(c.project.login.resetTtlMs / 1000))}.`,
      links: [{ href: PAGES.login, text: 'Back to sign in' }],
    });
  }

  private linkInvalid(c: Ctx, again: string): PageResponse {
    return this.noReferrer(this.page(c, 400, 'MEZU_LINK_INVALID', {
      title: 'This link does not work',
      error: 'The link is invalid, was already used, or has expired. Ask for a new one.',
      links: [{ href: again, text: again === PAGES.signup ? 'Create an account' : again === PAGES.login ? 'Sign in' : 'Send a new link' }],
    }));
  }

  private async mailThrottle(c: Ctx, email: string): Promise<number | null> {
    const t = c.project.login.throttle;
    const now = this.d.clock.now();
    const [a, i] = await Promise.all([
      this.throttle.attempt(mailAccountKey(c.project.directory, email), now, t.account),
      this.throttle.attempt(mailIpKey(c.ip), now, t.ip),
    ]);
    if (a.allowed && i.allowed) return null;
    return Math.max(a.allowed ? 0 : a.retryAfterS, i.allowed ? 0 : i.retryAfterS);
  }

  private async issueToken(c: Ctx, purpose: EmailTokenPurpose, email: string, user: UserRecord | null, rd: string): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const now = this.d.clock.now();
    const rec: EmailTokenRecord = { purpose, projectId: c.project.id, directory: c.project.directory, email, userId: user?.id ?? null, rd, createdAt: now, expiresAt: now + c.project.login.resetTtlMs };
    await this.d.store.emailTokens.add(hashToken(token), rec);
    return token;
  }

  private peekToken(token: string, purpose: EmailTokenPurpose, projectId: string): EmailTokenRecord | null {
    if (!isTokenSyntax(token)) return null;
    const rec = this.d.store.emailTokens.peek(hashToken(token));
    if (rec === undefined || rec.purpose !== purpose || rec.projectId !== projectId || rec.expiresAt <= this.d.clock.now()) return null;
    return rec;
  }

  /** The signed-in user of this request (same checks as the proxied path), or null. */
  private currentSession(c: Ctx): { user: UserRecord; tokenHash: string } | null {
    const token = findCookie(c.req.cookie, this.d.sessionCookie);
    if (token === '' || !isTokenSyntax(token)) return null;
    const th = hashToken(token);
    const s = this.d.store.sessions.get(th);
    const now = this.d.clock.now();
    if (s === undefined || s.projectId !== c.project.id || s.principalType !== 'user') return null;
    if (now >= s.createdAt + c.project.sessionAbsoluteMs || now >= s.lastSeenAt + c.project.sessionIdleMs) return null;
    const user = this.d.store.users.get(s.userId);
    if (user === undefined || user.status !== 'active') return null;
    return { user, tokenHash: th };
  }

  private event(c: Ctx, type: LoginEventType, reason: string | null, user: UserRecord | null, email: string): void {
    this.d.store.loginHistory
      .add({ at: this.d.clock.now(), type, reason, userId: user?.id ?? null, directory: c.project.directory, email: email.toLowerCase(), ip: c.ip, userAgent: c.req.userAgent.slice(0, 512) })
      .catch((err: Error) => this.d.log(`login: history write failed: ${err.message}`));
  }

  /** The CSRF token for this page; issues the pre-session cookie when the browser has none. */
  private csrfToken(c: Ctx): string {
    if (!Csrf.isCookieSyntax(c.csrfValue)) {
      c.csrfValue = Csrf.newCookieValue();
      c.setCookies.push(this.cookie(this.d.csrfCookie, c.csrfValue, null));
    }
    return this.d.csrf.tokenFor(c.csrfValue);
  }

  private cookie(name: string, value: string, maxAgeS: number | null): string {
    return `${name}=${value}; Path=/${maxAgeS === null ? '' : `; Max-Age=${maxAgeS}`}; HttpOnly; SameSite=Lax${this.d.scheme === 'https' ? '; Secure' : ''}`;
  }

  private page(c: Ctx, status: number, code: ErrorCode | null, spec: PageSpec): PageResponse {
    const body = renderPage(c.project, spec);
    return { status, code, body, headers: this.baseHeaders(c, 'text/html; charset=utf-8') };
  }

  private redirect(c: Ctx, location: string, keep = false): PageResponse {
    void keep;
    return { status: 303, code: null, body: '', headers: [...this.baseHeaders(c, null), ['location', location]] };
  }

  private baseHeaders(c: Ctx, contentType: string | null): Array<[string, string]> {
    const h: Array<[string, string]> = [];
    if (contentType !== null) h.push(['content-type', contentType]);
    h.push(
      ['cache-control', 'no-store'],
      ['content-security-policy', cspOf(c.project)],
      ['x-content-type-options', 'nosniff'],
      ['x-frame-options', 'DENY'],
      ['referrer-policy', 'same-origin'],
    );
    for (const sc of c.setCookies) h.push(['set-cookie', sc]);
    return h;
  }

  /** Pages reached through an emailed token: the token must not leak through a Referer. */
  private noReferrer(r: PageResponse): PageResponse {
    for (const h of r.headers) if (h[0] === 'referrer-policy') h[1] = 'no-referrer';
    return r;
  }
}

function withRetry(r: PageResponse, s: number): PageResponse {
  r.headers.push(['retry-after', String(s)]);
  return r;
}

function argon(cfg: CompiledConfig): Argon2Params {
  return { memoryBytes: cfg.passwords.memoryBytes, iterations: cfg.passwords.iterations };
}

function normEmail(s: string): string {
  return s.trim().slice(0, MAX_EMAIL + 1);
}

function validEmail(e: string): boolean {
  return e.length > 0 && e.length <= MAX_EMAIL && EMAIL_RE.test(e);
}

function escText(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

function fmtWait(s: number): string {
  if (s < 90) return `${s} second${s === 1 ? '' : 's'}`;
  const m = Math.round(s / 60);
  return `${m} minute${m === 1 ? '' : 's'}`;
}

/** The status an error code answers with (for callers that only have the code). */
export function statusOf(code: ErrorCode): number {
  return Errors[code].status;
}
