/**
 * Credential check: a session cookie or a service-account key → a principal
 * with its cached assertion, or a verdict value. Every call reads the store
 * (no per-process cache of sessions, users or keys: a revocation written by
 * any process is seen on the next request in every worker); the
 * `getForRequest` reads only skip decoding bytes identical to the last ones.
 */
import type { Store, SessionRecord, UserRecord, ApiKeyRecord, ServiceAccountRecord } from '../store/index.js';
import type { Signer } from '../identity/index.js';
import { ASSERTION_REFRESH_BEFORE_S, type PrincipalType } from '../../wire/index.js';
import { hashToken, isTokenSyntax, parseApiKey, secretMatches } from './tokens.js';

/** Idle refreshes are written at most this often per session (never a write per request). */
export const IDLE_REFRESH_INTERVAL_MS = 60_000;

export interface Principal {
  type: PrincipalType;
  id: string;
  email: string;
  name: string;
  roles: readonly string[];
  permissions: readonly string[];
  assertion: string;
}

export type AuthResult =
  | { kind: 'ok'; principal: Principal }
  /** No usable credential: log in. */
  | { kind: 'none' };

export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };

const NONE: AuthResult = Object.freeze({ kind: 'none' }) as AuthResult;

export class Authenticator {
  /**
   * Per-worker memo of assertions minted here but maybe not yet written back,
   * keyed by session id. Not an authority: the store record is read first on
   * every request, and the memo is used only while its user version matches.
   */
  private readonly minted = new Map<string, { token: string; exp: number; userVersion: number; kid: string }>();

  constructor(
    private readonly store: Store,
    private readonly signer: Signer,
    private readonly clock: Clock = systemClock,
  ) {}

  /** Looks a session token up for a project. */
  session(token: string, projectId: string, absoluteMs: number, idleMs: number): AuthResult {
    if (!isTokenSyntax(token)) return NONE;
    const th = hashToken(token);
    const s = this.store.sessions.getForRequest(th);
    if (s === undefined || s.projectId !== projectId || s.principalType !== 'user') return NONE;
    const now = this.clock.now();
    if (now >= s.createdAt + absoluteMs || now >= s.lastSeenAt + idleMs) return NONE;
    const u = this.store.users.getForRequest(s.userId);
    if (u === undefined || u.status !== 'active') return NONE;
    const assertion = this.assertionFor(th, s, u, projectId, now);
    if (now - s.lastSeenAt >= IDLE_REFRESH_INTERVAL_MS) {
      // Fire-and-forget: a failed idle refresh only shortens the session.
      this.store.sessions.refresh(th, { lastSeenAt: now }).catch(noop);
    }
    return { kind: 'ok', principal: { type: 'user', id: u.id, email: u.email, name: u.displayName || u.name, roles: u.roles, permissions: u.permissions, assertion } };
  }

  /** Looks a service-account key (`mzk_…`) up for a project. */
  apiKey(text: string, projectId: string): AuthResult {
    const parsed = parseApiKey(text);
    if (parsed === null) return NONE;
    const k = this.store.serviceAccounts.getKeyForRequest(parsed.id);
    if (k === undefined || k.projectId !== projectId || k.revokedAt !== null) return NONE;
    const now = this.clock.now();
    if (k.expiresAt !== null && now >= k.expiresAt) return NONE;
    if (!secretMatches(parsed.secret, k.secretHash)) return NONE;
    const sa = this.store.serviceAccounts.getForRequest(k.serviceAccountId);
    if (sa === undefined || sa.status !== 'active') return NONE;
    const assertion = this.keyAssertion(k, sa, projectId, now);
    return { kind: 'ok', principal: { type: 'service_account', id: sa.id, email: '', name: sa.name, roles: sa.roles, permissions: sa.permissions, assertion } };
  }

  private assertionFor(th: string, s: Readonly<SessionRecord>, u: Readonly<UserRecord>, projectId: string, now: number): string {
    const fresh = (exp: number) => exp - now > ASSERTION_REFRESH_BEFORE_S * 1000;
    const kid = this.signer.activeKid;
    if (s.assertion !== null && s.assertionUserVersion === u.version && s.assertionKid === kid && fresh(s.assertionExp)) return s.assertion;
    const m = this.minted.get(s.id);
    if (m !== undefined && m.userVersion === u.version && m.kid === kid && fresh(m.exp)) return m.token;
    const r = this.signer.mint(projectId, { type: 'user', id: u.id, email: u.email, name: u.displayName || u.name, roles: u.roles, permissions: u.permissions, amr: s.amr, authTime: s.authTime, sid: s.id }, now);
    this.remember(s.id, { token: r.token, exp: r.exp, userVersion: u.version, kid: r.kid });
    this.store.sessions
      .refresh(th, { assertion: r.token, assertionExp: r.exp, assertionUserVersion: u.version, assertionKid: r.kid })
      .catch(noop);
    return r.token;
  }

  private keyAssertion(k: Readonly<ApiKeyRecord>, sa: Readonly<ServiceAccountRecord>, projectId: string, now: number): string {
    const fresh = (exp: number) => exp - now > ASSERTION_REFRESH_BEFORE_S * 1000;
    const kid = this.signer.activeKid;
    if (k.assertion !== null && k.assertionUserVersion === sa.version && k.assertionKid === kid && fresh(k.assertionExp)) return k.assertion;
    const m = this.minted.get(k.id);
    if (m !== undefined && m.userVersion === sa.version && m.kid === kid && fresh(m.exp)) return m.token;
    const r = this.signer.mint(projectId, { type: 'service_account', id: sa.id, email: '', name: sa.name, roles: sa.roles, permissions: sa.permissions, amr: ['key'], authTime: k.createdAt, sid: k.id }, now);
    this.remember(k.id, { token: r.token, exp: r.exp, userVersion: sa.version, kid: r.kid });
    this.store.serviceAccounts
      .refreshKey(k.id, { assertion: r.token, assertionExp: r.exp, assertionUserVersion: sa.version, assertionKid: r.kid, lastUsedAt: now })
      .catch(noop);
    return r.token;
  }

  private remember(id: string, v: { token: string; exp: number; userVersion: number; kid: string }): void {
    // Bounded: the memo only bridges the write-back; clearing it costs a re-mint at worst.
    if (this.minted.size >= 10_000) this.minted.clear();
    this.minted.set(id, v);
  }
}

function noop(): void {}
