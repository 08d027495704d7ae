/**
 * The edge's spans, exported over OTLP (src/runtime/otlp.ts) when the worker
 * runs with `--otlp-endpoint`; without it the scope's `spans` is null and the
 * request path pays one null test where it would record.
 *
 * Per sampled request, three spans of the request's trace — the one in its
 * `traceparent`, or a new one:
 *
 * - `edge request` (SERVER): head in → answer out; its parent is the client's
 *   span when the client sent a valid `traceparent`;
 * - `edge decision` (INTERNAL, child of the request): head in → the verdict
 *   (route, session, authorize, step-up), with the outcome and reason code;
 * - `tunnel round trip` (CLIENT, child of the request, forwarded requests
 *   only): sent on the tunnel → the response's end. Its span id is the one the
 *   edge forwards in `traceparent` (src/identity/trace.ts), so the Warpgate's
 *   `origin call` span is its child and the origin's spans are the
 *   Warpgate's children.
 *
 * Sampling is parent-based: a client's sampled flag is followed (a valid
 * `traceparent` flagged `-00` records nothing), and a trace the edge starts is
 * sampled with probability `--otlp-sample` (decided once, before its
 * `traceparent` is forwarded, so the Warpgate and the origin agree).
 * Attributes name the request (method, host, status, project, rule, request
 * id), never a path, a query or who the user is.
 */
import { sampledFlag, validTraceparent } from '../identity/index.js';
import { newSpanId, newTraceId, SPAN_CLIENT, SPAN_INTERNAL, SPAN_SERVER, type SpanExporter } from '../runtime/index.js';
import { DECISIONS } from './metrics.js';
import type { EdgeRequest } from './request.js';

export class EdgeSpans {
  constructor(
    readonly exporter: SpanExporter,
    /** Probability that a trace the edge starts is sampled (0–1). */
    readonly sampleRate: number,
  ) {}

  /** Whether a new trace is sampled: one Math.random() below rate 1. */
  sampleNew(): boolean {
    return this.sampleRate >= 1 || (this.sampleRate > 0 && Math.random() < this.sampleRate);
  }

  /** `r` was answered with `status` (0: the client went away first): its spans, when its trace is sampled. */
  record(r: EdgeRequest, status: number): void {
    let traceId: string;
    let parent = '';
    let tunnelSpan = '';
    const clientValid = r.traceparent !== '' && validTraceparent(r.traceparent);
    if (r.trace !== '') {
      // Forwarded: the trace and the sampling decision went out with the request.
      if (!sampledFlag(r.trace)) return;
      traceId = r.trace.slice(3, 35);
      tunnelSpan = r.trace.slice(36, 52);
      if (clientValid) parent = r.traceparent.slice(36, 52);
    } else if (clientValid) {
      if (!sampledFlag(r.traceparent)) return;
      traceId = r.traceparent.slice(3, 35);
      parent = r.traceparent.slice(36, 52);
    } else {
      if (!this.sampleNew()) return;
      traceId = newTraceId();
    }
    const end = performance.now();
    const start = r.startedAt;
    const self = newSpanId();
    const error = status >= 500;
    const project = r.project === null ? '' : r.project.id;
    const attrs: Array<[string, string | number]> = [
      ['http.request.method', r.method],
      ['server.address', r.host],
      ['http.response.status_code', status],
      ['mezu.request_id', r.id],
    ];
    if (project !== '') attrs.push(['mezu.project', project]);
    if (r.policy !== null) attrs.push(['mezu.rule', r.policy.rule]);
    const ex = this.exporter;
    ex.add({ traceId, spanId: self, parentSpanId: parent, name: 'edge request', kind: SPAN_SERVER, startMs: start, endMs: end, attributes: attrs, error });
    if (r.decidedAt > 0) {
      const d = DECISIONS[r.decisionKind];
      const da: Array<[string, string | number]> = d === undefined ? [] : [['mezu.decision.outcome', d[0]], ['mezu.decision.reason', d[1]]];
      ex.add({ traceId, spanId: newSpanId(), parentSpanId: self, name: 'edge decision', kind: SPAN_INTERNAL, startMs: start, endMs: r.decidedAt, attributes: da, error: false });
    }
    if (tunnelSpan !== '' && r.sentAt > 0) {
      const ta: Array<[string, string | number]> = [['http.response.status_code', status]];
      if (r.project !== null) ta.push(['mezu.pool', r.project.upstream]);
      ex.add({ traceId, spanId: tunnelSpan, parentSpanId: self, name: 'tunnel round trip', kind: SPAN_CLIENT, startMs: r.sentAt, endMs: end, attributes: ta, error: error || status === 0 });
    }
  }
}
