/**
 * Signing in. An unknown email is verified against a dummy hash and answers
 * exactly like a wrong password; attempts are counted per account and per
 * client IP before the hash is checked, and given back when the hashing
 * queue is full (nothing was checked).
 */
import type { UserRecord } from '../../store/index.js';
import type { ErrorCode } from '../../errors/index.js';
import type { Argon2Params } from '../../../native/sodium.js';
import { safeReturnPath } from '../redirect.js';
import { accountKey, ipKey } from '../throttle.js';
import { MAX_PASSWORD_CHARS } from '../password-policy.js';
import { PAGES, argon, fmtWait, normEmail, validEmail, type Ctx, type Flow, type PageResponse } from './context.js';
import { KitFlow } from './kit.js';
import { askSecondFactor } from './factor.js';
import { passwordlessForm } from './passkey.js';
import { decideRisk, type RiskDecision } from '../risk.js';
import { networkOf } from '../network.js';

const GENERIC_LOGIN_ERROR = 'Incorrect email or password.';

/** `/_mezu/login`: the form, and signing in with email and password. */
export class LoginFlow extends KitFlow implements Flow {
  async form(c: Ctx, o: { email?: string; error?: string; notice?: string; status?: number; code?: ErrorCode; retryAfter?: number } = {}): Promise<PageResponse> {
    const rd = safeReturnPath(c.form.get('rd') ?? c.params.get('rd'));
    const q = rd === '/' ? '' : `?rd=${encodeURIComponent(rd)}`;
    const links = [{ href: `${PAGES.forgot}${q}`, text: 'Forgot your password?' }];
    if (c.project.login.signup !== 'disabled') links.push({ href: `${PAGES.signup}${q}`, text: 'No account yet? Create one' });
    const passkey = await passwordlessForm(this.k, c, rd);
    const r = this.k.page(c, o.status ?? 200, o.code ?? null, {
      title: 'Sign in',
      ...(o.error !== undefined ? { error: o.error } : {}),
      ...(o.notice !== undefined ? { notice: o.notice } : {}),
      form: {
        action: PAGES.login,
        submit: 'Sign in',
        csrf: this.k.csrfToken(c),
        fields: [
          { name: 'email', label: 'Email', type: 'email', value: o.email ?? '', autocomplete: 'username' },
          { name: 'password', label: 'Password', type: 'password', autocomplete: 'current-password' },
          { name: 'rd', label: '', type: 'hidden', value: rd },
        ],
      },
      ...(passkey !== null ? { passkeys: [passkey] } : {}),
      links,
    });
    if (o.retryAfter !== undefined) r.headers.push(['retry-after', String(o.retryAfter)]);
    return r;
  }

  async submit(c: Ctx): Promise<PageResponse> {
    const email = normEmail(c.field('email'));
    const password = c.field('password');
    if (!validEmail(email)) return this.form(c, { email, status: 400, code: 'MEZU_LOGIN_FAILED', error: 'Enter your email address, like name@example.com.' });
    if (password === '') return this.form(c, { email, status: 400, code: 'MEZU_LOGIN_FAILED', error: 'Enter your password.' });
    if ([...password].length > MAX_PASSWORD_CHARS) return this.loginFailed(c, email, null, 'too_long');
    const p = c.project;
    const now = this.k.d.clock.now();
    const aKey = accountKey(p.directory, email);
    const iKey = ipKey(p.directory, c.ip);
    const blocked = await this.k.countAttempts(c, email, aKey, iKey, p.login.throttle, now);
    if (blocked !== null) {
      return this.form(c, { email, status: 429, code: 'MEZU_LOGIN_THROTTLED', retryAfter: blocked, error: `Too many attempts. Wait ${fmtWait(blocked)} and try again, or reset your password.` });
    }
    const user = this.k.d.store.users.getByEmail(p.directory, email) ?? null;
    const cred = user === null ? undefined : this.k.d.store.credentials.get(user.id);
    const params = argon(c.cfg);
    const v = await this.k.d.hasher.verify(password, cred?.hash ?? null, params);
    if (v === null) {
      // Not checked: give the counted attempt back.
      await Promise.all([this.k.throttle.release(aKey, p.login.throttle.account), this.k.throttle.release(iKey, p.login.throttle.ip)]);
      return this.form(c, { email, status: 503, code: 'MEZU_LOGIN_BUSY', retryAfter: 1, error: 'Too many people are signing in right now. Try again in a moment.' });
    }
    if (!v.ok || user === null || user.status !== 'active') {
      const reason = user === null ? 'unknown_user' : cred === undefined ? 'no_password' : !v.ok ? 'bad_password' : user.status;
      return this.loginFailed(c, email, user, reason);
    }
    await Promise.all([this.k.throttle.clear(aKey), this.k.throttle.release(iKey, p.login.throttle.ip)]);
    if (v.needsRehash && cred !== undefined) this.rehash(user.id, cred.hash, password, params);
    // A user with a second factor (an authenticator app or a passkey) signs in only after it (factor.ts); the
    // password step is done. Risk signals (a new device, a new network, a burst of failures: risk.ts) name the
    // factor it must be; factor.ts falls back to the user's others when the user has not that one.
    const hasSecond = this.k.d.store.factors.hasSecondFactor(user.id);
    const risk = this.risk(c, user, now, hasSecond);
    if (hasSecond) return askSecondFactor(this.k, c, user, safeReturnPath(c.field('rd')), risk.factor, risk.because);
    return this.k.signIn(c, user, 'login_success', safeReturnPath(c.field('rd')));
  }

  /**
   * The risk signals of this password sign-in and what they demand, each
   * signal recorded (history event `risk`, audit `login.risk`; no address
   * beyond the client IP every record already carries). A user with no second
   * factor cannot be asked for one: the signals are still recorded, and the
   * sign-in goes on with the password (SECURITY.md says why it is not refused).
   */
  private risk(c: Ctx, user: UserRecord, now: number, hasSecond: boolean): RiskDecision {
    const a = c.project.login.adaptive;
    const burst = a.failureBurst;
    const d = decideRisk(a, {
      newDevice: a.newDevice !== 'none' && !this.k.knownDevice(c, user.id),
      // An address that is not an IP (none should reach here) reads as a new network: fail closed.
      newNetwork: a.newNetwork !== 'none' && this.k.d.store.networks.standing(user.id, networkOf(c.ip)) === 'new',
      failureBurst: burst !== null && burst.require !== 'none' && this.k.d.store.loginHistory.failuresSince(c.project.directory, user.email, now - burst.withinMs, burst.after) >= burst.after,
    });
    if (d.signals.length > 0) {
      for (const s of d.signals) this.k.event(c, 'risk', s, user, user.email);
      this.k.audit(c, user, 'login.risk', { page: 'login', signals: d.signals, factor: d.factor, second_factor: hasSecond });
    }
    return d;
  }

  private loginFailed(c: Ctx, email: string, user: UserRecord | null, reason: string): Promise<PageResponse> {
    this.k.event(c, 'login_failure', reason, user, email);
    return this.form(c, { email, status: 401, code: 'MEZU_LOGIN_FAILED', error: GENERIC_LOGIN_ERROR });
  }

  private rehash(userId: string, oldHash: string, password: string, params: Argon2Params): void {
    // After the response, and only if the password did not change meanwhile.
    this.k.d.hasher
      .hash(password, params)
      .then((h) => (h === null ? false : this.k.d.store.credentials.replaceIf(userId, oldHash, h)))
      .catch((err: Error) => this.k.d.log(`login: rehash failed: ${err.message}`));
  }
}
