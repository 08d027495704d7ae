/**
 * The store: one typed interface per record kind over the shared LMDB
 * environment. Nothing here caches records in process memory (a revocation
 * written by one process must be seen by every other on its next read).
 *
 * A later issue adds multi-node edges replicating through NATS JetStream with
 * LMDB as each node's local replica; callers only see these interfaces.
 */
import { openEnv, openDb, RecordReader, type RootDatabase, type Database } from '../../native/lmdb.js';
import type {
  UserRecord,
  SessionRecord,
  ServiceAccountRecord,
  ApiKeyRecord,
  SigningKeyRecord,
  StoredConfig,
  UserStatus,
  CredentialRecord,
  LoginEventRecord,
  EmailTokenRecord,
  ThrottleRecord,
  OutboxRecord,
  AuditRecord,
  TunnelCaRecord,
  WarpgateRecord,
  TunnelStatusRecord,
} from './records.js';
import { randomBytes } from 'node:crypto';
import { MezuError } from '../errors/index.js';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { StoreSealer, isSealed } from './seal.js';

export * from './records.js';
export { StoreSealer, ENV_STORE_KEY, STORE_KEY_FILE, isSealed } from './seal.js';

export class ConfigStore {
  constructor(private readonly db: Database<StoredConfig | number, string>) {}
  /** Current applied config, or undefined when none was applied. */
  current(): StoredConfig | undefined {
    return this.db.get('current') as StoredConfig | undefined;
  }
  currentVersion(): number {
    const c = this.db.get('current') as StoredConfig | undefined;
    return c === undefined ? 0 : c.version;
  }
  /**
   * Stores a validated config as the next version. `expectedVersion` guards
   * against a lost update when two operators apply at once: the write fails
   * with MEZU_CONFIG_STALE if someone applied in between.
   */
  async apply(source: string, config: unknown, expectedVersion: number | null): Promise<number> {
    let next = 0;
    const ok = await this.db.transaction(() => {
      const cur = this.db.get('current') as StoredConfig | undefined;
      const curVersion = cur === undefined ? 0 : cur.version;
      if (expectedVersion !== null && expectedVersion !== curVersion) return false;
      next = curVersion + 1;
      const rec: StoredConfig = { version: next, appliedAt: Date.now(), source, config };
      void this.db.put('current', rec);
      void this.db.put(`history:${String(next).padStart(10, '0')}`, rec);
      return true;
    });
    if (!ok) throw new MezuError('MEZU_CONFIG_STALE');
    return next;
  }
}

export class UserStore {
  private readonly reader: RecordReader<UserRecord>;
  constructor(
    private readonly db: Database<UserRecord, string>,
    private readonly byEmail: Database<string, string>,
  ) {
    this.reader = new RecordReader(db);
  }
  get(id: string): UserRecord | undefined {
    return this.db.get(id);
  }
  /** The request path's read: read from the store every call, frozen, decoded again only when it changed (RecordReader). */
  getForRequest(id: string): Readonly<UserRecord> | undefined {
    return this.reader.get(id);
  }
  getByEmail(directory: string, email: string): UserRecord | undefined {
    const id = this.byEmail.get(emailKey(directory, email));
    return id === undefined ? undefined : this.db.get(id);
  }
  async create(rec: UserRecord): Promise<void> {
    const ok = await this.db.transaction(() => {
      const k = emailKey(rec.directory, rec.email);
      if (this.byEmail.get(k) !== undefined || this.db.get(rec.id) !== undefined) return false;
      void this.byEmail.put(k, rec.id);
      void this.db.put(rec.id, rec);
      return true;
    });
    if (!ok) throw new MezuError('MEZU_USER_EXISTS', `store: a user with email ${rec.email} already exists in directory ${rec.directory}`);
  }
  /**
   * Applies a change and bumps the version (so cached assertions are
   * re-minted). An email change moves the email index in the same
   * transaction and fails with MEZU_USER_EXISTS when the new email is taken.
   * `expect` (optional) must hold on the current record, or nothing is
   * written and MEZU_STATUS_TRANSITION is thrown (a compare-and-swap).
   */
  async update(
    id: string,
    patch: Partial<Pick<UserRecord, 'name' | 'displayName' | 'email' | 'status' | 'roles' | 'permissions' | 'lastLoginAt'>>,
    expect?: (cur: UserRecord) => boolean,
  ): Promise<UserRecord> {
    let out: UserRecord | undefined;
    let outcome = 'missing' as 'ok' | 'missing' | 'taken' | 'refused';
    await this.db.transaction(() => {
      const cur = this.db.get(id);
      if (cur === undefined) return;
      if (expect !== undefined && !expect(cur)) {
        outcome = 'refused';
        return;
      }
      if (patch.email !== undefined && patch.email.toLowerCase() !== cur.email.toLowerCase()) {
        const k = emailKey(cur.directory, patch.email);
        if (this.byEmail.get(k) !== undefined) {
          outcome = 'taken';
          return;
        }
        void this.byEmail.remove(emailKey(cur.directory, cur.email));
        void this.byEmail.put(k, id);
      }
      out = { ...cur, ...patch, version: cur.version + 1, updatedAt: Date.now() };
      void this.db.put(id, out);
      outcome = 'ok';
    });
    if (outcome === 'taken') throw new MezuError('MEZU_USER_EXISTS', `store: a user with email ${patch.email} already exists in this directory`);
    if (outcome === 'refused') throw new MezuError('MEZU_STATUS_TRANSITION');
    if (out === undefined) throw new MezuError('MEZU_USER_NOT_FOUND', `store: no user ${id}`);
    return out;
  }
  async setStatus(id: string, status: UserStatus): Promise<UserRecord> {
    return this.update(id, { status });
  }
  list(directory: string | null): UserRecord[] {
    const out: UserRecord[] = [];
    for (const { value } of this.db.getRange()) if (directory === null || value.directory === directory) out.push(value);
    return out;
  }
  /**
   * One page of a directory's users in email order, read through the email
   * index (a range read, not a scan of every directory). `after` is the last
   * email of the previous page; `filter` narrows (search, status).
   */
  page(directory: string, after: string | null, limit: number, filter: (u: UserRecord) => boolean): { users: UserRecord[]; more: boolean } {
    const prefix = `${directory}\u0000`;
    const start = after === null ? prefix : `${prefix}${after.toLowerCase()}\u0000`;
    const users: UserRecord[] = [];
    let more = false;
    for (const { value: id } of this.byEmail.getRange({ start, end: `${directory}\u0001` })) {
      const u = this.db.get(id);
      if (u === undefined || !filter(u)) continue;
      if (users.length === limit) {
        more = true;
        break;
      }
      users.push(u);
    }
    return { users, more };
  }
  /** Directories that hold at least one user, with their user counts. */
  directories(): Map<string, number> {
    const out = new Map<string, number>();
    for (const { key } of this.byEmail.getRange()) {
      const d = key.slice(0, key.indexOf('\u0000'));
      out.set(d, (out.get(d) ?? 0) + 1);
    }
    return out;
  }
}

