/**
 * Signup by email: the form only mails a link (the same answer whether or not
 * the address has an account, so signup cannot tell who has one), and the
 * account is created when the link is opened and a password chosen — which
 * also proves the address belongs to whoever signs up (in `invite` mode,
 * knowing an invited address is not enough to claim it).
 */
import type { UserRecord } from '../../store/index.js';
import { hashToken, newId } from '../../session/index.js';
import type { ErrorCode } from '../../errors/index.js';
import { safeReturnPath } from '../redirect.js';
import { checkNewPassword, describeVerdict } from '../password-policy.js';
import { NEW_PASSWORD_HINT } from '../pages.js';
import { MAIL_FAILED, PAGES, argon, escText, fmtWait, normEmail, validEmail, withRetry, type Ctx, type Flow, type PageResponse } from './context.js';
import { KitFlow } from './kit.js';

/** `/_mezu/signup`: asks for an email and mails a link; the same answer whoever asks. */
export class SignupFlow extends KitFlow implements Flow {
  private signupClosed(c: Ctx): PageResponse {
    return this.k.page(c, 403, 'MEZU_SIGNUP_CLOSED', { title: 'Sign-up is closed', error: 'New accounts cannot be created here. Ask an administrator for an invitation.', links: [{ href: PAGES.login, text: 'Sign in' }] });
  }

