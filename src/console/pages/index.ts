/**
 * The Console pages, one file per resource (the traffic overview, users,
 * routes, service accounts and keys, Warpgates, audit): server-rendered HTML over the admin API. Every
 * read and every change a page makes goes through the same API route the JSON
 * clients use (`runApi` with the signed-in user as caller), so a page cannot do
 * anything the API would refuse — a viewer's POST is refused exactly like a
 * viewer's API call — and every change is audited the same way.
 *
 * Forms work without JavaScript (there is none: see html.ts for the CSP);
 * every POST carries the signed double-submit CSRF token of the hosted pages
 * and must come from this origin. A new key's secret is rendered once, in the
 * response to the POST that created it, with `Cache-Control: no-store`.
 */
import { Errors, MezuError, type ErrorCode } from '../../errors/index.js';
import { sameOrigin, CSRF_FIELD } from '../../login/index.js';
import { findCookie } from '../../session/index.js';
import { consoleSession } from '../access.js';
import { matchRoute, runApi } from '../api.js';
import { frame, PAGE_HEADERS } from '../html.js';
import { enc, framed, html, redirect, type Ctx, type PagesDeps, type PageRequest, type Reply } from './context.js';
import * as audit from './audit.js';
import * as overview from './overview.js';
import * as routes from './routes.js';
import * as serviceAccounts from './service-accounts.js';
import * as users from './users.js';
import * as warpgates from './warpgates.js';

export type { PageRequest, PagesDeps } from './context.js';

/** The first path segment → the resource that owns the URLs under it. */
const RESOURCES: ReadonlyMap<string, (c: Ctx, seg: string[], post: boolean) => Promise<Reply | null>> = new Map([
  ['overview', overview.route],
  ['users', users.route],
  ['routes', routes.route],
  ['service-accounts', serviceAccounts.route],
  ['warpgates', warpgates.route],
  ['audit', audit.route],
]);

export class ConsolePages {
  constructor(private readonly p: PagesDeps) {}

  error(status: number, code: ErrorCode, message?: string): Reply {
    return {
      status,
      headers: [...PAGE_HEADERS, ['x-mezu-error-code', code]],
      body: frame({ title: status === 403 ? 'Not allowed' : status === 404 ? 'Not found' : 'Something went wrong', current: null, who: null, keep: '', error: message ?? Errors[code].message, body: '<p><a href="/">Back to the Console</a></p>' }),
    };
  }

  async handle(req: PageRequest): Promise<Reply> {
    const s = consoleSession(this.p.deps.store, req.cookie, this.p.sessionCookie, this.p.deps.clock.now());
    if (s === null) {
      const rd = req.method === 'GET' ? `${req.path}${req.query.toString() === '' ? '' : `?${req.query.toString()}`}` : '/';
      return { status: 303, headers: [['location', `/_mezu/login${rd === '/' ? '' : `?rd=${enc(rd)}`}`], ['cache-control', 'no-store']], body: '' };
    }
    const setCookies: string[] = [];
    let csrfValue = findCookie(req.cookie, this.p.csrfCookie);
    if (csrfValue.length !== 43) {
      csrfValue = (this.p.csrf.constructor as unknown as { newCookieValue(): string }).newCookieValue();
      setCookies.push(`${this.p.csrfCookie}=${csrfValue}; Path=/; HttpOnly; SameSite=Lax${this.p.scheme === 'https' ? '; Secure' : ''}`);
    }
    const caller = { kind: 'console' as const, user: s.user, role: s.role, tokenHash: s.tokenHash };
    const c: Ctx = {
      req,
      who: { id: s.user.id, email: s.user.email, role: s.role },
      canWrite: s.role !== 'viewer',
      isOwner: s.role === 'owner',
      csrf: this.p.csrf.tokenFor(csrfValue),
      setCookies,
      publicUrl: this.p.publicUrl,
      call: async (method, path, body, query) => {
        const m = matchRoute(method, path);
        if ('methods' in m) throw new MezuError('MEZU_API_NOT_FOUND');
        const r = await runApi(this.p.deps, m.route, m.params, { method, path, query: new URLSearchParams(query ?? {}), body, ip: req.ip, caller });
        return r.body;
      },
    };
    if (req.method === 'POST') {
      const allowed = [this.p.publicUrl.toLowerCase().replace(/\/$/, ''), `${this.p.scheme}://${req.hostHeader.toLowerCase()}`];
      if (!sameOrigin(req.origin, req.secFetchSite, allowed) || !this.p.csrf.check(csrfValue, req.form.get(CSRF_FIELD) ?? '')) {
        return this.withCookies(c, this.error(403, 'MEZU_CSRF_FAILED', 'This form expired or was sent from another site. Reload the page and try again.'));
      }
    } else if (req.method !== 'GET' && req.method !== 'HEAD') {
      return this.error(405, 'MEZU_API_METHOD_NOT_ALLOWED');
    }
    try {
      return this.withCookies(c, await route(c));
    } catch (err) {
      if (err instanceof MezuError) {
        const status = err.status;
        return this.withCookies(c, { ...this.error(status, err.code, err.message), body: framed(c, { title: status === 403 ? 'Not allowed' : 'Cannot do that', current: null, error: err.message, body: '<p><a href="/">Back to the Console</a></p>' }) });
      }
      throw err;
    }
  }

  private withCookies(c: Ctx, r: Reply): Reply {
    for (const sc of c.setCookies) r.headers.push(['set-cookie', sc]);
    return r;
  }
}

async function route(c: Ctx): Promise<Reply> {
  const path = c.req.path;
  const post = c.req.method === 'POST';
  const seg = path.split('/').slice(1).map((x) => decodeURIComponent(x));
  if (path === '/' || path === '') return redirect('/overview');
  const reply = await RESOURCES.get(seg[0]!)?.(c, seg, post);
  return reply ?? html(404, framed(c, { title: 'Not found', current: null, error: 'There is no such page in the Console.', body: '' }));
}
