/**
 * Changing the password while signed in: the current password is checked
 * (counted like a login attempt), every other session ends, and links mailed
 * before die with the old password.
 */
import type { ErrorCode } from '../../errors/index.js';
import { accountKey, ipKey } from '../throttle.js';
import { checkNewPassword, describeVerdict } from '../password-policy.js';
import { NEW_PASSWORD_HINT } from '../pages.js';
import { PAGES, argon, escText, fmtWait, type Ctx, type Flow, type PageResponse } from './context.js';
import { KitFlow } from './kit.js';

/** `/_mezu/password`: changing the password while signed in (the current one is asked for, and throttled like a login). */
export class PasswordFlow extends KitFlow implements Flow {
  form(c: Ctx, o: { error?: string; currentError?: string; passwordError?: string; status?: number; code?: ErrorCode; notice?: string; retryAfter?: number } = {}): PageResponse {
    const s = this.k.currentSession(c);
    if (s === null) return this.k.redirect(c, `${PAGES.login}?rd=${encodeURIComponent(PAGES.password)}`, true);
    const r = this.k.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Change your password',
      ...(o.error !== undefined ? { error: o.error } : {}),
      ...(o.notice !== undefined ? { notice: o.notice } : {}),
      html: `<p>Signed in as <strong>${escText(s.user.email)}</strong>. Your other sessions will be signed out.</p>`,
      form: {
        action: PAGES.password,
        submit: 'Change password',
        csrf: this.k.csrfToken(c),
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

  async submit(c: Ctx): Promise<PageResponse> {
    const s = this.k.currentSession(c);
    if (s === null) return this.k.redirect(c, `${PAGES.login}?rd=${encodeURIComponent(PAGES.password)}`, true);
    const current = c.field('current');
    const password = c.field('password');
    const verdict = checkNewPassword(password, s.user.email);
    if (verdict !== 'ok') return this.form(c, { status: 400, code: 'MEZU_PASSWORD_REJECTED', passwordError: describeVerdict(verdict) });
    const p = c.project;
    const aKey = accountKey(p.directory, s.user.email);
    const iKey = ipKey(p.directory, c.ip);
    const blocked = await this.k.countAttempts(c, s.user.email, aKey, iKey, p.login.throttle, this.k.d.clock.now());
    if (blocked !== null) return this.form(c, { status: 429, code: 'MEZU_LOGIN_THROTTLED', retryAfter: blocked, error: `Too many attempts. Wait ${fmtWait(blocked)} and try again.` });
    const cred = this.k.d.store.credentials.get(s.user.id);
    const v = await this.k.d.hasher.verify(current, cred?.hash ?? null, argon(c.cfg));
    if (v === null) {
      await Promise.all([this.k.throttle.release(aKey, p.login.throttle.account), this.k.throttle.release(iKey, p.login.throttle.ip)]);
      return this.form(c, { status: 503, code: 'MEZU_LOGIN_BUSY', retryAfter: 1, error: 'Too many people are signing in right now. Try again in a moment.' });
    }
    if (!v.ok) {
      this.k.event(c, 'login_failure', 'bad_password', s.user, s.user.email);
      return this.form(c, { status: 401, code: 'MEZU_LOGIN_FAILED', currentError: 'This is not your current password.' });
    }
    await Promise.all([this.k.throttle.clear(aKey), this.k.throttle.release(iKey, p.login.throttle.ip)]);
    const hash = await this.k.d.hasher.hash(password, argon(c.cfg));
    if (hash === null) return this.form(c, { status: 503, code: 'MEZU_LOGIN_BUSY', retryAfter: 1, error: 'Too many people are signing in right now. Try again in a moment.' });
    await this.k.d.store.credentials.set(s.user.id, hash);
    // Every other session ends; this one stays. Links mailed before (reset, signup) die with the old
    // password: one requested by whoever knew it must not undo the change.
    for (const o of this.k.d.store.sessions.listForUser(s.user.id)) if (o.tokenHash !== s.tokenHash) await this.k.d.store.sessions.revoke(o.tokenHash);
    await this.k.d.store.emailTokens.removeForUser(s.user.id, s.user.directory, [s.user.email]);
    this.k.event(c, 'password_changed', null, s.user, s.user.email);
    return this.k.page(c, 200, null, { title: 'Password changed', notice: 'Your password was changed. Your other sessions were signed out.', links: [{ href: '/', text: 'Back to the application' }] });
  }
}
