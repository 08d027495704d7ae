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
import type { RequestMetrics } from '../front/index.js';
import type { LiveRegistry } from '../authorize/index.js';
import type { PoolStats } from '../tunnel/index.js';
import { labels, mergeSnapshots, renderText, ProcessMetrics, type Family } from '../runtime/index.js';

/** How long a scrape waits for the workers' snapshots; a late worker is left out and counted in mezu_edge_scrape_missing_workers. */
export const SCRAPE_WAIT_MS = 1_000;

/** Login history events, by project, event type and reason (each from a fixed set). */
export class LoginCounts {
  private readonly counts = new Map<string, number>();
  add(project: string, type: string, reason: string | null): void {
    const k = labels([['project', project], ['event', type], ['reason', reason ?? '']]);
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
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

/**
 * The primary's side: asks every live worker, waits for their replies (or
 * SCRAPE_WAIT_MS), merges them with its own figures.
 */
export class MetricsAggregator {
  private nextId = 1;
  private readonly waiting = new Map<number, { got: Family[][]; left: Set<number>; done: () => void }>();
  private readonly process = new ProcessMetrics('mezu_edge', 'edge-primary');

  constructor(
    private readonly workers: () => Array<{ index: number; worker: Worker }>,
    private readonly dataDir: string,
  ) {}

  /** A worker's reply (the primary's message handler passes it on). */
  reply(m: ScrapeReply): void {
    const w = this.waiting.get(m.id);
    if (w === undefined || !w.left.delete(m.worker)) return;
    w.got.push(m.families);
    if (w.left.size === 0) w.done();
  }

  async collect(): Promise<string> {
    const id = this.nextId++;
    const live = this.workers();
    const got: Family[][] = [];
    const left = new Set(live.map((w) => w.index));
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, SCRAPE_WAIT_MS);
      const done = () => {
        clearTimeout(t);
        resolve();
      };
      this.waiting.set(id, { got, left, done });
      const req: ScrapeRequest = { type: 'metrics', id };
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
    const own: Family[] = [
      { name: 'mezu_edge_workers', help: 'Edge workers alive, and those whose snapshot this scrape is missing (did not answer within 1 s).', type: 'gauge', samples: [[labels([['state', 'alive']]), live.length], [labels([['state', 'missing']]), left.size]] },
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
