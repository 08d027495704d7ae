/**
 * The admin REST API (`/api/v1/…` on the Console listener): one table of
 * routes, each with the permission it needs and a `scope` function that says
 * which projects' objects it touches. The dispatcher authorizes *before* the
 * handler runs, so no handler can forget to. docs/openapi.yaml documents the
 * same table; test/unit/console/openapi.test.ts checks the two agree.
 *
 * Conventions: JSON in and out, snake_case, ISO 8601 times; lists are
 * `{ items, next_cursor }` pages (`?limit=` 1–200, default 50, `?cursor=`
 * from the previous page); errors are `{ error: { code, message, problems? } }`
 * with the codes of docs/ERRORS.md; every change writes an audit record.
 */
import type { Store, UserStatus, UserRecord, AuditRecord } from '../store/index.js';
import { Control, InvalidRequest, requireObject, CONSOLE_DIRECTORY, userView, sessionView, factorsView, loginEventView, serviceAccountView, keyView, auditView, warpgateView, STATUS_REPORT_FRESH_MS, type TunnelHolder } from '../control/index.js';
import { MezuError, codeOf } from '../errors/index.js';
import { projectStats, type ProjectStats } from '../control/index.js';
import type { Enroller } from '../enroll/index.js';
import type { Csrf } from '../login/index.js';
import { API_KEY_PREFIX } from '../session/index.js';
import { ENROLL_PATH } from '../../wire/index.js';
import type { Clock } from '../runtime/index.js';
import { allows, actorOf, type ApiPermission, type Caller, type Scope } from './access.js';

export interface ApiRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  /** Parsed JSON body; undefined when there was none. */
  body: unknown;
  ip: string;
  caller: Caller;
}

export interface ApiReply {
  status: number;
  body: unknown;
}

type Params = Record<string, string>;

export interface ApiDeps {
  store: Store;
  control: Control;
  enroller: Enroller;
  /** Signs the session-bound token cookie-authenticated API changes carry (`X-CSRF-Token`). */
  csrf: Csrf;
  /** The time key states and tunnel-report freshness are judged at. */
  clock: Clock;
}

export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI path template (`/api/v1/users/{user}`). */
  path: string;
  /** Null: any authenticated caller. */
  perm: ApiPermission | null;
  scope(d: ApiDeps, p: Params, r: ApiRequest): Scope;
  run(d: ApiDeps, p: Params, r: ApiRequest): Promise<ApiReply> | ApiReply;
}

const GLOBAL: Scope = { kind: 'global' };
const ok = (body: unknown, status = 200): ApiReply => ({ status, body });

/** Projects a caller may see in lists: every project for Console users, its own for a key. */
function visible(d: ApiDeps, r: ApiRequest): Scope {
  if (r.caller.kind === 'key') return { kind: 'projects', ids: [r.caller.sa.projectId] };
  const cfg = d.control.config();
  return { kind: 'projects', ids: cfg === null ? [] : [...cfg.projects.keys()] };
}
const canSee = (s: Scope, project: string | null) => s.kind !== 'projects' || (project !== null && s.ids.includes(project));
function ownProject(r: ApiRequest): Scope {
  return r.caller.kind === 'key' ? { kind: 'projects', ids: [r.caller.sa.projectId] } : GLOBAL;
}

function projectScope(id: string): Scope {
  return { kind: 'projects', ids: [id] };
}

function directoryScope(d: ApiDeps, dir: string): Scope {
  const info = d.control.directory(dir);
  return info.scope === 'console' ? { kind: 'console' } : { kind: 'projects', ids: info.projects };
}

function userScope(d: ApiDeps, id: string): Scope {
  return directoryScope(d, d.control.user(id).directory);
}

function saScope(d: ApiDeps, id: string): Scope {
  return projectScope(d.control.serviceAccount(id).projectId);
}

function body(r: ApiRequest): Record<string, unknown> {
  return r.body === undefined ? {} : requireObject(r.body);
}

/** `?limit=` (1–200, default 50) and `?cursor=`. */
function paging(r: ApiRequest): { limit: number; cursor: string | null } {
  const raw = r.query.get('limit');
  let limit = 50;
  if (raw !== null) {
    if (!/^\d{1,3}$/.test(raw) || Number(raw) < 1 || Number(raw) > 200) throw new InvalidRequest([{ at: 'limit', message: 'must be an integer from 1 to 200' }]);
    limit = Number(raw);
  }
  const c = r.query.get('cursor');
  let cursor: string | null = null;
  if (c !== null && c !== '') {
    cursor = Buffer.from(c, 'base64url').toString('utf8');
    if (cursor === '' || Buffer.from(cursor, 'utf8').toString('base64url') !== c) throw new InvalidRequest([{ at: 'cursor', message: 'is not a cursor returned by this API' }]);
  }
  return { limit, cursor };
}
const cursorOut = (s: string | null): string | null => (s === null ? null : Buffer.from(s, 'utf8').toString('base64url'));

