/** Service accounts and their API keys (the secret stored as its SHA-256 only). */
import type { Database } from '../../native/lmdb.js';
import type { Clock } from '../runtime/index.js';
import { MezuError } from '../errors/index.js';
import type { ApiKeyRecord, ServiceAccountRecord } from './records.js';
import { Table } from './table.js';
import type { ChangeFeed } from './changes.js';

/** Oldest first, ties by id. */
const byCreation = (a: { createdAt: number; id: string }, b: { createdAt: number; id: string }): number => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1);

/** The keys' table: its listing and read-modify-write, for the account store. */
class KeyTable extends Table<ApiKeyRecord> {
  all(keep: (k: ApiKeyRecord) => boolean): ApiKeyRecord[] {
    return this.values(keep);
  }
  update(id: string, change: (cur: ApiKeyRecord | undefined) => ApiKeyRecord | undefined): Promise<ApiKeyRecord | undefined> {
    return this.change(id, change);
  }
}

export class ServiceAccountStore extends Table<ServiceAccountRecord> {
  private readonly keys: KeyTable;
  constructor(
    accounts: Database<ServiceAccountRecord, string>,
    private readonly keyDb: Database<ApiKeyRecord, string>,
    clock: Clock,
    /** Revocations, rotations and account changes are written to the change feed in their transaction. */
    private readonly feed: ChangeFeed,
  ) {
    super(accounts, clock);
    this.keys = new KeyTable(keyDb, clock);
  }
  getKey(id: string): ApiKeyRecord | undefined {
    return this.keys.get(id);
  }
  /** The request path's read of a key (see `getForRequest`). */
  getKeyForRequest(id: string): Readonly<ApiKeyRecord> | undefined {
    return this.keys.getForRequest(id);
  }
  async create(rec: ServiceAccountRecord): Promise<void> {
    await this.db.put(rec.id, rec);
  }
  async addKey(rec: ApiKeyRecord): Promise<void> {
    await this.keyDb.put(rec.id, rec);
  }
  async revokeKey(id: string): Promise<boolean> {
    const next = await this.keys.update(id, (cur) => {
      if (cur === undefined || cur.revokedAt !== null) return undefined;
      this.feed.append('key', id); // inside the update's transaction
      return { ...cur, revokedAt: this.clock.now() };
    });
    return next !== undefined;
  }
  async refreshKey(id: string, patch: Partial<Pick<ApiKeyRecord, 'lastUsedAt' | 'assertion' | 'assertionExp' | 'assertionUserVersion' | 'assertionKid' | 'assertionIss'>>): Promise<void> {
    await this.keys.update(id, (cur) => (cur === undefined ? undefined : { ...cur, ...patch }));
  }
  async setStatus(id: string, status: ServiceAccountRecord['status']): Promise<void> {
    await this.update(id, { status });
  }
  /** Applies a change and bumps the version (cached key assertions are re-minted). */
  async update(id: string, patch: Partial<Pick<ServiceAccountRecord, 'name' | 'status' | 'roles' | 'permissions'>>): Promise<ServiceAccountRecord> {
    const out = await this.change(id, (cur) => {
      if (cur === undefined) return undefined;
      this.feed.append('account', id); // inside the change's transaction
      return { ...cur, ...patch, version: cur.version + 1, updatedAt: this.clock.now() };
    });
    if (out === undefined) throw new MezuError('MEZU_SERVICE_ACCOUNT_NOT_FOUND', `store: no service account ${id}`);
    return out;
  }
  /** Service accounts of a project (every project when null), oldest first. */
  list(projectId: string | null): ServiceAccountRecord[] {
    return this.values((sa) => projectId === null || sa.projectId === projectId).sort(byCreation);
  }
  /** Keys of a service account, oldest first. */
  listKeys(serviceAccountId: string): ApiKeyRecord[] {
    return this.keys.all((k) => k.serviceAccountId === serviceAccountId).sort(byCreation);
  }
  /**
   * Rotation: stores the new key and, in the same transaction, marks the old
   * one replaced and makes it expire at `oldExpiresAt` (the overlap's end, or
   * sooner when it already expired earlier). False when the old key is not
   * live any more (revoked, expired, or already replaced).
   */
  async rotateKey(oldId: string, fresh: ApiKeyRecord, oldExpiresAt: number): Promise<boolean> {
    const keys = this.keyDb;
    return keys.transaction(() => {
      const cur = keys.get(oldId);
      if (cur === undefined || cur.revokedAt !== null || (cur.replacedBy ?? null) !== null) return false;
      if (cur.expiresAt !== null && cur.expiresAt <= this.clock.now()) return false;
      const exp = cur.expiresAt === null ? oldExpiresAt : Math.min(cur.expiresAt, oldExpiresAt);
      void keys.put(oldId, { ...cur, expiresAt: exp, replacedBy: fresh.id });
      void keys.put(fresh.id, fresh);
      // The old key now expires sooner: open streams on it take the new deadline.
      this.feed.append('key', oldId);
      return true;
    });
  }
}
