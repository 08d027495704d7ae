/**
 * Second factors on the hosted pages: the code or passkey asked after the
 * password (`/_mezu/login/otp`), the step-up page a `step_up` route sends
 * browsers to (`/_mezu/step-up`), and the account's security page where a
 * user enrols an authenticator app or a passkey (`/_mezu/account/security`;
 * passkey.ts does the passkey side). Every code check is counted like a
 * sign-in attempt (per account and per client IP, src/login/throttle.ts) and
 * every enrolment, use and failure goes to the login history and the audit
 * log.
 */
import { randomBytes } from 'node:crypto';
import QRCode from 'qrcode';
import type { UserRecord } from '../../store/index.js';
import type { ErrorCode } from '../../errors/index.js';
import { hashToken, isTokenSyntax, findCookie } from '../../session/index.js';
import { ACR_MFA } from '../../../wire/index.js';
import { accountKey, ipKey } from '../throttle.js';
import { safeReturnPath } from '../redirect.js';
import { esc } from '../pages.js';
import { matchesIgnoringReplay, newTotpSecret, totpUri, verifyTotp } from '../factors/totp.js';
import { hashRecoveryCode, looksLikeRecoveryCode, newRecoveryCodes } from '../factors/recovery.js';
import { PAGES, argon, fmtWait, type Ctx, type Flow, type PageResponse } from './context.js';
import { KitFlow, type Kit } from './kit.js';
import type { PasskeyFormSpec } from '../pages.js';
import type { StepUpRule } from '../../config/index.js';
import { checkPasskey, passkeySection, postedPasskey, rpOf, usePasskeyForm } from './passkey.js';

/** How long a sign-in waits for its second factor after the password. */
export const MFA_PENDING_MS = 5 * 60_000;
/** A pending enrolment older than this gets a fresh secret. */
const ENROL_PENDING_MS = 15 * 60_000;

const CODE_HINT = 'The 6-digit code from your authenticator app, or one of your recovery codes.';
const RECOVERY_HINT = 'One of your recovery codes (if you cannot use your passkey).';

type Checked = { ok: true; method: 'totp' | 'recovery_code'; left: number } | { ok: false; reason: string; retryAfter?: number };

/** Checks a TOTP or recovery code of `user`, throttled, recorded; `page` names where (history and audit). */
export async function checkCode(k: Kit, c: Ctx, user: UserRecord, code: string, page: string): Promise<Checked> {
  const p = c.project;
  const aKey = accountKey(p.directory, user.email);
  const iKey = ipKey(p.directory, c.ip);
  const now = k.d.clock.now();
  const blocked = await k.countAttempts(c, user.email, aKey, iKey, p.login.throttle, now);
  if (blocked !== null) return { ok: false, reason: 'throttled', retryAfter: blocked };
  const rec = k.d.store.factors.get(user.id);
  let r: Checked;
  // Recovery codes stand in for any second factor; a TOTP code needs an authenticator app.
  if (rec === undefined || (rec.totp === null && (rec.passkeys?.length ?? 0) === 0)) r = { ok: false, reason: 'not_enrolled' };
  else if (looksLikeRecoveryCode(code)) {
    const left = await k.d.store.factors.useRecovery(user.id, hashRecoveryCode(user.id, code), now);
    r = left >= 0 ? { ok: true, method: 'recovery_code', left } : { ok: false, reason: 'recovery_code_unknown' };
  } else if (rec.totp === null) {
    r = { ok: false, reason: 'not_enrolled' };
  } else {
    const step = verifyTotp(rec.totp.secret, code, now, rec.totp.lastStep);
    if (step === null) r = { ok: false, reason: matchesIgnoringReplay(rec.totp.secret, code, now) ? 'replayed' : 'bad_code' };
    // The step is taken in a transaction: of two workers given the same code at once, one wins.
    else if (!(await k.d.store.factors.useStep(user.id, step, now))) r = { ok: false, reason: 'replayed' };
    else r = { ok: true, method: 'totp', left: rec.recovery.length };
  }
  if (r.ok) {
    await Promise.all([k.throttle.clear(aKey), k.throttle.release(iKey, p.login.throttle.ip)]);
    k.event(c, 'mfa_success', r.method, user, user.email);
    k.audit(c, user, 'factor.use', { page, method: r.method, ...(r.method === 'recovery_code' ? { recovery_codes_left: r.left } : {}) });
  } else {
    k.event(c, 'mfa_failure', r.reason, user, user.email);
    k.audit(c, user, 'factor.failure', { page, reason: r.reason });
  }
  return r;
}

