/**
 * The client networks each user has signed in from (src/login/network.ts:
 * IPv4 /24, IPv6 /48), one record per user keyed by its id, for
 * `login.adaptive.new_network`. Only the prefix is kept, never the address:
 * the decision needs no more, and a list of a person's addresses is a trail
 * of where they have been (the login history keeps addresses for incident
 * review and is swept after its retention; this list lives as long as the
 * user). At most NETWORKS_KEPT networks per user, the least recently used
 * dropped first: the list stays small to read at every sign-in, and a network
 * not used for twenty others is new again.
 */
import type { NetworkRecord } from './records.js';
import { Table } from './table.js';

/** Networks remembered per user. */
export const NETWORKS_KEPT = 20;

export class NetworkStore extends Table<NetworkRecord> {
  /**
   * How `prefix` stands for the user: `first` when no sign-in was recorded
   * yet (a first sign-in ever is not a new network), `known` when it is in
   * the list, else `new`.
   */
  standing(userId: string, prefix: string | null): 'first' | 'known' | 'new' {
    const rec = this.db.get(userId);
    if (rec === undefined || rec.networks.length === 0) return 'first';
    return prefix !== null && rec.networks.some((n) => n.prefix === prefix) ? 'known' : 'new';
  }

  /** Records a completed sign-in from `prefix` (one transaction: two workers signing the user in at once both count). */
  async seen(userId: string, prefix: string, now: number): Promise<void> {
    await this.db.transaction(() => {
      const cur = this.db.get(userId);
      const old = cur?.networks.find((n) => n.prefix === prefix);
      const others = (cur?.networks ?? []).filter((n) => n.prefix !== prefix);
      // Oldest use first; the one used now goes last, and the front is dropped past the bound.
      const networks = [...others, { prefix, firstSeenAt: old?.firstSeenAt ?? now, lastSeenAt: now }].slice(-NETWORKS_KEPT);
      void this.db.put(userId, { userId, networks });
    });
  }

  /** The user's networks, least recently used first. */
  list(userId: string): NetworkRecord['networks'] {
    return this.db.get(userId)?.networks ?? [];
  }
}
