/**
 * The Warpgate's metrics (`--metrics-port`, off by default; 9465 is the
 * suggested port, beside the edge's 9464 on one machine): origin latency (the
 * request written to the origin → its response head) as a histogram, origin
 * responses by status class and failures by code, requests refused for their
 * assertion, the origin pool's use, the tunnels and their reconnects per edge
 * endpoint (`edge="host:port"`), and the process's event loop and heap. Counted into preallocated arrays; label text
 * is built at a scrape (src/runtime/metrics.ts).
 */
import { DURATION_BUCKETS, histogramSamples, labels, renderText, type Family, type ProcessMetrics } from '../src/runtime/index.js';
import type { OriginClientStats } from './origin/index.js';
import type { EdgeCounts } from './agents.js';

const NB = DURATION_BUCKETS.length + 1;
const BOUNDS_MS = Float64Array.from(DURATION_BUCKETS, (s) => s * 1000);
const STATUS = ['1xx', '2xx', '3xx', '4xx', '5xx'] as const;

export class WarpgateMetrics {
  private readonly latency = new Float64Array(NB);
  private latencySum = 0;
  private readonly status = new Float64Array(STATUS.length);
  private readonly errors = new Map<string, number>();
  private refused = 0;

  /** The origin's response head, `startedAt` (performance.now()) after the request was handed to the origin client. */
  originHead(status: number, startedAt: number): void {
    const ms = performance.now() - startedAt;
    let i = 0;
    while (i < BOUNDS_MS.length && ms > BOUNDS_MS[i]!) i++;
    this.latency[i]!++;
    this.latencySum += ms;
    const c = ((status / 100) | 0) - 1;
    this.status[c < 0 ? 0 : c > 4 ? 4 : c]!++;
  }

  originError(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  assertionRefused(): void {
    this.refused++;
  }

  /** `edges`: one entry per edge endpoint dialed (none before an enrolling Warpgate has its certificate). */
  families(origin: OriginClientStats, maxConnections: number, edges: readonly EdgeCounts[], proc: ProcessMetrics): Family[] {
    const lat: Family = { name: 'mezu_warpgate_origin_duration_seconds', help: 'Time from a request handed to the origin client to the origin response head (queueing for a connection included).', type: 'histogram', samples: [] };
    histogramSamples(lat.samples, [], DURATION_BUCKETS, this.latency, 0, this.latencySum / 1000);
    const per = (f: (e: EdgeCounts) => number): Array<[string, number]> => edges.map((e) => [labels([['edge', e.edge]]), f(e)]);
    return [
      lat,
      { name: 'mezu_warpgate_origin_responses_total', help: 'Origin response heads, by status class.', type: 'counter', samples: STATUS.map((s, i) => [labels([['status', s]]), this.status[i]!] as [string, number]) },
      { name: 'mezu_warpgate_origin_errors_total', help: 'Requests the origin did not answer, by code (MEZU_ORIGIN_UNREACHABLE, _TIMEOUT, _FAILED, _BUSY).', type: 'counter', samples: [...this.errors].map(([code, n]) => [labels([['code', code]]), n] as [string, number]) },
      { name: 'mezu_warpgate_assertion_refused_total', help: 'Requests refused because their identity assertion did not verify (403 MEZU_ASSERTION_INVALID).', type: 'counter', samples: [['', this.refused]] },
      { name: 'mezu_warpgate_origin_connections', help: 'Origin connections by state.', type: 'gauge', samples: [[labels([['state', 'busy']]), origin.busy], [labels([['state', 'idle']]), origin.idle], [labels([['state', 'connecting']]), origin.connecting]] },
      { name: 'mezu_warpgate_origin_connections_max', help: 'The ceiling on origin connections (--origin-connections).', type: 'gauge', samples: [['', maxConnections]] },
      { name: 'mezu_warpgate_origin_queued', help: 'Requests waiting for an origin connection.', type: 'gauge', samples: [['', origin.queued]] },
      { name: 'mezu_warpgate_origin_connections_opened_total', help: 'Origin connections opened.', type: 'counter', samples: [['', origin.opened]] },
      { name: 'mezu_warpgate_origin_retried_total', help: 'Requests replayed after a stale keep-alive origin connection failed.', type: 'counter', samples: [['', origin.retried]] },
      { name: 'mezu_warpgate_tunnels', help: 'Tunnels open now, per edge endpoint.', type: 'gauge', samples: per((e) => e.tunnels) },
      { name: 'mezu_warpgate_tunnel_dials_total', help: 'Tunnel dials, per edge endpoint and result.', type: 'counter', samples: edges.flatMap((e): Array<[string, number]> => [[labels([['edge', e.edge], ['result', 'ok']]), e.counts.dialsOk], [labels([['edge', e.edge], ['result', 'failed']]), e.counts.dialsFailed]]) },
      { name: 'mezu_warpgate_tunnel_drops_total', help: 'Tunnels that closed without being drained on purpose, per edge endpoint.', type: 'counter', samples: per((e) => e.counts.drops) },
      { name: 'mezu_warpgate_tunnel_reconnects_total', help: 'Completed dials that replaced a dropped tunnel, per edge endpoint.', type: 'counter', samples: per((e) => e.counts.reconnects) },
      ...proc.families(),
    ];
  }

  render(origin: OriginClientStats, maxConnections: number, edges: readonly EdgeCounts[], proc: ProcessMetrics): string {
    return renderText(this.families(origin, maxConnections, edges, proc));
  }
}
