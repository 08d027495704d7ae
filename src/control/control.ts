/**
 * The control plane: every change an operator makes — through the admin API,
 * the Console pages or the CLI — goes through one of these methods, and each
 * writes one audit record (who, what, when) after the change committed. The
 * callers decide *whether* a caller may do it (src/console/access.ts); this
 * module decides *what* is valid and does it.
 *
 * The edge reads the same store: a suspension, a revocation or a new config
 * written here is seen by every edge worker on its next request or poll, with
 * nothing to notify.
 */
import { parseConfigYaml, compileConfig, DEFAULT_ORGANIZATION, orgDirectoryId, type CompiledConfig, type CompiledProject, type ConfigProblem } from '../config/index.js';
import { parseDuration, systemClock, type Clock } from '../runtime/index.js';
import type { Store, UserRecord, UserStatus, ServiceAccountRecord, ApiKeyRecord, AuditActor, SessionRecord, FactorSummary } from '../store/index.js';
import { hashToken, newApiKey, newId } from '../session/index.js';
import { MezuError, type ErrorCode } from '../errors/index.js';
import { setRoutes, addOrganization, addProject, relativeProblems, type RouteInput, type ProjectInput } from './config-edit.js';

/** The Console's own user directory (operators), and the pseudo-project its sessions belong to. */
export const CONSOLE_DIRECTORY = '_console';
export const CONSOLE_PROJECT = '_console';
/** Console session lifetimes (fixed: the Console is not a project with a config of its own). */
export const CONSOLE_SESSION_ABSOLUTE_MS = 12 * 3600_000;
export const CONSOLE_SESSION_IDLE_MS = 60 * 60_000;
export const CONSOLE_ROLES = ['owner', 'admin', 'viewer'] as const;
export type ConsoleRole = (typeof CONSOLE_ROLES)[number];

/** Who is acting, and from where (the client IP of an API call; '' for the CLI). */
export interface Actor extends AuditActor {
  ip: string;
}

/**
 * What an actor may hand out. The rule: nobody grants what they do not hold.
 * The CLI (the edge host's operator) and a Console owner hold everything; a
 * Console admin holds everything but the Console's `owner` role; a key holds
 * exactly the roles and permissions of its own service account — admin-API
 * permissions (`users:write`) and the names edge routes test (`admin:write`)
 * alike, since both are strings in one list.
 */
export type Authority =
  | { kind: 'all' }
  | { kind: 'admin' }
  | { kind: 'key'; serviceAccountId: string; roles: readonly string[]; permissions: readonly string[] }
  | { kind: 'none' };

const ALL: Authority = { kind: 'all' };
const NONE: Authority = { kind: 'none' };

/** A request the control plane refuses, with every problem located (`email`, `routes[2].path`). */
export class InvalidRequest extends MezuError {
  constructor(
    readonly problems: ConfigProblem[],
    code: ErrorCode = 'MEZU_REQUEST_INVALID',
  ) {
    super(code, `${code === 'MEZU_CONFIG_INVALID' ? 'config' : 'console'}: ${problems.map((p) => `${p.at}: ${p.message}`).join('; ')}`);
  }
}

const EMAIL_RE = /^[^\s@<>"',;]+@[^\s@<>"',;]+$/;
/** Roles and permissions travel comma-separated in X-Mezu-Roles / X-Mezu-Permissions (same rule as the config). */
// eslint-disable-next-line no-control-regex
const NAME_RE = /^[^\s,\u0000-\u001f\u007f]{1,100}$/;
const MAX_TEXT = 200;
/** Longest rotation overlap and key lifetime accepted. */
export const MAX_OVERLAP_MS = 30 * 86_400_000;
export const DEFAULT_OVERLAP_MS = 60 * 60_000;
const MAX_KEY_LIFETIME_MS = 3650 * 86_400_000;

/** Collects problems of one request. */
class Check {
  readonly problems: ConfigProblem[] = [];
  fail(at: string, message: string): void {
    this.problems.push({ at, message });
  }
  text(v: unknown, at: string, opts: { required?: boolean; max?: number } = {}): string | undefined {
    if (v === undefined || v === null) {
      if (opts.required) this.fail(at, 'is required');
      return undefined;
    }
    // eslint-disable-next-line no-control-regex
    if (typeof v !== 'string' || v.length > (opts.max ?? MAX_TEXT) || /[\u0000-\u001f\u007f]/.test(v)) {
      this.fail(at, `must be text of at most ${opts.max ?? MAX_TEXT} characters without control characters`);
      return undefined;
    }
    return v.trim();
  }
  email(v: unknown, at: string, required: boolean): string | undefined {
    const s = this.text(v, at, { required, max: 254 });
    if (s === undefined) return undefined;
    if (!EMAIL_RE.test(s)) {
      this.fail(at, `must be an email address like name@example.com; got "${s}"`);
      return undefined;
    }
    return s;
  }
  names(v: unknown, at: string, what: string): string[] | undefined {
    if (v === undefined || v === null) return undefined;
    if (!Array.isArray(v) || v.length > 100) {
      this.fail(at, `must be a list of ${what} names`);
      return undefined;
    }
    const out: string[] = [];
    for (let i = 0; i < v.length; i++) {
      const n = v[i];
      if (typeof n !== 'string' || !NAME_RE.test(n)) this.fail(`${at}[${i}]`, `must be a ${what} name without spaces, commas or control characters`);
      else if (!out.includes(n)) out.push(n);
    }
    return out;
  }
  duration(v: unknown, at: string, max: number): number | undefined {
    if (v === undefined || v === null) return undefined;
    const ms = typeof v === 'string' ? parseDuration(v) : null;
    if (ms === null || ms <= 0 || ms > max) {
      this.fail(at, `must be a duration such as 90d, 24h or 30m, at most ${Math.round(max / 86_400_000)}d`);
      return undefined;
    }
    return ms;
  }
  done(code: ErrorCode = 'MEZU_REQUEST_INVALID'): void {
    if (this.problems.length > 0) throw new InvalidRequest(this.problems, code);
  }
}

/** Problems of a request body that is not a JSON object. */
export function requireObject(v: unknown): Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new InvalidRequest([{ at: '(body)', message: 'must be a JSON object' }]);
  return v as Record<string, unknown>;
}

