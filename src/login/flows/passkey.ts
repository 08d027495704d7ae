/**
 * Passkeys on the hosted pages (factors/webauthn.ts does the WebAuthn part):
 * the forms the page script drives, making a passkey on the security page
 * (`/_mezu/account/passkey`), using one after the password or for a step-up
 * (factor.ts calls `checkPasskey`), passwordless sign-in from the login page
 * (`/_mezu/login/passkey`, user verification required), and the script itself
 * (`/_mezu/webauthn.js`). Every enrolment, use and failure goes to the login
 * history and the audit log; a credential id is recorded shortened, never a
 * key or a signature.
 */
import type { UserRecord } from '../../store/index.js';
import { safeReturnPath } from '../redirect.js';
import { accountKey, ipKey } from '../throttle.js';
import { esc, type Field, type PasskeyFormSpec } from '../pages.js';
import { WEBAUTHN_SCRIPT } from '../factors/script.js';
import { hashRecoveryCode, newRecoveryCodes } from '../factors/recovery.js';
import {
  CREDENTIAL_FIELD,
  authenticationOptions,
  bindingOf,
  parseAnswer,
  registrationOptions,
  relyingParty,
  userHandleOf,
  verifyAssertion,
  verifyRegistration,
  type CeremonyPurpose,
  type RelyingParty,
} from '../factors/webauthn.js';
import { PAGES, argon, fmtWait, type Ctx, type Flow, type PageResponse } from './context.js';
import { KitFlow, type Kit } from './kit.js';
import { SecurityFlow } from './factor.js';

/** The relying party of this request, or null when passkeys are not offered here (no challenges, or an IP address as host). */
export function rpOf(k: Kit, c: Ctx): RelyingParty | null {
  if (k.d.challenges === null) return null;
  return relyingParty(k.d.scheme, c.req.hostHeader, c.project.login.branding.name);
}

/** True when the form posted a passkey answer (the script fills the hidden field) rather than a code. */
export function postedPasskey(c: Ctx): boolean {
  return c.field(CREDENTIAL_FIELD) !== '';
}

/** A credential id as the history and audit log show it: enough to tell two apart. */
function shortId(id: string): string {
  return id.slice(0, 12);
}

/**
 * A form to use one of `user`'s passkeys (after the password: `second_factor`,
 * bound to the pending sign-in's token; a step-up: `step_up`, bound to the
 * session), or null when the user has none on this host name.
 */
export async function usePasskeyForm(k: Kit, c: Ctx, purpose: 'second_factor' | 'step_up', bindTo: string, user: UserRecord, action: string, fields: Field[]): Promise<PasskeyFormSpec | null> {
  const rp = rpOf(k, c);
  if (rp === null) return null;
  const mine = k.d.store.factors.passkeys(user.id).filter((x) => x.rpId === rp.id);
  if (mine.length === 0) return null;
  const challenge = k.d.challenges!.make(purpose, bindingOf(bindTo), k.d.clock.now());
  const options = await authenticationOptions(rp, mine, 'preferred', challenge);
  return { id: 'passkey-use', action, csrf: k.csrfToken(c), ceremony: 'authenticate', options, submit: 'Use a passkey', intro: '<h2>Or use a passkey</h2>', fields };
}

type PasskeyChecked = { ok: true; user: UserRecord } | { ok: false; reason: string; user: UserRecord | null };

/**
 * Checks a posted passkey answer for `purpose` bound to `bindTo`: the
 * challenge is ours, for this step and browser, unexpired, and claimed now
 * (answered once); the credential is `expected`'s (or, passwordless, its
 * owner's, named again by the user handle: W3C WebAuthn Level 2 §7.2 step 6);
 * the signature, origin, RP id, flags and counter check out (webauthn.ts).
 * Recorded in the history and the audit log either way; `page` names where.
 */
