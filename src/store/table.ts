/**
 * One LMDB database of one record kind, keyed by string: the reads and the
 * sweep every record store shares. Nothing here caches records in process
 * memory (a revocation written by one process must be seen by every other on
 * its next read); `getForRequest` only skips decoding bytes that did not
 * change (RecordReader, native/lmdb.ts).
 */
import { RecordReader, type Database } from '../../native/lmdb.js';
import type { Clock } from '../runtime/index.js';
import type { StoreSealer } from './seal.js';

/** Keys a sweep reads, and deletes at most, per write transaction. */
export const SWEEP_BATCH = 500;

export class Table<V extends object> {
  private readonly reader: RecordReader<V>;

  constructor(
    protected readonly db: Database<V, string>,
    /** Timestamps of the changes the store makes itself (`updatedAt`, `revokedAt`, …). */
    protected readonly clock: Clock,
  ) {
    this.reader = new RecordReader(db);
  }

  /** The record as stored (opened, where a field is sealed), to read or to change. */
  get(key: string): V | undefined {
    const v = this.db.get(key);
    return v === undefined ? undefined : this.opened(v);
  }

  /**
   * The request path's read: from the store on every call, frozen, decoded
   * again only when its bytes changed (RecordReader). Only for records the
   * request path reads, none of which holds a sealed field.
   */
  getForRequest(key: string): Readonly<V> | undefined {
    return this.reader.get(key);
  }

  /**
   * Deletes the records `expired` says are dead, a page of `batch` keys at a
   * time: each page is read in its own short read, and its dead records are
   * deleted in one write transaction that re-reads each of them (a concurrent
   * refresh or revoke wins). The write lock is never held for a whole scan,
   * no read snapshot lives across the scan, and the next page starts from the
   * last key seen (a cursor kept across deletions skips records: 2 of 1,234
   * in test/unit/login/retention.test.ts). `onRemove` runs inside the write
   * transaction (to drop index entries with the record). Returns how many
   * were deleted.
   */
  protected async sweepWhere(expired: (v: V) => boolean, onRemove?: (key: string, v: V) => void, batch = SWEEP_BATCH): Promise<number> {
    const db = this.db;
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

  /** Every record `keep` accepts (all when absent), opened, in key order. */
  protected values(keep?: (v: V) => boolean): V[] {
    const out: V[] = [];
    for (const { value } of this.db.getRange()) if (keep === undefined || keep(value)) out.push(this.opened(value));
    return out;
  }

  /**
   * Read-modify-write of one record in one transaction: `change` gets the
   * current record and returns the next one, or undefined to write nothing.
   * Returns what was written.
   */
  protected change(key: string, change: (cur: V | undefined) => V | undefined): Promise<V | undefined> {
    return this.db.transaction(() => {
      const next = change(this.db.get(key));
      if (next !== undefined) void this.db.put(key, next);
      return next;
    });
  }

  /** A stored record as callers see it: a table whose records hold sealed fields opens them here. */
  protected opened(v: V): V {
    return v;
  }
}

/**
 * A table whose records hold a field sealed at rest under the store key
 * (seal.ts): the subclass seals it on write and opens it in `opened`.
 */
export abstract class SealedTable<V extends object> extends Table<V> {
  constructor(
    db: Database<V, string>,
    protected readonly sealer: StoreSealer,
    clock: Clock,
  ) {
    super(db, clock);
  }

  protected abstract override opened(v: V): V;
}
