/**
 * Users (with the email index of their directory) and their passwords, kept
 * apart from the user record so reading a user never reads a hash.
 */
import type { Database } from '../../native/lmdb.js';
import type { Clock } from '../runtime/index.js';
import { MezuError } from '../errors/index.js';
import type { CredentialRecord, UserRecord, UserStatus } from './records.js';
import { Table } from './table.js';
import type { ChangeFeed } from './changes.js';

function emailKey(directory: string, email: string): string {
  return `${directory}\u0000${email.toLowerCase()}`;
}

export class UserStore extends Table<UserRecord> {
  constructor(
    db: Database<UserRecord, string>,
    private readonly byEmail: Database<string, string>,
    clock: Clock,
    /** Every change of a user is written to the change feed in its transaction (continuous authorization). */
    private readonly feed: ChangeFeed,
  ) {
    super(db, clock);
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
      // Set afresh on every run: a replicated write that loses a race runs this callback again.
      out = undefined;
      outcome = 'missing';
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
      out = { ...cur, ...patch, version: cur.version + 1, updatedAt: this.clock.now() };
      void this.db.put(id, out);
      // Status, roles and permissions decide access: open streams of this user are judged again.
      this.feed.append('user', id);
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
  /** Users of a directory (every directory when null), in id order. */
  list(directory: string | null): UserRecord[] {
    return this.values((u) => directory === null || u.directory === directory);
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

/** Password hashes, by user id. */
export class CredentialStore extends Table<CredentialRecord> {
  async set(userId: string, hash: string): Promise<void> {
    await this.change(userId, (cur) => {
      const now = this.clock.now();
      return { userId, hash, createdAt: cur?.createdAt ?? now, updatedAt: now };
    });
  }
  /**
   * Replaces the hash only if it is still `expected` (a rehash on login must
   * not overwrite a password changed in between by a reset).
   */
  async replaceIf(userId: string, expected: string, hash: string): Promise<boolean> {
    const next = await this.change(userId, (cur) => (cur === undefined || cur.hash !== expected ? undefined : { ...cur, hash, updatedAt: this.clock.now() }));
    return next !== undefined;
  }
}