function failureMessage(r: { reason: string; retryAfter?: number }): string {
  if (r.reason === 'throttled') return `Too many attempts. Wait ${fmtWait(r.retryAfter ?? 1)} and try again.`;
  if (r.reason === 'replayed') return 'This code was already used. Wait for the next code from your app and enter it.';
  if (r.reason.startsWith('passkey_') || r.reason === 'passkey') return 'That passkey did not confirm it is you. Try again, or use a code.';
  return 'That code is not right. Enter the current code from your app, or a recovery code.';
}

function failureStatus(r: { reason: string }): { status: number; code: ErrorCode } {
  return r.reason === 'throttled' ? { status: 429, code: 'MEZU_LOGIN_THROTTLED' } : { status: 401, code: 'MEZU_OTP_INVALID' };
}

/**
 * Starts the second step of a sign-in: a single-use token in a short-lived
 * cookie, then the code page. `only`: the one factor this sign-in must use
 * (login.adaptive: risk.ts), when the user has it; `because`: the signals
 * that named it.
 */
export async function askSecondFactor(k: Kit, c: Ctx, user: UserRecord, rd: string, only: 'totp' | 'webauthn' | null = null, because: readonly string[] = []): Promise<PageResponse> {
  const token = randomBytes(32).toString('base64url');
  const now = k.d.clock.now();
  await k.d.store.emailTokens.add(hashToken(token), { purpose: 'mfa', projectId: c.project.id, directory: c.project.directory, email: user.email, userId: user.id, rd, createdAt: now, expiresAt: now + MFA_PENDING_MS, ...(only === null ? {} : { factor: only, risk: [...because] }) });
  c.setCookies.push(k.cookie(k.mfaCookie, token, MFA_PENDING_MS / 1000));
  return k.redirect(c, PAGES.secondFactor);
}

/** `/_mezu/login/otp`: the code, or a passkey, after the password. */
export class SecondFactorFlow extends KitFlow implements Flow {
  private pending(c: Ctx): { token: string; user: UserRecord; rd: string; pwdAt: number; only: 'totp' | 'webauthn' | null; risk: readonly string[] } | null {
    const token = findCookie(c.req.cookie, this.k.mfaCookie);
    if (token === '' || !isTokenSyntax(token)) return null;
    const rec = this.k.peekToken(token, 'mfa', c.project.id);
    if (rec === null || rec.userId === null) return null;
    const user = this.k.d.store.users.get(rec.userId);
    if (user === undefined || user.status !== 'active') return null;
    return { token, user, rd: rec.rd, pwdAt: rec.createdAt, only: effectiveOnly(this.k, c, user.id, rec.factor ?? null), risk: rec.risk ?? [] };
  }

  async form(c: Ctx, o: { error?: string; status?: number; code?: ErrorCode; retryAfter?: number } = {}): Promise<PageResponse> {
    const p = this.pending(c);
    if (p === null) return this.k.redirect(c, PAGES.login);
    const rec = this.k.d.store.factors.get(p.user.id);
    // The passkey's challenge is bound to this pending sign-in's token (passkey.ts).
    const passkey = p.only === 'totp' ? null : await usePasskeyForm(this.k, c, 'second_factor', p.token, p.user, PAGES.secondFactor, []);
    const codes = p.only !== 'webauthn' && (rec?.totp != null || (rec?.recovery.length ?? 0) > 0 || passkey === null);
    const r = this.k.page(c, o.status ?? 200, o.code ?? null, {
      title: codes ? 'Enter your code' : 'Use your passkey',
      ...(o.error !== undefined ? { error: o.error } : {}),
      ...(codes
        ? {
            form: {
              action: PAGES.secondFactor,
              submit: 'Continue',
              csrf: this.k.csrfToken(c),
              fields: [{ name: 'code', label: 'Authentication code', type: 'text' as const, autocomplete: 'one-time-code', hint: rec?.totp != null ? CODE_HINT : RECOVERY_HINT }],
            },
          }
        : {}),
      ...(passkey !== null ? { passkeys: [passkey] } : {}),
      links: [{ href: PAGES.login, text: 'Start over' }],
    });
    if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
    return r;
  }

