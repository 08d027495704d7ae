/**
 * What every flow uses, one instance per LoginService: the response plumbing
 * (pages, redirects, security headers, cookies, the CSRF token, checking an
 * inbox, a dead link) and the steps more than one flow takes (signing in,
 * counting attempts, mail throttling, emailed tokens, the current session,
 * history events).
 */
import { randomBytes } from 'node:crypto';
import type { CompiledProject } from '../../config/index.js';
import type { UserRecord, LoginEventType, EmailTokenPurpose, EmailTokenRecord, SessionRecord } from '../../store/index.js';
import { findCookie, hashToken, isTokenSyntax, newId, newSessionToken } from '../../session/index.js';
import type { ErrorCode } from '../../errors/index.js';
import { Csrf } from '../csrf.js';
import { Throttle, mailAccountKey, mailIpKey, type Attempt } from '../throttle.js';
import { renderPage, cspOf, cspWithScript, type PageSpec } from '../pages.js';
import { MAIL_FAILED, PAGES, fmtWait, type Ctx, type LoginDeps, type PageResponse } from './context.js';
import { ACR_MFA, ACR_PWD } from '../../../wire/index.js';
import { DEVICE_COOKIE_MAX_AGE_S } from '../device.js';
import { networkOf } from '../network.js';

export class Kit {
  readonly throttle: Throttle;
  constructor(readonly d: LoginDeps) {
    this.throttle = new Throttle(d.store.throttle);
  }

  /**
   * A new session with a fresh token: whatever session cookie the browser
   * sent before is revoked, never promoted (session fixation), and the CSRF
   * cookie is replaced.
   */
  async signIn(c: Ctx, user: UserRecord, type: LoginEventType, rd: string, factors: SignInFactors | null = null): Promise<PageResponse> {
    const now = this.d.clock.now();
    const old = findCookie(c.req.cookie, this.d.sessionCookie);
    if (old !== '' && isTokenSyntax(old)) await this.d.store.sessions.revoke(hashToken(old));
    const token = newSessionToken();
    const f = factors ?? { pwdAt: now };
    const secondFactor = f.otpAt !== undefined || f.hwkAt !== undefined;
    // The device: known when the user signed in from it before, or when this sign-in used a second factor on it.
    const device = await this.deviceAtSignIn(c, user, now);
    // The network, for login.adaptive.new_network (network.ts): recorded only once the sign-in is complete.
    const net = networkOf(c.ip);
    if (net !== null) await this.d.store.networks.seen(user.id, net, now);
    await this.d.store.sessions.create(hashToken(token), {
      id: newId('ses_'), principalType: 'user', userId: user.id, projectId: c.project.id,
      createdAt: now, lastSeenAt: now, authTime: now,
      // RFC 8176 method names; per-factor times for step-up rules (src/authorize/step-up.ts).
      amr: amrOf(f),
      factorTimes: { ...(f.pwdAt !== undefined ? { pwd: f.pwdAt } : {}), ...(f.otpAt !== undefined ? { otp: f.otpAt } : {}), ...(f.hwkAt !== undefined ? { hwk: f.hwkAt } : {}) },
      acr: secondFactor ? ACR_MFA : ACR_PWD,
      ...(device === null ? {} : { deviceId: device.id, deviceKnown: !device.isNew || secondFactor }),
      assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null,
    });
    this.d.store.users.update(user.id, { lastLoginAt: now }).catch((err: Error) => this.d.log(`login: last-login update failed: ${err.message}`));
    this.event(c, type, f.pwdAt === undefined ? 'webauthn' : null, user, user.email);
    c.setCookies.push(this.cookie(this.d.sessionCookie, token, Math.floor(c.project.sessionAbsoluteMs / 1000)));
    c.csrfValue = Csrf.newCookieValue();
    c.setCookies.push(this.cookie(this.d.csrfCookie, c.csrfValue, null));
    return this.redirect(c, rd);
  }