export async function checkPasskey(k: Kit, c: Ctx, purpose: CeremonyPurpose, bindTo: string, expected: UserRecord | null, page: string): Promise<PasskeyChecked> {
  const r = await checkPasskeyAnswer(k, c, purpose, bindTo, expected);
  const u = r.user;
  const passwordless = purpose === 'passwordless';
  if (r.ok) {
    // A passwordless sign-in's success is recorded by Kit.signIn (login_success, webauthn).
    if (!passwordless) k.event(c, 'mfa_success', 'webauthn', r.user, r.user.email);
    k.audit(c, r.user, 'factor.use', { page, method: 'webauthn', credential: r.credential });
    return { ok: true, user: r.user };
  }
  if (u !== null) {
    k.event(c, passwordless ? 'login_failure' : 'mfa_failure', `passkey_${r.reason}`, u, u.email);
    k.audit(c, u, 'factor.failure', { page, method: 'webauthn', reason: r.reason });
  } else {
    // No account to file it under: the directory's history under an empty email, and the edge's log.
    k.event(c, 'login_failure', `passkey_${r.reason}`, null, '');
    k.d.log(`login: passkey ${page} refused for project ${c.project.id} from ${c.ip}: ${r.reason}`);
  }
  return { ok: false, reason: r.reason, user: u };
}

async function checkPasskeyAnswer(k: Kit, c: Ctx, purpose: CeremonyPurpose, bindTo: string, expected: UserRecord | null): Promise<({ ok: true; credential: string; user: UserRecord }) | { ok: false; reason: string; user: UserRecord | null }> {
  const rp = rpOf(k, c);
  if (rp === null) return { ok: false, reason: 'unavailable', user: expected };
  const parsed = parseAnswer(c.field(CREDENTIAL_FIELD));
  if (parsed === null) return { ok: false, reason: 'malformed', user: expected };
  const now = k.d.clock.now();
  const ch = k.d.challenges!.open(parsed.challenge, purpose, bindingOf(bindTo), now);
  if (ch === null) return { ok: false, reason: 'challenge', user: expected };
  // Claimed before the signature is checked: a challenge gets one answer, good or bad.
  const fresh = await k.d.store.emailTokens.claim(ch.id, { purpose: 'webauthn', projectId: c.project.id, directory: c.project.directory, email: '', userId: null, rd: '', createdAt: now, expiresAt: ch.expiresAt });
  if (!fresh) return { ok: false, reason: 'challenge_reused', user: expected };
  const credId = parsed.answer.id;
  let user = expected;
  if (user === null) {
    const owner = k.d.store.factors.passkeyOwner(credId);
    const found = owner === undefined ? undefined : k.d.store.users.get(owner);
    if (found === undefined || found.directory !== c.project.directory) return { ok: false, reason: 'unknown_credential', user: null };
    if (userHandleOf(parsed.answer) !== found.id) return { ok: false, reason: 'user_handle', user: found };
    if (found.status !== 'active') return { ok: false, reason: found.status, user: found };
    user = found;
  }
  const pk = k.d.store.factors.passkeys(user.id).find((x) => x.id === credId);
  if (pk === undefined) return { ok: false, reason: 'unknown_credential', user };
  const v = await verifyAssertion(rp, parsed.answer, parsed.challenge, pk, purpose === 'passwordless');
  if (!v.ok) return { ok: false, reason: v.reason, user };
  const used = await k.d.store.factors.usePasskey(user.id, pk.id, v.value.counter, now);
  if (used !== 'ok') return { ok: false, reason: used, user };
  return { ok: true, credential: shortId(pk.id), user };
}

/** The passkey part of the security page: the user's passkeys and the form that adds one. */
export async function passkeySection(k: Kit, c: Ctx, tokenHash: string, user: UserRecord, rd: string, error: string | undefined): Promise<PasskeyFormSpec | null> {
  const rp = rpOf(k, c);
  const list = k.d.store.factors.passkeys(user.id);
  const items = list.map((x) => `<li>Passkey added ${esc(new Date(x.createdAt).toISOString().slice(0, 10))}${x.rpId === rp?.id ? '' : ` for ${esc(x.rpId)}`}${x.lastUsedAt === null ? '' : `, last used ${esc(new Date(x.lastUsedAt).toISOString().slice(0, 10))}`}${x.backedUp ? ' (synced)' : ''}</li>`).join('');
  const listHtml = `<p id="passkey-count">Passkeys: <strong>${list.length}</strong>.</p>${list.length > 0 ? `<ul id="passkeys">${items}</ul>` : ''}`;
  if (rp === null) return null;
  const challenge = k.d.challenges!.make('register', bindingOf(tokenHash), k.d.clock.now());
  const options = await registrationOptions(rp, { id: user.id, email: user.email, name: user.displayName || user.name }, list, challenge);
  return {
      id: 'passkey-add',
      action: PAGES.passkeyEnrol,
      csrf: k.csrfToken(c),
      ceremony: 'register',
      options,
      submit: 'Add a passkey',
      intro: `<h2>Passkeys</h2>${listHtml}<p class="hint">A passkey signs you in with this device's screen lock or a security key, without a password, and counts as a second factor.</p>`,
      fields: [
        { name: 'password', label: 'Password (to add a passkey)', type: 'password', autocomplete: 'current-password', ...(error !== undefined ? { error } : {}) },
        { name: 'rd', label: '', type: 'hidden', value: rd },
      ],
  };
}