function emailKey(directory: string, email: string): string {
  return `${directory}\u0000${email.toLowerCase()}`;
}

/**
 * Deletes the records `expired` says are dead, a page of `batch` keys at a
 * time: each page is read in its own short read, and its dead records are
 * deleted in one write transaction that re-reads each of them (a concurrent
 * refresh or revoke wins). The write lock is never held for a whole scan, no
 * read snapshot lives across the scan, and the next page starts from the last
 * key seen (a cursor kept across deletions skips records: 2 of 1,234 in
 * test/unit/login/retention.test.ts).
 */
async function sweepBatched<V>(db: Database<V, string>, expired: (v: V) => boolean, onRemove?: (key: string, v: V) => void, batch = 500): Promise<number> {
  let n = 0;
  let after: string | undefined;
  for (;;) {
    const dead: string[] = [];
    let seen = 0;
    let last: string | undefined;
    for (const { key, value } of db.getRange(after === undefined ? { limit: batch } : { start: after, limit: batch + 1 })) {
      if (key === after) continue;
      seen++;
      last = key;
      if (expired(value)) dead.push(key);
      if (seen === batch) break;
    }
    if (dead.length > 0) {
      n += await db.transaction(() => {
        let k = 0;
        for (const key of dead) {
          const cur = db.get(key);
          if (cur === undefined || !expired(cur)) continue;
          void db.remove(key);
          onRemove?.(key, cur);
          k++;
        }
        return k;
      });
    }
    if (seen < batch || last === undefined) return n;
    after = last;
  }
}

