/**
 * What the hosted pages keep besides users and sessions: the login history,
 * the single-use emailed tokens, the failed-login counters and the
 * development outbox. All of it is swept by retention (src/login/retention.ts).
 */
import { randomBytes } from 'node:crypto';
import type { EmailTokenRecord, LoginEventRecord, OutboxRecord, ThrottleRecord } from './records.js';
import { SealedTable, Table } from './table.js';

function historyPrefix(directory: string, email: string): string {
  return `${directory}\u0000${email.toLowerCase()}\u0000`;
}

/**
 * Authentication events, keyed `directory NUL email NUL time seq`, so one
 * range read lists an email's history in time order.
 */
export class LoginHistoryStore extends Table<LoginEventRecord> {
  private seq = 0;
  async add(ev: LoginEventRecord): Promise<void> {
    const key = `${historyPrefix(ev.directory, ev.email)}${String(ev.at).padStart(15, '0')}${randomBytes(3).toString('hex')}${(this.seq++ & 0xffff).toString(16).padStart(4, '0')}`;
    await this.db.put(key, ev);
  }
  /** Deletes events older than `before`; returns how many. */
  async sweep(before: number): Promise<number> {
    return this.sweepWhere((ev) => ev.at < before);
  }
  /** Events for an email in a directory, oldest first; at most `limit`, the newest ones. */
  list(directory: string, email: string, limit = 1000): LoginEventRecord[] {
    const prefix = historyPrefix(directory, email);
    const out: LoginEventRecord[] = [];
    for (const { value } of this.db.getRange({ start: prefix + '\uffff', end: prefix, reverse: true, limit })) out.push(value);
    return out.reverse();
  }
  /**
   * Failed sign-ins (`login_failure`) of an email since `since` and after its
   * last `login_success`, newest first, stopping at `cap` (enough to decide)
   * or after `scan` events: login.adaptive.failure_burst. A success ends a
   * burst, so a burst demands its factor of one sign-in, not of every one
   * in the window.
   */
  failuresSince(directory: string, email: string, since: number, cap: number, scan = 1000): number {
    const prefix = historyPrefix(directory, email);
    let n = 0;
    for (const { value } of this.db.getRange({ start: prefix + '\uffff', end: prefix, reverse: true, limit: scan })) {
      if (value.at < since || value.type === 'login_success') break;
      if (value.type === 'login_failure' && ++n >= cap) break;
    }
    return n;
  }
}

/** Single-use emailed tokens, keyed by SHA-256 of the token (the token itself is never stored). */
export class EmailTokenStore extends Table<EmailTokenRecord> {
  async add(tokenHash: string, rec: EmailTokenRecord): Promise<void> {
    await this.db.put(tokenHash, rec);
  }
  /**
   * Records `key` as used unless it already is (one transaction: of two
   * workers claiming the same key at once, one wins); false when it was.
   * Single-use challenges: the record is swept once `expiresAt` passes.
   */
  async claim(key: string, rec: EmailTokenRecord): Promise<boolean> {
    return this.db.transaction(() => {
      if (this.db.get(key) !== undefined) return false;
      void this.db.put(key, rec);
      return true;
    });
  }
  /** Reads without using it (to render the form behind a link). */
  peek(tokenHash: string): EmailTokenRecord | undefined {
    return this.get(tokenHash);
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
    return this.sweepWhere((v) => v.expiresAt <= now);
  }
}

/** Failed-login counters shared by every worker (keys: `acct:…`, `ip:…`). */
export class ThrottleStore extends Table<ThrottleRecord> {
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
    return this.sweepWhere((r) => now >= r.blockedUntil && (r.locked || now - r.lastAt > windowMs));
  }
}

/** The development outbox: mail kept in the store, listed by `mezusphere mail outbox`. */
export class OutboxStore extends SealedTable<OutboxRecord> {
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
      out.push(this.opened(value));
      if (out.length >= limit) break;
    }
    return out.reverse();
  }
  /** Deletes mail older than `before`; returns how many. */
  async sweep(before: number): Promise<number> {
    return this.sweepWhere((m) => m.at < before);
  }
  protected override opened(v: OutboxRecord): OutboxRecord {
    return { ...v, text: this.sealer.open(v.text, `outbox mail ${v.id}`) };
  }
}
