/**
 * The hosted-page flows, one file per flow: login, logout, signup and its
 * emailed confirmation, forgot and reset password, change password; what they
 * share is in `kit.ts` and `context.ts`. Each takes a plain request snapshot
 * and returns a response value; `../http.ts` does the uWS side. Nothing here
 * touches the proxied request path.
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
import type { CompiledConfig, CompiledProject } from '../../config/index.js';
import { CSRF_FIELD, sameOrigin } from '../csrf.js';
import { Ctx, PAGES, type Flow, type LoginDeps, type PageRequest, type PageResponse } from './context.js';
import { Kit } from './kit.js';
import { LoginFlow } from './login.js';
import { LogoutFlow } from './logout.js';
import { ConfirmSignupFlow, SignupFlow } from './signup.js';
import { ForgotFlow, ResetFlow } from './reset.js';
import { PasswordFlow } from './password.js';
import { SecondFactorFlow, SecurityFlow, StepUpFlow } from './factor.js';
import { PasskeyEnrolFlow, PasskeyLoginFlow, ScriptFlow } from './passkey.js';

export { PAGES, type LoginDeps, type PageRequest, type PageResponse } from './context.js';

export class LoginService {
  private readonly k: Kit;
  private readonly flows: ReadonlyMap<string, Flow>;

  constructor(private readonly d: LoginDeps) {
    const k = new Kit(d);
    this.k = k;
    const login = new LoginFlow(k);
    this.flows = new Map<string, Flow>([
      [PAGES.login, login],
      [PAGES.logout, new LogoutFlow(k)],
      [PAGES.signup, new SignupFlow(k)],
      [PAGES.signupConfirm, new ConfirmSignupFlow(k)],
      [PAGES.forgot, new ForgotFlow(k)],
      [PAGES.reset, new ResetFlow(k)],
      [PAGES.password, new PasswordFlow(k)],
      [PAGES.secondFactor, new SecondFactorFlow(k)],
      [PAGES.stepUp, new StepUpFlow(k)],
      [PAGES.security, new SecurityFlow(k)],
      [PAGES.passkeyEnrol, new PasskeyEnrolFlow(k)],
      [PAGES.passkeyLogin, new PasskeyLoginFlow(k, login)],
      [PAGES.script, new ScriptFlow(k)],
    ]);
  }

  static serves(path: string): boolean {
    return PAGE_PATHS.has(path);
  }

  async handle(req: PageRequest, project: CompiledProject, cfg: CompiledConfig): Promise<PageResponse> {
    const c = new Ctx(req, project, cfg, this.d.csrfCookie);
    const get = req.method === 'GET' || req.method === 'HEAD';
    if (!get && req.method !== 'POST') return this.k.page(c, 405, 'MEZU_METHOD_NOT_ALLOWED', { title: 'Not allowed', error: 'This page accepts GET and POST only.' });
    if (!get) {
      // Every POST: the browser's own origin signals, then the signed double-submit token.
      const allowed = [`${this.d.scheme}://${req.hostHeader.toLowerCase()}`, project.login.publicUrl.toLowerCase()];
      if (!sameOrigin(req.origin, req.secFetchSite, allowed) || !this.d.csrf.check(c.csrfValue, c.field(CSRF_FIELD))) {
        return this.k.page(c, 403, 'MEZU_CSRF_FAILED', {
          title: 'Please try again',
          error: 'This form expired or was sent from another site. Reload the page and submit it again.',
          links: [{ href: `${req.path}${req.query === '' ? '' : `?${req.query}`}`, text: 'Reload the form' }],
        });
      }
    }
    const flow = this.flows.get(req.path);
    if (flow === undefined) return this.k.page(c, 404, 'MEZU_NOT_FOUND', { title: 'Not found', error: 'There is no such page.' });
    return get ? flow.form(c) : flow.submit(c);
  }
}

const PAGE_PATHS: ReadonlySet<string> = new Set(Object.values(PAGES));
