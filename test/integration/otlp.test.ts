/**
 * OpenTelemetry export on real processes: an edge (two workers) and its
 * Warpgate started with `--otlp-endpoint` pointing at a real OTLP/HTTP
 * receiver on loopback (a node:http server taking `POST /v1/traces`, JSON).
 * One request is followed by its trace id: the edge's `edge request` span
 * (parent: the client's span), `edge decision` and `tunnel round trip` (its
 * children), the Warpgate's `origin call` (child of the tunnel round trip),
 * and the origin's received `traceparent` naming the origin call as its
 * parent. Sampling follows the client's flag; a trace the edge starts is
 * sampled at `--otlp-sample`; a refusal has no tunnel span. With the
 * collector gone, requests are answered as before and the spans are counted
 * as dropped.
 */
import test from 'ava';
import * as http from 'node:http';
import { DEMO_CONFIG, Stack, waitFor } from './harness.js';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: Array<{ key: string; value: { stringValue?: string; intValue?: string } }>;
  status: { code: number };
  service: string;
}

const received: OtlpSpan[] = [];
const contentTypes = new Set<string>();
let receiver: http.Server;
let stack: Stack;

function attr(s: OtlpSpan, key: string): string | undefined {
  const a = s.attributes.find((x) => x.key === key);
  return a === undefined ? undefined : (a.value.stringValue ?? a.value.intValue);
}

