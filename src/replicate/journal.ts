/**
 * The journal: every write transaction of the store, captured as one entry,
 * appended to the JetStream stream and applied from it in stream order.
 *
 * How a write runs on a replicated store (publish first, then apply):
 *
 * 1. The store's callback runs as it always has (`db.transaction(() => …)`),
 *    but against a *capture*: puts and removes land in an overlay that the
 *    callback's own reads see (get, getRange, getKeys), and nothing touches
 *    LMDB. The callback reads the replica as of `applied`, the last stream
 *    sequence this node applied, read in the same snapshot.
 * 2. The captured operations are appended to the stream with
 *    `Nats-Expected-Last-Sequence: applied`. JetStream accepts the entry only
 *    if nothing was appended since this node's view: every read-modify-write
 *    (a refresh against a revocation, two edits of one user) is decided by the
 *    stream's sequence, never by a wall clock. A refused append is a conflict:
 *    the node applies what it missed and runs the callback again, on the new
 *    state (`MAX_ATTEMPTS` times at most).
 * 3. The accepted entry (sequence S = applied + 1) is applied to LMDB in one
 *    transaction that also records `applied = S`. The follower (the primary's
 *    consumer) applies the same entry when it arrives and skips it, because
 *    `applied` is already S.
 *
 * Why not write locally first and publish after: a node's local commit would
 * be visible (a session honoured, a config served) before the cluster had
 * ordered it, and a concurrent write elsewhere would have to be undone on one
 * side; a revocation could be silently overwritten by a refresh computed on
 * an older copy. Publishing first means LMDB only ever holds a prefix of the
 * stream, so every node passes through the same states in the same order.
 *
 * kill -9: before the append is acknowledged nothing happened (the caller
 * never saw success; the writer's process is gone, so nobody retries it). If
 * the stream took it but the process died before applying it, every node —
 * this one after its restart — applies it from the stream. An append whose
 * acknowledgement was lost is retried with the same message id, and
 * JetStream's duplicate window returns the first sequence instead of storing
 * it twice. `applied` moves in the same LMDB transaction as the change, so an
 * entry is applied exactly once.
 *
 * Local-only databases (login throttling, the mail outbox, tunnel status
 * reports) are captured too, so a callback sees its own writes, but their
 * operations are applied with the entry and never published.
 */
import { pack, unpack } from 'msgpackr';
import { randomBytes } from 'node:crypto';
import type { Database, RootDatabase } from '../../native/lmdb.js';
import { MezuError } from '../errors/index.js';

/** An operation: [db, key, value] writes, [db, key] removes. */
export type Op = [string, string, unknown] | [string, string];

export interface EntryBody {
  /** The node that wrote it (log lines; nothing is ordered by it). */
  n: string;
  o: Op[];
}

export interface StreamEntry {
  seq: number;
  data: Uint8Array;
}

/** What the journal needs from JetStream (link.ts; a fake one in unit tests). */
export interface JournalLink {
  /**
   * Appends `data` when the stream's last sequence is `expectLast`. Returns
   * the entry's sequence, or 'conflict' when the stream moved on. Throws
   * MEZU_REPLICA_OFFLINE when JetStream cannot be reached.
   */
  append(data: Uint8Array, msgId: string, expectLast: number): Promise<number | 'conflict'>;
  /** Calls `onBatch` with the entries from `from` up to the stream's last one at call time, in order. */
  readFrom(from: number, onBatch: (batch: StreamEntry[]) => Promise<void>): Promise<void>;
}

/** Conflicts one write retries before it gives up (each retry first applies what it missed). */
export const MAX_ATTEMPTS = 32;

const APPLIED_KEY = 'applied';

/** An overlay slot: a written value, or REMOVED. */
const REMOVED = Symbol('removed');
type Slot = { v: unknown } | typeof REMOVED;

class Capture {
  readonly ops: Op[] = [];
  readonly overlay = new Map<string, Map<string, Slot>>();

  put(db: string, key: string, value: unknown): void {
    this.ops.push([db, key, value]);
    this.slots(db).set(key, { v: value });
  }

  remove(db: string, key: string): void {
    this.ops.push([db, key]);
    this.slots(db).set(key, REMOVED);
  }

  slots(db: string): Map<string, Slot> {
    let m = this.overlay.get(db);
    if (m === undefined) this.overlay.set(db, (m = new Map()));
    return m;
  }
}

/** The capture the running callback writes into; store callbacks are synchronous, so one at a time per process. */
let active: Capture | null = null;

interface RangeOpts {
  start?: string;
  end?: string;
  limit?: number;
  reverse?: boolean;
  offset?: number;
}