export interface DirectoryInfo {
  id: string;
  scope: 'project' | 'organization' | 'console';
  /** The organization (organization scope) or the project (project scope); null for the Console's directory. */
  owner: string | null;
  /** Projects that sign users in with it. */
  projects: string[];
  users: number;
}

export class Control {
  private compiled: { version: number; cfg: CompiledConfig } | null = null;

  constructor(
    readonly store: Store,
    /** Timestamps of records, audit entries and key lifetimes. */
    readonly clock: Clock = systemClock,
  ) {}

  // ── config as the control plane sees it ─────────────────────────────────

  /** The applied config, compiled (memoized by version); null when nothing was applied. */
  config(): CompiledConfig | null {
    const stored = this.store.config.current();
    if (stored === undefined) return null;
    if (this.compiled !== null && this.compiled.version === stored.version) return this.compiled.cfg;
    const v = parseConfigYaml(stored.source);
    if (!v.ok) return this.compiled?.cfg ?? null;
    const cfg = compileConfig(v.config, stored.version);
    this.compiled = { version: stored.version, cfg };
    return cfg;
  }

  project(id: string): CompiledProject {
    const p = this.config()?.projects.get(id);
    if (p === undefined) throw new MezuError('MEZU_PROJECT_NOT_FOUND', `console: no project "${id}"`);
    return p;
  }

  /** Projects whose hosted login uses `directory`. */
  projectsOfDirectory(directory: string): string[] {
    const out: string[] = [];
    const cfg = this.config();
    if (cfg !== null) for (const p of cfg.projects.values()) if (p.directory === directory) out.push(p.id);
    return out;
  }

