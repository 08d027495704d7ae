/**
 * The JSON shapes of the admin API (and of `mezusphere … --json`): snake_case
 * keys, ISO 8601 times, null for "none". docs/openapi.yaml describes the same
 * shapes; the OpenAPI test checks real responses against it.
 */
import type {
  ApiKeyRecord,
  AuditRecord,
  FactorSummary,
  LoginEventRecord,
  ServiceAccountRecord,
  SessionRecord,
  UserRecord,
  WarpgateRecord,
} from '../store/index.js';
import { API_KEY_PREFIX } from '../session/index.js';

export const iso = (t: number | null | undefined): string | null => (t === null || t === undefined ? null : new Date(t).toISOString());

export function userView(u: UserRecord): Record<string, unknown> {
  return {
    id: u.id,
    directory: u.directory,
    email: u.email,
    name: u.name,
    display_name: u.displayName,
    status: u.status,
    roles: u.roles,
    permissions: u.permissions,
    created_at: iso(u.createdAt),
    updated_at: iso(u.updatedAt),
    last_login_at: iso(u.lastLoginAt),
  };
}

export function sessionView(s: SessionRecord): Record<string, unknown> {
  return {
    id: s.id,
    project: s.projectId,
    created_at: iso(s.createdAt),
    last_seen_at: iso(s.lastSeenAt),
    auth_time: iso(s.authTime),
    amr: s.amr,
  };
}

/** A user's second factors (never a secret or a hash). */
export function factorsView(f: FactorSummary): Record<string, unknown> {
  return {
    totp: f.totp, totp_enrolled_at: iso(f.enrolledAt), totp_last_used_at: iso(f.lastUsedAt), enrolment_pending: f.pending, recovery_codes_left: f.recoveryLeft,
    // Credential ids are public (the browser sends them with every use); the public keys stay out.
    passkeys: f.passkeys.map((k) => ({ id: k.id, rp_id: k.rpId, created_at: iso(k.createdAt), last_used_at: iso(k.lastUsedAt), backed_up: k.backedUp })),
  };
}

export function loginEventView(e: LoginEventRecord): Record<string, unknown> {
  return { at: iso(e.at), type: e.type, reason: e.reason, ip: e.ip, user_agent: e.userAgent };
}

export function serviceAccountView(sa: ServiceAccountRecord): Record<string, unknown> {
  return {
    id: sa.id,
    project: sa.projectId,
    name: sa.name,
    status: sa.status,
    roles: sa.roles,
    permissions: sa.permissions,
    created_at: iso(sa.createdAt),
    updated_at: iso(sa.updatedAt),
  };
}

export type KeyState = 'active' | 'rotating' | 'expired' | 'revoked';

/** A key's state at `now`: revoked beats expired; a replaced key still inside its overlap is `rotating`. */
export function keyState(k: ApiKeyRecord, now: number): KeyState {
  if (k.revokedAt !== null) return 'revoked';
  if (k.expiresAt !== null && now >= k.expiresAt) return 'expired';
  if ((k.replacedBy ?? null) !== null) return 'rotating';
  return 'active';
}

/** A key without its secret: the visible prefix (`mzk_<id>`) identifies it; the secret was shown once. */
export function keyView(k: ApiKeyRecord, now: number): Record<string, unknown> {
  return {
    id: k.id,
    prefix: `${API_KEY_PREFIX}${k.id}`,
    service_account: k.serviceAccountId,
    project: k.projectId,
    state: keyState(k, now),
    created_at: iso(k.createdAt),
    expires_at: iso(k.expiresAt),
    revoked_at: iso(k.revokedAt),
    last_used_at: iso(k.lastUsedAt),
    rotated_from: k.rotatedFrom ?? null,
    replaced_by: k.replacedBy ?? null,
    created_by: k.createdBy ?? null,
  };
}

export function auditView(a: AuditRecord): Record<string, unknown> {
  return {
    id: a.id,
    at: iso(a.at),
    actor: { type: a.actor.type, id: a.actor.id, name: a.actor.name },
    action: a.action,
    target: { type: a.target.type, id: a.target.id },
    project: a.projectId,
    details: a.details,
    ip: a.ip,
  };
}

/** An edge worker's status report older than this is from a worker that is gone (it reports every 5 s; three missed). */
export const STATUS_REPORT_FRESH_MS = 15_000;

export interface TunnelHolder {
  edge: string;
  worker: number;
  since: string | null;
}

export function warpgateView(w: WarpgateRecord, tunnels: TunnelHolder[]): Record<string, unknown> {
  let since: string | null = null;
  for (const t of tunnels) if (t.since !== null && (since === null || t.since < since)) since = t.since;
  return {
    id: w.id,
    project: w.projectId,
    pool: w.pool,
    service_account: w.serviceAccountId,
    key: w.keyId,
    hostname: w.hostname,
    version: w.version,
    connected: tunnels.length > 0,
    connected_since: since,
    tunnels,
    enrolled_at: iso(w.enrolledAt),
    renewed_at: iso(w.renewedAt),
    certificate_expires_at: iso(w.certExpiresAt),
    refused_at: iso(w.refusedAt),
  };
}