/**
 * A range read inside a capture: LMDB's range with the overlay laid over it
 * (removed keys dropped, written keys in place, new keys in order). Only
 * taken when the callback already wrote to this database, so ordinary reads
 * keep lmdb-js's lazy iterable.
 */
function mergedRange(real: Iterable<{ key: string; value: unknown }>, slots: Map<string, Slot>, o: RangeOpts): Array<{ key: string; value: unknown }> {
  const rev = o.reverse === true;
  const inRange = (k: string): boolean => {
    if (!rev) return (o.start === undefined || k >= o.start) && (o.end === undefined || k < o.end);
    return (o.start === undefined || k <= o.start) && (o.end === undefined || k > o.end);
  };
  const out: Array<{ key: string; value: unknown }> = [];
  for (const e of real) if (!slots.has(e.key)) out.push(e);
  for (const [k, s] of slots) if (s !== REMOVED && inRange(k)) out.push({ key: k, value: s.v });
  out.sort((a, b) => (a.key < b.key ? (rev ? 1 : -1) : a.key > b.key ? (rev ? -1 : 1) : 0));
  const from = o.offset ?? 0;
  return out.slice(from, o.limit === undefined ? undefined : from + o.limit);
}

/** The original write methods of a wrapped database (the apply path writes through them). */
interface Raw {
  put(key: string, value: unknown): unknown;
  remove(key: string): unknown;
}

export class Journal {
  private readonly raw = new Map<string, Raw>();
  private readonly replicated = new Set<string>();
  private link: JournalLink | null = null;
  private queue: Promise<unknown> = Promise.resolve();
  /** Message ids: unique per process start, so a restarted writer never reuses one inside the duplicate window. */
  private readonly idPrefix: string;
  private idCounter = 0;

  constructor(
    private readonly root: RootDatabase,
    private readonly meta: Database<number, string>,
    private readonly node: string,
    /** Connects on first use (workers and the CLI connect only when they write). */
    private readonly connect: () => Promise<JournalLink>,
  ) {
    this.idPrefix = `${node}.${randomBytes(6).toString('hex')}`;
  }

  /** The last stream sequence applied to this replica (0: none). */
  applied(): number {
    return this.meta.get(APPLIED_KEY) ?? 0;
  }

  /**
   * Routes `db`'s writes through the journal. `replicated` false: captured
   * and applied here only (never published). Instance methods are replaced,
   * so the stores above keep calling `db.transaction`, `db.put`, … unchanged,
   * and a store opened without replication is not touched at all.
   */
  wrap<V>(name: string, db: Database<V, string>, replicated: boolean): void {
    const d = db as unknown as Record<string, (...a: unknown[]) => unknown>;
    const get = d.get!.bind(db);
    const getRange = d.getRange!.bind(db);
    const getKeys = d.getKeys!.bind(db);
    const put = d.put!.bind(db);
    const remove = d.remove!.bind(db);
    const transactionSync = d.transactionSync!.bind(db);
    this.raw.set(name, { put, remove });
    if (replicated) this.replicated.add(name);
    d.get = (key: unknown, ...rest: unknown[]) => {
      const c = active;
      if (c !== null && typeof key === 'string') {
        const s = c.overlay.get(name)?.get(key);
        if (s !== undefined) return s === REMOVED ? undefined : s.v;
      }
      return get(key, ...rest);
    };
    d.getRange = (opts?: unknown) => {
      const slots = active?.overlay.get(name);
      if (slots === undefined || slots.size === 0) return getRange(opts);
      const o = (opts ?? {}) as RangeOpts;
      const real = getRange(o.limit === undefined ? { ...o, offset: undefined } : { ...o, offset: undefined, limit: o.limit + (o.offset ?? 0) + slots.size }) as Iterable<{ key: string; value: unknown }>;
      return mergedRange(real, slots, o);
    };
    d.getKeys = (opts?: unknown) => {
      const slots = active?.overlay.get(name);
      if (slots === undefined || slots.size === 0) return getKeys(opts);
      return (d.getRange!(opts) as Array<{ key: string }>).map((e) => e.key);
    };
    // lmdb-js keeps a database's shared msgpack structures under a symbol key, written inside its
    // own transaction while a value is encoded: that is this replica's encoding, never an entry.
    d.put = (key: unknown, value: unknown, ...rest: unknown[]) => {
      if (typeof key !== 'string') return put(key, value, ...rest);
      const c = active;
      if (c !== null) {
        c.put(name, key as string, value);
        return true;
      }
      return this.write(() => (active as Capture).put(name, key as string, value)).then(() => true);
    };
    d.remove = (key: unknown, ...rest: unknown[]) => {
      if (typeof key !== 'string') return remove(key, ...rest);
      const c = active;
      if (c !== null) {
        c.remove(name, key as string);
        return true;
      }
      return this.write(() => (active as Capture).remove(name, key as string)).then(() => true);
    };
    d.transaction = (cb: unknown) => {
      if (active !== null) return (cb as () => unknown)();
      return this.write(cb as () => unknown);
    };
    d.transactionSync = (cb: unknown, ...rest: unknown[]) => {
      if (active !== null) return (cb as () => unknown)();
      // Only the re-seal on open writes synchronously: it re-encrypts values in place under this
      // node's store key (the same plaintext), which is local by nature.
      return transactionSync(cb, ...rest);
    };
  }

