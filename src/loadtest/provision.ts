/**
 * The loadtest's own user and session, written to the store exactly as
 * `mezusphere users add` and `sessions create` write them, and retired
 * afterwards as `users set --status deactivated` retires a user (status
 * deactivated, every session revoked). Only a user created here is ever
 * retired: an email that already exists is refused, never borrowed.
 */
import { existsSync } from 'node:fs';
import type { Store, UserRecord } from '../store/index.js';
import { hashToken, newId, newSessionToken } from '../session/index.js';

export interface ProvisionSpec {
  project: string;
  email: string;
  roles: string[];
  permissions: string[];
}

export interface Provisioned {
  project: string;
  email: string;
  userId: string;
  sessionId: string;
  /** The cookie value; kept in memory only, never printed. */
  token: string;
}

export type ProvisionResult = { ok: true; user: Provisioned } | { ok: false; reason: string };

/** Whether `dataDir` holds a store (openStore would create an empty one, which helps nobody here). */
export function storeExists(dataDir: string): boolean {
  return existsSync(`${dataDir}/store`);
}

function projectIds(store: Store): string[] | null {
  const c = store.config.current();
  if (c === undefined) return null;
  const projects = (c.config as { projects?: Array<{ id?: unknown }> }).projects ?? [];
  return projects.map((p) => String(p.id));
}

export async function provision(store: Store, spec: ProvisionSpec, now = Date.now()): Promise<ProvisionResult> {
  const ids = projectIds(store);
  if (ids === null) return { ok: false, reason: 'loadtest: no config applied yet; run `mezusphere apply -f FILE` first' };
  if (!ids.includes(spec.project)) return { ok: false, reason: `loadtest: no project "${spec.project}" in the current config (projects: ${ids.join(', ') || 'none'})` };
  if (store.users.getByEmail(spec.project, spec.email) !== undefined) {
    return { ok: false, reason: `loadtest: ${spec.email} already exists in ${spec.project}; the loadtest deactivates its user afterwards, so it only creates new ones: pass another --email, or --cookie with a session from \`mezusphere sessions create\`` };
  }
  const name = spec.email.split('@')[0]!;
  const user: UserRecord = { id: newId('usr_'), directory: spec.project, email: spec.email, name, displayName: name, status: 'active', roles: spec.roles, permissions: spec.permissions, version: 1, createdAt: now, updatedAt: now, lastLoginAt: null };
  await store.users.create(user);
  const token = newSessionToken();
  const sessionId = newId('ses_');
  await store.sessions.create(hashToken(token), { id: sessionId, principalType: 'user', userId: user.id, projectId: spec.project, createdAt: now, lastSeenAt: now, authTime: now, amr: ['cli'], assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null });
  return { ok: true, user: { project: spec.project, email: spec.email, userId: user.id, sessionId, token } };
}

export interface Cleanup {
  sessionRevoked: boolean;
  userDeactivated: boolean;
}

/** Revokes the session, then deactivates the user and ends any session it still has (as `users set` does). */
export async function retire(store: Store, p: Provisioned): Promise<Cleanup> {
  const sessionRevoked = await store.sessions.revoke(hashToken(p.token));
  let userDeactivated = false;
  if (store.users.get(p.userId) !== undefined) {
    await store.users.update(p.userId, { status: 'deactivated' });
    await store.sessions.revokeAllForUser(p.userId);
    userDeactivated = true;
  }
  return { sessionRevoked, userDeactivated };
}
