/**
 * The Console pages: server-rendered HTML over the admin API. Every read and
 * every change a page makes goes through the same API route the JSON clients
 * use (`runApi` with the signed-in user as caller), so a page cannot do
 * anything the API would refuse — a viewer's POST is refused exactly like a
 * viewer's API call — and every change is audited the same way.
 *
 * Forms work without JavaScript (there is none: see html.ts for the CSP);
 * every POST carries the signed double-submit CSRF token of the hosted pages
 * and must come from this origin. A new key's secret is rendered once, in the
 * response to the POST that created it, with `Cache-Control: no-store`.
 */
import type { Csrf } from '../login/index.js';
import { sameOrigin, CSRF_FIELD } from '../login/index.js';
import { findCookie } from '../session/index.js';
import { Errors, MezuError, type ErrorCode } from '../errors/index.js';
import { InvalidRequest, CONSOLE_DIRECTORY, CONSOLE_ROLES } from '../control/index.js';
import { consoleSession } from './access.js';
import { matchRoute, runApi, type ApiDeps } from './api.js';
import { frame, esc, badge, when, table, form, field, select, PAGE_HEADERS, type Frame } from './html.js';

export interface PageRequest {
  rid: string;
  method: string;
  path: string;
  query: URLSearchParams;
  form: URLSearchParams;
  cookie: string;
  origin: string;
  secFetchSite: string;
  hostHeader: string;
  ip: string;
}