export class SessionStore {
  private readonly reader: RecordReader<SessionRecord>;
  constructor(
    private readonly db: Database<SessionRecord, string>,
    private readonly byUser: Database<string, string>,
  ) {
    this.reader = new RecordReader(db);
  }
  /** Looks a session up by the hash of its token (the token itself is never stored). */
  get(tokenHash: string): SessionRecord | undefined {
    return this.db.get(tokenHash);
  }
  /** The request path's read: read from the store every call, frozen, decoded again only when it changed (RecordReader). */
  getForRequest(tokenHash: string): Readonly<SessionRecord> | undefined {
    return this.reader.get(tokenHash);
  }
  async create(tokenHash: string, rec: SessionRecord): Promise<void> {
    await this.db.transaction(() => {
      void this.db.put(tokenHash, rec);
      void this.byUser.put(`${rec.userId}\u0000${rec.id}`, tokenHash);
    });
  }
  /**
   * Idle refresh and assertion cache: rewrites only if the session still
   * exists (a concurrent revoke wins).
   */
  async refresh(tokenHash: string, patch: Partial<Pick<SessionRecord, 'lastSeenAt' | 'assertion' | 'assertionExp' | 'assertionUserVersion' | 'assertionKid'>>): Promise<boolean> {
    return this.db.transaction(() => {
      const cur = this.db.get(tokenHash);
      if (cur === undefined) return false;
      void this.db.put(tokenHash, { ...cur, ...patch });
      return true;
    });
  }
  async revoke(tokenHash: string): Promise<boolean> {
    return this.db.transaction(() => {
      const cur = this.db.get(tokenHash);
      if (cur === undefined) return false;
      void this.db.remove(tokenHash);
      void this.byUser.remove(`${cur.userId}\u0000${cur.id}`);
      return true;
    });
  }
  /** Ends every session of a user; returns how many. */
  async revokeAllForUser(userId: string): Promise<number> {
    return this.db.transaction(() => {
      let n = 0;
      const prefix = `${userId}\u0000`;
      for (const { key, value } of this.byUser.getRange({ start: prefix, end: `${userId}\u0001` })) {
        void this.db.remove(value);
        void this.byUser.remove(key);
        n++;
      }
      return n;
    });
  }
  /** Finds a session by its public id (for revocation by operators). */
  findById(userId: string, sid: string): string | undefined {
    return this.byUser.get(`${userId}\u0000${sid}`);
  }
  /**
   * Deletes sessions `expired` says are over (absolute or idle lifetime
   * passed: the same test the request path applies), with their per-user
   * index entries; returns how many.
   */
  async sweep(expired: (s: SessionRecord) => boolean): Promise<number> {
    return sweepBatched(this.db, expired, (_key, cur) => void this.byUser.remove(`${cur.userId}\u0000${cur.id}`));
  }
  /** How many sessions the store holds (operators, tests). */
  count(): number {
    return this.db.getCount();
  }
  listForUser(userId: string): Array<{ tokenHash: string; session: SessionRecord }> {
    const out: Array<{ tokenHash: string; session: SessionRecord }> = [];
    for (const { value } of this.byUser.getRange({ start: `${userId}\u0000`, end: `${userId}\u0001` })) {
      const s = this.db.get(value);
      if (s !== undefined) out.push({ tokenHash: value, session: s });
    }
    return out;
  }
}

export class ServiceAccountStore {
  private readonly accountReader: RecordReader<ServiceAccountRecord>;
  private readonly keyReader: RecordReader<ApiKeyRecord>;
  constructor(
    private readonly accounts: Database<ServiceAccountRecord, string>,
    private readonly keys: Database<ApiKeyRecord, string>,
  ) {
    this.accountReader = new RecordReader(accounts);
    this.keyReader = new RecordReader(keys);
  }
  get(id: string): ServiceAccountRecord | undefined {
    return this.accounts.get(id);
  }
  getKey(id: string): ApiKeyRecord | undefined {
    return this.keys.get(id);
  }
  /** The request path's reads: read from the store every call, frozen, decoded again only when changed (RecordReader). */
  getForRequest(id: string): Readonly<ServiceAccountRecord> | undefined {
    return this.accountReader.get(id);
  }
  getKeyForRequest(id: string): Readonly<ApiKeyRecord> | undefined {
    return this.keyReader.get(id);
  }
  async create(rec: ServiceAccountRecord): Promise<void> {
    await this.accounts.put(rec.id, rec);
  }
  async addKey(rec: ApiKeyRecord): Promise<void> {
    await this.keys.put(rec.id, rec);
  }
  async revokeKey(id: string): Promise<boolean> {
    return this.keys.transaction(() => {
      const cur = this.keys.get(id);
      if (cur === undefined || cur.revokedAt !== null) return false;
      void this.keys.put(id, { ...cur, revokedAt: Date.now() });
      return true;
    });
  }
  async refreshKey(id: string, patch: Partial<Pick<ApiKeyRecord, 'lastUsedAt' | 'assertion' | 'assertionExp' | 'assertionUserVersion' | 'assertionKid'>>): Promise<void> {
    await this.keys.transaction(() => {
      const cur = this.keys.get(id);
      if (cur !== undefined) void this.keys.put(id, { ...cur, ...patch });
    });
  }
  async setStatus(id: string, status: ServiceAccountRecord['status']): Promise<void> {
    await this.update(id, { status });
  }
  /** Applies a change and bumps the version (cached key assertions are re-minted). */
  async update(id: string, patch: Partial<Pick<ServiceAccountRecord, 'name' | 'status' | 'roles' | 'permissions'>>): Promise<ServiceAccountRecord> {
    const out = await this.accounts.transaction(() => {
      const cur = this.accounts.get(id);
      if (cur === undefined) return undefined;
      const next = { ...cur, ...patch, version: cur.version + 1, updatedAt: Date.now() };
      void this.accounts.put(id, next);
      return next;
    });
    if (out === undefined) throw new MezuError('MEZU_SERVICE_ACCOUNT_NOT_FOUND', `store: no service account ${id}`);
    return out;
  }
  /** Service accounts of a project (every project when null), oldest first. */
  list(projectId: string | null): ServiceAccountRecord[] {
    const out: ServiceAccountRecord[] = [];
    for (const { value } of this.accounts.getRange()) if (projectId === null || value.projectId === projectId) out.push(value);
    return out.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }
  /** Keys of a service account, oldest first. */
  listKeys(serviceAccountId: string): ApiKeyRecord[] {
    const out: ApiKeyRecord[] = [];
    for (const { value } of this.keys.getRange()) if (value.serviceAccountId === serviceAccountId) out.push(value);
    return out.sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1));
  }
  /**
   * Rotation: stores the new key and, in the same transaction, marks the old
   * one replaced and makes it expire at `oldExpiresAt` (the overlap's end, or
   * sooner when it already expired earlier). False when the old key is not
   * live any more (revoked, expired, or already replaced).
   */
  async rotateKey(oldId: string, fresh: ApiKeyRecord, oldExpiresAt: number): Promise<boolean> {
    return this.keys.transaction(() => {
      const cur = this.keys.get(oldId);
      if (cur === undefined || cur.revokedAt !== null || (cur.replacedBy ?? null) !== null) return false;
      if (cur.expiresAt !== null && cur.expiresAt <= Date.now()) return false;
      const exp = cur.expiresAt === null ? oldExpiresAt : Math.min(cur.expiresAt, oldExpiresAt);
      void this.keys.put(oldId, { ...cur, expiresAt: exp, replacedBy: fresh.id });
      void this.keys.put(fresh.id, fresh);
      return true;
    });
  }
}

