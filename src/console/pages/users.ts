/**
 * Users of every directory: the list (search, status, pages), creating one,
 * a user's page (status, profile, roles and permissions, second factors,
 * sessions, login history) and its changes. The Console's own directory is the owners'
 * business only.
 */
import { MezuError } from '../../errors/index.js';
import { InvalidRequest, CONSOLE_DIRECTORY, CONSOLE_ROLES } from '../../control/index.js';
import { esc, badge, when, table, form, field, select } from '../html.js';
import { csv, enc, fieldErrors, html, list, framed, redirect, type Ctx, type Reply } from './context.js';

/** `/users…`: null when the path names no users page. */
export async function route(c: Ctx, seg: string[], post: boolean): Promise<Reply | null> {
  if (seg.length === 1) return post ? createUser(c) : users(c);
  const id = seg[1]!;
  if (seg.length === 2) return post ? updateUser(c, id) : user(c, id);
  if (post && seg.length === 3 && seg[2] === 'status') return setStatus(c, id);
  if (post && seg.length === 3 && seg[2] === 'sessions') {
    await c.call('DELETE', `/api/v1/users/${enc(id)}/sessions`);
    return redirect(`/users/${enc(id)}?done=sessions-revoked`);
  }
  if (post && seg.length === 3 && seg[2] === 'factors') {
    await c.call('DELETE', `/api/v1/users/${enc(id)}/factors`);
    return redirect(`/users/${enc(id)}?done=factors-reset`);
  }
  if (post && seg.length === 5 && seg[2] === 'sessions' && seg[4] === 'revoke') {
    await c.call('DELETE', `/api/v1/users/${enc(id)}/sessions/${enc(seg[3]!)}`);
    return redirect(`/users/${enc(id)}?done=session-revoked`);
  }
  return null;
}

async function directories(c: Ctx): Promise<Array<{ id: string; scope: string; projects: string[]; users: number }>> {
  return ((await c.call('GET', '/api/v1/directories')) as { items: Array<{ id: string; scope: string; projects: string[]; users: number }> }).items;
}

function dirLabel(d: { id: string; scope: string; projects: string[] }): string {
  if (d.scope === 'console') return 'Console operators';
  if (d.scope === 'organization') return `Organization ${d.id.slice(4)} (projects: ${d.projects.join(', ') || 'none'})`;
  return `Project ${d.id}`;
}
async function users(c: Ctx, createErrors: Record<string, string> = {}, values: URLSearchParams | null = null): Promise<Reply> {
  const dirs = await directories(c);
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
    select('directory', 'Directory', dir, dirs.map((d) => [d.id, dirLabel(d)])) +
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
  const body = `<section>${search}</section><section aria-labelledby="list-h"><h2 id="list-h">${esc(dirLabel(dirs.find((d) => d.id === dir) ?? { id: dir, scope: 'project', projects: [] }))}</h2>${table(['Email', 'Name', 'Status', 'Roles', 'Last login'], rows, 'No users match.')}${more}</section>${create}`;
  const err = Object.keys(createErrors).length > 0 ? 'The user was not created: fix the fields marked below.' : undefined;
  return html(err === undefined ? 200 : 400, framed(c, { title: 'Users', current: 'users', error: err, body }));
}

async function createUser(c: Ctx): Promise<Reply> {
  const dir = c.req.query.get('directory') ?? '';
  const f = c.req.form;
  const consoleDir = dir === CONSOLE_DIRECTORY;
  const b: Record<string, unknown> = { email: f.get('email') ?? '', roles: consoleDir ? [f.get('role') ?? 'viewer'] : list(f.get('roles')), permissions: consoleDir ? [] : list(f.get('permissions')) };
  if ((f.get('name') ?? '') !== '') b.name = f.get('name');
  try {
    const u = (await c.call('POST', `/api/v1/directories/${enc(dir)}/users`, b)) as { id: string };
    return redirect(`/users/${enc(u.id)}?done=created`);
  } catch (err) {
    if (err instanceof InvalidRequest || (err instanceof MezuError && err.code === 'MEZU_USER_EXISTS')) {
      const errors = err instanceof InvalidRequest ? fieldErrors(err) : { email: 'A user with this email already exists in this directory.' };
      return users(c, errors, f);
    }
    throw err;
  }
}