/** `/_mezu/account/passkey` (POST): makes a passkey for the signed-in user, with the password (as for an authenticator app). */
export class PasskeyEnrolFlow extends KitFlow implements Flow {
  form(c: Ctx): PageResponse {
    return this.k.redirect(c, PAGES.security);
  }

  async submit(c: Ctx): Promise<PageResponse> {
    const rd = safeReturnPath(c.field('rd'));
    const s = this.k.currentSession(c);
    if (s === null) return this.k.redirect(c, `${PAGES.login}?rd=${encodeURIComponent(PAGES.security)}`);
    const u = s.user;
    const p = c.project;
    const security = new SecurityFlow(this.k);
    const again = (status: number, code: 'MEZU_LOGIN_THROTTLED' | 'MEZU_LOGIN_BUSY' | 'MEZU_LOGIN_FAILED' | 'MEZU_PASSKEY_INVALID', passkeyError: string, retryAfter?: number) =>
      security.form(c, { status, code, passkeyError, ...(retryAfter !== undefined ? { retryAfter } : {}) });
    const rp = rpOf(this.k, c);
    if (rp === null) return again(400, 'MEZU_PASSKEY_INVALID', 'Passkeys need the page to be opened by its host name, not an IP address.');
    // The password first, throttled like a sign-in: a borrowed session alone cannot add a way into the account.
    const aKey = accountKey(p.directory, u.email);
    const iKey = ipKey(p.directory, c.ip);
    const now = this.k.d.clock.now();
    const blocked = await this.k.countAttempts(c, u.email, aKey, iKey, p.login.throttle, now);
    if (blocked !== null) return again(429, 'MEZU_LOGIN_THROTTLED', `Too many attempts. Wait ${fmtWait(blocked)} and try again.`, blocked);
    const cred = this.k.d.store.credentials.get(u.id);
    const v = await this.k.d.hasher.verify(c.field('password'), cred?.hash ?? null, argon(c.cfg));
    if (v === null) {
      await Promise.all([this.k.throttle.release(aKey, p.login.throttle.account), this.k.throttle.release(iKey, p.login.throttle.ip)]);
      return again(503, 'MEZU_LOGIN_BUSY', 'Too many people are signing in right now. Try again in a moment.', 1);
    }
    if (!v.ok) {
      this.k.event(c, 'login_failure', 'bad_password', u, u.email);
      return again(401, 'MEZU_LOGIN_FAILED', 'This is not your password.');
    }
    await Promise.all([this.k.throttle.clear(aKey), this.k.throttle.release(iKey, p.login.throttle.ip)]);
    const fail = (reason: string) => {
      this.k.event(c, 'mfa_failure', `passkey_enrol_${reason}`, u, u.email);
      this.k.audit(c, u, 'factor.failure', { page: 'enrol', method: 'webauthn', reason });
      return again(401, 'MEZU_PASSKEY_INVALID', 'The passkey could not be added. Try again.');
    };
    const parsed = parseAnswer(c.field(CREDENTIAL_FIELD));
    if (parsed === null) return fail('malformed');
    const ch = this.k.d.challenges!.open(parsed.challenge, 'register', bindingOf(s.tokenHash), now);
    if (ch === null) return fail('challenge');
    const fresh = await this.k.d.store.emailTokens.claim(ch.id, { purpose: 'webauthn', projectId: p.id, directory: p.directory, email: '', userId: null, rd: '', createdAt: now, expiresAt: ch.expiresAt });
    if (!fresh) return fail('challenge_reused');
    const r = await verifyRegistration(rp, parsed.answer, parsed.challenge, now);
    if (!r.ok) return fail(r.reason);
    // A first factor that is a passkey brings the recovery codes (an authenticator app's enrolment does the same).
    const hadCodes = (this.k.d.store.factors.get(u.id)?.recovery.length ?? 0) > 0;
    const codes = hadCodes ? [] : newRecoveryCodes();
    const added = await this.k.d.store.factors.addPasskey(u.id, r.value, codes.map((x) => hashRecoveryCode(u.id, x)), now);
    if (added === 'taken') return fail('credential_taken');
    this.k.event(c, 'mfa_enrolled', 'webauthn', u, u.email);
    this.k.audit(c, u, 'factor.enroll', { factor: 'webauthn', credential: shortId(r.value.id), backed_up: r.value.backedUp, ...(codes.length > 0 ? { recovery_codes: codes.length } : {}) });
    return this.k.page(c, 200, null, {
      title: 'Passkey added',
      notice:
        'From now on, signing in with your password asks for a second factor, and the sign-in page can use this passkey alone.' +
        (codes.length > 0 ? ' Keep these recovery codes somewhere safe: each works once, in place of a second factor, if you lose your passkeys. They are not shown again.' : ''),
      ...(codes.length > 0 ? { html: `<ol class="codes" id="recovery-codes">${codes.map((x) => `<li>${esc(x)}</li>`).join('')}</ol>` } : {}),
      links: [{ href: rd, text: 'Continue' }, { href: PAGES.security, text: 'Security settings' }],
    });
  }
}