/** Assertion signing keys; the private key is sealed at rest (seal.ts) and opened on read. */
export class SigningKeyStore {
  constructor(
    private readonly db: Database<SigningKeyRecord, string>,
    private readonly sealer: StoreSealer,
  ) {}
  all(): SigningKeyRecord[] {
    const out: SigningKeyRecord[] = [];
    for (const { value } of this.db.getRange()) out.push({ ...value, privateKeyPem: this.sealer.open(value.privateKeyPem, `signing key ${value.kid}`) });
    return out.sort((a, b) => a.createdAt - b.createdAt);
  }
  /** The newest key that is not retired. */
  active(): SigningKeyRecord | undefined {
    let best: SigningKeyRecord | undefined;
    for (const k of this.all()) if (k.retiredAt === null && (best === undefined || k.createdAt >= best.createdAt)) best = k;
    return best;
  }
  async add(rec: SigningKeyRecord, retireOthers: boolean): Promise<void> {
    const sealed: SigningKeyRecord = { ...rec, privateKeyPem: this.sealer.seal(rec.privateKeyPem) };
    await this.db.transaction(() => {
      if (retireOthers) {
        for (const { key, value } of this.db.getRange()) {
          if (value.retiredAt === null) void this.db.put(key, { ...value, retiredAt: Date.now() });
        }
      }
      void this.db.put(rec.kid, sealed);
    });
  }
  async remove(kid: string): Promise<void> {
    await this.db.remove(kid);
  }
}

/** Password hashes, by user id. */
export class CredentialStore {
  constructor(private readonly db: Database<CredentialRecord, string>) {}
  get(userId: string): CredentialRecord | undefined {
    return this.db.get(userId);
  }
  async set(userId: string, hash: string): Promise<void> {
    await this.db.transaction(() => {
      const now = Date.now();
      const cur = this.db.get(userId);
      void this.db.put(userId, { userId, hash, createdAt: cur?.createdAt ?? now, updatedAt: now });
    });
  }
  /**
   * Replaces the hash only if it is still `expected` (a rehash on login must
   * not overwrite a password changed in between by a reset).
   */
  async replaceIf(userId: string, expected: string, hash: string): Promise<boolean> {
    return this.db.transaction(() => {
      const cur = this.db.get(userId);
      if (cur === undefined || cur.hash !== expected) return false;
      void this.db.put(userId, { ...cur, hash, updatedAt: Date.now() });
      return true;
    });
  }
}

/**
 * Authentication events, keyed `directory NUL email NUL time seq`, so one
 * range read lists an email's history in time order.
 */
export class LoginHistoryStore {
  private seq = 0;
  constructor(private readonly db: Database<LoginEventRecord, string>) {}
  async add(ev: LoginEventRecord): Promise<void> {
    const key = `${historyPrefix(ev.directory, ev.email)}${String(ev.at).padStart(15, '0')}${randomBytes(3).toString('hex')}${(this.seq++ & 0xffff).toString(16).padStart(4, '0')}`;
    await this.db.put(key, ev);
  }
  /** Deletes events older than `before`; returns how many. */
  async sweep(before: number): Promise<number> {
    return sweepBatched(this.db, (ev) => ev.at < before);
  }
  /** Events for an email in a directory, oldest first; at most `limit`, the newest ones. */
  list(directory: string, email: string, limit = 1000): LoginEventRecord[] {
    const prefix = historyPrefix(directory, email);
    const out: LoginEventRecord[] = [];
    for (const { value } of this.db.getRange({ start: prefix + '\uffff', end: prefix, reverse: true, limit })) out.push(value);
    return out.reverse();
  }
}

function historyPrefix(directory: string, email: string): string {
  return `${directory}\u0000${email.toLowerCase()}\u0000`;
}