  /** Every directory: those the config's projects use, the Console's, and any that still holds users. */
  directories(): DirectoryInfo[] {
    const counts = this.store.users.directories();
    const byId = new Map<string, DirectoryInfo>();
    const cfg = this.config();
    if (cfg !== null) {
      for (const p of cfg.projects.values()) {
        let d = byId.get(p.directory);
        if (d === undefined) {
          const org = p.directory.startsWith('org:');
          d = { id: p.directory, scope: org ? 'organization' : 'project', owner: org ? p.organization : p.id, projects: [], users: counts.get(p.directory) ?? 0 };
          byId.set(p.directory, d);
        }
        d.projects.push(p.id);
      }
    }
    byId.set(CONSOLE_DIRECTORY, { id: CONSOLE_DIRECTORY, scope: 'console', owner: null, projects: [], users: counts.get(CONSOLE_DIRECTORY) ?? 0 });
    for (const [id, n] of counts) {
      if (byId.has(id)) continue;
      const org = id.startsWith('org:');
      byId.set(id, { id, scope: org ? 'organization' : 'project', owner: org ? id.slice(4) : id, projects: [], users: n });
    }
    return [...byId.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  directory(id: string): DirectoryInfo {
    const d = this.directories().find((x) => x.id === id);
    if (d === undefined) throw new MezuError('MEZU_DIRECTORY_NOT_FOUND', `console: no user directory "${id}"`);
    return d;
  }

  /** The directory a project signs users in with (`--project P` on the CLI). */
  directoryOfProject(projectId: string): string {
    return this.config()?.projects.get(projectId)?.directory ?? projectId;
  }

  // ── who may hand out what ───────────────────────────────────────────────

  /**
   * The authority of an actor, read from the store now (never from what the
   * caller claimed): a key's service account as it is, a Console user's role
   * as it is. Anything not recognised holds nothing (fail closed).
   */
  authority(actor: Actor): Authority {
    if (actor.type === 'cli' || actor.type === 'system') return ALL;
    if (actor.type === 'service_account') {
      const sa = this.store.serviceAccounts.get(actor.id);
      return sa === undefined || sa.status !== 'active' ? NONE : { kind: 'key', serviceAccountId: sa.id, roles: sa.roles, permissions: sa.permissions };
    }
    if (actor.type === 'console_user') {
      const u = this.store.users.get(actor.id);
      if (u === undefined || u.status !== 'active' || u.directory !== CONSOLE_DIRECTORY) return NONE;
      return u.roles.includes('owner') ? ALL : u.roles.includes('admin') ? { kind: 'admin' } : NONE;
    }
    return NONE;
  }

  /**
   * Refuses handing out `roles` and `permissions` in `directory` (null: a
   * service account) beyond what `a` holds. Roles and permissions are matched
   * as exact names: a key holding `reports:write` does not hold `reports:read`
   * at the edge, so it cannot give it either.
   */
  private mayGrant(a: Authority, directory: string | null, roles: readonly string[], permissions: readonly string[], doing = 'grant what its service account does not hold'): void {
    if (a.kind === 'all') return;
    if (a.kind === 'none') throw new MezuError('MEZU_CONSOLE_FORBIDDEN');
    if (a.kind === 'admin') {
      if (directory === CONSOLE_DIRECTORY && roles.includes('owner')) throw new MezuError('MEZU_GRANT_EXCEEDS_CALLER', 'console: an admin cannot make a Console owner; ask an owner');
      return;
    }
    const r = roles.filter((x) => !a.roles.includes(x));
    const p = permissions.filter((x) => !a.permissions.includes(x));
    if (r.length > 0 || p.length > 0) {
      throw new MezuError('MEZU_GRANT_EXCEEDS_CALLER', `console: this key cannot ${doing} (${[...r.map((x) => `role ${x}`), ...p.map((x) => `permission ${x}`)].join(', ')})`);
    }
  }

  /**
   * Refuses changing a user or service account that holds more than `a`: taking it over (a new email
   * and a reset link, a new key) would hand its grants to the caller.
   */
  private mayManage(a: Authority, directory: string | null, target: { roles: readonly string[]; permissions: readonly string[] }, what: string): void {
    if (a.kind === 'admin' && directory === CONSOLE_DIRECTORY && target.roles.includes('owner')) throw new MezuError('MEZU_GRANT_EXCEEDS_CALLER', 'console: an admin cannot change a Console owner; ask an owner');
    if (a.kind !== 'key') return this.mayGrant(a, directory, target.roles, target.permissions);
    const r = target.roles.filter((x) => !a.roles.includes(x));
    const p = target.permissions.filter((x) => !a.permissions.includes(x));
    if (r.length > 0 || p.length > 0) {
      throw new MezuError('MEZU_GRANT_EXCEEDS_CALLER', `console: this key cannot change ${what}: it holds more than the key (${[...r.map((x) => `role ${x}`), ...p.map((x) => `permission ${x}`)].join(', ')})`);
    }
  }

  /** A key never changes its own service account, nor mints keys for it: what it holds comes from someone above it. */
  private notSelf(a: Authority, saId: string): void {
    if (a.kind === 'key' && a.serviceAccountId === saId) throw new MezuError('MEZU_SELF_EDIT_FORBIDDEN');
  }

  // ── audit ───────────────────────────────────────────────────────────────

  /** Writes one audit record (after the change it describes committed). */
  async record(actor: Actor, action: string, target: { type: string; id: string }, projectId: string | null, details: Record<string, unknown>): Promise<void> {
    await this.store.audit.append({
      at: this.clock.now(),
      actor: { type: actor.type, id: actor.id, name: actor.name },
      action,
      target,
      projectId,
      details,
      ip: actor.ip,
    });
  }

  // ── users ───────────────────────────────────────────────────────────────

  user(id: string): UserRecord {
    const u = this.store.users.get(id);
    if (u === undefined) throw new MezuError('MEZU_USER_NOT_FOUND', `store: no user ${id}`);
    return u;
  }

  /** The project an object in `directory` is audited under: the project of a project-scoped directory, else null. */
  private auditProjectOf(directory: string): string | null {
    const ps = this.projectsOfDirectory(directory);
    return ps.length === 1 && ps[0] === directory ? directory : null;
  }

  async createUser(actor: Actor, directory: string, body: Record<string, unknown>): Promise<UserRecord> {
    const c = new Check();
    const email = c.email(body.email, 'email', true);
    const name = c.text(body.name, 'name');
    const displayName = c.text(body.display_name, 'display_name');
    const roles = c.names(body.roles, 'roles', 'role') ?? [];
    const permissions = c.names(body.permissions, 'permissions', 'permission') ?? [];
    if (directory === CONSOLE_DIRECTORY) consoleRoles(c, roles, permissions);
    c.done();
    this.directory(directory);
    this.mayGrant(this.authority(actor), directory, roles, permissions);
    const now = this.clock.now();
    const n = name || email!.split('@')[0]!;
    const rec: UserRecord = { id: newId('usr_'), directory, email: email!, name: n, displayName: displayName || n, status: 'active', roles, permissions, version: 1, createdAt: now, updatedAt: now, lastLoginAt: null };
    await this.store.users.create(rec);
    await this.record(actor, 'user.create', { type: 'user', id: rec.id }, this.auditProjectOf(directory), { directory, email: rec.email, roles, permissions });
    return rec;
  }

  /** Profile, roles and permissions. Status has its own transitions (`setUserStatus`). */
  async updateUser(actor: Actor, id: string, body: Record<string, unknown>): Promise<UserRecord> {
    const cur = this.user(id);
    const c = new Check();
    for (const k of Object.keys(body)) if (!['email', 'name', 'display_name', 'roles', 'permissions'].includes(k)) c.fail(k, k === 'status' ? 'change the status with /suspend, /activate or /deactivate' : 'unknown field (allowed: email, name, display_name, roles, permissions)');
    const patch: Partial<Pick<UserRecord, 'email' | 'name' | 'displayName' | 'roles' | 'permissions'>> = {};
    const email = c.email(body.email, 'email', false);
    if (email !== undefined) patch.email = email;
    const name = c.text(body.name, 'name');
    if (name !== undefined) patch.name = name;
    const dn = c.text(body.display_name, 'display_name');
    if (dn !== undefined) patch.displayName = dn;
    const roles = c.names(body.roles, 'roles', 'role');
    if (roles !== undefined) patch.roles = roles;
    const perms = c.names(body.permissions, 'permissions', 'permission');
    if (perms !== undefined) patch.permissions = perms;
    if (cur.directory === CONSOLE_DIRECTORY) consoleRoles(c, patch.roles ?? cur.roles, patch.permissions ?? cur.permissions);
    if (Object.keys(patch).length === 0 && c.problems.length === 0) c.fail('(body)', 'nothing to change: give email, name, display_name, roles or permissions');
    c.done();
    const a = this.authority(actor);
    this.mayManage(a, cur.directory, cur, `user ${cur.email}`);
    this.mayGrant(a, cur.directory, patch.roles ?? cur.roles, patch.permissions ?? cur.permissions);
    if (cur.directory === CONSOLE_DIRECTORY && cur.roles.includes('owner') && patch.roles !== undefined && !patch.roles.includes('owner')) this.keepAnOwner(cur.id);
    const next = await this.store.users.update(id, patch);
    // Links mailed to the old address (reset, signup) must not keep resetting the account.
    if (next.email.toLowerCase() !== cur.email.toLowerCase()) await this.store.emailTokens.removeForUser(id, cur.directory, [cur.email, next.email]);
    const changed: Record<string, unknown> = {};
    for (const k of Object.keys(patch) as Array<keyof typeof patch>) changed[k === 'displayName' ? 'display_name' : k] = { from: cur[k], to: next[k] };
    await this.record(actor, 'user.update', { type: 'user', id }, this.auditProjectOf(cur.directory), changed);
    return next;
  }

  /**
   * Lifecycle: active ⇄ suspended, and either → deactivated (final: the user
   * cannot sign in again and the record is kept for audit). Leaving `active`
   * ends every session now; the edge also checks the status on every request,
   * so even a session written concurrently is refused.
   */
  async setUserStatus(actor: Actor, id: string, to: UserStatus): Promise<UserRecord> {
    const cur = this.user(id);
    this.mayManage(this.authority(actor), cur.directory, cur, `user ${cur.email}`);
    if (cur.status === to) return cur;
    const allowed = (from: UserStatus) => (from === 'active' && to !== 'active') || (from === 'suspended' && to !== 'suspended');
    if (!allowed(cur.status)) {
      throw new MezuError('MEZU_STATUS_TRANSITION', `store: a ${cur.status} user cannot become ${to}${cur.status === 'deactivated' ? ' (deactivation is final; create a new user)' : ''}`);
    }
    if (cur.directory === CONSOLE_DIRECTORY && to !== 'active' && cur.roles.includes('owner')) this.keepAnOwner(cur.id);
    const next = await this.store.users.update(id, { status: to }, (u) => allowed(u.status));
    const ended = to === 'active' ? 0 : await this.store.sessions.revokeAllForUser(id);
    // Every status change voids the links mailed before it: a suspension is not undone by a reset link,
    // and a reactivated account starts without links sent while it was active before.
    await this.store.emailTokens.removeForUser(id, cur.directory, [cur.email]);
    const verb = to === 'active' ? 'activate' : to === 'suspended' ? 'suspend' : 'deactivate';
    await this.record(actor, `user.${verb}`, { type: 'user', id }, this.auditProjectOf(cur.directory), { email: cur.email, from: cur.status, to, sessions_ended: ended });
    return next;
  }

  /** The Console must keep one active owner: the last one cannot be demoted, suspended or deactivated. */
  private keepAnOwner(exceptId: string): void {
    const others = this.store.users.list(CONSOLE_DIRECTORY).filter((u) => u.id !== exceptId && u.status === 'active' && u.roles.includes('owner'));
    if (others.length === 0) throw new MezuError('MEZU_STATUS_TRANSITION', 'store: this is the last active Console owner; make another user owner first');
  }

  sessions(userId: string): SessionRecord[] {
    this.user(userId);
    return this.store.sessions
      .listForUser(userId)
      .map((x) => x.session)
      .sort((a, b) => b.createdAt - a.createdAt);
  }

  async revokeSession(actor: Actor, userId: string, sid: string): Promise<void> {
    const u = this.user(userId);
    this.mayManage(this.authority(actor), u.directory, u, `user ${u.email}`);
    const th = this.store.sessions.findById(userId, sid);
    if (th === undefined || !(await this.store.sessions.revoke(th))) throw new MezuError('MEZU_SESSION_NOT_FOUND', `store: user ${userId} has no session ${sid}`);
    await this.record(actor, 'session.revoke', { type: 'session', id: sid }, this.auditProjectOf(u.directory), { user: userId, email: u.email });
  }

  async revokeAllSessions(actor: Actor, userId: string): Promise<number> {
    const u = this.user(userId);
    this.mayManage(this.authority(actor), u.directory, u, `user ${u.email}`);
    const n = await this.store.sessions.revokeAllForUser(userId);
    await this.record(actor, 'session.revoke_all', { type: 'user', id: userId }, this.auditProjectOf(u.directory), { email: u.email, sessions_ended: n });
    return n;
  }

  /** A user's second factors as an operator may see them: never a secret or a hash. */
  factors(userId: string): FactorSummary {
    this.user(userId);
    return this.store.factors.summary(userId);
  }

  /**
   * Removes every second factor of a user (a lost authenticator): the TOTP
   * secret, an enrolment in progress, the passkeys and the recovery codes. The user's
   * sessions are kept (they were signed in legitimately); the next sign-in
   * asks only for the password, and step-up routes ask to enrol again.
   * Recorded in the audit log and the user's login history.
   */
  async resetFactors(actor: Actor, userId: string): Promise<{ reset: boolean }> {
    const u = this.user(userId);
    this.mayManage(this.authority(actor), u.directory, u, `user ${u.email}`);
    const had = this.store.factors.summary(userId);
    const reset = await this.store.factors.reset(userId);
    await this.record(actor, 'factor.reset', { type: 'user', id: userId }, this.auditProjectOf(u.directory), { email: u.email, totp: had.totp, passkeys: had.passkeys.length, recovery_codes: had.recoveryLeft });
    await this.store.loginHistory.add({ at: this.clock.now(), type: 'mfa_reset', reason: actor.type, userId, directory: u.directory, email: u.email.toLowerCase(), ip: actor.ip, userAgent: '' });
    return { reset };
  }

  loginHistory(userId: string, limit: number) {
    const u = this.user(userId);
    return this.store.loginHistory.list(u.directory, u.email, limit).reverse();
  }

  // ── service accounts and keys ───────────────────────────────────────────

  serviceAccount(id: string): ServiceAccountRecord {
    const sa = this.store.serviceAccounts.get(id);
    if (sa === undefined) throw new MezuError('MEZU_SERVICE_ACCOUNT_NOT_FOUND', `store: no service account ${id}`);
    return sa;
  }

  async createServiceAccount(actor: Actor, projectId: string, body: Record<string, unknown>): Promise<ServiceAccountRecord> {
    this.project(projectId);
    const c = new Check();
    const name = c.text(body.name, 'name', { required: true, max: 100 });
    if (name === '') c.fail('name', 'must not be empty');
    const roles = c.names(body.roles, 'roles', 'role') ?? [];
    const permissions = c.names(body.permissions, 'permissions', 'permission') ?? [];
    c.done();
    this.mayGrant(this.authority(actor), null, roles, permissions);
    const now = this.clock.now();
    const rec: ServiceAccountRecord = { id: newId('sa_'), projectId, name: name!, status: 'active', roles, permissions, version: 1, createdAt: now, updatedAt: now };
    await this.store.serviceAccounts.create(rec);
    await this.record(actor, 'service_account.create', { type: 'service_account', id: rec.id }, projectId, { name: rec.name, roles, permissions });
    return rec;
  }

  async updateServiceAccount(actor: Actor, id: string, body: Record<string, unknown>): Promise<ServiceAccountRecord> {
    const cur = this.serviceAccount(id);
    const c = new Check();
    for (const k of Object.keys(body)) if (!['name', 'status', 'roles', 'permissions'].includes(k)) c.fail(k, 'unknown field (allowed: name, status, roles, permissions)');
    const patch: Partial<Pick<ServiceAccountRecord, 'name' | 'status' | 'roles' | 'permissions'>> = {};
    const name = c.text(body.name, 'name', { max: 100 });
    if (name !== undefined) patch.name = name;
    if (body.status !== undefined) {
      if (body.status === 'active' || body.status === 'disabled') patch.status = body.status;
      else c.fail('status', 'must be active or disabled');
    }
    const roles = c.names(body.roles, 'roles', 'role');
    if (roles !== undefined) patch.roles = roles;
    const perms = c.names(body.permissions, 'permissions', 'permission');
    if (perms !== undefined) patch.permissions = perms;
    if (Object.keys(patch).length === 0 && c.problems.length === 0) c.fail('(body)', 'nothing to change: give name, status, roles or permissions');
    c.done();
    const a = this.authority(actor);
    this.notSelf(a, id);
    this.mayManage(a, null, cur, `service account ${cur.name}`);
    this.mayGrant(a, null, patch.roles ?? cur.roles, patch.permissions ?? cur.permissions);
    const next = await this.store.serviceAccounts.update(id, patch);
    const changed: Record<string, unknown> = {};
    for (const k of Object.keys(patch) as Array<keyof typeof patch>) changed[k] = { from: cur[k], to: next[k] };
    await this.record(actor, patch.status === 'disabled' ? 'service_account.disable' : patch.status === 'active' && cur.status !== 'active' ? 'service_account.enable' : 'service_account.update', { type: 'service_account', id }, cur.projectId, changed);
    return next;
  }

  key(saId: string, keyId: string): ApiKeyRecord {
    const k = this.store.serviceAccounts.getKey(keyId);
    if (k === undefined || k.serviceAccountId !== saId) throw new MezuError('MEZU_KEY_NOT_FOUND', `store: service account ${saId} has no key ${keyId}`);
    return k;
  }

  private newKeyRecord(actor: Actor, sa: ServiceAccountRecord, expiresAt: number | null, rotatedFrom: string | null): { rec: ApiKeyRecord; text: string } {
    const k = newApiKey();
    const rec: ApiKeyRecord = {
      id: k.id, serviceAccountId: sa.id, projectId: sa.projectId, secretHash: hashToken(k.secret),
      createdAt: this.clock.now(), expiresAt, revokedAt: null, lastUsedAt: null,
      rotatedFrom, replacedBy: null, createdBy: `${actor.type}:${actor.id}`,
      assertion: null, assertionExp: 0, assertionUserVersion: 0, assertionKid: null,
    };
    return { rec, text: k.text };
  }

  /** A new key; its text (`mzk_<id>_<secret>`) is returned here once and never again (only its SHA-256 is stored). */
  async createKey(actor: Actor, saId: string, body: Record<string, unknown>): Promise<{ rec: ApiKeyRecord; text: string }> {
    const sa = this.serviceAccount(saId);
    const a = this.authority(actor);
    this.notSelf(a, sa.id);
    this.mayManage(a, null, sa, `service account ${sa.name}`);
    const c = new Check();
    for (const k of Object.keys(body)) if (k !== 'expires_in') c.fail(k, 'unknown field (allowed: expires_in)');
    const life = c.duration(body.expires_in, 'expires_in', MAX_KEY_LIFETIME_MS);
    c.done();
    const out = this.newKeyRecord(actor, sa, life === undefined ? null : this.clock.now() + life, null);
    await this.store.serviceAccounts.addKey(out.rec);
    await this.record(actor, 'key.create', { type: 'key', id: out.rec.id }, sa.projectId, { service_account: sa.id, expires_at: out.rec.expiresAt === null ? null : new Date(out.rec.expiresAt).toISOString() });
    return out;
  }

  /**
   * Rotation with an overlap: a new key (same expiry policy: the old key's
   * remaining lifetime, or none) is created, and the old one keeps working
   * until the overlap ends, then expires. Clients (and Warpgates) switch to
   * the new key within the overlap.
   */
  async rotateKey(actor: Actor, saId: string, keyId: string, body: Record<string, unknown>): Promise<{ rec: ApiKeyRecord; text: string; old: ApiKeyRecord }> {
    const sa = this.serviceAccount(saId);
    const old = this.key(saId, keyId);
    const a = this.authority(actor);
    this.notSelf(a, sa.id);
    this.mayManage(a, null, sa, `service account ${sa.name}`);
    const c = new Check();
    for (const k of Object.keys(body)) if (k !== 'overlap' && k !== 'expires_in') c.fail(k, 'unknown field (allowed: overlap, expires_in)');
    const overlap = c.duration(body.overlap, 'overlap', MAX_OVERLAP_MS) ?? DEFAULT_OVERLAP_MS;
    const life = c.duration(body.expires_in, 'expires_in', MAX_KEY_LIFETIME_MS);
    c.done();
    const now = this.clock.now();
    const expiresAt = life !== undefined ? now + life : old.expiresAt === null ? null : now + Math.max(0, old.expiresAt - old.createdAt);
    const fresh = this.newKeyRecord(actor, sa, expiresAt, old.id);
    if (!(await this.store.serviceAccounts.rotateKey(old.id, fresh.rec, now + overlap))) {
      throw new MezuError('MEZU_KEY_NOT_LIVE', `store: key ${old.id} is revoked, expired or already rotated; create a new key instead`);
    }
    const oldNow = this.store.serviceAccounts.getKey(old.id)!;
    await this.record(actor, 'key.rotate', { type: 'key', id: old.id }, sa.projectId, { service_account: sa.id, new_key: fresh.rec.id, old_key_expires_at: new Date(oldNow.expiresAt!).toISOString() });
    return { ...fresh, old: oldNow };
  }

  /** Revocation: the next request with the key is refused in every worker, and the edge closes the tunnels of Warpgates enrolled with it. */
  async revokeKey(actor: Actor, saId: string, keyId: string): Promise<ApiKeyRecord> {
    const sa = this.serviceAccount(saId);
    const k = this.key(saId, keyId);
    const a = this.authority(actor);
    // A key may revoke its own keys (that only takes away); another account's only when it holds as much.
    if (!(a.kind === 'key' && a.serviceAccountId === sa.id)) this.mayManage(a, null, sa, `service account ${sa.name}`);
    if (k.revokedAt !== null) return k;
    await this.store.serviceAccounts.revokeKey(keyId);
    const wg = await this.store.warpgates.refuseKey(keyId, this.clock.now());
    await this.record(actor, 'key.revoke', { type: 'key', id: keyId }, sa.projectId, { service_account: sa.id, warpgates: wg });
    return this.store.serviceAccounts.getKey(keyId)!;
  }

  // ── config: routes, organizations, projects ─────────────────────────────

  private async applyEdited(actor: Actor, text: string, expect: number, action: string, target: { type: string; id: string }, projectId: string | null, details: Record<string, unknown>, routesIndex?: number): Promise<number> {
    const v = parseConfigYaml(text);
    if (!v.ok) throw new InvalidRequest(routesIndex === undefined ? v.problems : relativeProblems(v.problems, routesIndex), 'MEZU_CONFIG_INVALID');
    const version = await this.store.config.apply(text, v.config, expect);
    await this.record(actor, action, target, projectId, { ...details, version });
    return version;
  }

  /** The current YAML and its version ('' and 0 before the first apply). */
  source(): { text: string; version: number } {
    const c = this.store.config.current();
    return c === undefined ? { text: '', version: 0 } : { text: c.source, version: c.version };
  }

  /** `apply`: a whole YAML config, validated; `expectVersion` guards against a lost update. */
  async applyConfig(actor: Actor, text: string, expectVersion: number | null): Promise<number> {
    const v = parseConfigYaml(text);
    if (!v.ok) throw new InvalidRequest(v.problems, 'MEZU_CONFIG_INVALID');
    const before = this.source().version;
    const version = await this.store.config.apply(text, v.config, expectVersion);
    await this.record(actor, 'config.apply', { type: 'config', id: String(version) }, null, { from_version: before, version, projects: v.config.projects.map((p) => p.id) });
    return version;
  }

  /** Replaces a project's routes; problems come back located at `routes[i].field`. */
  async setRoutes(actor: Actor, projectId: string, routes: unknown, expectVersion: number | null): Promise<number> {
    const p = this.project(projectId);
    if (!Array.isArray(routes)) throw new InvalidRequest([{ at: 'routes', message: 'must be a list of rules such as { path: /health, auth: public }' }]);
    const cur = this.source();
    if (expectVersion !== null && expectVersion !== cur.version) throw new MezuError('MEZU_CONFIG_STALE');
    const before = (parseConfigYaml(cur.text) as { ok: true; config: { projects: Array<{ id: string; routes: unknown }> } }).config.projects.find((x) => x.id === p.id)?.routes ?? [];
    // Routes decide who reaches what: a key that could drop `roles: [admin]` from the admin prefix rule, or add a
    // public `/admin/panel` beside it, would grant everyone what those names guard. So a key edits a
    // project's routes only while it holds every role and permission they test, before and after.
    const tested = testedNames([...(Array.isArray(before) ? before : []), ...routes]);
    this.mayGrant(this.authority(actor), null, tested.roles, tested.permissions, 'edit routes that test roles or permissions its service account does not hold');
    const r = setRoutes(cur.text, projectId, routes as RouteInput[]);
    if (!r.ok) throw new InvalidRequest(r.problems);
    return this.applyEdited(actor, r.text, cur.version, 'routes.update', { type: 'project', id: projectId }, projectId, { before: routeSummary(before), after: routeSummary(routes) }, r.index);
  }

  async createOrganization(actor: Actor, body: Record<string, unknown>): Promise<number> {
    const cur = this.source();
    if (typeof body.id === 'string' && this.config()?.organizations.has(body.id)) throw new MezuError('MEZU_ALREADY_EXISTS', `console: organization "${body.id}" already exists`);
    const r = addOrganization(cur.text, { id: body.id, name: body.name });
    if (!r.ok) throw new InvalidRequest(r.problems);
    return this.applyEdited(actor, r.text, cur.version, 'organization.create', { type: 'organization', id: String(body.id) }, null, { name: body.name ?? null });
  }

  async createProject(actor: Actor, body: Record<string, unknown>): Promise<number> {
    const cur = this.source();
    if (typeof body.id === 'string' && this.config()?.projects.has(body.id)) throw new MezuError('MEZU_ALREADY_EXISTS', `console: project "${body.id}" already exists`);
    const input: ProjectInput = { id: body.id, name: body.name, organization: body.organization, directory: body.directory, hosts: body.hosts, upstream: body.upstream, default: body.default };
    const r = addProject(cur.text, input);
    if (!r.ok) throw new InvalidRequest(r.problems);
    const org = typeof body.organization === 'string' ? body.organization : DEFAULT_ORGANIZATION;
    return this.applyEdited(actor, r.text, cur.version, 'project.create', { type: 'project', id: String(body.id) }, typeof body.id === 'string' ? body.id : null, {
      organization: org,
      directory: body.directory === 'organization' ? orgDirectoryId(org) : body.id ?? null,
      hosts: body.hosts ?? null,
      upstream: body.upstream ?? null,
    });
  }

  /** Console operators from the CLI (the first owner has no one to create it but the host's operator). */
  async createConsoleUser(actor: Actor, email: string, role: ConsoleRole): Promise<UserRecord> {
    return this.createUser(actor, CONSOLE_DIRECTORY, { email, roles: [role] });
  }
}

function consoleRoles(c: Check, roles: string[], permissions: string[]): void {
  const r = roles.filter((x) => (CONSOLE_ROLES as readonly string[]).includes(x));
  if (r.length !== 1 || roles.length !== 1) c.fail('roles', `a Console user has exactly one role: ${CONSOLE_ROLES.join(', ')}`);
  if (permissions.length > 0) c.fail('permissions', 'Console users have roles, not permissions');
}

/** Every role and permission name the rules test (raw input included: validation comes later). */
function testedNames(routes: unknown[]): { roles: string[]; permissions: string[] } {
  const roles = new Set<string>();
  const permissions = new Set<string>();
  for (const r of routes) {
    const o = (r ?? {}) as Record<string, unknown>;
    if (Array.isArray(o.roles)) for (const x of o.roles) if (typeof x === 'string') roles.add(x);
    if (Array.isArray(o.permissions)) for (const x of o.permissions) if (typeof x === 'string') permissions.add(x);
  }
  return { roles: [...roles], permissions: [...permissions] };
}

function routeSummary(routes: unknown): string[] {
  if (!Array.isArray(routes)) return [];
  return routes.map((r) => {
    const o = (r ?? {}) as Record<string, unknown>;
    const extra = ['methods', 'principals', 'roles', 'permissions'].filter((k) => Array.isArray(o[k]) && (o[k] as unknown[]).length > 0).map((k) => `${k}=${(o[k] as unknown[]).join(',')}`);
    return `${String(o.path)} ${String(o.auth ?? 'required')}${extra.length > 0 ? ` ${extra.join(' ')}` : ''}`;
  });
}