interface Reply {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

interface Ctx {
  req: PageRequest;
  who: { id: string; email: string; role: string };
  canWrite: boolean;
  isOwner: boolean;
  csrf: string;
  setCookies: string[];
  call(method: string, path: string, body?: unknown, query?: Record<string, string>): Promise<any>;
}

export interface PagesDeps {
  deps: ApiDeps;
  csrf: Csrf;
  csrfCookie: string;
  sessionCookie: string;
  publicUrl: string;
  scheme: 'http' | 'https';
}

const DONE: Record<string, string> = {
  created: 'The user was created.',
  saved: 'Saved.',
  suspended: 'The user is suspended: every session ended, and sign-in is refused until reactivated.',
  activated: 'The user is active again.',
  deactivated: 'The user is deactivated: sign-in is refused for good; the record is kept for audit.',
  'session-revoked': 'The session was revoked.',
  'sessions-revoked': 'Every session of this user was revoked.',
  'key-revoked': 'The key was revoked: the next request with it is refused, and Warpgates enrolled with it are disconnected.',
  'sa-created': 'The service account was created. Create a key for it below.',
  'sa-updated': 'The service account was updated.',
  'routes-saved': 'Routes saved. The edge serves them within a second, without a restart.',
};

function enc(s: string): string {
  return encodeURIComponent(s);
}

const csv = (v: unknown): string => (Array.isArray(v) ? v.join(', ') : '');
const list = (s: string | null): string[] => (s ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');

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
      return this.withCookies(c, await this.route(c));
    } catch (err) {
      if (err instanceof MezuError) {
        const status = err.status;
        return this.withCookies(c, { ...this.error(status, err.code, err.message), body: this.page(c, { title: status === 403 ? 'Not allowed' : 'Cannot do that', current: null, error: err.message, body: '<p><a href="/">Back to the Console</a></p>' }) });
      }
      throw err;
    }
  }

  private withCookies(c: Ctx, r: Reply): Reply {
    for (const sc of c.setCookies) r.headers.push(['set-cookie', sc]);
    return r;
  }

  private page(c: Ctx, f: Omit<Frame, 'who' | 'keep'> & { keep?: string }): string {
    const notice = f.notice ?? DONE[c.req.query.get('done') ?? ''];
    return frame({ ...f, keep: f.keep ?? '', who: { email: c.who.email, role: c.who.role }, notice });
  }

  private html(status: number, body: string): Reply {
    return { status, headers: [...PAGE_HEADERS], body };
  }

  private redirect(location: string): Reply {
    return { status: 303, headers: [['location', location], ['cache-control', 'no-store']], body: '' };
  }

  private async route(c: Ctx): Promise<Reply> {
    const path = c.req.path;
    const post = c.req.method === 'POST';
    const seg = path.split('/').slice(1).map((x) => decodeURIComponent(x));
    if (path === '/' || path === '') return this.redirect('/users');
    if (seg[0] === 'users') {
      if (seg.length === 1) return post ? this.createUser(c) : this.users(c);
      const id = seg[1]!;
      if (seg.length === 2) return post ? this.updateUser(c, id) : this.user(c, id);
      if (post && seg.length === 3 && seg[2] === 'status') return this.setStatus(c, id);
      if (post && seg.length === 3 && seg[2] === 'sessions') {
        await c.call('DELETE', `/api/v1/users/${enc(id)}/sessions`);
        return this.redirect(`/users/${enc(id)}?done=sessions-revoked`);
      }
      if (post && seg.length === 5 && seg[2] === 'sessions' && seg[4] === 'revoke') {
        await c.call('DELETE', `/api/v1/users/${enc(id)}/sessions/${enc(seg[3]!)}`);
        return this.redirect(`/users/${enc(id)}?done=session-revoked`);
      }
    }
    if (seg[0] === 'routes' && seg.length === 1) return post ? this.saveRoutes(c) : this.routes(c, null, null);
    if (seg[0] === 'service-accounts') {
      if (seg.length === 1) return post ? this.createServiceAccount(c) : this.serviceAccounts(c);
      const id = seg[1]!;
      if (seg.length === 2) return post ? this.updateServiceAccount(c, id) : this.serviceAccount(c, id, null);
      if (post && seg.length === 3 && seg[2] === 'keys') return this.createKey(c, id);
      if (post && seg.length === 5 && seg[2] === 'keys' && seg[4] === 'rotate') return this.rotateKey(c, id, seg[3]!);
      if (post && seg.length === 5 && seg[2] === 'keys' && seg[4] === 'revoke') {
        await c.call('DELETE', `/api/v1/service-accounts/${enc(id)}/keys/${enc(seg[3]!)}`);
        return this.redirect(`/service-accounts/${enc(id)}?done=key-revoked`);
      }
    }
    // The answer to a key's creation or rotation is a page at the POST's URL (the secret is shown once, never stored
    // for a redirect to show): reloading or bookmarking it lands on the service account instead.
    if (seg[0] === 'service-accounts' && seg.length >= 3 && !post) return this.redirect(`/service-accounts/${enc(seg[1]!)}`);
    if (seg[0] === 'warpgates' && seg.length === 1 && !post) return this.warpgates(c);
    if (seg[0] === 'audit' && seg.length === 1 && !post) return this.audit(c);
    return this.html(404, this.page(c, { title: 'Not found', current: null, error: 'There is no such page in the Console.', body: '' }));
  }

  // ── users ──────────────────────────────────────────────────────────────

  private async directories(c: Ctx): Promise<Array<{ id: string; scope: string; projects: string[]; users: number }>> {
    return ((await c.call('GET', '/api/v1/directories')) as { items: Array<{ id: string; scope: string; projects: string[]; users: number }> }).items;
  }

  private dirLabel(d: { id: string; scope: string; projects: string[] }): string {
    if (d.scope === 'console') return 'Console operators';
    if (d.scope === 'organization') return `Organization ${d.id.slice(4)} (projects: ${d.projects.join(', ') || 'none'})`;
    return `Project ${d.id}`;
  }

  private async users(c: Ctx, createErrors: Record<string, string> = {}, values: URLSearchParams | null = null): Promise<Reply> {
    const dirs = await this.directories(c);
    const dir = c.req.query.get('directory') ?? dirs.find((d) => d.scope !== 'console')?.id ?? CONSOLE_DIRECTORY;
    const q = c.req.query.get('q') ?? '';
    const status = c.req.query.get('status') ?? '';
    const query: Record<string, string> = { limit: '50' };
    if (q !== '') query.q = q;
    if (status !== '') query.status = status;
    const cur = c.req.query.get('cursor');
    if (cur !== null && cur !== '') query.cursor = cur;
    const page = (await c.call('GET', `/api/v1/directories/${enc(dir)}/users`, undefined, query)) as { items: Array<Record<string, unknown>>; next_cursor: string | null };
    const rows = page.items.map((u) => [
      `<a href="/users/${enc(String(u.id))}">${esc(u.email)}</a>`,
      esc(u.display_name),
      badge(u.status),
      esc(csv(u.roles)),
      when(u.last_login_at),
    ]);
    const search =
      `<form method="get" action="/users" class="row" role="search">` +
      select('directory', 'Directory', dir, dirs.map((d) => [d.id, this.dirLabel(d)])) +
      field('q', 'Search', q, { type: 'search' }) +
      select('status', 'Status', status, [['', 'any'], ['active', 'active'], ['suspended', 'suspended'], ['deactivated', 'deactivated']]) +
      `<div><button type="submit" class="quiet">Search</button></div></form>`;
    const more = page.next_cursor === null ? '' : `<p><a href="/users?directory=${enc(dir)}&amp;q=${enc(q)}&amp;status=${enc(status)}&amp;cursor=${enc(page.next_cursor)}">Next page</a></p>`;
    const consoleDir = dir === CONSOLE_DIRECTORY;
    const mayCreate = c.canWrite && (!consoleDir || c.isOwner);
    const v = (k: string) => values?.get(k) ?? '';
    const create = !mayCreate
      ? ''
      : `<section aria-labelledby="create-h"><h2 id="create-h">Create a user</h2>` +
        form(
          `/users?directory=${enc(dir)}`,
          c.csrf,
          `<div class="row">` +
            field('email', 'Email', v('email'), { type: 'email', required: true, error: createErrors.email }) +
            field('name', 'Name', v('name'), { error: createErrors.name }) +
            (consoleDir
              ? select('role', 'Role', v('role') || 'viewer', CONSOLE_ROLES.map((r) => [r, r]), { error: createErrors.roles })
              : field('roles', 'Roles (comma-separated)', v('roles'), { error: createErrors.roles }) + field('permissions', 'Permissions (comma-separated)', v('permissions'), { error: createErrors.permissions })) +
            `<div><button type="submit">Create user</button></div></div>` +
            `<p class="muted">${consoleDir ? 'The new operator sets a password with “Forgot your password?” on the sign-in page.' : 'The user sets a password through “Forgot your password?” (or signup, when the project allows it).'}</p>`,
        ) +
        `</section>`;
    const body = `<section>${search}</section><section aria-labelledby="list-h"><h2 id="list-h">${esc(this.dirLabel(dirs.find((d) => d.id === dir) ?? { id: dir, scope: 'project', projects: [] }))}</h2>${table(['Email', 'Name', 'Status', 'Roles', 'Last login'], rows, 'No users match.')}${more}</section>${create}`;
    const err = Object.keys(createErrors).length > 0 ? 'The user was not created: fix the fields marked below.' : undefined;
    return this.html(err === undefined ? 200 : 400, this.page(c, { title: 'Users', current: 'users', error: err, body }));
  }

  private async createUser(c: Ctx): Promise<Reply> {
    const dir = c.req.query.get('directory') ?? '';
    const f = c.req.form;
    const consoleDir = dir === CONSOLE_DIRECTORY;
    const b: Record<string, unknown> = { email: f.get('email') ?? '', roles: consoleDir ? [f.get('role') ?? 'viewer'] : list(f.get('roles')), permissions: consoleDir ? [] : list(f.get('permissions')) };
    if ((f.get('name') ?? '') !== '') b.name = f.get('name');
    try {
      const u = (await c.call('POST', `/api/v1/directories/${enc(dir)}/users`, b)) as { id: string };
      return this.redirect(`/users/${enc(u.id)}?done=created`);
    } catch (err) {
      if (err instanceof InvalidRequest || (err instanceof MezuError && err.code === 'MEZU_USER_EXISTS')) {
        const errors: Record<string, string> = {};
        if (err instanceof InvalidRequest) for (const p of err.problems) errors[p.at.replace(/\[\d+\]$/, '')] ??= p.message;
        else errors.email = 'A user with this email already exists in this directory.';
        return this.users(c, errors, f);
      }
      throw err;
    }
  }

  private async user(c: Ctx, id: string, errors: Record<string, string> = {}, values: URLSearchParams | null = null): Promise<Reply> {
    const u = (await c.call('GET', `/api/v1/users/${enc(id)}`)) as Record<string, any>;
    const sessions = ((await c.call('GET', `/api/v1/users/${enc(id)}/sessions`)) as { items: Array<Record<string, any>> }).items;
    const history = (await c.call('GET', `/api/v1/users/${enc(id)}/login-history`, undefined, { limit: '50' })) as { items: Array<Record<string, any>>; last_login_at: string | null };
    const consoleDir = u.directory === CONSOLE_DIRECTORY;
    const mayWrite = c.canWrite && (!consoleDir || c.isOwner);
    const v = (k: string, d: string) => values?.get(k) ?? d;
    const statusButtons: string[] = [];
    if (mayWrite) {
      const btn = (to: string, text: string, cls = '') => form(`/users/${enc(id)}/status`, c.csrf, `<input type="hidden" name="status" value="${to}"><button type="submit"${cls === '' ? '' : ` class="${cls}"`}>${text}</button>`, { inline: true });
      if (u.status === 'active') statusButtons.push(btn('suspended', 'Suspend', 'quiet'), btn('deactivated', 'Deactivate', 'danger'));
      if (u.status === 'suspended') statusButtons.push(btn('active', 'Activate'), btn('deactivated', 'Deactivate', 'danger'));
    }
    const profile = mayWrite
      ? form(
          `/users/${enc(id)}`,
          c.csrf,
          `<div class="row">` +
            field('email', 'Email', v('email', u.email), { type: 'email', error: errors.email }) +
            field('name', 'Name', v('name', u.name), { error: errors.name }) +
            field('display_name', 'Display name', v('display_name', u.display_name), { error: errors.display_name }) +
            (consoleDir
              ? select('role', 'Role', v('role', u.roles[0] ?? 'viewer'), CONSOLE_ROLES.map((r) => [r, r]), { error: errors.roles })
              : field('roles', 'Roles (comma-separated)', v('roles', csv(u.roles)), { error: errors.roles, size: 30 }) + field('permissions', 'Permissions (comma-separated)', v('permissions', csv(u.permissions)), { error: errors.permissions, size: 30 })) +
            `<div><button type="submit">Save</button></div></div>`,
          { label: 'Profile, roles and permissions' },
        )
      : table(['Email', 'Name', 'Display name', 'Roles', 'Permissions'], [[esc(u.email), esc(u.name), esc(u.display_name), esc(csv(u.roles)), esc(csv(u.permissions))]], '');
    const sessRows = sessions.map((s) => [
      `<code>${esc(s.id)}</code>`,
      esc(s.project),
      when(s.created_at),
      when(s.last_seen_at),
      esc(csv(s.amr)),
      mayWrite ? form(`/users/${enc(id)}/sessions/${enc(String(s.id))}/revoke`, c.csrf, '<button type="submit" class="quiet">Revoke</button>', { inline: true }) : '',
    ]);
    const revokeAll = mayWrite && sessions.length > 0 ? form(`/users/${enc(id)}/sessions`, c.csrf, '<button type="submit" class="danger">Revoke every session</button>') : '';
    const histRows = history.items.map((e) => [when(e.at), esc(e.type), esc(e.reason ?? ''), esc(e.ip), `<span class="muted">${esc(String(e.user_agent).slice(0, 80))}</span>`]);
    const body =
      `<section aria-labelledby="st-h"><h2 id="st-h">Status</h2><p>${badge(u.status)} in directory <code>${esc(u.directory)}</code> · created ${when(u.created_at)} · last login ${when(u.last_login_at)}</p>${statusButtons.join(' ')}</section>` +
      `<section aria-labelledby="pr-h"><h2 id="pr-h">Profile and access</h2>${profile}</section>` +
      `<section aria-labelledby="se-h"><h2 id="se-h">Sessions</h2>${table(['Session', 'Project', 'Signed in', 'Last seen', 'Method', ''], sessRows, 'No open sessions.')}${revokeAll}</section>` +
      `<section aria-labelledby="hi-h"><h2 id="hi-h">Login history</h2>${table(['When', 'Event', 'Reason', 'IP', 'User agent'], histRows, 'No sign-in events yet.')}</section>` +
      `<p><a href="/users?directory=${enc(u.directory)}">Back to the directory</a></p>`;
    const err = Object.keys(errors).length > 0 ? 'Nothing was saved: fix the fields marked below.' : undefined;
    return this.html(err === undefined ? 200 : 400, this.page(c, { title: u.email, current: 'users', error: err, body }));
  }

  private async updateUser(c: Ctx, id: string): Promise<Reply> {
    const f = c.req.form;
    const u = (await c.call('GET', `/api/v1/users/${enc(id)}`)) as Record<string, any>;
    const consoleDir = u.directory === CONSOLE_DIRECTORY;
    const b: Record<string, unknown> = { email: f.get('email') ?? u.email, name: f.get('name') ?? u.name, display_name: f.get('display_name') ?? u.display_name };
    if (consoleDir) b.roles = [f.get('role') ?? u.roles[0]];
    else {
      b.roles = list(f.get('roles'));
      b.permissions = list(f.get('permissions'));
    }
    try {
      await c.call('PATCH', `/api/v1/users/${enc(id)}`, b);
      return this.redirect(`/users/${enc(id)}?done=saved`);
    } catch (err) {
      if (err instanceof InvalidRequest || (err instanceof MezuError && err.code === 'MEZU_USER_EXISTS')) {
        const errors: Record<string, string> = {};
        if (err instanceof InvalidRequest) for (const p of err.problems) errors[p.at.replace(/\[\d+\]$/, '')] ??= p.message;
        else errors.email = 'Another user of this directory has this email.';
        return this.user(c, id, errors, f);
      }
      throw err;
    }
  }

  private async setStatus(c: Ctx, id: string): Promise<Reply> {
    const to = c.req.form.get('status');
    const verb = to === 'suspended' ? 'suspend' : to === 'active' ? 'activate' : to === 'deactivated' ? 'deactivate' : null;
    if (verb === null) throw new InvalidRequest([{ at: 'status', message: 'must be active, suspended or deactivated' }]);
    await c.call('POST', `/api/v1/users/${enc(id)}/${verb}`);
    return this.redirect(`/users/${enc(id)}?done=${to === 'suspended' ? 'suspended' : to === 'active' ? 'activated' : 'deactivated'}`);
  }

  // ── routes ─────────────────────────────────────────────────────────────

  private async projects(c: Ctx): Promise<Array<Record<string, any>>> {
    return ((await c.call('GET', '/api/v1/projects')) as { items: Array<Record<string, any>> }).items;
  }

  private projectPicker(path: string, projects: Array<Record<string, any>>, current: string): string {
    return `<form method="get" action="${path}" class="row">${select('project', 'Project', current, projects.map((p) => [String(p.id), `${p.name} (${p.id}, organization ${p.organization})`]))}<div><button type="submit" class="quiet">Show</button></div></form>`;
  }

  private async routes(c: Ctx, errors: Map<string, string> | null, posted: Array<Record<string, string>> | null, formError?: string): Promise<Reply> {
    const projects = await this.projects(c);
    if (projects.length === 0) return this.html(200, this.page(c, { title: 'Routes', current: 'routes', body: '<section><p>No project is configured yet: apply a config with <code>mezusphere apply -f FILE</code>.</p></section>' }));
    const pid = c.req.query.get('project') ?? String(projects[0]!.id);
    const r = (await c.call('GET', `/api/v1/projects/${enc(pid)}/routes`)) as { config_version: number; routes: Array<Record<string, any>> };
    const p = projects.find((x) => x.id === pid)!;
    const rows: Array<Record<string, string>> =
      posted ??
      [
        ...r.routes.map((x) => ({
          path: String(x.path),
          auth: String(x.auth),
          methods: csv(x.methods),
          principals: Array.isArray(x.principals) && !(x.principals.length === 1 && x.principals[0] === 'user') ? x.principals.join(',') : '',
          roles: csv(x.roles),
          permissions: csv(x.permissions),
          remove: '',
        })),
        { path: '', auth: 'required', methods: '', principals: '', roles: '', permissions: '', remove: '' },
      ];
    const e = (i: number, k: string) => errors?.get(`${i}.${k}`);
    let inner = '';
    if (c.canWrite) {
      const trs = rows.map((row, i) => [
        field(`path_${i}`, 'Path', row.path ?? '', { id: `r${i}-path`, hideLabel: true, error: e(i, 'path'), size: 22 }),
        select(`auth_${i}`, 'Auth', row.auth ?? 'required', [['required', 'required'], ['public', 'public'], ['deny', 'deny']], { id: `r${i}-auth`, hideLabel: true, error: e(i, 'auth') }),
        field(`methods_${i}`, 'Methods', row.methods ?? '', { id: `r${i}-methods`, hideLabel: true, error: e(i, 'methods'), size: 10 }),
        select(`principals_${i}`, 'Principals', row.principals ?? '', [['', 'users'], ['service_account', 'service accounts'], ['user,service_account', 'both']], { id: `r${i}-principals`, hideLabel: true, error: e(i, 'principals') }),
        field(`roles_${i}`, 'Roles', row.roles ?? '', { id: `r${i}-roles`, hideLabel: true, error: e(i, 'roles'), size: 12 }),
        field(`permissions_${i}`, 'Permissions', row.permissions ?? '', { id: `r${i}-permissions`, hideLabel: true, error: e(i, 'permissions'), size: 14 }),
        i < rows.length - 1 || row.path !== '' ? `<div><label for="r${i}-remove" class="vh">Remove</label><input id="r${i}-remove" type="checkbox" name="remove_${i}" value="1"${row.remove === '1' ? ' checked' : ''}></div>` : '<span class="muted">new rule</span>',
      ]);
      inner = form(
        `/routes?project=${enc(pid)}`,
        c.csrf,
        `<input type="hidden" name="rows" value="${rows.length}"><input type="hidden" name="expect_version" value="${r.config_version}">` +
          table(['Path', 'Auth', 'Methods', 'Principals', 'Roles', 'Permissions', 'Remove'], trs, '') +
          `<p class="muted">Most specific rule wins (exact path, then longer prefix). Paths no rule covers: <code>${esc(p.id)}</code>'s default. Lists are comma-separated; methods narrow a rule.</p>` +
          `<button type="submit">Save routes</button>`,
        { label: `Routes of ${p.id}` },
      );
    } else {
      inner = table(['Path', 'Auth', 'Methods', 'Principals', 'Roles', 'Permissions'], r.routes.map((x) => [esc(x.path), badge(x.auth), esc(csv(x.methods)), esc(csv(x.principals)), esc(csv(x.roles)), esc(csv(x.permissions))]), 'No routes: the project default applies to every path.');
    }
    const other = errors?.get('other');
    const body =
      `<section>${this.projectPicker('/routes', projects, pid)}<p class="muted">Hosts: ${esc(csv(p.hosts))} · Warpgate pool <code>${esc(p.upstream)}</code> · user directory <code>${esc(p.directory)}</code> · config version ${r.config_version}</p></section>` +
      `<section aria-labelledby="ro-h"><h2 id="ro-h">Routes of ${esc(p.name)}</h2>${other !== undefined ? `<div class="alert" role="alert"><p>${esc(other)}</p></div>` : ''}${inner}</section>`;
    return this.html(errors === null ? 200 : formError !== undefined && errors.size === 0 ? 409 : 400, this.page(c, { title: 'Routes', current: 'routes', keep: `?project=${enc(pid)}`, error: formError, body }));
  }

  private async saveRoutes(c: Ctx): Promise<Reply> {
    const pid = c.req.query.get('project') ?? '';
    const f = c.req.form;
    const n = Math.min(Number(f.get('rows') ?? '0') || 0, 500);
    const posted: Array<Record<string, string>> = [];
    const routes: Array<Record<string, unknown>> = [];
    const index: number[] = []; // routes[k] came from row index[k]
    for (let i = 0; i < n; i++) {
      const row = {
        path: (f.get(`path_${i}`) ?? '').trim(),
        auth: f.get(`auth_${i}`) ?? 'required',
        methods: f.get(`methods_${i}`) ?? '',
        principals: f.get(`principals_${i}`) ?? '',
        roles: f.get(`roles_${i}`) ?? '',
        permissions: f.get(`permissions_${i}`) ?? '',
        remove: f.get(`remove_${i}`) ?? '',
      };
      posted.push(row);
      if (row.remove === '1') continue;
      if (row.path === '' && row.methods === '' && row.roles === '' && row.permissions === '') continue;
      const r: Record<string, unknown> = { path: row.path, auth: row.auth };
      if (row.methods.trim() !== '') r.methods = list(row.methods.toUpperCase());
      if (row.principals !== '') r.principals = list(row.principals);
      if (row.roles.trim() !== '') r.roles = list(row.roles);
      if (row.permissions.trim() !== '') r.permissions = list(row.permissions);
      routes.push(r);
      index.push(i);
    }
    const ev = f.get('expect_version');
    try {
      const out = (await c.call('PUT', `/api/v1/projects/${enc(pid)}/routes`, { routes, expect_version: ev === null ? null : Number(ev) })) as { config_version: number };
      return this.redirect(`/routes?project=${enc(pid)}&done=routes-saved&version=${out.config_version}`);
    } catch (err) {
      if (err instanceof InvalidRequest) {
        // `routes[k].field` → the row it came from, so the message sits at its field.
        const errors = new Map<string, string>();
        for (const p of err.problems) {
          const m = /^routes\[(\d+)\](?:\.(\w+))?/.exec(p.at);
          if (m !== null && index[Number(m[1])] !== undefined) {
            const k = `${index[Number(m[1])]}.${m[2] ?? 'path'}`;
            if (!errors.has(k)) errors.set(k, p.message);
          } else errors.set('other', `${p.at}: ${p.message}`);
        }
        return this.routes(c, errors, posted, `The routes were not saved (${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}): fix the fields marked below. The edge keeps serving the current routes.`);
      }
      if (err instanceof MezuError && err.code === 'MEZU_CONFIG_STALE') {
        return this.routes(c, new Map(), null, 'Someone changed the config while you were editing: here are the current routes. Make your change again.');
      }
      throw err;
    }
  }

  // ── service accounts and keys ──────────────────────────────────────────

  private async serviceAccounts(c: Ctx, errors: Record<string, string> = {}, values: URLSearchParams | null = null): Promise<Reply> {
    const projects = await this.projects(c);
    if (projects.length === 0) return this.html(200, this.page(c, { title: 'Service accounts', current: 'service-accounts', body: '<section><p>No project is configured yet.</p></section>' }));
    const pid = c.req.query.get('project') ?? String(projects[0]!.id);
    const items = ((await c.call('GET', `/api/v1/projects/${enc(pid)}/service-accounts`)) as { items: Array<Record<string, any>> }).items;
    const rows = items.map((sa) => [`<a href="/service-accounts/${enc(String(sa.id))}">${esc(sa.name)}</a>`, `<code>${esc(sa.id)}</code>`, badge(sa.status), esc(csv(sa.permissions)), esc(csv(sa.roles)), when(sa.created_at)]);
    const v = (k: string) => values?.get(k) ?? '';
    const create = !c.canWrite
      ? ''
      : `<section aria-labelledby="csa-h"><h2 id="csa-h">Create a service account</h2>` +
        form(
          `/service-accounts?project=${enc(pid)}`,
          c.csrf,
          `<div class="row">${field('name', 'Name', v('name'), { required: true, error: errors.name })}${field('permissions', 'Permissions (comma-separated)', v('permissions'), { size: 40, error: errors.permissions })}${field('roles', 'Roles (comma-separated)', v('roles'), { error: errors.roles })}<div><button type="submit">Create service account</button></div></div>` +
            `<p class="muted">Admin API permissions: users:read|write, service-accounts:read|write, routes:read|write, warpgates:read, warpgates:enroll (a Warpgate's key), audit:read. Route permissions are any other names your routes require.</p>`,
        ) +
        '</section>';
    const body = `<section>${this.projectPicker('/service-accounts', projects, pid)}</section><section aria-labelledby="sa-h"><h2 id="sa-h">Service accounts of ${esc(pid)}</h2>${table(['Name', 'Id', 'Status', 'Permissions', 'Roles', 'Created'], rows, 'No service accounts yet.')}</section>${create}`;
    const err = Object.keys(errors).length > 0 ? 'The service account was not created: fix the fields marked below.' : undefined;
    return this.html(err === undefined ? 200 : 400, this.page(c, { title: 'Service accounts', current: 'service-accounts', keep: `?project=${enc(pid)}`, error: err, body }));
  }

  private async createServiceAccount(c: Ctx): Promise<Reply> {
    const pid = c.req.query.get('project') ?? '';
    const f = c.req.form;
    try {
      const sa = (await c.call('POST', `/api/v1/projects/${enc(pid)}/service-accounts`, { name: f.get('name') ?? '', permissions: list(f.get('permissions')), roles: list(f.get('roles')) })) as { id: string };
      return this.redirect(`/service-accounts/${enc(sa.id)}?done=sa-created`);
    } catch (err) {
      if (err instanceof InvalidRequest) {
        const errors: Record<string, string> = {};
        for (const p of err.problems) errors[p.at.replace(/\[\d+\]$/, '')] ??= p.message;
        return this.serviceAccounts(c, errors, f);
      }
      throw err;
    }
  }

  private async serviceAccount(c: Ctx, id: string, secret: { key: string; id: string; rotated: boolean; previousExpires: string | null } | null, errors: Record<string, string> = {}): Promise<Reply> {
    const sa = (await c.call('GET', `/api/v1/service-accounts/${enc(id)}`)) as Record<string, any>;
    const keys = ((await c.call('GET', `/api/v1/service-accounts/${enc(id)}/keys`)) as { items: Array<Record<string, any>> }).items;
    const live = (k: Record<string, any>) => k.state === 'active' || k.state === 'rotating';
    const rows = keys.map((k) => [
      `<code>${esc(k.prefix)}_…</code>`,
      badge(k.state),
      when(k.created_at),
      k.expires_at === null ? '<span class="muted">no expiry</span>' : when(k.expires_at),
      when(k.last_used_at),
      c.canWrite && live(k)
        ? (k.state === 'active'
            ? form(`/service-accounts/${enc(id)}/keys/${enc(String(k.id))}/rotate`, c.csrf, `<label class="muted" for="ov-${esc(k.id)}">Overlap</label><select id="ov-${esc(k.id)}" name="overlap"><option value="1h">1 hour</option><option value="24h">1 day</option><option value="7d">7 days</option><option value="5m">5 minutes</option></select> <button type="submit" class="quiet">Rotate</button>`, { inline: true, label: `Rotate ${k.prefix}` }) + ' '
            : '') + form(`/service-accounts/${enc(id)}/keys/${enc(String(k.id))}/revoke`, c.csrf, '<button type="submit" class="danger">Revoke</button>', { inline: true, label: `Revoke ${k.prefix}` })
        : '',
    ]);
    const shown =
      secret === null
        ? ''
        : `<section aria-labelledby="new-h"><h2 id="new-h">${secret.rotated ? 'New key (rotation)' : 'New key'}</h2><p>Copy it now: <strong>this is the only time the key is shown</strong>. Only a hash of it is kept.</p><p class="secret" id="new-key">${esc(secret.key)}</p>${secret.rotated && secret.previousExpires !== null ? `<p class="muted">The previous key keeps working until ${when(secret.previousExpires)}.</p>` : ''}</section>`;
    const create = c.canWrite
      ? form(`/service-accounts/${enc(id)}/keys`, c.csrf, `<div class="row">${select('expires_in', 'Expires', '', [['', 'never'], ['30d', 'in 30 days'], ['90d', 'in 90 days'], ['365d', 'in a year']], { error: errors.expires_in })}<div><button type="submit">Create key</button></div></div>`, { label: 'Create a key' })
      : '';
    const edit = c.canWrite
      ? form(`/service-accounts/${enc(id)}`, c.csrf, `<div class="row">${field('name', 'Name', String(sa.name), { error: errors.name })}${field('permissions', 'Permissions', csv(sa.permissions), { size: 40, error: errors.permissions })}${field('roles', 'Roles', csv(sa.roles), { error: errors.roles })}${select('status', 'Status', String(sa.status), [['active', 'active'], ['disabled', 'disabled']])}<div><button type="submit">Save</button></div></div>`, { label: 'Service account' })
      : table(['Name', 'Status', 'Permissions', 'Roles'], [[esc(sa.name), badge(sa.status), esc(csv(sa.permissions)), esc(csv(sa.roles))]], '');
    const body =
      shown +
      `<section aria-labelledby="sa-h"><h2 id="sa-h">Service account <code>${esc(sa.id)}</code> of project ${esc(sa.project)}</h2>${edit}</section>` +
      `<section aria-labelledby="k-h"><h2 id="k-h">Keys</h2>${table(['Key', 'State', 'Created', 'Expires', 'Last used', ''], rows, 'No keys yet.')}${create}</section>` +
      `<p><a href="/service-accounts?project=${enc(String(sa.project))}">Back to the service accounts</a></p>`;
    const err = Object.keys(errors).length > 0 ? 'Nothing was saved: fix the fields marked below.' : undefined;
    return this.html(err === undefined ? (secret === null ? 200 : 201) : 400, this.page(c, { title: String(sa.name), current: 'service-accounts', keep: `?project=${enc(String(sa.project))}`, error: err, body }));
  }

  private async updateServiceAccount(c: Ctx, id: string): Promise<Reply> {
    const f = c.req.form;
    try {
      await c.call('PATCH', `/api/v1/service-accounts/${enc(id)}`, { name: f.get('name') ?? '', permissions: list(f.get('permissions')), roles: list(f.get('roles')), status: f.get('status') ?? 'active' });
      return this.redirect(`/service-accounts/${enc(id)}?done=sa-updated`);
    } catch (err) {
      if (err instanceof InvalidRequest) {
        const errors: Record<string, string> = {};
        for (const p of err.problems) errors[p.at.replace(/\[\d+\]$/, '')] ??= p.message;
        return this.serviceAccount(c, id, null, errors);
      }
      throw err;
    }
  }

  private async createKey(c: Ctx, id: string): Promise<Reply> {
    const exp = c.req.form.get('expires_in') ?? '';
    const k = (await c.call('POST', `/api/v1/service-accounts/${enc(id)}/keys`, exp === '' ? {} : { expires_in: exp })) as { key: string; id: string };
    return this.serviceAccount(c, id, { key: k.key, id: k.id, rotated: false, previousExpires: null });
  }

  private async rotateKey(c: Ctx, id: string, keyId: string): Promise<Reply> {
    const overlap = c.req.form.get('overlap') ?? '1h';
    const k = (await c.call('POST', `/api/v1/service-accounts/${enc(id)}/keys/${enc(keyId)}/rotate`, { overlap })) as { key: string; id: string; previous: { expires_at: string | null } };
    return this.serviceAccount(c, id, { key: k.key, id: k.id, rotated: true, previousExpires: k.previous.expires_at });
  }

  // ── Warpgates, audit ───────────────────────────────────────────────────

  private async warpgates(c: Ctx): Promise<Reply> {
    const items = ((await c.call('GET', '/api/v1/warpgates')) as { items: Array<Record<string, any>> }).items;
    const rows = items.map((w) => [
      `<code>${esc(w.id)}</code>${w.hostname ? `<br><span class="muted">${esc(w.hostname)}</span>` : ''}`,
      esc(w.project ?? ''),
      `<code>${esc(w.pool)}</code>`,
      w.connected ? `${badge('connected')}<br><span class="muted">since ${when(w.connected_since)}</span>` : w.refused_at !== null ? `${badge('revoked')}<br><span class="muted">key refused ${when(w.refused_at)}</span>` : badge('disconnected'),
      esc(w.version ?? ''),
      w.tunnels.length === 0 ? '<span class="muted">none</span>' : esc((w.tunnels as Array<{ edge: string; worker: number }>).map((t) => `${t.edge.slice(0, 6)}/w${t.worker}`).join(', ')),
      w.key === null ? '<span class="muted">static certificate</span>' : `<code>mzk_${esc(w.key)}</code>`,
      w.certificate_expires_at === null ? '' : when(w.certificate_expires_at),
    ]);
    const body = `<section>${table(['Warpgate', 'Project', 'Pool', 'Connection', 'Version', 'Edge workers holding tunnels', 'Key', 'Certificate expires'], rows, 'No Warpgate has enrolled or connected yet.')}<p class="muted">Enroll one with <code>warpgate --edge ${esc(this.p.publicUrl)} --key mzk_… --origin http://127.0.0.1:3000</code> (a key with the warpgates:enroll permission).</p></section>`;
    return this.html(200, this.page(c, { title: 'Warpgates', current: 'warpgates', body }));
  }

  private async audit(c: Ctx): Promise<Reply> {
    const query: Record<string, string> = { limit: '50' };
    const cur = c.req.query.get('cursor');
    if (cur !== null && cur !== '') query.cursor = cur;
    const action = c.req.query.get('action') ?? '';
    if (action !== '') query.action = action;
    const page = (await c.call('GET', '/api/v1/audit', undefined, query)) as { items: Array<Record<string, any>>; next_cursor: string | null };
    const rows = page.items.map((a) => [
      when(a.at),
      `${esc(a.actor.name)}<br><span class="muted">${esc(a.actor.type)}</span>`,
      `<code>${esc(a.action)}</code>`,
      `${esc(a.target.type)} <code>${esc(a.target.id)}</code>`,
      esc(a.project ?? ''),
      `<code>${esc(JSON.stringify(a.details)).slice(0, 400)}</code>`,
    ]);
    const filter = `<form method="get" action="/audit" class="row">${field('action', 'Action (e.g. user, key.revoke)', action)}<div><button type="submit" class="quiet">Filter</button></div></form>`;
    const more = page.next_cursor === null ? '' : `<p><a href="/audit?cursor=${enc(page.next_cursor)}${action === '' ? '' : `&amp;action=${enc(action)}`}">Older entries</a></p>`;
    return this.html(200, this.page(c, { title: 'Audit log', current: 'audit', body: `<section>${filter}</section><section>${table(['When', 'Who', 'Action', 'Object', 'Project', 'Details'], rows, 'No changes recorded yet.')}${more}</section>` }));
  }
}
