/**
 * Structured logs and W3C Trace Context on the real stack: one request
 * followed by its id through the edge's access log, the Warpgate's access log and the headers the origin received — the same
 * X-Mezu-Request-Id everywhere, the client's trace id continued with the
 * edge's own span id as the origin's parent. A request without a
 * traceparent starts a trace; an invalid one is replaced, its tracestate
 * dropped. Every process writes JSON lines with its kind, the worker index
 * in the edge's workers, and level names.
 */
import test from 'ava';
import { Stack, logLines, waitFor } from './harness.js';

const TP = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;
const CLIENT_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const CLIENT_SPAN = '00f067aa0ba902b7';

const stack = new Stack(2, undefined, ['--access-log', 'on']);
test.before(async () => {
  await stack.start({ warpgate: false });
  await stack.startWarpgate(['--access-log']);
  stack.addUser('tracer@example.com', ['--roles', 'viewer']);
});
test.after.always(() => stack.stop());

interface Echo {
  identity: Record<string, string>;
  traceparent: string | null;
  tracestate: string | null;
}

function accessLine(out: string, id: string): Record<string, unknown> | undefined {
  return logLines(out).find((l) => l.msg === 'access' && l.request_id === id);
}

test.serial('one request followed by its id: edge log, Warpgate log and origin agree on the request id and the trace', async (t) => {
  const token = stack.session('tracer@example.com');
  const r = await stack.request('/api/v1/traced?x=secret-query', {
    headers: { cookie: `mezu_session=${token}`, accept: 'application/json', traceparent: `00-${CLIENT_TRACE}-${CLIENT_SPAN}-01`, tracestate: 'rojo=00f067aa0ba902b7' },
  });
  t.is(r.status, 200);
  const id = r.headers['x-mezu-request-id'] as string;
  t.truthy(id);
  const echo = JSON.parse(r.body) as Echo;
  // The origin's view: the identity headers and, beside them, the trace context.
  t.is(echo.identity['x-mezu-request-id'], id);
  const m = TP.exec(echo.traceparent ?? '');
  t.truthy(m, `traceparent at the origin: ${echo.traceparent}`);
  t.is(m![1], CLIENT_TRACE, 'the client\'s trace continued');
  t.not(m![2], CLIENT_SPAN, 'the origin\'s parent is the edge\'s span, not the client\'s');
  t.is(m![3], '01', 'the sampled flag passed on');
  t.is(echo.tracestate, 'rojo=00f067aa0ba902b7');

  // The edge's access line (one worker wrote it) and the Warpgate's, by the same id.
  await waitFor('both access lines', () => accessLine(stack.edge!.err, id) !== undefined && accessLine(stack.warpgate!.err, id) !== undefined, 5_000);
  const edge = accessLine(stack.edge!.err, id)!;
  t.is(edge.trace_id, CLIENT_TRACE);
  t.is(edge.status, 200);
  t.is(edge.path, '/api/v1/traced', 'the path without its query');
  t.false(stack.edge!.err.includes('secret-query'), 'no query string in any line');
  t.is(edge.level, 'info');
  t.is(edge.proc, 'edge');
  t.true(edge.worker === 0 || edge.worker === 1, `worker ${String(edge.worker)}`);
  t.is(edge.rule, 'demo:/api/v1/*');
  const wg = accessLine(stack.warpgate!.err, id)!;
  t.is(wg.trace_id, CLIENT_TRACE);
  t.is(wg.status, 200);
  t.is(wg.proc, 'warpgate');

  // And the origin's own record of the request: the same id, the same traceparent.
  const seen = (await stack.originSeen()).filter((s) => s.headers['x-mezu-request-id']?.[0] === id);
  t.is(seen.length, 1);
  t.deepEqual(seen[0]!.headers.traceparent, [echo.traceparent!], 'exactly one traceparent reached the origin');
});

test.serial('no traceparent: the edge starts a trace per request, not sampled, and says so in its access line', async (t) => {
  const a = await stack.request('/health');
  const b = await stack.request('/health');
  const pa = (JSON.parse(a.body) as Echo).traceparent!;
  const pb = (JSON.parse(b.body) as Echo).traceparent!;
  t.regex(pa, TP);
  t.regex(pb, TP);
  t.not(TP.exec(pa)![1], TP.exec(pb)![1]);
  t.is(TP.exec(pa)![3], '00');
  const id = a.headers['x-mezu-request-id'] as string;
  await waitFor('the access line', () => accessLine(stack.edge!.err, id) !== undefined, 5_000);
  t.is(accessLine(stack.edge!.err, id)!.trace_id, TP.exec(pa)![1]);
});

test.serial('an invalid traceparent is replaced, not forwarded, and its tracestate dropped', async (t) => {
  for (const bad of ['00-zzzz', `00-${'0'.repeat(32)}-${CLIENT_SPAN}-01`, `ff-${CLIENT_TRACE}-${CLIENT_SPAN}-01`]) {
    const r = await stack.request('/health', { headers: { traceparent: bad, tracestate: 'rojo=1' } });
    const echo = JSON.parse(r.body) as Echo;
    t.regex(echo.traceparent!, TP, bad);
    t.false(echo.traceparent!.includes(CLIENT_TRACE), bad);
    t.is(echo.tracestate, null, bad);
  }
});

test.serial('a refused request is logged too (its id, no trace: nothing was forwarded); every line is JSON with a level', async (t) => {
  const r = await stack.request('/api/v1/denied', { headers: { accept: 'application/json' } });
  t.is(r.status, 401);
  const id = r.headers['x-mezu-request-id'] as string;
  await waitFor('the access line', () => accessLine(stack.edge!.err, id) !== undefined, 5_000);
  const line = accessLine(stack.edge!.err, id)!;
  t.is(line.status, 401);
  t.is(line.trace_id, undefined);
  // Every line of every process is a JSON object with a level, a message and the process kind.
  for (const [name, out] of [['edge', stack.edge!.err], ['warpgate', stack.warpgate!.err]] as const) {
    const raw = out.split('\n').filter((l) => l !== '');
    const parsed = logLines(out);
    t.is(parsed.length, raw.length, `${name}: every line is JSON`);
    t.true(parsed.every((l) => typeof l.level === 'string' && typeof l.msg === 'string' && l.proc === name), name);
  }
  const workers = new Set(logLines(stack.edge!.err).map((l) => l.worker));
  t.true(workers.has(0) && workers.has(1) && workers.has(undefined), 'both workers and the primary logged');
});
