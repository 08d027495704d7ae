/**
 * Credential check: a session cookie or a service-account key → the
 * principal, or null (log in). Only finds who is calling: the assertion is
 * minted or reused later (src/identity/assertions.ts), once authorization has
 * allowed the request, so a refused request costs no signature and no write.
 *
 * Every call reads the store (no per-process cache of sessions, users or
 * keys: a revocation written by any process is seen on the next request in
 * every worker); the `getForRequest` reads skip only the decoding of bytes
 * identical to the last ones. What is memoized here is derived from those
 * reads and checked against them on every call: the principal object is
 * reused while the records it was built from are the very objects the store
 * read returned (so a request with a known session allocates nothing here),
 * and a token's SHA-256 is remembered (a pure function of the token).
 */
import type { Store, SessionRecord, UserRecord, ApiKeyRecord, ServiceAccountRecord } from '../store/index.js';
import type { PrincipalType } from '../../wire/index.js';
import { hashToken, isTokenSyntax, parseApiKey, secretMatches } from './tokens.js';
import { systemClock, type Clock } from '../runtime/index.js';

/** Idle refreshes are written at most this often per session (never a write per request). */
export const IDLE_REFRESH_INTERVAL_MS = 60_000;

/** Entries of each per-worker memo; past it, it starts over (a miss costs a rebuild, never a stale answer). */
const MEMO_ENTRIES = 10_000;

export { systemClock, type Clock };

/**
 * Who is calling, built from the store records read for this request. Fixed
 * shape for both kinds: a session's principal has `session` and `user`, a
 * key's has `key` and `account`; the other two are null.
 */
export class Principal {
  readonly type: PrincipalType;
  readonly id: string;
  readonly email: string;
  readonly name: string;
  readonly roles: readonly string[];
  readonly permissions: readonly string[];
  /** Store key of the credential: the session's token hash, or the key's id. */
  readonly credential: string;
  readonly session: Readonly<SessionRecord> | null;
  readonly user: Readonly<UserRecord> | null;
  readonly key: Readonly<ApiKeyRecord> | null;
  readonly account: Readonly<ServiceAccountRecord> | null;

  constructor(credential: string, s: Readonly<SessionRecord> | null, u: Readonly<UserRecord> | null, k: Readonly<ApiKeyRecord> | null, a: Readonly<ServiceAccountRecord> | null) {
    this.credential = credential;
    this.session = s;
    this.user = u;
    this.key = k;
    this.account = a;
    if (u !== null) {
      this.type = 'user';
      this.id = u.id;
      this.email = u.email;
      this.name = u.displayName || u.name;
      this.roles = u.roles;
      this.permissions = u.permissions;
    } else {
      this.type = 'service_account';
      this.id = a!.id;
      this.email = '';
      this.name = a!.name;
      this.roles = a!.roles;
      this.permissions = a!.permissions;
    }
  }
}

export class Authenticator {
  /** Principals by credential, reused while built from the same record objects. */
  private readonly principals = new Map<string, Principal>();
  /** Token → SHA-256: the same string object for every request of a session, its hash computed once. */
  private readonly hashes = new Map<string, string>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock = systemClock,
  ) {}

  /** The principal of a session token for a project, or null. */
  session(token: string, projectId: string, absoluteMs: number, idleMs: number): Principal | null {
    let th = this.hashes.get(token);
    if (th === undefined) {
      if (!isTokenSyntax(token)) return null;
      th = hashToken(token);
      if (this.hashes.size >= MEMO_ENTRIES) this.hashes.clear();
      this.hashes.set(token, th);
    }
    const s = this.store.sessions.getForRequest(th);
    if (s === undefined || s.projectId !== projectId || s.principalType !== 'user') return null;
    const now = this.clock.now();
    if (now >= s.createdAt + absoluteMs || now >= s.lastSeenAt + idleMs) return null;
    const u = this.store.users.getForRequest(s.userId);
    if (u === undefined || u.status !== 'active') return null;
    if (now - s.lastSeenAt >= IDLE_REFRESH_INTERVAL_MS) {
      // Fire-and-forget: a failed idle refresh only shortens the session.
      this.store.sessions.refresh(th, { lastSeenAt: now }).catch(noop);
    }
    const p = this.principals.get(th);
    if (p !== undefined && p.session === s && p.user === u) return p;
    return this.remember(new Principal(th, s, u, null, null));
  }

  /** The principal of a service-account key (`mzk_…`) for a project, or null. */
  apiKey(text: string, projectId: string): Principal | null {
    const parsed = parseApiKey(text);
    if (parsed === null) return null;
    const k = this.store.serviceAccounts.getKeyForRequest(parsed.id);
    if (k === undefined || k.projectId !== projectId || k.revokedAt !== null) return null;
    const now = this.clock.now();
    if (k.expiresAt !== null && now >= k.expiresAt) return null;
    if (!secretMatches(parsed.secret, k.secretHash)) return null;
    const sa = this.store.serviceAccounts.getForRequest(k.serviceAccountId);
    if (sa === undefined || sa.status !== 'active') return null;
    const p = this.principals.get(k.id);
    if (p !== undefined && p.key === k && p.account === sa) return p;
    return this.remember(new Principal(k.id, null, null, k, sa));
  }

  /**
   * Continuous authorization (src/authorize/live.ts): the principal of an
   * open WebSocket or streamed response, read again from the store by its
   * credential (the token is not kept: the session's store key is), or null
   * when the session or key no longer grants access to `projectId` — revoked,
   * expired, its user or account suspended or deactivated, its key revoked or
   * past its expiry. `activeAt` is the stream's last client activity: it
   * counts towards the session's idle lifetime like a request would, and is
   * written back as the session's `lastSeenAt` at most once a minute.
   */
  recheck(p: Principal, projectId: string, absoluteMs: number, idleMs: number, activeAt: number): Principal | null {
    const now = this.clock.now();
    if (p.key !== null) {
      const k = this.store.serviceAccounts.getKeyForRequest(p.credential);
      if (k === undefined || k.projectId !== projectId || k.revokedAt !== null) return null;
      if (k.expiresAt !== null && now >= k.expiresAt) return null;
      // The secret was checked when the stream opened; a key's secret never changes (rotation makes a new key).
      const sa = this.store.serviceAccounts.getForRequest(k.serviceAccountId);
      if (sa === undefined || sa.status !== 'active') return null;
      const known = this.principals.get(k.id);
      if (known !== undefined && known.key === k && known.account === sa) return known;
      return this.remember(new Principal(k.id, null, null, k, sa));
    }
    const th = p.credential;
    const s = this.store.sessions.getForRequest(th);
    if (s === undefined || s.projectId !== projectId || s.principalType !== 'user') return null;
    const seen = Math.max(s.lastSeenAt, activeAt);
    if (now >= s.createdAt + absoluteMs || now >= seen + idleMs) return null;
    const u = this.store.users.getForRequest(s.userId);
    if (u === undefined || u.status !== 'active') return null;
    if (activeAt - s.lastSeenAt >= IDLE_REFRESH_INTERVAL_MS) this.store.sessions.refresh(th, { lastSeenAt: activeAt }).catch(noop);
    const known = this.principals.get(th);
    if (known !== undefined && known.session === s && known.user === u) return known;
    return this.remember(new Principal(th, s, u, null, null));
  }

  private remember(p: Principal): Principal {
    if (this.principals.size >= MEMO_ENTRIES) this.principals.clear();
    this.principals.set(p.credential, p);
    return p;
  }
}

function noop(): void {}