function expectVersion(b: Record<string, unknown>): number | null {
  const v = b.expect_version;
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new InvalidRequest([{ at: 'expect_version', message: 'must be a config version (an integer)' }]);
  return v;
}

function projectView(d: ApiDeps, id: string): Record<string, unknown> {
  const p = d.control.project(id);
  const src = d.control.source();
  return {
    id: p.id,
    name: p.name,
    organization: p.organization,
    directory: p.directory,
    hosts: p.hosts,
    upstream: p.upstream,
    config_version: src.version,
    routes: routesOf(d, id),
  };
}

/** The project's rules as written (YAML keys), from the validated config. */
function routesOf(d: ApiDeps, id: string): unknown[] {
  const cfg = d.store.config.current()?.config as { projects?: Array<{ id: string; routes: Array<Record<string, unknown>> }> } | undefined;
  const p = cfg?.projects?.find((x) => x.id === id);
  return (p?.routes ?? []).map((r) => {
    const out: Record<string, unknown> = { path: r.path, auth: r.auth };
    if (r.methods !== null && r.methods !== undefined) out.methods = r.methods;
    if (r.auth === 'required') {
      out.principals = r.principals;
      out.roles = r.roles;
      out.permissions = r.permissions;
    }
    return out;
  });
}

/** Fresh tunnel reports (control/views.ts). */
export const TUNNEL_REPORT_FRESH_MS = STATUS_REPORT_FRESH_MS;

function tunnelsByWarpgate(d: Pick<ApiDeps, 'store' | 'clock'>): Map<string, Array<TunnelHolder & { pool: string; version: string; keyId: string | null }>> {
  const out = new Map<string, Array<TunnelHolder & { pool: string; version: string; keyId: string | null }>>();
  const fresh = d.clock.now() - TUNNEL_REPORT_FRESH_MS;
  for (const rep of d.store.tunnelStatus.all()) {
    if (rep.updatedAt < fresh) continue;
    for (const t of rep.tunnels) {
      let l = out.get(t.warpgateId);
      if (l === undefined) out.set(t.warpgateId, (l = []));
      l.push({ edge: rep.edgeId, worker: rep.worker, since: new Date(t.since).toISOString(), pool: t.pool, version: t.version, keyId: t.keyId });
    }
  }
  return out;
}

/** Enrolled Warpgates plus statically provisioned ones the edge reports, as the API lists them. */
export function listWarpgates(d: Pick<ApiDeps, 'store' | 'control' | 'clock'>, s: Scope = GLOBAL): Record<string, unknown>[] {
  const tunnels = tunnelsByWarpgate(d);
  const items: Record<string, unknown>[] = [];
  for (const w of d.store.warpgates.list(null)) {
    if (!canSee(s, w.projectId)) continue;
    const t = tunnels.get(w.id) ?? [];
    tunnels.delete(w.id);
    items.push(warpgateView(w, t.map(({ edge, worker, since }) => ({ edge, worker, since }))));
  }
  // Warpgates with static certificates (`--pki-dir`): known only from the edge's reports.
  const cfg = d.control.config();
  for (const [id, t] of tunnels) {
    const pool = t[0]!.pool;
    const projects = cfg === null ? [] : [...cfg.projects.values()].filter((p) => p.upstream === pool).map((p) => p.id);
    if (s.kind === 'projects' && !projects.some((p) => s.ids.includes(p))) continue;
    items.push({
      id, project: projects[0] ?? null, pool, service_account: null, key: null, hostname: null, version: t[0]!.version,
      connected: true, connected_since: t.reduce<string | null>((a, x) => (a === null || (x.since !== null && x.since < a) ? x.since : a), null),
      tunnels: t.map(({ edge, worker, since }) => ({ edge, worker, since })),
      enrolled_at: null, renewed_at: null, certificate_expires_at: null, refused_at: null,
    });
  }
  return items;
}

