/**
 * A project's routes, edited in place: one row per rule, problems shown at
 * their field, a stale version (someone saved meanwhile) answered with the
 * current rules. Saved through the API like every change.
 */
import { MezuError } from '../../errors/index.js';
import { InvalidRequest } from '../../control/index.js';
import { esc, badge, table, form, field, select } from '../html.js';
import { csv, enc, html, list, framed, projectPicker, listProjects, redirect, type Ctx, type Reply } from './context.js';

/** `/routes`: null when the path names no routes page. */
export async function route(c: Ctx, seg: string[], post: boolean): Promise<Reply | null> {
  if (seg.length === 1) return post ? saveRoutes(c) : routesPage(c, null, null);
  return null;
}

async function routesPage(c: Ctx, errors: Map<string, string> | null, posted: Array<Record<string, string>> | null, formError?: string): Promise<Reply> {
  const projects = await listProjects(c);
  if (projects.length === 0) return html(200, framed(c, { title: 'Routes', current: 'routes', body: '<section><p>No project is configured yet: apply a config with <code>mezusphere apply -f FILE</code>.</p></section>' }));
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
    `<section>${projectPicker('/routes', projects, pid)}<p class="muted">Hosts: ${esc(csv(p.hosts))} · Warpgate pool <code>${esc(p.upstream)}</code> · user directory <code>${esc(p.directory)}</code> · config version ${r.config_version}</p></section>` +
    `<section aria-labelledby="ro-h"><h2 id="ro-h">Routes of ${esc(p.name)}</h2>${other !== undefined ? `<div class="alert" role="alert"><p>${esc(other)}</p></div>` : ''}${inner}</section>`;
  return html(errors === null ? 200 : formError !== undefined && errors.size === 0 ? 409 : 400, framed(c, { title: 'Routes', current: 'routes', keep: `?project=${enc(pid)}`, error: formError, body }));
}

async function saveRoutes(c: Ctx): Promise<Reply> {
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
    return redirect(`/routes?project=${enc(pid)}&done=routes-saved&version=${out.config_version}`);
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
      return routesPage(c, errors, posted, `The routes were not saved (${err.problems.length} problem${err.problems.length === 1 ? '' : 's'}): fix the fields marked below. The edge keeps serving the current routes.`);
    }
    if (err instanceof MezuError && err.code === 'MEZU_CONFIG_STALE') {
      return routesPage(c, new Map(), null, 'Someone changed the config while you were editing: here are the current routes. Make your change again.');
    }
    throw err;
  }
}
