/**
 * The edge's metrics across its processes. Each worker keeps its own figures
 * (the request path's counters in src/front/metrics.ts, the live registry's,
 * the tunnels', the hosted login's events, its event loop and heap) and sends
 * them as a snapshot when the primary asks; the primary, which serves the
 * metrics listener (`--metrics-port`), asks every worker at each scrape,
 * merges the snapshots by adding equal series (src/runtime/metrics.ts) and
 * adds its own: a scrape sees one edge, not one worker at random.
 *
 * Nothing is sent between scrapes: a worker's counters are in its memory
 * until asked. A worker that died loses its counts (a counter of the edge
 * goes down then; Prometheus's rate() takes that as a reset).
 */
import { statSync } from 'node:fs';
import type { Worker } from 'node:cluster';
import type { ProjectTotals, RequestMetrics } from '../front/index.js';
import type { LiveRegistry } from '../authorize/index.js';
import type { PoolStats } from '../tunnel/index.js';
import { labels, mergeSnapshots, renderText, ProcessMetrics, type Family } from '../runtime/index.js';

/** How long a scrape waits for the workers' snapshots; a late worker is left out and counted in mezu_edge_scrape_missing_workers. */
export const SCRAPE_WAIT_MS = 1_000;

/** Login history events, by project, event type and reason (each from a fixed set). */
export class LoginCounts {
  private readonly counts = new Map<string, number>();
  /** Per project: [successful sign-ins, failed ones] (the Console's overview). */
  private readonly outcomes = new Map<string, [number, number]>();
  add(project: string, type: string, reason: string | null): void {
    const k = labels([['project', project], ['event', type], ['reason', reason ?? '']]);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
    if (type === 'login_success' || type === 'login_failure') {
      let o = this.outcomes.get(project);
      if (o === undefined) this.outcomes.set(project, (o = [0, 0]));
      o[type === 'login_success' ? 0 : 1]++;
    }
  }
  logins(): Record<string, [number, number]> {
    return Object.fromEntries([...this.outcomes].map(([p, o]) => [p, [o[0], o[1]]]));
  }
  family(): Family {
    return { name: 'mezu_edge_login_events_total', help: 'Hosted-login events (login_success, login_failure, lock, signup_requested, signup_completed, reset_requested, password_reset, password_changed, logout…) by project and reason.', type: 'counter', samples: [...this.counts] };
  }
}

export interface WorkerSources {
  index: number;
  requests: RequestMetrics;
  live: LiveRegistry;
  tunnels(): PoolStats[];
  logins: LoginCounts;
  process: ProcessMetrics;
}

/** One worker's snapshot. */
export function workerFamilies(w: WorkerSources): Family[] {
  const out = w.requests.families();
  const live = w.live.stats();
  out.push(
    { name: 'mezu_edge_live_streams', help: 'Open streams under continuous authorization (WebSockets and streamed responses).', type: 'gauge', samples: [['', live.open]] },
    { name: 'mezu_edge_live_websockets', help: 'Open WebSockets.', type: 'gauge', samples: [['', live.websockets]] },
    { name: 'mezu_edge_live_ended_total', help: 'Streams ended by continuous authorization, by reason code.', type: 'counter', samples: Object.entries(live.ended).map(([reason, n]) => [labels([['reason', reason]]), n] as [string, number]) },
  );
  const pools = w.tunnels();
  const per = (name: string, help: string, type: 'gauge' | 'counter', pick: (p: PoolStats) => number): Family => ({ name, help, type, samples: pools.map((p) => [labels([['pool', p.pool]]), pick(p)] as [string, number]) });
  out.push(
    per('mezu_edge_tunnel_connections', 'Ready tunnel connections, by pool.', 'gauge', (p) => p.connections),
    per('mezu_edge_tunnel_streams', 'Open tunnel streams (requests and WebSockets in flight), by pool.', 'gauge', (p) => p.streams),
    per('mezu_edge_tunnel_connects_total', 'Tunnel connections that became ready, by pool.', 'counter', (p) => p.connects),
    per('mezu_edge_tunnel_reconnects_total', 'Tunnels from a Warpgate whose earlier tunnel to the same worker had closed, by pool.', 'counter', (p) => p.reconnects),
    per('mezu_edge_tunnel_resets_total', 'RST_STREAM frames sent or received on tunnels, by pool.', 'counter', (p) => p.resets),
  );
  out.push(w.logins.family());
  out.push(...w.process.families());
  return out;
}