/** A project's traffic over the last hour (src/control/traffic.ts) and the Warpgates of its pool. */
export function statsOf(d: Pick<ApiDeps, 'store' | 'control' | 'clock'>, project: string): ProjectStats {
  const pool = d.control.config()?.projects.get(project)?.upstream ?? null;
  const wgs = pool === null ? [] : listWarpgates(d).filter((w) => w.pool === pool && w.refused_at === null);
  return projectStats(d.store.traffic.all(), project, d.clock.now(), { up: wgs.filter((w) => w.connected === true).length, total: wgs.length });
}

const statusRoute = (verb: string, to: UserStatus): ApiRoute => ({
  method: 'POST',
  path: `/api/v1/users/{user}/${verb}`,
  perm: 'users:write',
  scope: (d, p) => userScope(d, p.user!),
  run: async (d, p, r) => ok(userView(await d.control.setUserStatus(actorOf(r.caller, r.ip), p.user!, to))),
});

export const API_ROUTES: readonly ApiRoute[] = [
  {
    method: 'GET', path: '/api/v1/me', perm: null, scope: () => GLOBAL,
    run: (d, _p, r) => ok(r.caller.kind === 'console'
      ? { type: 'console_user', id: r.caller.user.id, email: r.caller.user.email, name: r.caller.user.displayName, role: r.caller.role, csrf_token: d.csrf.sessionToken(r.caller.tokenHash) }
      : { type: 'service_account', id: r.caller.sa.id, name: r.caller.sa.name, project: r.caller.sa.projectId, key: `${API_KEY_PREFIX}${r.caller.key.id}`, permissions: r.caller.sa.permissions }),
  },
  // ── organizations, projects, routes, config ──
  {
    method: 'GET', path: '/api/v1/organizations', perm: 'routes:read', scope: () => GLOBAL,
    run: (d) => {
      const cfg = d.control.config();
      const items = cfg === null ? [] : [...cfg.organizations.values()].map((o) => ({ id: o.id, name: o.name, projects: [...cfg.projects.values()].filter((p) => p.organization === o.id).map((p) => p.id) }));
      return ok({ items, next_cursor: null });
    },
  },
  {
    method: 'POST', path: '/api/v1/organizations', perm: 'routes:write', scope: () => GLOBAL,
    run: async (d, _p, r) => {
      const b = body(r);
      const version = await d.control.createOrganization(actorOf(r.caller, r.ip), b);
      const o = d.control.config()!.organizations.get(String(b.id))!;
      return ok({ id: o.id, name: o.name, projects: [], config_version: version }, 201);
    },
  },
  {
    method: 'GET', path: '/api/v1/projects', perm: 'routes:read', scope: (_d, _p, r) => ownProject(r),
    run: (d, _p, r) => {
      const s = visible(d, r);
      const cfg = d.control.config();
      const items = cfg === null ? [] : [...cfg.projects.keys()].filter((id) => canSee(s, id)).map((id) => projectView(d, id));
      return ok({ items, next_cursor: null });
    },
  },
  {
    method: 'POST', path: '/api/v1/projects', perm: 'routes:write', scope: () => GLOBAL,
    run: async (d, _p, r) => {
      const b = body(r);
      await d.control.createProject(actorOf(r.caller, r.ip), b);
      return ok(projectView(d, String(b.id)), 201);
    },
  },
  {
    method: 'GET', path: '/api/v1/projects/{project}', perm: 'routes:read', scope: (d, p) => (d.control.project(p.project!), projectScope(p.project!)),
    run: (d, p) => ok(projectView(d, p.project!)),
  },
  {
    method: 'GET', path: '/api/v1/projects/{project}/stats', perm: 'stats:read', scope: (d, p) => (d.control.project(p.project!), projectScope(p.project!)),
    run: (d, p) => ok(statsOf(d, p.project!)),
  },
  {
    method: 'GET', path: '/api/v1/projects/{project}/routes', perm: 'routes:read', scope: (d, p) => (d.control.project(p.project!), projectScope(p.project!)),
    run: (d, p) => ok({ project: p.project!, config_version: d.control.source().version, routes: routesOf(d, p.project!) }),
  },
  {
    method: 'PUT', path: '/api/v1/projects/{project}/routes', perm: 'routes:write', scope: (d, p) => (d.control.project(p.project!), projectScope(p.project!)),
    run: async (d, p, r) => {
      const b = body(r);
      const version = await d.control.setRoutes(actorOf(r.caller, r.ip), p.project!, b.routes, expectVersion(b));
      return ok({ project: p.project!, config_version: version, routes: routesOf(d, p.project!) });
    },
  },
  {
    method: 'GET', path: '/api/v1/config', perm: 'routes:read', scope: () => GLOBAL,
    run: (d) => {
      const s = d.control.source();
      return ok({ version: s.version, yaml: s.text });
    },
  },
  {
    method: 'PUT', path: '/api/v1/config', perm: 'routes:write', scope: () => GLOBAL,
    run: async (d, _p, r) => {
      const b = body(r);
      if (typeof b.yaml !== 'string') throw new InvalidRequest([{ at: 'yaml', message: 'is required: the whole config as YAML text' }]);
      const version = await d.control.applyConfig(actorOf(r.caller, r.ip), b.yaml, expectVersion(b));
      return ok({ version, yaml: b.yaml });
    },
  },
  // ── directories and users ──
  {
    method: 'GET', path: '/api/v1/directories', perm: 'users:read', scope: (_d, _p, r) => ownProject(r),
    run: (d, _p, r) => {
      const s = visible(d, r);
      const items = d.control
        .directories()
        .filter((x) => (r.caller.kind === 'console' ? true : x.projects.some((p) => canSee(s, p))))
        .map((x) => ({ id: x.id, scope: x.scope, owner: x.owner, projects: x.projects, users: x.users }));
      return ok({ items, next_cursor: null });
    },
  },
  {
    method: 'GET', path: '/api/v1/directories/{directory}/users', perm: 'users:read', scope: (d, p) => directoryScope(d, p.directory!),
    run: (d, p, r) => {
      const { limit, cursor } = paging(r);
      const q = (r.query.get('q') ?? '').trim().toLowerCase();
      const status = r.query.get('status');
      if (status !== null && !['active', 'suspended', 'deactivated'].includes(status)) throw new InvalidRequest([{ at: 'status', message: 'must be active, suspended or deactivated' }]);
      const match = (u: UserRecord) =>
        (status === null || u.status === status) &&
        (q === '' || u.email.toLowerCase().includes(q) || u.name.toLowerCase().includes(q) || u.displayName.toLowerCase().includes(q));
      const page = d.store.users.page(p.directory!, cursor, limit, match);
      return ok({ items: page.users.map(userView), next_cursor: page.more ? cursorOut(page.users[page.users.length - 1]!.email) : null });
    },
  },
  {
    method: 'POST', path: '/api/v1/directories/{directory}/users', perm: 'users:write', scope: (d, p) => directoryScope(d, p.directory!),
    run: async (d, p, r) => ok(userView(await d.control.createUser(actorOf(r.caller, r.ip), p.directory!, body(r))), 201),
  },
  {
    method: 'GET', path: '/api/v1/users/{user}', perm: 'users:read', scope: (d, p) => userScope(d, p.user!),
    run: (d, p) => ok(userView(d.control.user(p.user!))),
  },
  {
    method: 'PATCH', path: '/api/v1/users/{user}', perm: 'users:write', scope: (d, p) => userScope(d, p.user!),
    run: async (d, p, r) => ok(userView(await d.control.updateUser(actorOf(r.caller, r.ip), p.user!, body(r)))),
  },
  statusRoute('suspend', 'suspended'),
  statusRoute('activate', 'active'),
  statusRoute('deactivate', 'deactivated'),
  {
    method: 'GET', path: '/api/v1/users/{user}/sessions', perm: 'users:read', scope: (d, p) => userScope(d, p.user!),
    run: (d, p) => ok({ items: d.control.sessions(p.user!).map(sessionView), next_cursor: null }),
  },
  {
    method: 'DELETE', path: '/api/v1/users/{user}/sessions', perm: 'users:write', scope: (d, p) => userScope(d, p.user!),
    run: async (d, p, r) => ok({ revoked: await d.control.revokeAllSessions(actorOf(r.caller, r.ip), p.user!) }),
  },
  {
    method: 'DELETE', path: '/api/v1/users/{user}/sessions/{session}', perm: 'users:write', scope: (d, p) => userScope(d, p.user!),
    run: async (d, p, r) => {
      await d.control.revokeSession(actorOf(r.caller, r.ip), p.user!, p.session!);
      return ok({ revoked: 1 });
    },
  },
  {
    method: 'GET', path: '/api/v1/users/{user}/factors', perm: 'users:read', scope: (d, p) => userScope(d, p.user!),
    run: (d, p) => ok(factorsView(d.control.factors(p.user!))),
  },
  {
    method: 'DELETE', path: '/api/v1/users/{user}/factors', perm: 'users:write', scope: (d, p) => userScope(d, p.user!),
    run: async (d, p, r) => ok(await d.control.resetFactors(actorOf(r.caller, r.ip), p.user!)),
  },
  {
    method: 'GET', path: '/api/v1/users/{user}/login-history', perm: 'users:read', scope: (d, p) => userScope(d, p.user!),
    run: (d, p, r) => {
      const { limit } = paging(r);
      const u = d.control.user(p.user!);
      return ok({ last_login_at: u.lastLoginAt === null ? null : new Date(u.lastLoginAt).toISOString(), items: d.control.loginHistory(p.user!, limit).map(loginEventView), next_cursor: null });
    },
  },
  // ── service accounts and keys ──
  {
    method: 'GET', path: '/api/v1/projects/{project}/service-accounts', perm: 'service-accounts:read', scope: (d, p) => (d.control.project(p.project!), projectScope(p.project!)),
    run: (d, p) => ok({ items: d.store.serviceAccounts.list(p.project!).map(serviceAccountView), next_cursor: null }),
  },
  {
    method: 'POST', path: '/api/v1/projects/{project}/service-accounts', perm: 'service-accounts:write', scope: (d, p) => (d.control.project(p.project!), projectScope(p.project!)),
    run: async (d, p, r) => ok(serviceAccountView(await d.control.createServiceAccount(actorOf(r.caller, r.ip), p.project!, body(r))), 201),
  },
  {
    method: 'GET', path: '/api/v1/service-accounts/{service_account}', perm: 'service-accounts:read', scope: (d, p) => saScope(d, p.service_account!),
    run: (d, p) => ok(serviceAccountView(d.control.serviceAccount(p.service_account!))),
  },
  {
    method: 'PATCH', path: '/api/v1/service-accounts/{service_account}', perm: 'service-accounts:write', scope: (d, p) => saScope(d, p.service_account!),
    run: async (d, p, r) => ok(serviceAccountView(await d.control.updateServiceAccount(actorOf(r.caller, r.ip), p.service_account!, body(r)))),
  },
  {
    method: 'GET', path: '/api/v1/service-accounts/{service_account}/keys', perm: 'service-accounts:read', scope: (d, p) => saScope(d, p.service_account!),
    run: (d, p) => ok({ items: d.store.serviceAccounts.listKeys(d.control.serviceAccount(p.service_account!).id).map((k) => keyView(k, d.clock.now())), next_cursor: null }),
  },
  {
    method: 'POST', path: '/api/v1/service-accounts/{service_account}/keys', perm: 'service-accounts:write', scope: (d, p) => saScope(d, p.service_account!),
    run: async (d, p, r) => {
      const k = await d.control.createKey(actorOf(r.caller, r.ip), p.service_account!, body(r));
      return ok({ ...keyView(k.rec, d.clock.now()), key: k.text }, 201);
    },
  },
  {
    method: 'POST', path: '/api/v1/service-accounts/{service_account}/keys/{key}/rotate', perm: 'service-accounts:write', scope: (d, p) => saScope(d, p.service_account!),
    run: async (d, p, r) => {
      const k = await d.control.rotateKey(actorOf(r.caller, r.ip), p.service_account!, p.key!, body(r));
      return ok({ ...keyView(k.rec, d.clock.now()), key: k.text, previous: keyView(k.old, d.clock.now()) }, 201);
    },
  },
  {
    method: 'DELETE', path: '/api/v1/service-accounts/{service_account}/keys/{key}', perm: 'service-accounts:write', scope: (d, p) => saScope(d, p.service_account!),
    run: async (d, p, r) => ok(keyView(await d.control.revokeKey(actorOf(r.caller, r.ip), p.service_account!, p.key!), d.clock.now())),
  },
  // ── Warpgates ──
  {
    method: 'GET', path: '/api/v1/warpgates', perm: 'warpgates:read', scope: (_d, _p, r) => ownProject(r),
    run: (d, _p, r) => ok({ items: listWarpgates(d, r.caller.kind === 'key' ? visible(d, r) : GLOBAL), next_cursor: null }),
  },
  {
    method: 'POST', path: ENROLL_PATH, perm: 'warpgates:enroll', scope: (_d, _p, r) => ownProject(r),
    run: async (d, _p, r) => {
      if (r.caller.kind !== 'key') throw new MezuError('MEZU_CONSOLE_FORBIDDEN');
      return ok(await d.enroller.enroll(actorOf(r.caller, r.ip), r.caller.sa, r.caller.key, body(r)), 201);
    },
  },
  // ── audit ──
  {
    method: 'GET', path: '/api/v1/audit', perm: 'audit:read', scope: (_d, _p, r) => ownProject(r),
    run: (d, _p, r) => {
      const { limit, cursor } = paging(r);
      const action = r.query.get('action');
      const actor = r.query.get('actor');
      const project = r.caller.kind === 'key' ? r.caller.sa.projectId : r.query.get('project');
      const match = (a: AuditRecord) =>
        (action === null || a.action === action || a.action.startsWith(`${action}.`)) &&
        (actor === null || a.actor.id === actor) &&
        (project === null || a.projectId === project);
      const page = d.store.audit.page(cursor, limit, match);
      return ok({ items: page.entries.map(auditView), next_cursor: cursorOut(page.next) });
    },
  },
];