  /** The verified id in this browser's device cookie, or '' (none, or not one we signed). */
  deviceId(c: Ctx): string {
    if (this.d.devices === null) return '';
    return this.d.devices.open(findCookie(c.req.cookie, this.d.deviceCookie));
  }

  /** True when the user has signed in from this browser before (its device cookie is ours and recorded for the user). */
  knownDevice(c: Ctx, userId: string): boolean {
    const id = this.deviceId(c);
    return id !== '' && this.d.store.devices.has(userId, id);
  }

  /** This browser's device id, giving it a device cookie first when it has none; '' where devices are not tracked. */
  ensureDevice(c: Ctx): string {
    if (this.d.devices === null) return '';
    const id = this.deviceId(c);
    if (id !== '') return id;
    const d = this.d.devices.make();
    c.setCookies.push(this.cookie(this.d.deviceCookie, d.value, DEVICE_COOKIE_MAX_AGE_S));
    return d.id;
  }

  /**
   * Records the device of a completed sign-in. A device new to a user who has
   * others is a `new_device` event and a mail to the user (sent in the
   * background: the page never waits on mail); a first sign-in ever is not.
   */
  private async deviceAtSignIn(c: Ctx, user: UserRecord, now: number): Promise<{ id: string; isNew: boolean } | null> {
    const id = this.ensureDevice(c);
    if (id === '') return null;
    const r = await this.d.store.devices.seen(user.id, id, now, c.ip, c.req.userAgent);
    if (r.isNew && r.others) {
      this.event(c, 'new_device', 'mailed', user, user.email);
      const p = c.project;
      const brand = p.login.branding.name;
      this.d.mailer
        .send({
          projectId: p.id, to: user.email, subject: `New sign-in to ${brand}`,
          text:
            `${user.email} signed in to ${brand} from a device it had not used before.\n\n` +
            `When: ${new Date(now).toISOString()}\nIP address: ${c.ip}\nBrowser: ${c.req.userAgent.slice(0, 200) || 'unknown'}\n\n` +
            `If this was you, there is nothing to do. If not, change your password now and review your second factors:\n` +
            `${p.login.publicUrl}${PAGES.forgot}\n${p.login.publicUrl}${PAGES.security}\n`,
        })
        .catch((err: Error) => this.d.log(`login: new-device mail for ${p.id} failed (${MAIL_FAILED}): ${err.message}`));
    } else if (r.isNew) {
      this.event(c, 'new_device', 'first', user, user.email);
    }
    return { id, isNew: r.isNew };
  }

  /** Counts the attempt on both keys; returns seconds to wait when either refuses. */
  async countAttempts(c: Ctx, email: string, aKey: string, iKey: string, t: CompiledProject['login']['throttle'], now: number): Promise<number | null> {
    const [a, i]: Attempt[] = await Promise.all([this.throttle.attempt(aKey, now, t.account), this.throttle.attempt(iKey, now, t.ip)]);
    if (a!.allowed && a!.lockedNow) this.event(c, 'lock', 'account', this.d.store.users.getByEmail(c.project.directory, email) ?? null, email);
    if (i!.allowed && i!.lockedNow) this.event(c, 'lock', 'ip', this.d.store.users.getByEmail(c.project.directory, email) ?? null, email);
    if (a!.allowed && i!.allowed) return null;
    // The refused key was not counted; give back the one that was.
    if (a!.allowed) await this.throttle.release(aKey, t.account);
    if (i!.allowed) await this.throttle.release(iKey, t.ip);
    return Math.max(a!.allowed ? 0 : a!.retryAfterS, i!.allowed ? 0 : i!.retryAfterS);
  }

  async mailThrottle(c: Ctx, email: string): Promise<number | null> {
    const t = c.project.login.throttle;
    const now = this.d.clock.now();
    const [a, i] = await Promise.all([
      this.throttle.attempt(mailAccountKey(c.project.directory, email), now, t.account),
      this.throttle.attempt(mailIpKey(c.ip), now, t.ip),
    ]);
    if (a.allowed && i.allowed) return null;
    return Math.max(a.allowed ? 0 : a.retryAfterS, i.allowed ? 0 : i.retryAfterS);
  }

