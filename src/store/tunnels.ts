/**
 * The control plane's view of the tunnels: each project's tunnel CA, the
 * enrolled Warpgates, and what every edge worker reports about the tunnels it
 * holds.
 */
import type { TunnelCaRecord, TunnelStatusRecord, WarpgateRecord } from './records.js';
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