interface Compiled {
  route: ApiRoute;
  segments: string[];
}
const compiled: Compiled[] = API_ROUTES.map((route) => ({ route, segments: route.path.split('/').slice(1) }));

/** The route for a method and path, with its parameters; `methods` lists the methods the path has when none matches. */
export function matchRoute(method: string, path: string): { route: ApiRoute; params: Params } | { methods: string[] } {
  const segs = path.split('/').slice(1);
  const methods: string[] = [];
  for (const c of compiled) {
    if (c.segments.length !== segs.length) continue;
    const params: Params = {};
    let ok2 = true;
    for (let i = 0; i < segs.length; i++) {
      const t = c.segments[i]!;
      const s = segs[i]!;
      if (t.startsWith('{')) {
        if (s === '' || !/^[A-Za-z0-9_:.@+-]{1,200}$/.test(decodeURIComponentSafe(s))) {
          ok2 = false;
          break;
        }
        params[t.slice(1, -1)] = decodeURIComponentSafe(s);
      } else if (t !== s) {
        ok2 = false;
        break;
      }
    }
    if (!ok2) continue;
    if (c.route.method === method) return { route: c.route, params };
    methods.push(c.route.method);
  }
  return { methods };
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return '';
  }
}

/** Lookups a scope function makes; for a key, "not found" must look like "not yours". */
const NOT_FOUND_CODES: ReadonlySet<string> = new Set(['MEZU_PROJECT_NOT_FOUND', 'MEZU_DIRECTORY_NOT_FOUND', 'MEZU_USER_NOT_FOUND', 'MEZU_SERVICE_ACCOUNT_NOT_FOUND']);
const NOWHERE: Scope = { kind: 'projects', ids: [] };

