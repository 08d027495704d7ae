/**
 * What each edge reports of its traffic for the Console's overview and
 * `GET /api/v1/projects/{id}/stats`: per project, the last hour in per-minute
 * figures and the current request rate, keyed by edge id. The edge primary
 * rewrites its record every few seconds (src/cluster/traffic.ts); the Console,
 * which talks to the edge only through the store, reads every edge's record
 * and adds them up (src/control/traffic.ts). Records of edges that stopped
 * are pruned once their last minute is over an hour old.
 */
import type { TrafficRecord } from './records.js';
import { Table } from './table.js';

export class TrafficStore extends Table<TrafficRecord> {
  async put(rec: TrafficRecord): Promise<void> {
    await this.db.put(rec.edgeId, rec);
  }
  all(): TrafficRecord[] {
    return this.values();
  }
  /** Deletes records not rewritten since `before` (edges that stopped long ago). */
  async prune(before: number): Promise<number> {
    return this.sweepWhere((v) => v.updatedAt < before);
  }
}