  async issueToken(c: Ctx, purpose: EmailTokenPurpose, email: string, user: UserRecord | null, rd: string): Promise<string> {
    const token = randomBytes(32).toString('base64url');
    const now = this.d.clock.now();
    const rec: EmailTokenRecord = { purpose, projectId: c.project.id, directory: c.project.directory, email, userId: user?.id ?? null, rd, createdAt: now, expiresAt: now + c.project.login.resetTtlMs };
    await this.d.store.emailTokens.add(hashToken(token), rec);
    return token;
  }

  peekToken(token: string, purpose: EmailTokenPurpose, projectId: string): EmailTokenRecord | null {
    if (!isTokenSyntax(token)) return null;
    const rec = this.d.store.emailTokens.peek(hashToken(token));
    if (rec === undefined || rec.purpose !== purpose || rec.projectId !== projectId || rec.expiresAt <= this.d.clock.now()) return null;
    return rec;
  }

  /** The signed-in user of this request (same checks as the proxied path), or null. */
  currentSession(c: Ctx): { user: UserRecord; tokenHash: string; session: SessionRecord } | null {
    const token = findCookie(c.req.cookie, this.d.sessionCookie);
    if (token === '' || !isTokenSyntax(token)) return null;
    const th = hashToken(token);
    const s = this.d.store.sessions.get(th);
    const now = this.d.clock.now();
    if (s === undefined || s.projectId !== c.project.id || s.principalType !== 'user') return null;
    if (now >= s.createdAt + c.project.sessionAbsoluteMs || now >= s.lastSeenAt + c.project.sessionIdleMs) return null;
    const user = this.d.store.users.get(s.userId);
    if (user === undefined || user.status !== 'active') return null;
    return { user, tokenHash: th, session: s };
  }

  event(c: Ctx, type: LoginEventType, reason: string | null, user: UserRecord | null, email: string): void {
    this.d.onEvent?.(c.project.id, type, reason);
    this.d.store.loginHistory
      .add({ at: this.d.clock.now(), type, reason, userId: user?.id ?? null, directory: c.project.directory, email: email.toLowerCase(), ip: c.ip, userAgent: c.req.userAgent.slice(0, 512) })
      .catch((err: Error) => this.d.log(`login: history write failed: ${err.message}`));
  }

  /** One audit record of a user's own act on the hosted pages (`factor.enroll`, `factor.use`, …); never a secret. */
  audit(c: Ctx, user: UserRecord, action: string, details: Record<string, unknown>): void {
    this.d.store.audit
      .append({
        at: this.d.clock.now(),
        actor: { type: 'user', id: user.id, name: user.email },
        action, target: { type: 'user', id: user.id },
        projectId: c.project.directory === c.project.id ? c.project.id : null,
        details: { project: c.project.id, ...details }, ip: c.ip,
      })
      .catch((err: Error) => this.d.log(`login: audit write failed: ${err.message}`));
  }

  /** The cookie of a sign-in waiting for its second factor. */
  get mfaCookie(): string {
    return this.d.scheme === 'https' ? '__Host-mezu_mfa' : 'mezu_mfa';
  }

  checkInbox(c: Ctx, email: string, kind: 'signup' | 'reset'): PageResponse {
    const what = kind === 'signup' ? 'finish creating your account' : 'choose a new password';
    return this.page(c, 200, null, {
      title: 'Check your inbox',
      notice: `If ${email} can ${kind === 'signup' ? 'sign up here' : 'sign in here'}, we sent it a link to ${what}. The link expires in ${fmtWait(Math.round(c.project.login.resetTtlMs / 1000))}.`,
      links: [{ href: PAGES.login, text: 'Back to sign in' }],
    });
  }