  /** Runs a write callback through the journal (one at a time per process: each is judged against `applied`). */
  write<T>(cb: () => T): Promise<T> {
    const run = this.queue.then(() => this.commit(cb));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async commit<T>(cb: () => T): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      // A fresh snapshot: `applied` and everything the callback reads come from the same one.
      this.root.resetReadTxn();
      const base = this.applied();
      const cap = new Capture();
      active = cap;
      let result: T;
      try {
        result = cb();
      } finally {
        active = null;
      }
      if (cap.ops.length === 0) return result;
      const shared: Op[] = [];
      const local: Op[] = [];
      for (const op of cap.ops) (this.replicated.has(op[0]) ? shared : local).push(op);
      if (shared.length === 0) {
        await this.root.transaction(() => this.applyOps(local));
        return result;
      }
      const link = await this.linked();
      const data = pack({ n: this.node, o: shared } satisfies EntryBody);
      const seq = await link.append(data, `${this.idPrefix}.${++this.idCounter}`, base);
      if (seq === 'conflict') {
        if (attempt >= MAX_ATTEMPTS) throw new MezuError('MEZU_REPLICA_CONFLICT', `replica: a write lost ${MAX_ATTEMPTS} races in a row to writes on other nodes; nothing was written`);
        await this.catchUp();
        continue;
      }
      await this.applyBatch([{ seq, data }], local);
      return result;
    }
  }

  /** Gives the journal its link now (a test's in-memory stream; otherwise it connects on first use). */
  attach(link: JournalLink): void {
    this.link = link;
  }

  private async linked(): Promise<JournalLink> {
    if (this.link === null) this.link = await this.connect();
    return this.link;
  }

  /** Applies every entry the stream holds past `applied` (a restart, a conflict, a CLI command). */
  async catchUp(): Promise<void> {
    const link = await this.linked();
    await link.readFrom(this.applied() + 1, async (batch) => {
      await this.applyBatch(batch);
    });
    this.root.resetReadTxn();
  }

  /**
   * Applies entries in stream order, in one LMDB transaction that also moves
   * `applied`: entries at or below `applied` are skipped (already applied by
   * this node's writer or follower), and a hole (an entry after the next one
   * expected) stops the batch with MEZU_REPLICA_GAP: the stream lost
   * entries this replica never saw, so it cannot be trusted to continue.
   * `local` operations (of the writer's own entry) are applied with it.
   * Returns how many entries were applied.
   */
  applyBatch(batch: StreamEntry[], local: Op[] = []): Promise<number> {
    let gap: string | null = null;
    // Never thrown inside the transaction: an aborted lmdb-js transaction can leave the shared
    // msgpack structures of a database ahead of what it stored.
    const done = this.root.transaction(() => {
      let cur = this.meta.get(APPLIED_KEY) ?? 0;
      let n = 0;
      for (const e of batch) {
        if (e.seq <= cur) continue;
        if (e.seq !== cur + 1) {
          gap = `replica: entry ${e.seq} follows ${cur}; entries ${cur + 1}–${e.seq - 1} are no longer in the stream`;
          break;
        }
        this.applyOps((unpack(e.data) as EntryBody).o);
        cur = e.seq;
        n++;
      }
      this.applyOps(local);
      if (n > 0) void this.meta.put(APPLIED_KEY, cur);
      return n;
    });
    return done.then((n) => {
      if (gap !== null) throw new MezuError('MEZU_REPLICA_GAP', gap);
      return n;
    });
  }

  /** Inside a write transaction: the operations through the unwrapped methods. */
  private applyOps(ops: Op[]): void {
    for (const op of ops) {
      const r = this.raw.get(op[0]);
      // An entry naming a database this version does not know (a newer writer): skipped, not guessed at.
      if (r === undefined) continue;
      if (op.length === 3) void r.put(op[1], op[2]);
      else void r.remove(op[1]);
    }
  }
}
