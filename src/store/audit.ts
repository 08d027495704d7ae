/**
 * The audit log: one record per change, keyed by time (zero-padded) plus a
 * random suffix, so a reverse range read lists the newest first and a page
 * cursor is simply the last key seen. Append-only.
 */
import { randomBytes } from 'node:crypto';
import type { AuditRecord } from './records.js';
import { Table } from './table.js';

export function auditKey(rec: AuditRecord): string {
  return `${String(rec.at).padStart(15, '0')}${rec.id}`;
}

export class AuditStore extends Table<AuditRecord> {
  async add(rec: AuditRecord): Promise<void> {
    await this.db.put(auditKey(rec), rec);
  }
  /** A new record: its id (the key's random suffix) made here, the one place every writer gets it from. */
  async append(entry: Omit<AuditRecord, 'id'>): Promise<void> {
    await this.add({ id: randomBytes(6).toString('hex'), ...entry });
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