/** The refusal; for a key that holds the permission, it says the object is outside its project, without saying whether it exists. */
function forbidden(caller: Caller, perm: ApiPermission, scope: Scope, held: boolean): MezuError {
  const where = scope.kind === 'console' ? ' on Console users' : scope.kind === 'global' ? ' across organizations' : held && caller.kind === 'key' ? ' outside its project' : '';
  return new MezuError('MEZU_CONSOLE_FORBIDDEN', `console: ${caller.kind === 'console' ? `the ${caller.role} role` : `this key (permissions: ${caller.sa.permissions.join(', ') || 'none'}; project ${caller.sa.projectId})`} does not allow ${perm}${where}`);
}

/**
 * Runs an authenticated request: authorize, then the handler. Throws MezuError for refusals.
 *
 * Authorization comes before any lookup: first whether the caller may use the route's permission at
 * all, then on the scope of the objects named. A key whose lookup finds nothing is refused exactly
 * as one that finds another project's object (same status, code and message): otherwise a 404 for a
 * project that does not exist next to a 403 for one that does would let a key list other tenants'
 * project and directory names. Console users see every project, so they get the 404.
 */
export async function runApi(d: ApiDeps, route: ApiRoute, params: Params, r: ApiRequest): Promise<ApiReply> {
  if (route.perm !== null) {
    const own: Scope = r.caller.kind === 'key' ? { kind: 'projects', ids: [r.caller.sa.projectId] } : GLOBAL;
    if (!allows(r.caller, route.perm, own)) throw forbidden(r.caller, route.perm, NOWHERE, false);
    let scope: Scope;
    try {
      scope = route.scope(d, params, r);
    } catch (err) {
      if (r.caller.kind !== 'key' || !NOT_FOUND_CODES.has(codeOf(err))) throw err;
      scope = NOWHERE;
    }
    if (!allows(r.caller, route.perm, scope)) throw forbidden(r.caller, route.perm, scope, true);
  }
  return route.run(d, params, r);
}

export { CONSOLE_DIRECTORY };