/** Single-use emailed tokens, keyed by SHA-256 of the token (the token itself is never stored). */
export class EmailTokenStore {
  constructor(private readonly db: Database<EmailTokenRecord, string>) {}
  async add(tokenHash: string, rec: EmailTokenRecord): Promise<void> {
    await this.db.put(tokenHash, rec);
  }
  /** Reads without using it (to render the form behind a link). */
  peek(tokenHash: string): EmailTokenRecord | undefined {
    return this.db.get(tokenHash);
  }
  /**
   * Takes the token: returns it and deletes it in one transaction, so two
   * concurrent uses (two workers, two tabs) get it once. Expired tokens are
   * deleted and not returned.
   */
  async consume(tokenHash: string, now: number): Promise<EmailTokenRecord | undefined> {
    return this.db.transaction(() => {
      const cur = this.db.get(tokenHash);
      if (cur === undefined) return undefined;
      void this.db.remove(tokenHash);
      return cur.expiresAt > now ? cur : undefined;
    });
  }
  /**
   * Deletes every outstanding token of a user, reset and signup alike: those
   * issued for its id, and those sent to any of `emails` in its directory (an
   * email change voids the links sent to the old address, and any signup link
   * already sent to the new one). Called on every password, email and status
   * change: a link mailed before the change must not undo it.
   */
  async removeForUser(userId: string, directory: string, emails: readonly string[]): Promise<number> {
    const lower = emails.map((e) => e.toLowerCase());
    return this.db.transaction(() => {
      let n = 0;
      for (const { key, value } of this.db.getRange()) {
        if (value.userId === userId || (value.directory === directory && lower.includes(value.email.toLowerCase()))) {
          void this.db.remove(key);
          n++;
        }
      }
      return n;
    });
  }
  /** Deletes expired tokens; returns how many. */
  async sweep(now: number): Promise<number> {
    return sweepBatched(this.db, (v) => v.expiresAt <= now);
  }
}

/** Failed-login counters shared by every worker (keys: `acct:…`, `ip:…`). */
export class ThrottleStore {
  constructor(private readonly db: Database<ThrottleRecord, string>) {}
  get(key: string): ThrottleRecord | undefined {
    return this.db.get(key);
  }
  /** Read-modify-write in one transaction; `fn` returns the new record, or null to delete it. */
  async update(key: string, fn: (cur: ThrottleRecord | undefined) => ThrottleRecord | null): Promise<ThrottleRecord | null> {
    return this.db.transaction(() => {
      const next = fn(this.db.get(key));
      if (next === null) void this.db.remove(key);
      else void this.db.put(key, next);
      return next;
    });
  }
  async clear(key: string): Promise<void> {
    await this.db.remove(key);
  }
  /**
   * Deletes counters that no longer change anything: no delay or lock in
   * force, and either a lock that has lifted or no failure for longer than
   * `windowMs` (the longest window in the config). Either way the next attempt
   * would start a fresh count (src/login/throttle.ts countAttempt), so
   * deleting is the same as keeping.
   */
  async sweep(now: number, windowMs: number): Promise<number> {
    return sweepBatched(this.db, (r) => now >= r.blockedUntil && (r.locked || now - r.lastAt > windowMs));
  }
}

/** The development outbox: mail kept in the store, listed by `mezusphere mail outbox`. */
export class OutboxStore {
  constructor(
    private readonly db: Database<OutboxRecord, string>,
    private readonly sealer: StoreSealer,
  ) {}
  /** The text (which carries live reset and signup links) is sealed at rest. */
  async add(rec: OutboxRecord): Promise<void> {
    await this.db.put(`${String(rec.at).padStart(15, '0')}${rec.id}`, { ...rec, text: this.sealer.seal(rec.text) });
  }
  /** The newest `limit` mails, oldest first, optionally only those to one address. */
  list(to: string | null, limit = 50): OutboxRecord[] {
    const out: OutboxRecord[] = [];
    const want = to === null ? null : to.toLowerCase();
    for (const { value } of this.db.getRange({ reverse: true })) {
      if (want !== null && value.to.toLowerCase() !== want) continue;
      out.push({ ...value, text: this.sealer.open(value.text, `outbox mail ${value.id}`) });
      if (out.length >= limit) break;
    }
    return out.reverse();
  }
  /** Deletes mail older than `before`; returns how many. */
  async sweep(before: number): Promise<number> {
    return sweepBatched(this.db, (m) => m.at < before);
  }
}

/** Edge-wide random secrets (the CSRF token keys), created once, shared by every worker, sealed at rest. */
export class SecretStore {
  constructor(
    private readonly db: Database<string, string>,
    private readonly sealer: StoreSealer,
  ) {}
  /** The secret named `name` (32 random bytes, base64url), created on first use; every process gets the same one. */
  async getOrCreate(name: string): Promise<Buffer> {
    const existing = this.db.get(name);
    if (existing !== undefined) return Buffer.from(this.sealer.open(existing, `secret ${name}`), 'base64url');
    const sealed = this.sealer.seal(randomBytes(32).toString('base64url'));
    const v = await this.db.transaction(() => {
      const cur = this.db.get(name);
      if (cur !== undefined) return cur;
      void this.db.put(name, sealed);
      return sealed;
    });
    return Buffer.from(this.sealer.open(v, `secret ${name}`), 'base64url');
  }
}

/**
 * The audit log: one record per change, keyed by time (zero-padded) plus a
 * random suffix, so a reverse range read lists the newest first and a page
 * cursor is simply the last key seen. Append-only.
 */
