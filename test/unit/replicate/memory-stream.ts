/**
 * An in-memory stand-in for the JetStream stream, with the two behaviours
 * the journal relies on: an append is refused when the stream's last
 * sequence is not the one expected, and a message id seen before returns the
 * first sequence instead of storing the entry again.
 */
import type { JournalLink, StreamEntry } from '../../../src/replicate/index.js';

export class MemoryStream {
  readonly entries: StreamEntry[] = [];
  private readonly ids = new Map<string, number>();
  offline = false;
  /** Called before each append is judged (a test slips a competing write in here). */
  beforeAppend: (() => void) | null = null;

  get last(): number {
    return this.entries.length;
  }

  appendNow(data: Uint8Array, msgId: string, expectLast: number): number | 'conflict' {
    const seen = this.ids.get(msgId);
    if (seen !== undefined) return seen;
    if (expectLast !== this.last) return 'conflict';
    const seq = this.last + 1;
    this.entries.push({ seq, data });
    this.ids.set(msgId, seq);
    return seq;
  }

  link(): JournalLink {
    return {
      append: async (data, msgId, expectLast) => {
        if (this.offline) throw Object.assign(new Error('replica: offline'), { code: 'MEZU_REPLICA_OFFLINE' });
        const hook = this.beforeAppend;
        this.beforeAppend = null;
        hook?.();
        return this.appendNow(data, msgId, expectLast);
      },
      readFrom: async (from, onBatch) => {
        if (this.offline) throw Object.assign(new Error('replica: offline'), { code: 'MEZU_REPLICA_OFFLINE' });
        const batch = this.entries.slice(from - 1);
        if (batch.length > 0) await onBatch(batch);
      },
    };
  }
}