/** The passwordless form of the login page (its challenge bound to this browser's CSRF cookie), or null when passkeys are not offered here. */
export async function passwordlessForm(k: Kit, c: Ctx, rd: string): Promise<PasskeyFormSpec | null> {
  const rp = rpOf(k, c);
  if (rp === null) return null;
  const csrf = k.csrfToken(c);
  const challenge = k.d.challenges!.make('passwordless', bindingOf(c.csrfValue), k.d.clock.now());
  // User verification required: the passkey alone is the whole sign-in (W3C WebAuthn Level 2 §6.2.3).
  const options = await authenticationOptions(rp, null, 'required', challenge);
  return { id: 'passkey-login', action: PAGES.passkeyLogin, csrf, ceremony: 'authenticate', options, submit: 'Use a passkey', intro: '<h2>Or sign in with a passkey</h2>', fields: [{ name: 'rd', label: '', type: 'hidden', value: rd }] };
}

/** `/_mezu/login/passkey` (POST): passwordless sign-in. Not asked for a second factor after: the passkey with user verification is two. */
export class PasskeyLoginFlow extends KitFlow implements Flow {
  constructor(k: Kit, private readonly login: { form(c: Ctx, o: { error?: string; status?: number; code?: 'MEZU_PASSKEY_INVALID' }): Promise<PageResponse> }) {
    super(k);
  }

  form(c: Ctx): PageResponse {
    return this.k.redirect(c, PAGES.login);
  }

  async submit(c: Ctx): Promise<PageResponse> {
    const rd = safeReturnPath(c.field('rd'));
    const r = await checkPasskey(this.k, c, 'passwordless', c.csrfValue, null, 'login');
    if (!r.ok) return this.login.form(c, { status: 401, code: 'MEZU_PASSKEY_INVALID', error: 'That passkey did not sign you in. Try again, or use your email and password.' });
    const now = this.k.d.clock.now();
    return this.k.signIn(c, r.user, 'login_success', rd, { hwkAt: now });
  }
}

/** `/_mezu/webauthn.js`: the passkey script. */
export class ScriptFlow extends KitFlow implements Flow {
  form(c: Ctx): PageResponse {
    void c;
    return {
      status: 200,
      code: null,
      body: WEBAUTHN_SCRIPT,
      headers: [
        ['content-type', 'text/javascript; charset=utf-8'],
        // Short: a new edge version's script reaches browsers within minutes.
        ['cache-control', 'public, max-age=300'],
        ['x-content-type-options', 'nosniff'],
        ['cross-origin-resource-policy', 'same-origin'],
      ],
    };
  }

  async submit(c: Ctx): Promise<PageResponse> {
    return this.k.page(c, 405, 'MEZU_METHOD_NOT_ALLOWED', { title: 'Not allowed', error: 'This address accepts GET only.' });
  }
}
