/**
 * The change feed: which sessions, users, API keys and service accounts
 * changed in a way that can take access away, in commit order. Continuous
 * authorization (src/authorize/live.ts) reads it a few times a second in
 * every edge worker, so a revocation written by the CLI, the Console or
 * another worker reaches every open WebSocket and streamed response without
 * a store read per stream.
 *
 * An entry is written inside the transaction that makes the change
 * (`append`), so it commits with the change or not at all. Its key is a
 * sequence number, zero-padded so keys sort as numbers, taken inside that
 * write transaction: LMDB has one writer at a time across processes, so the
 * numbers follow commit order and a reader that has seen N has seen every
 * change up to N. Entries live FEED_KEEP_MS (retention's `prune`); a reader
 * that falls further behind sees a gap (`since` returns 'gap') and must
 * re-check everything.
 */
import type { Database } from '../../native/lmdb.js';
import type { Clock } from '../runtime/index.js';

/** What changed: `session:<token hash>`, `user:<id>`, `key:<id>`, `account:<id>`. */
export type ChangeKind = 'session' | 'user' | 'key' | 'account';

export interface ChangeRecord {
  at: number;
  what: string;
}

/** How long entries are kept: far beyond a reader's poll interval (250 ms), so only a stalled process sees a gap. */
export const FEED_KEEP_MS = 10 * 60_000;
/** Entries one `since` returns at most; a reader further behind than this re-checks everything. */
export const FEED_READ_MAX = 10_000;
const PRUNE_BATCH = 500;

const seqKey = (n: number): string => String(n).padStart(15, '0');

export interface FeedRead {
  /** The position to read from next time. */
  seq: number;
  /** What changed since the position given; 'gap' when entries were pruned or too many to read. */
  changed: Set<string> | 'gap';
}

export class ChangeFeed {
  constructor(
    private readonly db: Database<ChangeRecord, string>,
    private readonly clock: Clock,
  ) {}

  /** Records a change. Only inside the write transaction that makes it (the number is taken there). */
  append(kind: ChangeKind, id: string): void {
    void this.db.put(seqKey(this.last() + 1), { at: this.clock.now(), what: `${kind}:${id}` });
  }

  /** The newest entry's number (0 when the feed is empty): a new reader starts here. */
  last(): number {
    for (const k of this.db.getKeys({ reverse: true, limit: 1 })) return Number(k);
    return 0;
  }

  /** The oldest entry's number kept (0 when empty). */
  oldest(): number {
    for (const k of this.db.getKeys({ limit: 1 })) return Number(k);
    return 0;
  }

  /** What changed after `after`: one range read, empty in the common case. */
  since(after: number): FeedRead {
    const changed = new Set<string>();
    let seq = after;
    let first = true;
    let n = 0;
    for (const { key, value } of this.db.getRange({ start: seqKey(after + 1) })) {
      const k = Number(key);
      // Numbers are contiguous (one writer, the newest never pruned): a hole right after `after`
      // means entries this reader never saw were pruned.
      if (first && k !== after + 1) return { seq: this.last(), changed: 'gap' };
      first = false;
      if (++n > FEED_READ_MAX) return { seq: this.last(), changed: 'gap' };
      changed.add(value.what);
      seq = k;
    }
    // Nothing after `after`, yet the newest is below it: the feed was emptied (a store restored
    // from a copy); what changed is unknown.
    if (first && this.last() < after) return { seq: this.last(), changed: 'gap' };
    return { seq, changed };
  }

  /** Deletes entries older than `keepMs` at `now`, a batch per write transaction; returns how many. */
  async prune(now: number, keepMs = FEED_KEEP_MS): Promise<number> {
    const cutoff = now - keepMs;
    let n = 0;
    for (;;) {
      const dead: string[] = [];
      // The newest entry always stays: it carries the sequence on.
      const newest = this.last();
      for (const { key, value } of this.db.getRange({ limit: PRUNE_BATCH })) {
        if (value.at >= cutoff || Number(key) === newest) break;
        dead.push(key);
      }
      if (dead.length === 0) return n;
      n += await this.db.transaction(() => {
        for (const k of dead) void this.db.remove(k);
        return dead.length;
      });
      if (dead.length < PRUNE_BATCH) return n;
    }
  }
}
