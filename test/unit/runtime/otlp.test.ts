/**
 * The OTLP exporter alone, against a receiver on loopback: the JSON it sends
 * (ExportTraceServiceRequest, hex ids, nanosecond strings, typed attribute
 * values), batches of at most maxBatch, one request in flight, a bounded
 * queue that drops and counts when full, and a batch the collector refuses
 * (503) or cannot take (connection refused) dropped and counted — never
 * retried, never waited for by `add`.
 */
import test from 'ava';
import * as http from 'node:http';
import { SpanExporter, noLog, otlpJson, parseOtlpEndpoint, newSpanId, newTraceId, SPAN_SERVER, type Span } from '../../../src/runtime/index.js';

function span(i: number): Span {
  return { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: `00f067aa0ba902${(i % 256).toString(16).padStart(2, '0')}`, parentSpanId: i === 0 ? '' : '00f067aa0ba90200', name: 'edge request', kind: SPAN_SERVER, startMs: 1000 + i, endMs: 1000.5 + i, attributes: [['http.response.status_code', 200], ['mezu.project', 'demo'], ['x.ratio', 0.5]], error: i % 2 === 1 };
}

async function receiver(status: number): Promise<{ url: URL; bodies: any[]; inFlightMax: () => number; close: () => Promise<void> }> {
  const bodies: any[] = [];
  let inFlight = 0;
  let max = 0;
  const server = http.createServer((req, res) => {
    inFlight++;
    max = Math.max(max, inFlight);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      bodies.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      setTimeout(() => {
        inFlight--;
        res.writeHead(status).end();
      }, 20);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = parseOtlpEndpoint(`http://127.0.0.1:${(server.address() as { port: number }).port}`)!;
  return { url, bodies, inFlightMax: () => max, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

test('the endpoint: a base URL gets /v1/traces, a full one is kept, anything but http(s) is refused', (t) => {
  t.is(parseOtlpEndpoint('http://127.0.0.1:4318')!.href, 'http://127.0.0.1:4318/v1/traces');
  t.is(parseOtlpEndpoint('https://otel.example/custom/traces')!.href, 'https://otel.example/custom/traces');
  t.is(parseOtlpEndpoint('ftp://x'), null);
  t.is(parseOtlpEndpoint('not a url'), null);
  t.regex(newSpanId(), /^[0-9a-f]{16}$/);
  t.regex(newTraceId(), /^[0-9a-f]{32}$/);
});

test('the JSON encoding: resource, scope, hex ids, nanoseconds as strings, typed attributes, status', (t) => {
  const doc = JSON.parse(otlpJson([span(0), span(1)], 'mezusphere-edge', [['service.instance.id', 'e1-w0']]));
  const rs = doc.resourceSpans[0];
  t.deepEqual(rs.resource.attributes, [{ key: 'service.name', value: { stringValue: 'mezusphere-edge' } }, { key: 'service.instance.id', value: { stringValue: 'e1-w0' } }]);
  const [a, b] = rs.scopeSpans[0].spans;
  t.is(a.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  t.false('parentSpanId' in a, 'a root span has none');
  t.is(b.parentSpanId, '00f067aa0ba90200');
  t.regex(a.startTimeUnixNano, /^\d{19}$/);
  t.is(BigInt(a.endTimeUnixNano) - BigInt(a.startTimeUnixNano), 500_000n);
  t.deepEqual(a.attributes, [{ key: 'http.response.status_code', value: { intValue: '200' } }, { key: 'mezu.project', value: { stringValue: 'demo' } }, { key: 'x.ratio', value: { doubleValue: 0.5 } }]);
  t.deepEqual(a.status, { code: 0 });
  t.deepEqual(b.status, { code: 2 });
  t.is(a.kind, 2);
});

test('batches of at most maxBatch, one in flight; a full queue drops and counts', async (t) => {
  const r = await receiver(200);
  const ex = new SpanExporter({ endpoint: r.url, service: 's', metricsPrefix: 'mezu_test', log: noLog, maxQueue: 100, maxBatch: 30, everyMs: 60_000 });
  for (let i = 0; i < 130; i++) ex.add(span(i));
  t.deepEqual(ex.stats(), { queued: 100, exported: 0, droppedFull: 30, droppedFailed: 0 });
  // Full batches go out one after another without waiting for the timer.
  const t0 = Date.now();
  while (ex.stats().exported < 90 && Date.now() - t0 < 5_000) await new Promise((res) => setTimeout(res, 10));
  await ex.close();
  t.is(ex.stats().exported, 100);
  t.deepEqual(r.bodies.map((b) => b.resourceSpans[0].scopeSpans[0].spans.length), [30, 30, 30, 10]);
  t.is(r.inFlightMax(), 1);
  const fam = ex.families();
  t.deepEqual(fam.map((f) => f.name), ['mezu_test_otlp_spans_exported_total', 'mezu_test_otlp_spans_dropped_total', 'mezu_test_otlp_spans_queued']);
  t.deepEqual(fam[1]!.samples, [['{reason="queue_full"}', 30], ['{reason="export_failed"}', 0]]);
  await r.close();
});

test('a batch the collector refuses (503) or cannot take (nobody listening) is dropped and counted, not retried', async (t) => {
  const r = await receiver(503);
  const logged: string[] = [];
  const ex = new SpanExporter({ endpoint: r.url, service: 's', metricsPrefix: 'mezu_test', log: (m) => logged.push(m), everyMs: 60_000 });
  for (let i = 0; i < 5; i++) ex.add(span(i));
  await ex.flush();
  t.is(ex.stats().droppedFailed, 5);
  t.is(r.bodies.length, 1);
  const url = r.url;
  await r.close();
  const gone = new SpanExporter({ endpoint: url, service: 's', metricsPrefix: 'mezu_test', log: (m) => logged.push(m), everyMs: 60_000, timeoutMs: 500 });
  for (let i = 0; i < 7; i++) gone.add(span(i));
  const t0 = performance.now();
  await gone.flush();
  t.true(performance.now() - t0 < 2_000);
  t.deepEqual(gone.stats(), { queued: 0, exported: 0, droppedFull: 0, droppedFailed: 7 });
  t.is(logged.length, 2, 'one line per exporter (at most one a minute)');
  t.regex(logged[0]!, /otlp: 1 batch\(es\) not taken by http:\/\/127\.0\.0\.1:\d+ \(last: status 503\)/);
  await ex.close();
  await gone.close();
});