  async submit(c: Ctx): Promise<PageResponse> {
    const p = this.pending(c);
    if (p === null) return this.k.redirect(c, PAGES.login);
    const viaPasskey = postedPasskey(c);
    // A risk signal under login.adaptive (a new device or network, a burst of failures): only the factor it names (the form offers no other).
    if ((p.only === 'totp' && viaPasskey) || (p.only === 'webauthn' && !viaPasskey)) {
      this.k.event(c, 'mfa_failure', `adaptive_needs_${p.only}`, p.user, p.user.email);
      this.k.audit(c, p.user, 'factor.failure', { page: 'login', reason: `adaptive_needs_${p.only}` });
      return this.form(c, { status: 401, code: viaPasskey ? 'MEZU_PASSKEY_INVALID' : 'MEZU_OTP_INVALID', error: `Signing in ${riskWords(p.risk)} needs ${p.only === 'totp' ? 'a code from your authenticator app' : 'your passkey'}.` });
    }
    if (viaPasskey) {
      const r = await checkPasskey(this.k, c, 'second_factor', p.token, p.user, 'login');
      if (!r.ok) return this.form(c, { status: 401, code: 'MEZU_PASSKEY_INVALID', error: failureMessage({ reason: 'passkey' }) });
    } else {
      const r = await checkCode(this.k, c, p.user, c.field('code'), 'login');
      if (!r.ok) return this.form(c, { ...failureStatus(r), error: failureMessage(r), ...(r.retryAfter !== undefined ? { retryAfter: r.retryAfter } : {}) });
    }
    // Single use: a second tab with the same cookie cannot sign in again.
    const rec = await this.k.d.store.emailTokens.consume(hashToken(p.token), this.k.d.clock.now());
    if (rec === undefined) return this.k.redirect(c, PAGES.login);
    c.setCookies.push(this.k.cookie(this.k.mfaCookie, '', 0));
    const now = this.k.d.clock.now();
    return this.k.signIn(c, p.user, 'login_success', safeReturnPath(p.rd), viaPasskey ? { pwdAt: p.pwdAt, hwkAt: now } : { pwdAt: p.pwdAt, otpAt: now });
  }
}

/** Why a sign-in needs a particular factor, in the user's words (the first signal that named it). */
function riskWords(risk: readonly string[]): string {
  const s = risk[0] ?? 'new_device';
  return s === 'new_network' ? 'from a network you have not used before' : s === 'failure_burst' ? 'after several failed attempts on your account' : 'from a new device';
}

/**
 * The factor a pending sign-in must use: `only` when the user has it (an
 * authenticator app for `totp`, a passkey usable on this host name for
 * `webauthn`); else null (any factor the user has: a demand the user cannot
 * meet here would leave the page without a form, so it falls back to the
 * factors they do have).
 */
function effectiveOnly(k: Kit, c: Ctx, userId: string, only: 'totp' | 'webauthn' | null): 'totp' | 'webauthn' | null {
  if (only === null) return null;
  const rec = k.d.store.factors.get(userId);
  if (only === 'totp') return rec?.totp != null ? 'totp' : null;
  const rp = rpOf(k, c);
  return rp !== null && (rec?.passkeys ?? []).some((x) => x.rpId === rp.id) ? 'webauthn' : null;
}

/**
 * The `step_up` rule of the page `rd` returns to, to offer only the factors it
 * accepts; null when none is found (then every factor the user has is
 * offered). A hint for the page only: the edge judges the request itself. The
 * path is folded as rules are (ASCII case, a trailing slash).
 */
function ruleFor(c: Ctx, rd: string): StepUpRule | null {
  const path = rd.split('?')[0]!.split('#')[0]!;
  const key = path.length > 1 ? path.toLowerCase().replace(/\/+$/, '') : path;
  try {
    return c.project.match('GET', key === '' ? '/' : key).stepUp;
  } catch {
    return null;
  }
}