export class AuditStore {
  constructor(private readonly db: Database<AuditRecord, string>) {}
  async add(rec: AuditRecord): Promise<void> {
    await this.db.put(auditKey(rec), rec);
  }
  /** Newest first; `before` is the cursor (a key) returned with the previous page. */
  page(before: string | null, limit: number, filter: (r: AuditRecord) => boolean): { entries: AuditRecord[]; next: string | null } {
    const entries: AuditRecord[] = [];
    let last: string | null = null;
    let more = false;
    const opts = before === null ? { reverse: true } : { start: before, reverse: true };
    for (const { key, value } of this.db.getRange(opts)) {
      if (key === before) continue;
      if (!filter(value)) continue;
      if (entries.length === limit) {
        more = true;
        break;
      }
      entries.push(value);
      last = key;
    }
    return { entries, next: more ? last : null };
  }
}

export function auditKey(rec: AuditRecord): string {
  return `${String(rec.at).padStart(15, '0')}${rec.id}`;
}

/** A project's tunnel CA without its private key: what the edge needs to admit enrolled Warpgates. */
export type TunnelCaPublic = Omit<TunnelCaRecord, 'key'>;

/**
 * Per-project tunnel CAs (created on a project's first Warpgate enrollment).
 * The private key is sealed at rest and opened only by `get` (the Console
 * signs with it); `all` (every edge worker, every poll) never opens it.
 */
export class TunnelCaStore {
  constructor(
    private readonly db: Database<TunnelCaRecord, string>,
    private readonly sealer: StoreSealer,
  ) {}
  get(projectId: string): TunnelCaRecord | undefined {
    const v = this.db.get(projectId);
    return v === undefined ? undefined : this.opened(v);
  }
  all(): TunnelCaPublic[] {
    const out: TunnelCaPublic[] = [];
    for (const { value } of this.db.getRange()) out.push({ projectId: value.projectId, cert: value.cert, fingerprint256: value.fingerprint256, createdAt: value.createdAt });
    return out;
  }
  /** Stores `rec` unless the project has a CA already; returns the one in the store (two enrollments racing get one CA). */
  async putIfAbsent(rec: TunnelCaRecord): Promise<TunnelCaRecord> {
    const sealed: TunnelCaRecord = { ...rec, key: this.sealer.seal(rec.key) };
    const stored = await this.db.transaction(() => {
      const cur = this.db.get(rec.projectId);
      if (cur !== undefined) return cur;
      void this.db.put(rec.projectId, sealed);
      return sealed;
    });
    return this.opened(stored);
  }
  private opened(v: TunnelCaRecord): TunnelCaRecord {
    return { ...v, key: this.sealer.open(v.key, `tunnel CA key of project ${v.projectId}`) };
  }
}

/** Enrolled Warpgates, by agent id. */
export class WarpgateStore {
  constructor(private readonly db: Database<WarpgateRecord, string>) {}
  get(id: string): WarpgateRecord | undefined {
    return this.db.get(id);
  }
  async put(rec: WarpgateRecord): Promise<void> {
    await this.db.put(rec.id, rec);
  }
  list(projectId: string | null): WarpgateRecord[] {
    const out: WarpgateRecord[] = [];
    for (const { value } of this.db.getRange()) if (projectId === null || value.projectId === projectId) out.push(value);
    return out.sort((a, b) => b.renewedAt - a.renewedAt);
  }
  /** Marks every Warpgate of a key refused (its key was revoked or expired). */
  async refuseKey(keyId: string, at: number): Promise<number> {
    return this.db.transaction(() => {
      let n = 0;
      for (const { key, value } of this.db.getRange()) {
        if (value.keyId === keyId && value.refusedAt === null) {
          void this.db.put(key, { ...value, refusedAt: at });
          n++;
        }
      }
      return n;
    });
  }
}

/** What every edge worker reports about its tunnels, keyed `edgeId:worker`. */
export class TunnelStatusStore {
  constructor(private readonly db: Database<TunnelStatusRecord, string>) {}
  async put(rec: TunnelStatusRecord): Promise<void> {
    await this.db.put(`${rec.edgeId}:${rec.worker}`, rec);
  }
  all(): TunnelStatusRecord[] {
    const out: TunnelStatusRecord[] = [];
    for (const { value } of this.db.getRange()) out.push(value);
    return out;
  }
  /** Deletes reports not refreshed since `before` (edges that stopped). */
  async prune(before: number): Promise<number> {
    return this.db.transaction(() => {
      let n = 0;
      for (const { key, value } of this.db.getRange()) {
        if (value.updatedAt < before) {
          void this.db.remove(key);
          n++;
        }
      }
      return n;
    });
  }
}

