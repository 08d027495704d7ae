/**
 * Who is calling the Console, and what they may do.
 *
 * Two kinds of caller:
 * - a **Console user**, signed in through the hosted login of the Console's
 *   own directory (`_console`), with exactly one role: `owner` (everything),
 *   `admin` (everything but the Console's own users), `viewer` (reads only);
 * - a **service-account key** (`Authorization: Bearer mzk_…`), whose
 *   permissions name the APIs it may call and which can only ever reach its
 *   own project's objects (users of the directories its project signs in
 *   with, its project's service accounts, routes and Warpgates, and audit
 *   entries of its project). Organization-wide and Console-wide operations
 *   are for Console users only.
 *
 * Every check reads the store (no cache), like the edge: a revoked key or an
 * ended Console session is refused on its next request.
 */
import type { Store, UserRecord, ServiceAccountRecord, ApiKeyRecord } from '../store/index.js';
import { findCookie, hashToken, isTokenSyntax, parseApiKey, secretMatches, API_KEY_PREFIX } from '../session/index.js';
import { CONSOLE_DIRECTORY, CONSOLE_PROJECT, CONSOLE_ROLES, CONSOLE_SESSION_ABSOLUTE_MS, CONSOLE_SESSION_IDLE_MS, type Actor, type ConsoleRole } from '../control/index.js';
import type { ErrorCode } from '../errors/index.js';

/** Permissions a service-account key can hold for the admin API. `…:write` includes `…:read`. */
export const API_PERMISSIONS = [
  'users:read',
  'users:write',
  'service-accounts:read',
  'service-accounts:write',
  'routes:read',
  'routes:write',
  'warpgates:read',
  'warpgates:enroll',
  'audit:read',
  'stats:read',
] as const;
export type ApiPermission = (typeof API_PERMISSIONS)[number];

/** What a call touches: everything (organizations, the whole config), the Console's own users, or some projects' objects. */
export type Scope = { kind: 'global' } | { kind: 'console' } | { kind: 'projects'; ids: readonly string[] };

export type Caller =
  | { kind: 'console'; user: UserRecord; role: ConsoleRole; tokenHash: string }
  | { kind: 'key'; sa: ServiceAccountRecord; key: ApiKeyRecord };

/** A key's `lastUsedAt` is written at most this often (no write per request). */
const LAST_USED_EVERY_MS = 60_000;

export function isWrite(p: ApiPermission): boolean {
  return p.endsWith(':write') || p === 'warpgates:enroll';
}

export function roleOf(u: UserRecord): ConsoleRole | null {
  const r = u.roles.filter((x) => (CONSOLE_ROLES as readonly string[]).includes(x));
  return r.length === 1 ? (r[0] as ConsoleRole) : null;
}

/** The signed-in Console user of a cookie header, or null. */
export function consoleSession(store: Store, cookieHeader: string, cookieName: string, now: number): { user: UserRecord; role: ConsoleRole; tokenHash: string } | null {
  const token = findCookie(cookieHeader, cookieName);
  if (token === '' || !isTokenSyntax(token)) return null;
  const th = hashToken(token);
  const s = store.sessions.get(th);
  if (s === undefined || s.projectId !== CONSOLE_PROJECT || s.principalType !== 'user') return null;
  if (now >= s.createdAt + CONSOLE_SESSION_ABSOLUTE_MS || now >= s.lastSeenAt + CONSOLE_SESSION_IDLE_MS) return null;
  const u = store.users.get(s.userId);
  if (u === undefined || u.status !== 'active' || u.directory !== CONSOLE_DIRECTORY) return null;
  const role = roleOf(u);
  if (role === null) return null;
  if (now - s.lastSeenAt >= LAST_USED_EVERY_MS) store.sessions.refresh(th, { lastSeenAt: now }).catch(() => undefined);
  return { user: u, role, tokenHash: th };
}

/** A service-account key checked for use against the Console: the caller, or the code saying why not. */
export function checkKey(store: Store, text: string, now: number): { sa: ServiceAccountRecord; key: ApiKeyRecord } | { code: ErrorCode } {
  const parsed = parseApiKey(text);
  if (parsed === null) return { code: 'MEZU_KEY_INVALID' };
  const k = store.serviceAccounts.getKey(parsed.id);
  // The secret is checked before any state is revealed: without it, "revoked" and "unknown" look the same.
  if (k === undefined || !secretMatches(parsed.secret, k.secretHash)) return { code: 'MEZU_KEY_INVALID' };
  if (k.revokedAt !== null) return { code: 'MEZU_KEY_REVOKED' };
  if (k.expiresAt !== null && now >= k.expiresAt) return { code: 'MEZU_KEY_EXPIRED' };
  const sa = store.serviceAccounts.get(k.serviceAccountId);
  if (sa === undefined || sa.projectId !== k.projectId) return { code: 'MEZU_KEY_INVALID' };
  if (sa.status !== 'active') return { code: 'MEZU_SERVICE_ACCOUNT_DISABLED' };
  if (k.lastUsedAt === null || now - k.lastUsedAt >= LAST_USED_EVERY_MS) store.serviceAccounts.refreshKey(k.id, { lastUsedAt: now }).catch(() => undefined);
  return { sa, key: k };
}

/** The caller of an API request (bearer key first, then the Console cookie), or the code to refuse with. */
export function authenticate(store: Store, authorization: string, cookieHeader: string, cookieName: string, now: number): Caller | { code: ErrorCode } {
  if (authorization !== '') {
    const m = /^Bearer\s+(\S+)$/i.exec(authorization);
    if (m === null || !m[1]!.startsWith(API_KEY_PREFIX)) return { code: 'MEZU_KEY_INVALID' };
    const r = checkKey(store, m[1]!, now);
    return 'code' in r ? r : { kind: 'key', sa: r.sa, key: r.key };
  }
  const s = consoleSession(store, cookieHeader, cookieName, now);
  return s === null ? { code: 'MEZU_CONSOLE_AUTH_REQUIRED' } : { kind: 'console', ...s };
}

/** May `caller` use `perm` on objects in `scope`? */
export function allows(caller: Caller, perm: ApiPermission, scope: Scope): boolean {
  if (caller.kind === 'console') {
    if (perm === 'warpgates:enroll') return false;
    if (!isWrite(perm)) return true;
    if (caller.role === 'viewer') return false;
    if (scope.kind === 'console') return caller.role === 'owner';
    return true;
  }
  if (scope.kind !== 'projects' || !scope.ids.includes(caller.sa.projectId)) return false;
  const held = caller.sa.permissions;
  if (held.includes(perm)) return true;
  // Write includes read.
  if (perm.endsWith(':read')) return held.includes(perm.replace(/:read$/, ':write'));
  return false;
}

/** The audit actor of a caller. */
export function actorOf(caller: Caller, ip: string): Actor {
  return caller.kind === 'console'
    ? { type: 'console_user', id: caller.user.id, name: caller.user.email, ip }
    : { type: 'service_account', id: caller.sa.id, name: `${caller.sa.name} (key ${API_KEY_PREFIX}${caller.key.id})`, ip };
}
