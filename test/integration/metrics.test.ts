/**
 * Metrics on real processes: the edge (two workers) and a Warpgate started
 * with their metrics listeners, traffic that is allowed, refused for want of a
 * session (401) and forbidden (403), sent on fresh connections so the kernel
 * spreads it over both workers; then one scrape of each listener. The edge's
 * counts must be the edge's, summed over its workers, whichever worker served
 * which request.
 */
import test from 'ava';
import * as http from 'node:http';
import { Stack, waitFor } from './harness.js';

function scrape(port: number): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/metrics', agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body: Buffer.concat(chunks).toString('utf8') }));
      })
      .on('error', reject);
  });
}

/** `name{labels} value` lines → map from `name{labels}` to value. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

function buckets(m: Map<string, number>, name: string, match: string): number[] {
  const out: Array<[number, number]> = [];
  for (const [k, v] of m) {
    if (!k.startsWith(`${name}_bucket{`) || !k.includes(match)) continue;
    const le = /le="([^"]+)"/.exec(k)![1]!;
    out.push([le === '+Inf' ? Infinity : Number(le), v]);
  }
  return out.sort((a, b) => a[0] - b[0]).map(([, v]) => v);
}

test('the edge serves its workers\u2019 counts merged, and the Warpgate its own, in the text format', async (t) => {
  const s = new Stack(2);
  try {
    await s.start({ warpgate: false });
    await s.startWarpgate(['--metrics-port', '0']);
    t.true(s.metricsPort > 0, 'the ready line names the metrics port');
    await waitFor('warpgate metrics line', () => s.warpgate!.out.includes('"event":"metrics"'));
    const wgPort = (JSON.parse(s.warpgate!.out.split('\n').find((l) => l.includes('"event":"metrics"'))!) as { port: number }).port;

    s.addUser('val@example.com', ['--roles', 'viewer']);
    const token = s.session('val@example.com');
    const cookie = { cookie: `mezu_session=${token}`, accept: 'application/json' };
    const N = 12;
    for (let i = 0; i < N; i++) t.is((await s.request(`/api/v1/items/${i}`, { headers: cookie })).status, 200);
    for (let i = 0; i < 5; i++) t.is((await s.request('/api/v1/items', { headers: { accept: 'application/json' } })).status, 401);
    for (let i = 0; i < 4; i++) t.is((await s.request('/admin/panel', { headers: cookie })).status, 403);
    for (let i = 0; i < 3; i++) t.is((await s.request('/health', { method: 'POST', body: 'x' })).status, 200);

    const r = await scrape(s.metricsPort);
    t.is(r.status, 200);
    t.is(r.type, 'text/plain; version=0.0.4; charset=utf-8');
    const m = parse(r.body);
    t.is(m.get('mezu_edge_workers{state="alive"}'), 2);
    t.is(m.get('mezu_edge_workers{state="missing"}'), 0);
    // Both workers answered the scrape (each reports its own process figures).
    t.true(m.has('mezu_edge_heap_used_bytes{process="edge-worker-0"}'));
    t.true(m.has('mezu_edge_heap_used_bytes{process="edge-worker-1"}'));
    t.true(m.has('mezu_edge_heap_used_bytes{process="edge-primary"}'));

    t.is(m.get('mezu_edge_requests_total{project="demo",route="demo:/api/v1/*",method="read",status="2xx"}'), N);
    t.is(m.get('mezu_edge_requests_total{project="demo",route="demo:/api/v1/*",method="read",status="4xx"}'), 5);
    t.is(m.get('mezu_edge_requests_total{project="demo",route="demo:/admin/*",method="read",status="4xx"}'), 4);
    t.is(m.get('mezu_edge_requests_total{project="demo",route="demo:/health",method="write",status="2xx"}'), 3);
    t.is(m.get('mezu_edge_decisions_total{project="demo",outcome="allowed",reason="session"}'), N);
    t.is(m.get('mezu_edge_decisions_total{project="demo",outcome="allowed",reason="public"}'), 3);
    t.is(m.get('mezu_edge_decisions_total{project="demo",outcome="login_required",reason="MEZU_LOGIN_REQUIRED"}'), 5);
    t.is(m.get('mezu_edge_decisions_total{project="demo",outcome="forbidden",reason="MEZU_FORBIDDEN"}'), 4);

    // Histograms: cumulative buckets never go down, +Inf equals _count, which counts every request of the project.
    const total = N + 5 + 4 + 3;
    const dur = buckets(m, 'mezu_edge_request_duration_seconds', 'project="demo"');
    t.true(dur.length > 2);
    for (let i = 1; i < dur.length; i++) t.true(dur[i]! >= dur[i - 1]!, `bucket ${i} of ${dur.join(',')}`);
    t.is(dur[dur.length - 1], total);
    t.is(m.get('mezu_edge_request_duration_seconds_count{project="demo"}'), total);
    t.true(m.get('mezu_edge_request_duration_seconds_sum{project="demo"}')! > 0);
    const wait = buckets(m, 'mezu_edge_tunnel_wait_seconds', 'project="demo"');
    for (let i = 1; i < wait.length; i++) t.true(wait[i]! >= wait[i - 1]!);
    t.is(m.get('mezu_edge_tunnel_wait_seconds_count{project="demo"}'), N + 3);

    // Tunnels: the Warpgate's 2 per worker, summed.
    t.is(m.get('mezu_edge_tunnel_connections{pool="demo"}'), 4);
    t.is(m.get('mezu_edge_live_streams'), 0);
    t.true(m.has('mezu_edge_event_loop_delay_seconds{process="edge-worker-0",quantile="0.99"}'));
    t.true(m.has('mezu_edge_store_size_bytes'));
    // No user, session or path beyond route patterns in any label.
    t.false(r.body.includes('val@example.com'));
    t.false(r.body.includes('/api/v1/items'));

    const w = await scrape(wgPort);
    t.is(w.status, 200);
    t.is(w.type, 'text/plain; version=0.0.4; charset=utf-8');
    const wm = parse(w.body);
    t.is(wm.get('mezu_warpgate_origin_responses_total{status="2xx"}'), N + 3);
    t.is(wm.get('mezu_warpgate_origin_duration_seconds_count'), N + 3);
    const lat = buckets(wm, 'mezu_warpgate_origin_duration_seconds', '');
    for (let i = 1; i < lat.length; i++) t.true(lat[i]! >= lat[i - 1]!);
    t.is(wm.get(`mezu_warpgate_tunnels{edge="127.0.0.1:${s.tunnelPort}"}`), 4, 'per edge endpoint');
    t.is(wm.get('mezu_warpgate_origin_connections_max'), 1024);
    t.true(wm.has('mezu_warpgate_heap_used_bytes{process="warpgate"}'));
    t.is((await new Promise<number>((res) => http.get({ host: '127.0.0.1', port: s.metricsPort, path: '/', agent: false }, (x) => { x.resume(); res(x.statusCode ?? 0); }))), 404);
  } finally {
    await s.stop();
  }
});