export interface Store {
  readonly path: string;
  readonly config: ConfigStore;
  readonly users: UserStore;
  readonly sessions: SessionStore;
  readonly serviceAccounts: ServiceAccountStore;
  readonly signingKeys: SigningKeyStore;
  readonly credentials: CredentialStore;
  readonly loginHistory: LoginHistoryStore;
  readonly emailTokens: EmailTokenStore;
  readonly throttle: ThrottleStore;
  readonly outbox: OutboxStore;
  readonly secrets: SecretStore;
  readonly audit: AuditStore;
  readonly tunnelCas: TunnelCaStore;
  readonly warpgates: WarpgateStore;
  readonly tunnelStatus: TunnelStatusStore;
  /** Seals and opens the secrets kept here (seal.ts); `mezusphere store-key rotate` uses it. */
  readonly sealer: StoreSealer;
  /** Re-seals every sealed field not sealed under the current store key; returns how many changed. */
  reseal(): number;
  /** How many plain values (from a store written before sealing) this open sealed. */
  readonly sealedOnOpen: number;
  /**
   * Rewrites data.mdb without its free pages, then closes the store. Refused
   * while another process has the store open (`mezusphere store compact`).
   */
  compactAndClose(): Promise<{ before: number; after: number }>;
  close(): Promise<void>;
}

/** One kind of sealed value: where it lives and how to read and replace it in a record. */
interface SealedField {
  db: Database<unknown, string>;
  what: string;
  get(v: unknown): string;
  set(v: unknown, sealed: string): unknown;
}

function field<V>(db: Database<V, string>, what: string, get: (v: V) => string, set: (v: V, sealed: string) => V): SealedField {
  return { db: db as Database<unknown, string>, what, get: (v) => get(v as V), set: (v, x) => set(v as V, x) };
}

interface SealedDbs {
  signingKeys: Database<SigningKeyRecord, string>;
  tunnelCas: Database<TunnelCaRecord, string>;
  secrets: Database<string, string>;
  outbox: Database<OutboxRecord, string>;
}

function sealedFields(d: SealedDbs): SealedField[] {
  return [
    field(d.signingKeys, 'signing key', (v) => v.privateKeyPem, (v, x) => ({ ...v, privateKeyPem: x })),
    field(d.tunnelCas, 'tunnel CA key', (v) => v.key, (v, x) => ({ ...v, key: x })),
    field(d.secrets, 'secret', (v) => v, (_v, x) => x),
    field(d.outbox, 'outbox mail', (v) => v.text, (v, x) => ({ ...v, text: x })),
  ];
}

/** The key id of any sealed value in the store, or null when nothing is sealed yet. */
function anySealed(fields: SealedField[]): string | null {
  for (const f of fields) {
    for (const { value } of f.db.getRange()) {
      const v = f.get(value);
      if (typeof v === 'string' && isSealed(v)) return v.split('.')[1] ?? '';
    }
  }
  return null;
}

/**
 * Seals under the current key every value that is not: plain values of a
 * store written before sealing existed (the migration on open), and values
 * sealed under an older key (a rotation, or one interrupted before it
 * finished). A read pass first, so an up-to-date store costs no write; then
 * one synchronous write transaction that re-checks each value (another
 * process may be doing the same).
 */
function resealFields(fields: SealedField[], sealer: StoreSealer): { total: number; plain: number } {
  sealer.reload();
  let n = 0;
  let plain = 0;
  for (const f of fields) {
    const stale: Array<{ key: string; was: string; sealed: string }> = [];
    for (const { key, value } of f.db.getRange()) {
      const v = f.get(value);
      if (typeof v !== 'string' || sealer.isCurrent(v)) continue;
      stale.push({ key, was: v, sealed: '' });
    }
    if (stale.length === 0) continue;
    for (const x of stale) x.sealed = sealer.seal(sealer.open(x.was, `${f.what} ${x.key}`));
    n += f.db.transactionSync(() => {
      let k = 0;
      for (const x of stale) {
        const cur = f.db.get(x.key);
        if (cur === undefined || f.get(cur) !== x.was) continue;
        void f.db.put(x.key, f.set(cur, x.sealed));
        if (!isSealed(x.was)) plain++;
        k++;
      }
      return k;
    });
  }
  return { total: n, plain };
}

/**
 * File modes and owners of the data directory, the store directory and the
 * LMDB files, on every open: directories 0700, files 0600, whatever the
 * umask or an older version left (a pre-existing `store/` of mode 0755 used
 * to get 0644 database files). A path owned by another user is refused: this
 * process could not make it private, and that user can read every secret in it.
 */
function securePaths(paths: Array<[string, number]>): void {
  const uid = typeof process.getuid === 'function' ? process.getuid() : null;
  for (const [path, mode] of paths) {
    if (!existsSync(path)) continue;
    const st = statSync(path);
    if (uid !== null && st.uid !== uid) {
      throw new MezuError('MEZU_STORE_NOT_OWNED', `store: ${path} belongs to uid ${st.uid}, not to uid ${uid} running this process; run as its owner, or \`chown -R\` the data directory to this user`);
    }
    if ((st.mode & 0o777) !== mode) chmodSync(path, mode);
  }
}