/** `/_mezu/step-up?rd=…`: a code or a passkey for the current session, which then satisfies `step_up` rules (same session id). */
export class StepUpFlow extends KitFlow implements Flow {
  async form(c: Ctx, o: { error?: string; status?: number; code?: ErrorCode; retryAfter?: number } = {}): Promise<PageResponse> {
    const rd = safeReturnPath(c.form.get('rd') ?? c.params.get('rd'));
    const s = this.k.currentSession(c);
    if (s === null) return this.k.redirect(c, `${PAGES.login}?rd=${encodeURIComponent(rd)}`);
    const self = `${PAGES.stepUp}?rd=${encodeURIComponent(rd)}`;
    const rule = ruleFor(c, rd);
    const rec = this.k.d.store.factors.get(s.user.id);
    // A rule that names no factor (device: known alone) takes any: a second factor used here makes this device known.
    const any = rule === null || (!rule.totp && !rule.webauthn);
    const codes = (any || rule.totp) && (rec?.totp != null || ((rec?.recovery.length ?? 0) > 0 && (rec?.passkeys?.length ?? 0) > 0));
    // The passkey's challenge is bound to this session (passkey.ts).
    const passkey: PasskeyFormSpec | null = any || rule.webauthn ? await usePasskeyForm(this.k, c, 'step_up', s.tokenHash, s.user, PAGES.stepUp, [{ name: 'rd', label: '', type: 'hidden', value: rd }]) : null;
    if (!codes && passkey === null) {
      const what = any ? 'a passkey or an authenticator app' : !rule.totp ? 'a passkey' : !rule.webauthn ? 'an authenticator app' : 'a passkey or an authenticator app';
      return this.k.page(c, 200, null, {
        title: 'Confirm it is you',
        notice: `This page asks for a second factor — ${what} — and your account has none it accepts yet. Set one up first; you will come back here.`,
        links: [{ href: `${PAGES.security}?rd=${encodeURIComponent(self)}`, text: 'Set up a second factor' }, { href: '/', text: 'Back to the application' }],
      });
    }
    const r = this.k.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Confirm it is you',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html: `<p>Signed in as <strong>${esc(s.user.email)}</strong>. This page needs a recent ${codes && passkey !== null ? 'code from your authenticator app, or your passkey' : codes ? 'code from your authenticator app' : 'confirmation with your passkey'}.</p>`,
      ...(codes
        ? {
            form: {
              action: PAGES.stepUp,
              submit: 'Continue',
              csrf: this.k.csrfToken(c),
              fields: [
                { name: 'code', label: 'Authentication code', type: 'text' as const, autocomplete: 'one-time-code', hint: rec?.totp != null ? CODE_HINT : RECOVERY_HINT },
                { name: 'rd', label: '', type: 'hidden' as const, value: rd },
              ],
            },
          }
        : {}),
      ...(passkey !== null ? { passkeys: [passkey] } : {}),
      links: [{ href: '/', text: 'Back to the application' }],
    });
    if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
    return r;
  }

  async submit(c: Ctx): Promise<PageResponse> {
    const rd = safeReturnPath(c.field('rd'));
    const s = this.k.currentSession(c);
    if (s === null) return this.k.redirect(c, `${PAGES.login}?rd=${encodeURIComponent(rd)}`);
    if (postedPasskey(c)) {
      const r = await checkPasskey(this.k, c, 'step_up', s.tokenHash, s.user, 'step_up');
      if (!r.ok) return this.form(c, { status: 401, code: 'MEZU_PASSKEY_INVALID', error: failureMessage({ reason: 'passkey' }) });
      await this.stepUp(c, s.tokenHash, s.user, 'hwk');
      this.k.event(c, 'step_up', 'webauthn', s.user, s.user.email);
      return this.k.redirect(c, rd);
    }
    const r = await checkCode(this.k, c, s.user, c.field('code'), 'step_up');
    if (!r.ok) return this.form(c, { ...failureStatus(r), error: failureMessage(r), ...(r.retryAfter !== undefined ? { retryAfter: r.retryAfter } : {}) });
    await this.stepUp(c, s.tokenHash, s.user, 'otp');
    this.k.event(c, 'step_up', r.method, s.user, s.user.email);
    return this.k.redirect(c, rd);
  }

  /** The session's step-up; a second factor used on this browser also makes it a known device (for the session and the user). */
  private async stepUp(c: Ctx, tokenHash: string, user: UserRecord, method: 'otp' | 'hwk'): Promise<void> {
    const now = this.k.d.clock.now();
    const device = this.k.ensureDevice(c);
    if (device !== '') await this.k.d.store.devices.seen(user.id, device, now, c.ip, c.req.userAgent);
    await this.k.d.store.sessions.stepUp(tokenHash, now, ACR_MFA, method, device);
  }
}

