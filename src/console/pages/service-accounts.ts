/**
 * Service accounts of a project and their keys: creating, editing, and the
 * keys' creation, rotation and revocation. A new key's secret is rendered
 * once, in the answer to the POST that made it, never stored for a later page.
 */
import { InvalidRequest } from '../../control/index.js';
import { esc, badge, when, table, form, field, select } from '../html.js';
import { csv, enc, fieldErrors, html, list, framed, projectPicker, listProjects, redirect, type Ctx, type Reply } from './context.js';

/** `/service-accounts…`: null when the path names no such page. */
export async function route(c: Ctx, seg: string[], post: boolean): Promise<Reply | null> {
  if (seg.length === 1) return post ? createServiceAccount(c) : serviceAccounts(c);
  const id = seg[1]!;
  if (seg.length === 2) return post ? updateServiceAccount(c, id) : serviceAccount(c, id, null);
  if (post && seg.length === 3 && seg[2] === 'keys') return createKey(c, id);
  if (post && seg.length === 5 && seg[2] === 'keys' && seg[4] === 'rotate') return rotateKey(c, id, seg[3]!);
  if (post && seg.length === 5 && seg[2] === 'keys' && seg[4] === 'revoke') {
    await c.call('DELETE', `/api/v1/service-accounts/${enc(id)}/keys/${enc(seg[3]!)}`);
    return redirect(`/service-accounts/${enc(id)}?done=key-revoked`);
  }
  // The answer to a key's creation or rotation is a page at the POST's URL (the secret is shown once, never stored
  // for a redirect to show): reloading or bookmarking it lands on the service account instead.
  if (seg.length >= 3 && !post) return redirect(`/service-accounts/${enc(id)}`);
  return null;
}

async function serviceAccounts(c: Ctx, errors: Record<string, string> = {}, values: URLSearchParams | null = null): Promise<Reply> {
  const projects = await listProjects(c);
  if (projects.length === 0) return html(200, framed(c, { title: 'Service accounts', current: 'service-accounts', body: '<section><p>No project is configured yet.</p></section>' }));
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
          `<p class="muted">Admin API permissions: users:read|write, service-accounts:read|write, routes:read|write, warpgates:read, warpgates:enroll (a Warpgate's key), audit:read, stats:read. Route permissions are any other names your routes require.</p>`,
      ) +
      '</section>';
  const body = `<section>${projectPicker('/service-accounts', projects, pid)}</section><section aria-labelledby="sa-h"><h2 id="sa-h">Service accounts of ${esc(pid)}</h2>${table(['Name', 'Id', 'Status', 'Permissions', 'Roles', 'Created'], rows, 'No service accounts yet.')}</section>${create}`;
  const err = Object.keys(errors).length > 0 ? 'The service account was not created: fix the fields marked below.' : undefined;
  return html(err === undefined ? 200 : 400, framed(c, { title: 'Service accounts', current: 'service-accounts', keep: `?project=${enc(pid)}`, error: err, body }));
}

async function createServiceAccount(c: Ctx): Promise<Reply> {
  const pid = c.req.query.get('project') ?? '';
  const f = c.req.form;
  try {
    const sa = (await c.call('POST', `/api/v1/projects/${enc(pid)}/service-accounts`, { name: f.get('name') ?? '', permissions: list(f.get('permissions')), roles: list(f.get('roles')) })) as { id: string };
    return redirect(`/service-accounts/${enc(sa.id)}?done=sa-created`);
  } catch (err) {
    if (err instanceof InvalidRequest) {
      const errors = fieldErrors(err);
      return serviceAccounts(c, errors, f);
    }
    throw err;
  }
}

async function serviceAccount(c: Ctx, id: string, secret: { key: string; id: string; rotated: boolean; previousExpires: string | null } | null, errors: Record<string, string> = {}): Promise<Reply> {
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
  return html(err === undefined ? (secret === null ? 200 : 201) : 400, framed(c, { title: String(sa.name), current: 'service-accounts', keep: `?project=${enc(String(sa.project))}`, error: err, body }));
}

async function updateServiceAccount(c: Ctx, id: string): Promise<Reply> {
  const f = c.req.form;
  try {
    await c.call('PATCH', `/api/v1/service-accounts/${enc(id)}`, { name: f.get('name') ?? '', permissions: list(f.get('permissions')), roles: list(f.get('roles')), status: f.get('status') ?? 'active' });
    return redirect(`/service-accounts/${enc(id)}?done=sa-updated`);
  } catch (err) {
    if (err instanceof InvalidRequest) {
      const errors = fieldErrors(err);
      return serviceAccount(c, id, null, errors);
    }
    throw err;
  }
}

async function createKey(c: Ctx, id: string): Promise<Reply> {
  const exp = c.req.form.get('expires_in') ?? '';
  const k = (await c.call('POST', `/api/v1/service-accounts/${enc(id)}/keys`, exp === '' ? {} : { expires_in: exp })) as { key: string; id: string };
  return serviceAccount(c, id, { key: k.key, id: k.id, rotated: false, previousExpires: null });
}

async function rotateKey(c: Ctx, id: string, keyId: string): Promise<Reply> {
  const overlap = c.req.form.get('overlap') ?? '1h';
  const k = (await c.call('POST', `/api/v1/service-accounts/${enc(id)}/keys/${enc(keyId)}/rotate`, { overlap })) as { key: string; id: string; previous: { expires_at: string | null } };
  return serviceAccount(c, id, { key: k.key, id: k.id, rotated: true, previousExpires: k.previous.expires_at });
}
