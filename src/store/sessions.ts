/**
 * Sessions, keyed by the SHA-256 of their token (the token itself is never
 * stored), with a per-user index so a user's sessions can be listed and
 * ended together.
 */
import type { Database } from '../../native/lmdb.js';
import type { Clock } from '../runtime/index.js';
import type { SessionRecord } from './records.js';
import { Table } from './table.js';
import type { ChangeFeed } from './changes.js';

const userKey = (s: Pick<SessionRecord, 'userId' | 'id'>): string => `${s.userId}\u0000${s.id}`;

export class SessionStore extends Table<SessionRecord> {
  constructor(
    db: Database<SessionRecord, string>,
    private readonly byUser: Database<string, string>,
    clock: Clock,
    /** Revocations are written to the change feed in their transaction (continuous authorization). */
    private readonly feed: ChangeFeed,
  ) {
    super(db, clock);
  }
  async create(tokenHash: string, rec: SessionRecord): Promise<void> {
    await this.db.transaction(() => {
      void this.db.put(tokenHash, rec);
      void this.byUser.put(userKey(rec), tokenHash);
    });
  }
  /**
   * Many sessions in one transaction (an import; the replication bench's
   * bulk load): one write, one fsync, one journal entry when replicated.
   */
  async createMany(list: ReadonlyArray<{ tokenHash: string; rec: SessionRecord }>): Promise<void> {
    await this.db.transaction(() => {
      for (const { tokenHash, rec } of list) {
        void this.db.put(tokenHash, rec);
        void this.byUser.put(userKey(rec), tokenHash);
      }
    });
  }
  /**
   * Idle refresh and assertion cache: rewrites only if the session still
   * exists (a concurrent revoke wins).
   */
  async refresh(tokenHash: string, patch: Partial<Pick<SessionRecord, 'lastSeenAt' | 'assertion' | 'assertionExp' | 'assertionUserVersion' | 'assertionKid' | 'assertionIss'>>): Promise<boolean> {
    return (await this.change(tokenHash, (cur) => (cur === undefined ? undefined : { ...cur, ...patch }))) !== undefined;
  }
  /**
   * A satisfied step-up (src/login/flows/factor.ts): the session keeps its id
   * and token, records when `method` was used (`otp` for a code, `hwk` for a
   * passkey; RFC 8176 names), gains it in `amr` and the `mfa` class, and
   * drops its cached assertion so the next request carries the new claims.
   * False when the session is gone.
   */
  async stepUp(tokenHash: string, at: number, acr: string, method: 'otp' | 'hwk' = 'otp', deviceId = ''): Promise<boolean> {
    return (await this.change(tokenHash, (cur) => (cur === undefined ? undefined : {
      ...cur,
      // A second factor used on this device makes it known for the session (step_up device: known).
      ...(deviceId === '' ? {} : { deviceId, deviceKnown: true }),
      amr: cur.amr.includes(method) ? cur.amr : [...cur.amr, method],
      factorTimes: { ...(cur.factorTimes ?? { pwd: cur.authTime }), [method]: at },
      acr,
      assertion: null, assertionExp: 0, assertionKid: null,
    }))) !== undefined;
  }
  async revoke(tokenHash: string): Promise<boolean> {
    return this.db.transaction(() => {
      const cur = this.db.get(tokenHash);
      if (cur === undefined) return false;
      void this.db.remove(tokenHash);
      void this.byUser.remove(userKey(cur));
      this.feed.append('session', tokenHash);
      return true;
    });
  }
  /** Ends every session of a user; returns how many. */
  async revokeAllForUser(userId: string): Promise<number> {
    return this.db.transaction(() => {
      let n = 0;
      for (const { key, value } of this.byUser.getRange({ start: `${userId}\u0000`, end: `${userId}\u0001` })) {
        void this.db.remove(value);
        void this.byUser.remove(key);
        n++;
      }
      if (n > 0) this.feed.append('user', userId);
      return n;
    });
  }
  /** Finds a session's token hash by its public id (for revocation by operators). */
  findById(userId: string, sid: string): string | undefined {
    return this.byUser.get(userKey({ userId, id: sid }));
  }
  /**
   * Deletes sessions `expired` says are over (absolute or idle lifetime
   * passed: the same test the request path applies), with their per-user
   * index entries; returns how many.
   */
  async sweep(expired: (s: SessionRecord) => boolean): Promise<number> {
    return this.sweepWhere(expired, (_key, cur) => void this.byUser.remove(userKey(cur)));
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
