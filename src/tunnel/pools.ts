/** The live tunnels of this worker, by upstream pool, and the replay rule for requests a tunnel lost. */
import type { TunnelConnection, TunnelRequest } from './types.js';

/** Methods a lost request may be replayed for (RFC 9110 §9.2.2), when it has no body. */
const IDEMPOTENT: ReadonlySet<string> = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE']);

export class PoolRegistry {
  private readonly pools = new Map<string, TunnelConnection[]>();

  add(c: TunnelConnection): void {
    const list = this.pools.get(c.pool);
    if (list === undefined) this.pools.set(c.pool, [c]);
    else list.push(c);
  }
  remove(c: TunnelConnection): void {
    const list = this.pools.get(c.pool);
    if (list === undefined) return;
    const i = list.indexOf(c);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.pools.delete(c.pool);
  }
  /** The ready connection with the fewest outstanding streams, or null. */
  pick(pool: string): TunnelConnection | null {
    const list = this.pools.get(pool);
    if (list === undefined) return null;
    let best: TunnelConnection | null = null;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      if (c.ready && (best === null || c.outstanding < best.outstanding)) best = c;
    }
    return best;
  }
  /**
   * Like pick, but never `exclude` (a replay goes to another connection).
   * With `avoidPeer`, a connection of another Warpgate wins over a sibling of
   * the same one: when a Warpgate dies the edge reads its tunnels' closes one
   * socket at a time, so a sibling may still look ready (test/unit/tunnel/connection.test.ts).
   */
  pickOther(pool: string, exclude: TunnelConnection | null, avoidPeer?: string): TunnelConnection | null {
    const list = this.pools.get(pool);
    if (list === undefined) return null;
    let best: TunnelConnection | null = null;
    let bestOther: TunnelConnection | null = null;
    for (let i = 0; i < list.length; i++) {
      const c = list[i]!;
      if (c === exclude || !c.ready) continue;
      if (best === null || c.outstanding < best.outstanding) best = c;
      if (avoidPeer !== undefined && avoidPeer !== '' && c.peer !== avoidPeer && (bestOther === null || c.outstanding < bestOther.outstanding)) bestOther = c;
    }
    return bestOther ?? best;
  }
  /**
   * A request's stream was refused before the Warpgate processed any of it
   * (REFUSED_STREAM, or above a GOAWAY's last id: RFC 9113 §8.7), or
   * (`lost`) its connection died before any response byte. Replays it once on
   * another connection of its pool when that is safe: never with a body (a
   * body already streamed cannot be replayed without buffering it, which this
   * edge never does), and a lost one only for an idempotent method, since the
   * Warpgate may have processed it (RFC 9110 §9.2.2). A lost request prefers
   * another Warpgate: its siblings may be dying too, their closes not read yet.
   * Returns false when the caller must fail the request.
   */
  replay(r: TunnelRequest, lost: boolean): boolean {
    if (r.hasBody || r.replayed || r.conn === null) return false;
    if (lost && !IDEMPOTENT.has(r.method)) return false;
    r.replayed = true;
    const from = r.conn;
    const other = this.pickOther(from.pool, from, lost ? from.peer : undefined);
    return other !== null && other.open(r);
  }

  all(): TunnelConnection[] {
    const out: TunnelConnection[] = [];
    for (const l of this.pools.values()) out.push(...l);
    return out;
  }
  count(pool: string): number {
    return this.pools.get(pool)?.length ?? 0;
  }
}
