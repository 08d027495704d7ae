/** Signing out: the session is revoked in the store and its cookie cleared. */
import { findCookie, hashToken, isTokenSyntax } from '../../session/index.js';
import { PAGES, escText, type Ctx, type Flow, type PageResponse } from './context.js';
import { KitFlow } from './kit.js';

/** `/_mezu/logout`: who is signed in, and signing out (a POST, so a link cannot sign anyone out). */
export class LogoutFlow extends KitFlow implements Flow {
  form(c: Ctx): PageResponse {
    const s = this.k.currentSession(c);
    if (s === null) {
      return this.k.page(c, 200, null, { title: 'Signed out', notice: 'You are not signed in.', links: [{ href: PAGES.login, text: 'Sign in' }] });
    }
    return this.k.page(c, 200, null, {
      title: 'Sign out',
      html: `<p>You are signed in as <strong>${escText(s.user.email)}</strong>.</p>`,
      form: { action: PAGES.logout, submit: 'Sign out', csrf: this.k.csrfToken(c), fields: [] },
    });
  }

  async submit(c: Ctx): Promise<PageResponse> {
    const token = findCookie(c.req.cookie, this.k.d.sessionCookie);
    if (token !== '' && isTokenSyntax(token)) {
      const th = hashToken(token);
      const s = this.k.d.store.sessions.get(th);
      await this.k.d.store.sessions.revoke(th);
      if (s !== undefined) {
        const u = this.k.d.store.users.get(s.userId) ?? null;
        if (u !== null) this.k.event(c, 'logout', null, u, u.email);
      }
    }
    c.setCookies.push(this.k.cookie(this.k.d.sessionCookie, '', 0));
    return this.k.page(c, 200, null, { title: 'Signed out', notice: 'You have signed out.', links: [{ href: PAGES.login, text: 'Sign in again' }] });
  }
}