/** `/_mezu/account/security`: the user's second factors; enrolment of an authenticator app (QR code and secret text). */
export class SecurityFlow extends KitFlow implements Flow {
  async form(c: Ctx, o: { error?: string; codeError?: string; passwordError?: string; passkeyError?: string; status?: number; code?: ErrorCode; retryAfter?: number } = {}): Promise<PageResponse> {
    const rd = safeReturnPath(c.form.get('rd') ?? c.params.get('rd'));
    const s = this.k.currentSession(c);
    const self = `${PAGES.security}${rd === '/' ? '' : `?rd=${encodeURIComponent(rd)}`}`;
    if (s === null) return this.k.redirect(c, `${PAGES.login}?rd=${encodeURIComponent(self)}`);
    const u = s.user;
    const now = this.k.d.clock.now();
    let rec = this.k.d.store.factors.get(u.id);
    const passkey = await passkeySection(this.k, c, s.tokenHash, u, rd, o.passkeyError);
    const passkeys = passkey === null ? {} : { passkeys: [passkey] };
    if (rec?.totp != null) {
      const r = this.k.page(c, o.status ?? 200, o.code ?? null, {
        title: 'Security',
        ...(o.error !== undefined ? { error: o.error } : {}),
        ...passkeys,
        html:
          `<p>Signed in as <strong>${esc(u.email)}</strong>.</p>` +
          `<p id="totp-status">Authenticator app: <strong>on</strong> since ${esc(new Date(rec.totp.enrolledAt).toISOString().slice(0, 10))}.</p>` +
          `<p>Recovery codes left: <strong id="recovery-left">${rec.recovery.length}</strong>.</p>` +
          '<p class="hint">Lost your authenticator? Use a recovery code to sign in, and ask an administrator to reset your second factors so you can enrol a new one.</p>',
        links: [{ href: rd, text: 'Continue' }, { href: PAGES.password, text: 'Change your password' }],
      });
      if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
      return r;
    }
    if (rec?.pending == null || now - rec.pending.createdAt > ENROL_PENDING_MS) {
      await this.k.d.store.factors.begin(u.id, newTotpSecret(), now);
      rec = this.k.d.store.factors.get(u.id);
      if (rec?.pending == null) return this.k.redirect(c, self);
    }
    const secret = rec.pending!.secret;
    const uri = totpUri(secret, c.project.login.branding.name, u.email);
    // Rendered here as inline SVG: no script, no image request, nothing the page's CSP has to allow.
    const svg = await QRCode.toString(uri, { type: 'svg', errorCorrectionLevel: 'M', margin: 2 });
    const grouped = secret.replace(/(.{4})(?=.)/g, '$1 ');
    const r = this.k.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Set up an authenticator app',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html:
        `<p>Signed in as <strong>${esc(u.email)}</strong>. Scan this code with an authenticator app (any app that supports TOTP):</p>` +
        `<div class="qr" role="img" aria-label="QR code for your authenticator app">${svg}</div>` +
        `<p>Or type this key into the app: <code id="totp-secret">${esc(grouped)}</code></p>` +
        `<p class="hint">Key URI: <code id="totp-uri">${esc(uri)}</code></p>` +
        '<p>Then enter the code the app shows, and your password, to turn it on.</p>',
      ...passkeys,
      form: {
        action: PAGES.security,
        submit: 'Turn on',
        csrf: this.k.csrfToken(c),
        fields: [
          { name: 'username', label: '', type: 'hidden', value: u.email },
          { name: 'code', label: 'Code from the app', type: 'text', autocomplete: 'one-time-code', ...(o.codeError !== undefined ? { error: o.codeError } : {}) },
          { name: 'password', label: 'Your password', type: 'password', autocomplete: 'current-password', ...(o.passwordError !== undefined ? { error: o.passwordError } : {}) },
          { name: 'rd', label: '', type: 'hidden', value: rd },
        ],
      },
      links: [{ href: rd, text: 'Not now' }],
    });
    if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
    return r;
  }

  /**
   * Confirms the enrolment: the password (so a borrowed session alone cannot
   * put an authenticator on the account and lock its owner out) and a code of
   * the pending secret, then ten recovery codes shown once.
   */
  async submit(c: Ctx): Promise<PageResponse> {
    const rd = safeReturnPath(c.field('rd'));
    const s = this.k.currentSession(c);
    if (s === null) return this.k.redirect(c, `${PAGES.login}?rd=${encodeURIComponent(PAGES.security)}`);
    const u = s.user;
    const p = c.project;
    const rec = this.k.d.store.factors.get(u.id);
    if (rec?.totp != null || rec?.pending == null) return this.k.redirect(c, `${PAGES.security}?rd=${encodeURIComponent(rd)}`);
    const aKey = accountKey(p.directory, u.email);
    const iKey = ipKey(p.directory, c.ip);
    const now = this.k.d.clock.now();
    const blocked = await this.k.countAttempts(c, u.email, aKey, iKey, p.login.throttle, now);
    if (blocked !== null) return this.form(c, { status: 429, code: 'MEZU_LOGIN_THROTTLED', retryAfter: blocked, error: `Too many attempts. Wait ${fmtWait(blocked)} and try again.` });
    const cred = this.k.d.store.credentials.get(u.id);
    const v = await this.k.d.hasher.verify(c.field('password'), cred?.hash ?? null, argon(c.cfg));
    if (v === null) {
      await Promise.all([this.k.throttle.release(aKey, p.login.throttle.account), this.k.throttle.release(iKey, p.login.throttle.ip)]);
      return this.form(c, { status: 503, code: 'MEZU_LOGIN_BUSY', retryAfter: 1, error: 'Too many people are signing in right now. Try again in a moment.' });
    }
    if (!v.ok) {
      this.k.event(c, 'login_failure', 'bad_password', u, u.email);
      return this.form(c, { status: 401, code: 'MEZU_LOGIN_FAILED', passwordError: 'This is not your password.' });
    }
    const step = verifyTotp(rec.pending.secret, c.field('code'), now, -1);
    if (step === null) {
      this.k.event(c, 'mfa_failure', 'enrol_bad_code', u, u.email);
      this.k.audit(c, u, 'factor.failure', { page: 'enrol', reason: 'bad_code' });
      return this.form(c, { status: 401, code: 'MEZU_OTP_INVALID', codeError: 'That code is not right. Check the key in the app and the phone\'s clock, and enter the current code.' });
    }
    await Promise.all([this.k.throttle.clear(aKey), this.k.throttle.release(iKey, p.login.throttle.ip)]);
    const codes = newRecoveryCodes();
    const ok = await this.k.d.store.factors.confirm(u.id, rec.pending.secret, step, codes.map((x) => hashRecoveryCode(u.id, x)), now);
    if (!ok) return this.k.redirect(c, `${PAGES.security}?rd=${encodeURIComponent(rd)}`);
    this.k.event(c, 'mfa_enrolled', 'totp', u, u.email);
    this.k.audit(c, u, 'factor.enroll', { factor: 'totp', recovery_codes: codes.length });
    return this.k.page(c, 200, null, {
      title: 'Authenticator app on',
      notice: 'From now on, signing in asks for a code from the app. Keep these recovery codes somewhere safe: each works once, in place of a code, if you lose the app. They are not shown again.',
      html: `<ol class="codes" id="recovery-codes">${codes.map((x) => `<li>${esc(x)}</li>`).join('')}</ol>`,
      links: [{ href: rd, text: 'Continue' }],
    });
  }
}
