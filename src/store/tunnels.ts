/**
 * The control plane's view of the tunnels: each project's tunnel CA, the
 * enrolled Warpgates, what every edge worker reports about the tunnels it
 * holds, and the tunnel endpoints the nodes of a replicated cluster advertise.
 */
import type { NodeRecord, TunnelCaRecord, TunnelStatusRecord, WarpgateRecord } from './records.js';
import { SealedTable, Table } from './table.js';

/** A project's tunnel CA without its private key: what the edge needs to admit enrolled Warpgates. */
export type TunnelCaPublic = Omit<TunnelCaRecord, 'key'>;

/**
 * Per-project tunnel CAs (created on a project's first Warpgate enrollment).
 * The private key is sealed at rest and opened only by `get` (the Console
 * signs with it); `all` (every edge worker, every poll) never opens it.
 */
export class TunnelCaStore extends SealedTable<TunnelCaRecord> {
  all(): TunnelCaPublic[] {
    const out: TunnelCaPublic[] = [];
    for (const { value } of this.db.getRange()) out.push({ projectId: value.projectId, cert: value.cert, fingerprint256: value.fingerprint256, createdAt: value.createdAt });
    return out;
  }
  /** Stores `rec` unless the project has a CA already; returns the one in the store (two enrollments racing get one CA). */
  async putIfAbsent(rec: TunnelCaRecord): Promise<TunnelCaRecord> {
    const sealed: TunnelCaRecord = { ...rec, key: this.sealer.seal(rec.key) };
    const stored = await this.db.transaction(() => {
      const cur = this.db.get(rec.projectId);
      if (cur !== undefined) return cur;
      void this.db.put(rec.projectId, sealed);
      return sealed;
    });
    return this.opened(stored);
  }
  protected override opened(v: TunnelCaRecord): TunnelCaRecord {
    return { ...v, key: this.sealer.open(v.key, `tunnel CA key of project ${v.projectId}`) };
  }
}

/** Enrolled Warpgates, by agent id. */
export class WarpgateStore extends Table<WarpgateRecord> {
  async put(rec: WarpgateRecord): Promise<void> {
    await this.db.put(rec.id, rec);
  }
  /** Warpgates of a project (every project when null), the most recently renewed first. */
  list(projectId: string | null): WarpgateRecord[] {
    return this.values((w) => projectId === null || w.projectId === projectId).sort((a, b) => b.renewedAt - a.renewedAt);
  }
  /** Marks every Warpgate of a key refused (its key was revoked or expired). */
  async refuseKey(keyId: string, at: number): Promise<number> {
    return this.db.transaction(() => {
      let n = 0;
      for (const { key, value } of this.db.getRange()) {
        if (value.keyId === keyId && value.refusedAt === null) {
          void this.db.put(key, { ...value, refusedAt: at });
          n++;
        }
      }
      return n;
    });
  }
}

/** What every edge worker reports about its tunnels, keyed `edgeId:worker`. */
export class TunnelStatusStore extends Table<TunnelStatusRecord> {
  async put(rec: TunnelStatusRecord): Promise<void> {
    await this.db.put(`${rec.edgeId}:${rec.worker}`, rec);
  }
  all(): TunnelStatusRecord[] {
    return this.values();
  }
  /** Deletes reports not refreshed since `before` (edges that stopped). */
  async prune(before: number): Promise<number> {
    return this.db.transaction(() => {
      let n = 0;
      for (const { key, value } of this.db.getRange()) {
        if (value.updatedAt < before) {
          void this.db.remove(key);
          n++;
        }
      }
      return n;
    });
  }
}

/**
 * How often a replicated node rewrites its `nodes` record, and how old a
 * record may be before enrollment stops handing its endpoint out. Each
 * refresh is one write to the cluster's journal, so not often: one per node
 * every 10 s is noise beside sessions' idle refreshes. Three refreshes
 * missed in a row make a node stale, so one lost write (a NATS leader
 * election) never drops a live node; a node killed without removing its
 * record is still handed out for at most this long, which costs a Warpgate
 * only a redial with backoff. The age is read against the reader's clock:
 * node clocks must agree to well within the bound (NTP does).
 */
export const NODE_REFRESH_MS = 10_000;
export const NODE_STALE_MS = 30_000;

/** The edge nodes of a replicated cluster and their tunnel endpoints, by node id. */
export class NodeStore extends Table<NodeRecord> {
  async put(rec: NodeRecord): Promise<void> {
    await this.db.put(rec.node, rec);
  }
  /** Removes the node's record if `edgeId` still owns it (a node stopping; a restart under the same id may own it already). */
  async remove(node: string, edgeId: string): Promise<boolean> {
    return this.db.transaction(() => {
      const cur = this.db.get(node);
      if (cur === undefined || cur.edgeId !== edgeId) return false;
      void this.db.remove(node);
      return true;
    });
  }
  /** Nodes refreshed within `staleMs` before `now`, by node id. */
  live(now: number, staleMs = NODE_STALE_MS): NodeRecord[] {
    return this.values((n) => now - n.updatedAt <= staleMs).sort((a, b) => (a.node < b.node ? -1 : a.node > b.node ? 1 : 0));
  }
}
