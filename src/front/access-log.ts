/**
 * The access log (`mezusphere edge --access-log RATE`, off by default): one
 * `access` line per answered request, for a sampled fraction RATE of them
 * (0 < RATE ≤ 1; 1 logs every request), written by the worker's logger so it
 * carries the worker id like any other line.
 *
 * What a line holds: the request id (X-Mezu-Request-Id), the trace id the
 * origin got (when forwarded), method, host, the path without its query,
 * status, the edge's time, project and rule, the client address. Never the
 * query string (reset and confirmation links carry tokens there), a header,
 * a cookie or who the principal is (docs/SECURITY.md "What is never logged").
 */
import type { Log } from '../runtime/index.js';
import { traceIdOf } from '../identity/index.js';
import type { EdgeRequest } from './request.js';

export class AccessLog {
  constructor(
    /** Fraction of requests logged, in (0, 1]. */
    readonly rate: number,
    private readonly log: Log,
    private readonly random: () => number = Math.random,
  ) {}

  /** `r` was answered with `status` (0: the client left before any head). */
  record(r: EdgeRequest, status: number): void {
    if (this.rate < 1 && this.random() >= this.rate) return;
    const q = r.target.indexOf('?');
    this.log('access', {
      request_id: r.id,
      trace_id: r.trace === '' ? undefined : traceIdOf(r.trace),
      method: r.method,
      host: r.host,
      // The normalized path once routed (never the query), else the raw path (uWS gives it without the query).
      path: r.target === '' ? r.url : q < 0 ? r.target : r.target.slice(0, q),
      status,
      ms: Math.round((performance.now() - r.startedAt) * 1000) / 1000,
      project: r.project?.id,
      rule: r.policy?.rule,
      client: r.clientAddress === '' ? undefined : r.clientAddress,
    });
  }
}

/** `--access-log` as given: `off`, or a rate in (0, 1] (`on` is 1). Null when invalid. */
export function parseAccessLogRate(s: string | undefined): number | null {
  if (s === undefined || s === 'off') return 0;
  if (s === 'on') return 1;
  const n = Number(s);
  return Number.isFinite(n) && n > 0 && n <= 1 ? n : null;
}