  form(c: Ctx, o: { email?: string; error?: string; status?: number; code?: ErrorCode; retryAfter?: number } = {}): PageResponse {
    if (c.project.login.signup === 'disabled') return this.signupClosed(c);
    const rd = safeReturnPath(c.form.get('rd') ?? c.params.get('rd'));
    const r = this.k.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Create an account',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html: c.project.login.signup === 'invite' ? '<p>Sign-up is by invitation: use the address you were invited with.</p>' : '<p>We will email you a link to choose your password.</p>',
      form: {
        action: PAGES.signup,
        submit: 'Continue',
        csrf: this.k.csrfToken(c),
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

  async submit(c: Ctx): Promise<PageResponse> {
    const mode = c.project.login.signup;
    if (mode === 'disabled') return this.signupClosed(c);
    const email = normEmail(c.field('email'));
    if (!validEmail(email)) return this.form(c, { email, status: 400, code: 'MEZU_FORM_INVALID', error: 'Enter your email address, like name@example.com.' });
    const wait = await this.k.mailThrottle(c, email);
    if (wait !== null) return this.form(c, { email, status: 429, code: 'MEZU_LOGIN_THROTTLED', retryAfter: wait, error: `Too many requests. Wait ${fmtWait(wait)} and try again.` });
    const rd = safeReturnPath(c.field('rd'));
    const user = this.k.d.store.users.getByEmail(c.project.directory, email) ?? null;
    // Same answer in every case; what happens is decided in the background.
    void this.afterSignupRequest(c, email, user, mode, rd).catch((err: Error) => this.k.d.log(`login: signup mail for ${c.project.id} failed (${MAIL_FAILED}): ${err.message}`));
    return this.k.checkInbox(c, email, 'signup');
  }

  private async afterSignupRequest(c: Ctx, email: string, user: UserRecord | null, mode: 'open' | 'invite', rd: string): Promise<void> {
    const p = c.project;
    if (user !== null && user.status !== 'active') {
      this.k.event(c, 'signup_requested', user.status, user, email);
      return;
    }
    if (user !== null && this.k.d.store.credentials.get(user.id) !== undefined) {
      this.k.event(c, 'signup_requested', 'already_registered', user, email);
      await this.k.d.mailer.send({
        projectId: p.id, to: user.email, subject: `Your ${p.login.branding.name} account`,
        text: `Someone (hopefully you) tried to create an account on ${p.login.branding.name} with this address, but you already have one.\n\n` +
          `Sign in: ${p.login.publicUrl}${PAGES.login}\nForgot your password? ${p.login.publicUrl}${PAGES.forgot}\n\nIf this was not you, you can ignore this message.\n`,
      });
      return;
    }
    if (user === null && mode === 'invite') {
      this.k.event(c, 'signup_requested', 'not_invited', null, email);
      return;
    }
    const token = await this.k.issueToken(c, 'signup', email, user, rd);
    this.k.event(c, 'signup_requested', null, user, email);
    await this.k.d.mailer.send({
      projectId: p.id, to: user?.email ?? email, subject: `Finish creating your ${p.login.branding.name} account`,
      text: `Open this link to choose your password and finish creating your account on ${p.login.branding.name}:\n\n` +
        `${p.login.publicUrl}${PAGES.signupConfirm}?token=${token}\n\nThe link works once and expires in ${fmtWait(Math.round(p.login.resetTtlMs / 1000))}. If you did not ask for an account, ignore this message.\n`,
    });
  }
}

/** `/_mezu/signup/confirm`: the emailed link; choosing the password creates the account and signs in. */
export class ConfirmSignupFlow extends KitFlow implements Flow {
  form(c: Ctx, token = c.params.get('token') ?? '', o: { name?: string; error?: string; passwordError?: string; status?: number; code?: ErrorCode } = {}): PageResponse {
    return this.k.linkForm(c, token, 'signup', PAGES.signup, o, (rec) => ({
      title: 'Choose your password',
      ...(o.error !== undefined ? { error: o.error } : {}),
      html: `<p>Creating the account <strong>${escText(rec.email)}</strong>.</p>`,
      form: {
        action: PAGES.signupConfirm,
        submit: 'Create account',
        csrf: this.k.csrfToken(c),
        fields: [
          { name: 'name', label: 'Your name (optional)', type: 'text', value: o.name ?? '', autocomplete: 'name', required: false },
          { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', hint: NEW_PASSWORD_HINT, ...(o.passwordError !== undefined ? { error: o.passwordError } : {}) },
          { name: 'token', label: '', type: 'hidden', value: token },
        ],
      },
    }));
  }

  async submit(c: Ctx): Promise<PageResponse> {
    const token = c.field('token');
    const rec = this.k.peekToken(token, 'signup', c.project.id);
    if (rec === null) return this.k.linkInvalid(c, PAGES.signup);
    const name = c.field('name').trim().slice(0, 200).replace(/[\u0000-\u001f\u007f]/g, '');
    const password = c.field('password');
    const verdict = checkNewPassword(password, rec.email);
    if (verdict !== 'ok') return this.form(c, token, { name, status: 400, code: 'MEZU_PASSWORD_REJECTED', passwordError: describeVerdict(verdict) });
    const hash = await this.k.d.hasher.hash(password, argon(c.cfg));
    if (hash === null) return withRetry(this.form(c, token, { name, status: 503, code: 'MEZU_LOGIN_BUSY', error: 'Too many people are signing in right now. Try again in a moment.' }), 1);
    const taken = await this.k.d.store.emailTokens.consume(hashToken(token), this.k.d.clock.now());
    if (taken === undefined || taken.purpose !== 'signup') return this.k.linkInvalid(c, PAGES.signup);
    let user = this.k.d.store.users.getByEmail(taken.directory, taken.email) ?? null;
    if (user === null) {
      const now = this.k.d.clock.now();
      const display = name === '' ? taken.email.split('@')[0]! : name;
      user = { id: newId('usr_'), directory: taken.directory, email: taken.email, name: display, displayName: display, status: 'active', roles: [], permissions: [], version: 1, createdAt: now, updatedAt: now, lastLoginAt: null };
      try {
        await this.k.d.store.users.create(user);
      } catch {
        user = this.k.d.store.users.getByEmail(taken.directory, taken.email) ?? null;
      }
    } else if (name !== '' && user.name === user.email.split('@')[0]) {
      user = await this.k.d.store.users.update(user.id, { name, displayName: name });
    }
    // An account that got a password some other way since the link was sent is not overwritten by a signup link.
    if (user === null || user.status !== 'active' || this.k.d.store.credentials.get(user.id) !== undefined) return this.k.linkInvalid(c, PAGES.login);
    await this.k.d.store.credentials.set(user.id, hash);
    // The account has a password now: other signup links and any reset link sent before are void.
    await this.k.d.store.emailTokens.removeForUser(user.id, user.directory, [user.email]);
    this.k.event(c, 'signup_completed', null, user, user.email);
    return this.k.signIn(c, user, 'login_success', safeReturnPath(taken.rd));
  }
}