test.before(async () => {
  receiver = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: Array<{ resource: { attributes: Array<{ key: string; value: { stringValue: string } }> }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> };
      for (const rs of body.resourceSpans) {
        const service = rs.resource.attributes.find((a) => a.key === 'service.name')!.value.stringValue;
        for (const ss of rs.scopeSpans) for (const s of ss.spans) received.push({ ...s, service });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(receiver.address() as { port: number }).port}`;
  stack = new Stack(2, DEMO_CONFIG, ['--otlp-endpoint', url, '--otlp-sample', '1']);
  await stack.start({ warpgate: false });
  await stack.startWarpgate(['--otlp-endpoint', url]);
});
test.after.always(async () => {
  await stack?.stop();
  receiver?.closeAllConnections();
  await new Promise((r) => receiver?.close(r));
});

const spansOf = (traceId: string) => received.filter((s) => s.traceId === traceId);

test.serial('one request, one trace: edge request → decision and tunnel round trip → origin call → the origin', async (t) => {
  stack.addUser('ada@example.com', ['--roles', 'admin']);
  const cookie = `mezu_session=${stack.session('ada@example.com')}`;
  const trace = '4bf92f3577b34da6a3ce929d0e0e4736';
  const client = '00f067aa0ba902b7';
  await stack.clearOrigin();
  const r = await stack.request('/api/v1/hello', { headers: { cookie, accept: 'application/json', traceparent: `00-${trace}-${client}-01` } });
  t.is(r.status, 200);
  const seen = (await stack.originSeen()).find((x) => x.path === '/api/v1/hello')!;
  const atOrigin = seen.headers.traceparent![0]!;
  t.regex(atOrigin, new RegExp(`^00-${trace}-[0-9a-f]{16}-01$`));

  await waitFor('four spans of the trace', () => spansOf(trace).length >= 4, 15_000);
  const spans = spansOf(trace);
  t.is(spans.length, 4, JSON.stringify(spans.map((s) => s.name)));
  const by = (name: string) => spans.find((s) => s.name === name)!;
  const edge = by('edge request');
  const decision = by('edge decision');
  const tunnel = by('tunnel round trip');
  const origin = by('origin call');
  t.is(edge.service, 'mezusphere-edge');
  t.is(origin.service, 'mezusphere-warpgate');
  // Parent and child ids: client → edge request → (decision, tunnel round trip) → origin call → the origin.
  t.is(edge.parentSpanId, client);
  t.is(edge.kind, 2);
  t.is(decision.parentSpanId, edge.spanId);
  t.is(decision.kind, 1);
  t.is(tunnel.parentSpanId, edge.spanId);
  t.is(tunnel.kind, 3);
  t.is(origin.parentSpanId, tunnel.spanId);
  t.is(origin.kind, 3);
  t.is(atOrigin.slice(36, 52), origin.spanId, 'the origin sees the origin call as its parent');
  t.is(new Set(spans.map((s) => s.spanId)).size, 4, 'four distinct span ids');
  for (const s of spans) t.regex(s.spanId, /^[0-9a-f]{16}$/);
  // What they say.
  t.is(attr(edge, 'http.response.status_code'), '200');
  t.is(attr(edge, 'mezu.project'), 'demo');
  t.is(attr(edge, 'mezu.rule'), 'demo:/api/v1/*');
  t.is(attr(edge, 'mezu.request_id'), String(r.headers['x-mezu-request-id']));
  t.is(attr(origin, 'mezu.request_id'), String(r.headers['x-mezu-request-id']));
  t.is(attr(decision, 'mezu.decision.outcome'), 'allowed');
  t.is(attr(decision, 'mezu.decision.reason'), 'session');
  t.is(attr(tunnel, 'mezu.pool'), 'demo');
  t.false(JSON.stringify(spans).includes('ada@example.com'), 'no user in a span');
  t.false(JSON.stringify(spans).includes('/api/v1/hello'), 'no path in a span');
  // Times: each child within its parent (the edge's spans share one clock; 2 ms of slack across processes).
  const n = (x: string) => Number(BigInt(x) / 1000n) / 1000; // ms
  t.true(n(edge.startTimeUnixNano) <= n(decision.startTimeUnixNano) && n(decision.endTimeUnixNano) <= n(edge.endTimeUnixNano));
  t.true(n(tunnel.startTimeUnixNano) >= n(decision.endTimeUnixNano) && n(tunnel.endTimeUnixNano) <= n(edge.endTimeUnixNano));
  t.true(n(origin.startTimeUnixNano) >= n(tunnel.startTimeUnixNano) - 2 && n(origin.endTimeUnixNano) <= n(tunnel.endTimeUnixNano) + 2);
  t.deepEqual([...contentTypes], ['application/json']);
});

test.serial('sampling: a client\u2019s -00 records nothing; a trace the edge starts is sampled (rate 1) and forwarded -01; a refusal has no tunnel span', async (t) => {
  const cookie = `mezu_session=${stack.session('ada@example.com')}`;
  const quiet = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
  t.is((await stack.request('/api/v1/quiet', { headers: { cookie, accept: 'application/json', traceparent: `00-${quiet}-00f067aa0ba902b7-00` } })).status, 200);

  await stack.clearOrigin();
  t.is((await stack.request('/api/v1/new', { headers: { cookie, accept: 'application/json' } })).status, 200);
  const fresh = (await stack.originSeen()).find((x) => x.path === '/api/v1/new')!.headers.traceparent![0]!;
  t.regex(fresh, /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'a new trace, sampled');
  const newTrace = fresh.slice(3, 35);

  const refused = 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb';
  t.is((await stack.request('/api/v1/x', { headers: { accept: 'application/json', traceparent: `00-${refused}-00f067aa0ba902b7-01` } })).status, 401);

  await waitFor('spans of the new trace and of the refusal', () => spansOf(newTrace).length >= 4 && spansOf(refused).length >= 2, 15_000);
  const root = spansOf(newTrace).find((s) => s.name === 'edge request')!;
  t.is(root.parentSpanId ?? '', '', 'the edge started it: a root span');
  t.deepEqual(spansOf(refused).map((s) => s.name).sort(), ['edge decision', 'edge request']);
  const d = spansOf(refused).find((s) => s.name === 'edge decision')!;
  t.is(attr(d, 'mezu.decision.outcome'), 'login_required');
  t.is(attr(d, 'mezu.decision.reason'), 'MEZU_LOGIN_REQUIRED');
  t.is(attr(spansOf(refused).find((s) => s.name === 'edge request')!, 'http.response.status_code'), '401');
  // Batches go out every second: anything of the quiet trace would be here by now.
  await new Promise((r) => setTimeout(r, 1_500));
  t.is(spansOf(quiet).length, 0);
});

test.serial('with the collector gone, requests are answered as before and the spans are dropped and counted', async (t) => {
  receiver.closeAllConnections();
  await new Promise((r) => receiver.close(r));
  const cookie = `mezu_session=${stack.session('ada@example.com')}`;
  for (let i = 0; i < 20; i++) t.is((await stack.request(`/api/v1/down/${i}`, { headers: { cookie, accept: 'application/json' } })).status, 200);
  let dropped = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < 15_000) {
    const text = await new Promise<string>((resolve, reject) =>
      http.get({ host: '127.0.0.1', port: stack.metricsPort, path: '/metrics', agent: false }, (res) => {
        let b = '';
        res.on('data', (c: Buffer) => (b += c.toString()));
        res.on('end', () => resolve(b));
      }).on('error', reject),
    );
    dropped = Number(/^mezu_edge_otlp_spans_dropped_total\{reason="export_failed"\} (\d+)$/m.exec(text)?.[1] ?? 0);
    if (dropped >= 60) break;
    await new Promise((r) => setTimeout(r, 300));
  }
  t.true(dropped >= 60, `3 spans per request dropped and counted, got ${dropped}`);
  t.regex(stack.edge!.err, /otlp: \d+ batch\(es\) not taken by http:\/\/127\.0\.0\.1:\d+/);
});