/** Opens (creating if needed) the store under `dataDir/store`. */
export function openStore(dataDir: string): Store {
  const path = `${dataDir}/store`;
  const modes: Array<[string, number]> = [[dataDir, 0o700], [path, 0o700], [join(path, 'data.mdb'), 0o600], [join(path, 'lock.mdb'), 0o600]];
  let root: RootDatabase;
  try {
    mkdirSync(path, { recursive: true, mode: 0o700 });
    securePaths(modes);
    root = openEnv({ path });
    // Files LMDB just created got the umask's mode.
    securePaths(modes);
  } catch (err) {
    if (err instanceof MezuError) throw err;
    throw new MezuError('MEZU_STORE_UNAVAILABLE', `store: cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  // One handle per database, shared by the migration and the stores (one view of the shared msgpack structures).
  const dbs: SealedDbs = {
    signingKeys: openDb<SigningKeyRecord>(root, 'signingKeys'),
    tunnelCas: openDb<TunnelCaRecord>(root, 'tunnelCas'),
    secrets: openDb<string>(root, 'secrets'),
    outbox: openDb<OutboxRecord>(root, 'outbox'),
  };
  const fields = sealedFields(dbs);
  let sealer: StoreSealer;
  let sealedOnOpen = 0;
  try {
    sealer = StoreSealer.open(dataDir, () => anySealed(fields), (p) => securePaths([[p, 0o600]]));
    sealedOnOpen = resealFields(fields, sealer).plain;
    if (sealedOnOpen > 0) {
      // Once, at the first open after an upgrade: the plain bytes stay in LMDB's free pages until reused.
      process.stderr.write(`store: sealed ${sealedOnOpen} private key(s) and secret(s) an older version kept in clear in ${path}; their old bytes can remain in free pages of data.mdb until reused: stop the edge and the Console, then run \`mezusphere store compact --data ${dataDir}\`\n`);
    }
  } catch (err) {
    void root.close();
    if (err instanceof MezuError) throw err;
    throw new MezuError('MEZU_STORE_UNAVAILABLE', `store: cannot open ${path}: ${(err as Error).message}`, { cause: err });
  }
  return {
    path,
    config: new ConfigStore(openDb(root, 'config') as Database<StoredConfig | number, string>),
    users: new UserStore(openDb<UserRecord>(root, 'users'), openDb<string>(root, 'usersByEmail')),
    sessions: new SessionStore(openDb<SessionRecord>(root, 'sessions'), openDb<string>(root, 'sessionsByUser')),
    serviceAccounts: new ServiceAccountStore(openDb<ServiceAccountRecord>(root, 'serviceAccounts'), openDb<ApiKeyRecord>(root, 'apiKeys')),
    signingKeys: new SigningKeyStore(dbs.signingKeys, sealer),
    credentials: new CredentialStore(openDb<CredentialRecord>(root, 'credentials')),
    loginHistory: new LoginHistoryStore(openDb<LoginEventRecord>(root, 'loginEvents')),
    emailTokens: new EmailTokenStore(openDb<EmailTokenRecord>(root, 'emailTokens')),
    throttle: new ThrottleStore(openDb<ThrottleRecord>(root, 'throttle')),
    outbox: new OutboxStore(dbs.outbox, sealer),
    secrets: new SecretStore(dbs.secrets, sealer),
    audit: new AuditStore(openDb<AuditRecord>(root, 'audit')),
    tunnelCas: new TunnelCaStore(dbs.tunnelCas, sealer),
    warpgates: new WarpgateStore(openDb<WarpgateRecord>(root, 'warpgates')),
    tunnelStatus: new TunnelStatusStore(openDb<TunnelStatusRecord>(root, 'tunnelStatus')),
    sealer,
    reseal: () => resealFields(fields, sealer).total,
    sealedOnOpen,
    compactAndClose: () => compact(root, path),
    close: () => root.close(),
  };
}

/**
 * LMDB never overwrites a page in place: a value replaced by its sealed form
 * (the migration of an older store) or deleted stays in the file's free pages
 * until a later write reuses them. A compacting copy (mdb_env_copy2 with
 * MDB_CP_COMPACT) holds only live pages; it replaces data.mdb by a rename.
 * Another process with the store open would go on using the old file and its
 * writes would be lost, so this runs only when no other process is listed in
 * the environment's reader table (every process that opened the store has
 * read from it: the migration check reads).
 */
async function compact(root: RootDatabase, path: string): Promise<{ before: number; after: number }> {
  root.readerCheck();
  const others = new Set<number>();
  for (const line of root.readerList().split('\n')) {
    const m = /^\s*(\d+)\s/.exec(line);
    if (m !== null && Number(m[1]) !== process.pid) others.add(Number(m[1]));
  }
  if (others.size > 0) {
    await root.close();
    throw new MezuError('MEZU_STORE_UNAVAILABLE', `store: processes ${[...others].join(', ')} have ${path} open; stop the edge, the Console and other commands first`);
  }
  const file = join(path, 'data.mdb');
  // The copy of a directory-mode environment is a directory holding its data.mdb.
  const tmpDir = join(path, 'compact.tmp');
  const tmp = join(tmpDir, 'data.mdb');
  const before = statSync(file).size;
  rmSync(tmpDir, { recursive: true, force: true });
  mkdirSync(tmpDir, { mode: 0o700 });
  try {
    await root.backup(tmpDir, true);
  } finally {
    await root.close();
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, file);
  rmSync(tmpDir, { recursive: true, force: true });
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return { before, after: statSync(file).size };
}