/** Messages of a scrape (PrimaryMessage / WorkerMessage carry them). */
export interface ScrapeRequest {
  type: 'metrics';
  id: number;
}
export interface ScrapeReply {
  type: 'metrics';
  id: number;
  worker: number;
  families: Family[];
}
/** The Console's traffic figures: the same counters, as numbers per project (src/cluster/traffic.ts). */
export interface TrafficRequest {
  type: 'traffic';
  id: number;
}
export interface TrafficReply {
  type: 'traffic';
  id: number;
  worker: number;
  /** Counters are per process: the primary tells a respawned worker (a new pid, counting from zero) from the one before it. */
  pid: number;
  projects: ProjectTotals[];
  logins: Record<string, [number, number]>;
}

/** One worker's traffic figures. */
export function workerTraffic(id: number, w: Pick<WorkerSources, 'index' | 'requests' | 'logins'>): TrafficReply {
  return { type: 'traffic', id, worker: w.index, pid: process.pid, projects: w.requests.totals(), logins: w.logins.logins() };
}

/**
 * The primary's side: asks every live worker, waits for their replies (or
 * SCRAPE_WAIT_MS), merges them with its own figures.
 */
export class MetricsAggregator {
  private nextId = 1;
  private readonly waiting = new Map<number, { got: unknown[]; left: Set<number>; done: () => void }>();
  private readonly process = new ProcessMetrics('mezu_edge', 'edge-primary');

  constructor(
    private readonly workers: () => Array<{ index: number; worker: Worker }>,
    private readonly dataDir: string,
  ) {}

  /** A worker's reply (the primary's message handler passes it on). */
  reply(m: ScrapeReply | TrafficReply): void {
    const w = this.waiting.get(m.id);
    if (w === undefined || !w.left.delete(m.worker)) return;
    w.got.push(m.type === 'metrics' ? m.families : m);
    if (w.left.size === 0) w.done();
  }

  /** Asks every live worker and waits for their replies, at most SCRAPE_WAIT_MS; `left`: the workers that did not answer. */
  private async gather<T>(type: 'metrics' | 'traffic'): Promise<{ got: T[]; live: number; left: Set<number>; pids: Set<number> }> {
    const id = this.nextId++;
    const live = this.workers();
    const got: T[] = [];
    const left = new Set(live.map((w) => w.index));
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, SCRAPE_WAIT_MS);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      this.waiting.set(id, { got: got as unknown[], left, done });
      const req: ScrapeRequest | TrafficRequest = { type, id };
      for (const w of live) {
        try {
          w.worker.send(req);
        } catch {
          // A worker exiting right now: it is left out, and counted as missing.
        }
      }
      if (left.size === 0) done();
    });
    this.waiting.delete(id);
    const pids = new Set<number>();
    for (const w of live) if (w.worker.process.pid !== undefined) pids.add(w.worker.process.pid);
    return { got, live: live.length, left, pids };
  }

  /** Every live worker's traffic figures; `pids`: the workers alive now (answering or not). */
  async traffic(): Promise<{ replies: TrafficReply[]; pids: Set<number> }> {
    const { got, pids } = await this.gather<TrafficReply>('traffic');
    return { replies: got, pids };
  }

  async collect(): Promise<string> {
    const { got, live, left } = await this.gather<Family[]>('metrics');
    const own: Family[] = [
      { name: 'mezu_edge_workers', help: 'Edge workers alive, and those whose snapshot this scrape is missing (did not answer within 1 s).', type: 'gauge', samples: [[labels([['state', 'alive']]), live], [labels([['state', 'missing']]), left.size]] },
      { name: 'mezu_edge_store_size_bytes', help: 'Size of the store file (LMDB data.mdb, pages in use and free). The store is local to the machine: there is no replication, hence no lag figure.', type: 'gauge', samples: [['', storeSize(this.dataDir)]] },
      ...this.process.families(),
    ];
    return renderText(mergeSnapshots([...got, own]));
  }
}

function storeSize(dataDir: string): number {
  try {
    return statSync(`${dataDir}/store/data.mdb`).size;
  } catch {
    return 0;
  }
}
