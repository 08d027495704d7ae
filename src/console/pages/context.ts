/**
 * What every Console page works with: the request, the signed-in operator
 * and what they may do, the call into the admin API (`c.call`: every read and
 * change a page makes goes through the API route the JSON clients use), the
 * page frame and replies, and the project picker several pages share.
 */
import type { Csrf } from '../../login/index.js';
import type { InvalidRequest } from '../../control/index.js';
import type { ApiDeps } from '../api.js';
import { frame, select, PAGE_HEADERS, type Frame } from '../html.js';

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

export interface Reply {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

export interface Ctx {
  req: PageRequest;
  who: { id: string; email: string; role: string };
  canWrite: boolean;
  isOwner: boolean;
  csrf: string;
  setCookies: string[];
  /** The Console's public URL (what a Warpgate enrolls with). */
  publicUrl: string;
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
  'factors-reset': 'Every second factor of this user (authenticator app, passkeys, recovery codes) was removed; the next sign-in asks for the password only.',
  'key-revoked': 'The key was revoked: the next request with it is refused, and Warpgates enrolled with it are disconnected.',
  'sa-created': 'The service account was created. Create a key for it below.',
  'sa-updated': 'The service account was updated.',
  'routes-saved': 'Routes saved. The edge serves them within a second, without a restart.',
};

export function enc(s: string): string {
  return encodeURIComponent(s);
}

export const csv = (v: unknown): string => (Array.isArray(v) ? v.join(', ') : '');
export const list = (s: string | null): string[] => (s ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '');

/** An API refusal's problems by field (`roles[2]` → `roles`), the first message of each: the form shows them at their field. */
export function fieldErrors(err: InvalidRequest): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const p of err.problems) errors[p.at.replace(/\[\d+\]$/, '')] ??= p.message;
  return errors;
}

export function framed(c: Ctx, f: Omit<Frame, 'who' | 'keep'> & { keep?: string }): string {
  const notice = f.notice ?? DONE[c.req.query.get('done') ?? ''];
  return frame({ ...f, keep: f.keep ?? '', who: { email: c.who.email, role: c.who.role }, notice });
}

export function html(status: number, body: string): Reply {
  return { status, headers: [...PAGE_HEADERS], body };
}

export function redirect(location: string): Reply {
  return { status: 303, headers: [['location', location], ['cache-control', 'no-store']], body: '' };
}

export async function listProjects(c: Ctx): Promise<Array<Record<string, any>>> {
  return ((await c.call('GET', '/api/v1/projects')) as { items: Array<Record<string, any>> }).items;
}

export function projectPicker(path: string, projects: Array<Record<string, any>>, current: string): string {
  return `<form method="get" action="${path}" class="row">${select('project', 'Project', current, projects.map((p) => [String(p.id), `${p.name} (${p.id}, organization ${p.organization})`]))}<div><button type="submit" class="quiet">Show</button></div></form>`;
}
