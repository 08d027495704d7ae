/**
 * A forgotten password: a single-use link by mail, valid while the account
 * still has the address it was sent to; using it sets the new password, ends
 * every session and voids every other link of the user.
 */
import type { UserRecord } from '../../store/index.js';
import { hashToken } from '../../session/index.js';
import type { ErrorCode } from '../../errors/index.js';
import { accountKey } from '../throttle.js';
import { checkNewPassword, describeVerdict } from '../password-policy.js';
import { NEW_PASSWORD_HINT } from '../pages.js';
import { MAIL_FAILED, PAGES, argon, escText, fmtWait, normEmail, validEmail, withRetry, type Ctx, type Flow, type PageResponse } from './context.js';
import { KitFlow } from './kit.js';

/** `/_mezu/forgot`: asks for an email and mails a reset link; the same answer whoever asks. */
export class ForgotFlow extends KitFlow implements Flow {
  form(c: Ctx, o: { email?: string; error?: string; status?: number; code?: ErrorCode; retryAfter?: number } = {}): PageResponse {
    const r = this.k.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Reset your password',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html: '<p>Enter the email address of your account. We will send you a link to choose a new password.</p>',
      form: { action: PAGES.forgot, submit: 'Send the link', csrf: this.k.csrfToken(c), fields: [{ name: 'email', label: 'Email', type: 'email', value: o.email ?? '', autocomplete: 'username' }] },
      links: [{ href: PAGES.login, text: 'Back to sign in' }],
    });
    if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
    return r;
  }

  async submit(c: Ctx): Promise<PageResponse> {
    const email = normEmail(c.field('email'));
    if (!validEmail(email)) return this.form(c, { email, status: 400, code: 'MEZU_FORM_INVALID', error: 'Enter your email address, like name@example.com.' });
    const wait = await this.k.mailThrottle(c, email);
    if (wait !== null) return this.form(c, { email, status: 429, code: 'MEZU_LOGIN_THROTTLED', retryAfter: wait, error: `Too many requests. Wait ${fmtWait(wait)} and try again.` });
    const user = this.k.d.store.users.getByEmail(c.project.directory, email) ?? null;
    void this.afterForgot(c, email, user).catch((err: Error) => this.k.d.log(`login: reset mail for ${c.project.id} failed (${MAIL_FAILED}): ${err.message}`));
    return this.k.checkInbox(c, email, 'reset');
  }

  private async afterForgot(c: Ctx, email: string, user: UserRecord | null): Promise<void> {
    const p = c.project;
    if (user === null || user.status !== 'active') {
      this.k.event(c, 'reset_requested', user === null ? 'unknown_user' : user.status, user, email);
      return;
    }
    const token = await this.k.issueToken(c, 'reset', user.email, user, '/');
    this.k.event(c, 'reset_requested', null, user, email);
    await this.k.d.mailer.send({
      projectId: p.id, to: user.email, subject: `Reset your ${p.login.branding.name} password`,
      text: `Someone (hopefully you) asked to reset the password of ${user.email} on ${p.login.branding.name}.\n\n` +
        `Choose a new password here:\n${p.login.publicUrl}${PAGES.reset}?token=${token}\n\n` +
        `The link works once and expires in ${fmtWait(Math.round(p.login.resetTtlMs / 1000))}. Using it signs you out everywhere. If you did not ask for this, ignore this message: your password stays as it is.\n`,
    });
  }
}

/** `/_mezu/reset`: the emailed link; a new password signs every session out (and does not sign in). */
export class ResetFlow extends KitFlow implements Flow {
  form(c: Ctx, token = c.params.get('token') ?? '', o: { error?: string; passwordError?: string; status?: number; code?: ErrorCode } = {}): PageResponse {
    return this.k.linkForm(c, token, 'reset', PAGES.forgot, o, (rec) => ({
      title: 'Choose a new password',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html: `<p>For <strong>${escText(rec.email)}</strong>. Every session of this account will be signed out.</p>`,
      form: {
        action: PAGES.reset,
        submit: 'Change password',
        csrf: this.k.csrfToken(c),
        fields: [
          // A hidden username helps password managers store the new password under the right account.
          { name: 'username', label: '', type: 'hidden', value: rec.email },
          { name: 'password', label: 'New password', type: 'password', autocomplete: 'new-password', hint: NEW_PASSWORD_HINT, ...(o.passwordError !== undefined ? { error: o.passwordError } : {}) },
          { name: 'token', label: '', type: 'hidden', value: token },
        ],
      },
    }));
  }

  async submit(c: Ctx): Promise<PageResponse> {
    const token = c.field('token');
    const rec = this.k.peekToken(token, 'reset', c.project.id);
    if (rec === null) return this.k.linkInvalid(c, PAGES.forgot);
    const password = c.field('password');
    const verdict = checkNewPassword(password, rec.email);
    if (verdict !== 'ok') return this.form(c, token, { status: 400, code: 'MEZU_PASSWORD_REJECTED', passwordError: describeVerdict(verdict) });
    const hash = await this.k.d.hasher.hash(password, argon(c.cfg));
    if (hash === null) return withRetry(this.form(c, token, { status: 503, code: 'MEZU_LOGIN_BUSY', error: 'Too many people are signing in right now. Try again in a moment.' }), 1);
    const taken = await this.k.d.store.emailTokens.consume(hashToken(token), this.k.d.clock.now());
    if (taken === undefined || taken.purpose !== 'reset' || taken.userId === null) return this.k.linkInvalid(c, PAGES.forgot);
    const user = this.k.d.store.users.get(taken.userId);
    // A link sent to an address the account no longer has is not the account's any more (an email change
    // voids such links; this also covers one issued while the change was being made).
    if (user === undefined || user.status !== 'active' || user.email.toLowerCase() !== taken.email.toLowerCase()) return this.k.linkInvalid(c, PAGES.forgot);
    await this.k.d.store.credentials.set(user.id, hash);
    const ended = await this.k.d.store.sessions.revokeAllForUser(user.id);
    await this.k.d.store.emailTokens.removeForUser(user.id, user.directory, [user.email]);
    await this.k.throttle.clear(accountKey(c.project.directory, user.email));
    this.k.event(c, 'password_reset', null, user, user.email);
    // Not signed in automatically: the user signs in with the new password (the link alone is not a login).
    return this.k.noReferrer(this.k.page(c, 200, null, {
      title: 'Password changed',
      notice: `Your password was changed${ended > 0 ? ' and every session was signed out' : ''}. Sign in with your new password.`,
      links: [{ href: PAGES.login, text: 'Sign in' }],
    }));
  }
}