  linkInvalid(c: Ctx, again: string): PageResponse {
    return this.noReferrer(this.page(c, 400, 'MEZU_LINK_INVALID', {
      title: 'This link does not work',
      error: 'The link is invalid, was already used, or has expired. Ask for a new one.',
      links: [{ href: again, text: again === PAGES.signup ? 'Create an account' : again === PAGES.login ? 'Sign in' : 'Send a new link' }],
    }));
  }

  /** The CSRF token for this page; issues the pre-session cookie when the browser has none. */
  csrfToken(c: Ctx): string {
    if (!Csrf.isCookieSyntax(c.csrfValue)) {
      c.csrfValue = Csrf.newCookieValue();
      c.setCookies.push(this.cookie(this.d.csrfCookie, c.csrfValue, null));
    }
    return this.d.csrf.tokenFor(c.csrfValue);
  }

  cookie(name: string, value: string, maxAgeS: number | null): string {
    return `${name}=${value}; Path=/${maxAgeS === null ? '' : `; Max-Age=${maxAgeS}`}; HttpOnly; SameSite=Lax${this.d.scheme === 'https' ? '; Secure' : ''}`;
  }

  page(c: Ctx, status: number, code: ErrorCode | null, spec: PageSpec): PageResponse {
    // A page with a passkey form loads the passkey script under a nonce of its own (pages.ts).
    const nonce = (spec.passkeys?.length ?? 0) > 0 ? randomBytes(16).toString('base64') : null;
    const body = renderPage(c.project, spec, nonce);
    const headers = this.baseHeaders(c, 'text/html; charset=utf-8');
    if (nonce !== null) for (const h of headers) if (h[0] === 'content-security-policy') h[1] = cspWithScript(c.project, nonce);
    return { status, code, body, headers };
  }

  redirect(c: Ctx, location: string, keep = false): PageResponse {
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

  /**
   * A form behind an emailed link (`token`, for `purpose`): the dead-link page
   * (pointing to `again`) unless the token is live, else the page `spec`
   * renders for the token's record — never leaking the token through a Referer.
   */
  linkForm(c: Ctx, token: string, purpose: EmailTokenPurpose, again: string, o: { status?: number; code?: ErrorCode }, spec: (rec: EmailTokenRecord) => PageSpec): PageResponse {
    const rec = this.peekToken(token, purpose, c.project.id);
    if (rec === null) return this.linkInvalid(c, again);
    return this.noReferrer(this.page(c, o.status ?? 200, o.code ?? null, spec(rec)));
  }

  /** Pages reached through an emailed token: the token must not leak through a Referer. */
  noReferrer(r: PageResponse): PageResponse {
    for (const h of r.headers) if (h[0] === 'referrer-policy') h[1] = 'no-referrer';
    return r;
  }
}

/** When each factor of a sign-in was used (ms): the password, a code, a passkey; absent when not. */
export interface SignInFactors {
  pwdAt?: number;
  otpAt?: number;
  hwkAt?: number;
}

/**
 * RFC 8176 §2 method names of a sign-in: `pwd`, `otp` (authenticator app or
 * recovery code), `hwk` (a passkey: proof of possession of a key held by an
 * authenticator). A passkey alone, which the passwordless flow accepts only
 * with user verification, also says `mfa`: the authenticator checked a PIN or
 * a biometric on top of possession (W3C WebAuthn Level 2 §6.2.3, "multi-factor
 * capable" authenticators used with UV).
 */
export function amrOf(f: SignInFactors): string[] {
  const amr: string[] = [];
  if (f.pwdAt !== undefined) amr.push('pwd');
  if (f.otpAt !== undefined) amr.push('otp');
  if (f.hwkAt !== undefined) amr.push('hwk');
  if (f.pwdAt === undefined && f.hwkAt !== undefined) amr.push('mfa');
  return amr;
}

/** A flow, with the kit it works with. */
export abstract class KitFlow {
  constructor(protected readonly k: Kit) {}
}
