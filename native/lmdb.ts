/**
 * The only importer of lmdb (lmdb-js).
 *
 * Settings and why:
 * - One environment shared by every edge worker through the memory map: a
 *   session check is a read from shared memory, with no network hop.
 * - `cache: false` on every database: lmdb-js's object cache is per process, so
 *   a session revoked or a user suspended by another process would be missed.
 *   Reads go to the map every time.
 * - `overlappingSync: false`, `noSync: false`: a write's promise resolves only
 *   once the transaction is synced, so a committed login survives `kill -9`
 *   and power loss. Writes are rare next to reads (logins, revocations, idle
 *   refreshes at most once a minute per session), and lmdb-js batches the
 *   writes queued in one turn into one transaction.
 * - Read snapshots: lmdb-js renews its read transaction at the first read of
 *   an event-loop turn and resets it on a 0 ms timer, so a commit by another
 *   process is visible from the next turn on. `freshReads()` forces a new
 *   snapshot where a caller needs one now.
 */
import { open, type RootDatabase, type Database } from 'lmdb';

export type { Database, RootDatabase };

export interface EnvOptions {
  path: string;
  /** Map size in bytes; lmdb-js grows it as needed. */
  mapSize?: number;
  readOnly?: boolean;
}

export function openEnv(opts: EnvOptions): RootDatabase {
  return open({
    path: opts.path,
    cache: false,
    overlappingSync: false,
    noSync: false,
    mapSize: opts.mapSize ?? 256 * 1024 * 1024,
    maxDbs: 32,
    readOnly: opts.readOnly ?? false,
    // Each edge worker opens the same environment; lmdb's robust mutexes recover a lock held by a killed process.
  });
}

/**
 * msgpack with shared structures: record shapes are stored once per database
 * (lmdb-js keeps them transactionally, safe across processes) instead of inline
 * in every value. Measured on the dev machine: a session-record get drops from
 * ~1.95 µs to ~0.91 µs — it runs twice per protected request.
 */
const STRUCTURES = Symbol.for('mezusphere.structures');

export function openDb<V = unknown>(root: RootDatabase, name: string): Database<V, string> {
  return root.openDB<V, string>({ name, cache: false, encoding: 'msgpack', sharedStructuresKey: STRUCTURES });
}

/** Entries a RecordReader keeps; past it, it starts over (a miss costs one decode, never a stale answer). */
const READER_MEMO_ENTRIES = 4096;

/**
 * Reads records of one database for the request path: the stored bytes are
 * read from the map on every call (no cache of what is stored: a revocation,
 * suspension or edit by any process is seen on the next read, exactly as with
 * `db.get`), but when they are byte-for-byte what this key held at the last
 * call, the object decoded then is returned instead of decoding again.
 *
 * Why: a protected request reads a session (~630 B with its cached assertion)
 * and a user; decoding them was about half of each read (dev machine: session
 * get ~1.0 µs of which ~0.5 decode, user ~0.7 of which ~0.35), and every
 * decode made a new 555-char assertion string that the HPACK encoder then had
 * to hash and compare in full. A hit costs the raw read plus one memcmp.
 *
 * Returned records are frozen (their arrays too) because they are shared
 * between calls; callers that modify a record read it with `db.get`.
 * Identical bytes always decode to equal values: shared msgpack structures
 * are only ever appended to, never redefined.
 */
export class RecordReader<V extends object> {
  private readonly memo = new Map<string, { bytes: Buffer; value: Readonly<V> }>();

  constructor(private readonly db: Database<V, string>) {}

  get(key: string): Readonly<V> | undefined {
    // A view of lmdb-js's reused read buffer, valid until the next read; `length` is the value's size.
    const bytes = this.db.getBinaryFast(key);
    if (bytes === undefined) {
      this.memo.delete(key);
      return undefined;
    }
    const n = bytes.length;
    const m = this.memo.get(key);
    if (m !== undefined && m.bytes.length === n && m.bytes.compare(bytes, 0, n, 0, n) === 0) return m.value;
    const copy = Buffer.from(bytes.subarray(0, n));
    // Same read transaction as the raw read above (lmdb-js keeps it for the turn), so the same bytes.
    const value = this.db.get(key);
    if (value === undefined) return undefined;
    freezeRecord(value);
    if (this.memo.size >= READER_MEMO_ENTRIES) this.memo.clear();
    this.memo.set(key, { bytes: copy, value });
    return value;
  }
}

function freezeRecord(v: object): void {
  for (const x of Object.values(v)) if (Array.isArray(x)) Object.freeze(x);
  Object.freeze(v);
}