async function user(c: Ctx, id: string, errors: Record<string, string> = {}, values: URLSearchParams | null = null): Promise<Reply> {
  const u = (await c.call('GET', `/api/v1/users/${enc(id)}`)) as Record<string, any>;
  const sessions = ((await c.call('GET', `/api/v1/users/${enc(id)}/sessions`)) as { items: Array<Record<string, any>> }).items;
  const history = (await c.call('GET', `/api/v1/users/${enc(id)}/login-history`, undefined, { limit: '50' })) as { items: Array<Record<string, any>>; last_login_at: string | null };
  const factors = (await c.call('GET', `/api/v1/users/${enc(id)}/factors`)) as Record<string, any>;
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
  const passkeys = (factors.passkeys ?? []) as Array<Record<string, any>>;
  const factorRows: string[][] = [];
  if (factors.totp === true) factorRows.push(['Authenticator app (TOTP)', when(factors.totp_enrolled_at), when(factors.totp_last_used_at), '']);
  for (const k of passkeys) factorRows.push([`Passkey <code>${esc(String(k.id).slice(0, 16))}…</code>`, when(k.created_at), when(k.last_used_at), `${esc(k.rp_id)}${k.backed_up === true ? ' · synced' : ''}`]);
  const hasFactors = factors.totp === true || passkeys.length > 0 || factors.enrolment_pending === true;
  const resetFactors = mayWrite && hasFactors ? form(`/users/${enc(id)}/factors`, c.csrf, '<button type="submit" class="danger">Reset second factors</button>') : '';
  const histRows = history.items.map((e) => [when(e.at), esc(e.type), esc(e.reason ?? ''), esc(e.ip), `<span class="muted">${esc(String(e.user_agent).slice(0, 80))}</span>`]);
  const body =
    `<section aria-labelledby="st-h"><h2 id="st-h">Status</h2><p>${badge(u.status)} in directory <code>${esc(u.directory)}</code> · created ${when(u.created_at)} · last login ${when(u.last_login_at)}</p>${statusButtons.join(' ')}</section>` +
    `<section aria-labelledby="pr-h"><h2 id="pr-h">Profile and access</h2>${profile}</section>` +
    `<section aria-labelledby="fa-h"><h2 id="fa-h">Second factors</h2>${table(['Factor', 'Added', 'Last used', ''], factorRows, 'No second factor.')}<p>Recovery codes left: ${esc(String(factors.recovery_codes_left ?? 0))}.</p>${resetFactors}</section>` +
    `<section aria-labelledby="se-h"><h2 id="se-h">Sessions</h2>${table(['Session', 'Project', 'Signed in', 'Last seen', 'Method', ''], sessRows, 'No open sessions.')}${revokeAll}</section>` +
    `<section aria-labelledby="hi-h"><h2 id="hi-h">Login history</h2>${table(['When', 'Event', 'Reason', 'IP', 'User agent'], histRows, 'No sign-in events yet.')}</section>` +
    `<p><a href="/users?directory=${enc(u.directory)}">Back to the directory</a></p>`;
  const err = Object.keys(errors).length > 0 ? 'Nothing was saved: fix the fields marked below.' : undefined;
  return html(err === undefined ? 200 : 400, framed(c, { title: u.email, current: 'users', error: err, body }));
}

async function updateUser(c: Ctx, id: string): Promise<Reply> {
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
    return redirect(`/users/${enc(id)}?done=saved`);
  } catch (err) {
    if (err instanceof InvalidRequest || (err instanceof MezuError && err.code === 'MEZU_USER_EXISTS')) {
      const errors = err instanceof InvalidRequest ? fieldErrors(err) : { email: 'Another user of this directory has this email.' };
      return user(c, id, errors, f);
    }
    throw err;
  }
}

async function setStatus(c: Ctx, id: string): Promise<Reply> {
  const to = c.req.form.get('status');
  const verb = to === 'suspended' ? 'suspend' : to === 'active' ? 'activate' : to === 'deactivated' ? 'deactivate' : null;
  if (verb === null) throw new InvalidRequest([{ at: 'status', message: 'must be active, suspended or deactivated' }]);
  await c.call('POST', `/api/v1/users/${enc(id)}/${verb}`);
  return redirect(`/users/${enc(id)}?done=${to === 'suspended' ? 'suspended' : to === 'active' ? 'activated' : 'deactivated'}`);
}
