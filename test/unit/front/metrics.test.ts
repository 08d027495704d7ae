/**
 * The request path's counters (src/front/metrics.ts): slots per rule, stable
 * across config versions, bounded; counts by method and status class;
 * decisions; histograms by project.
 */
import test from 'ava';
import { compileConfig, parseConfigYaml, type CompiledConfig } from '../../../src/config/index.js';
import { RequestMetrics, DecisionKind, MAX_SLOTS } from '../../../src/front/index.js';
import { methodClass } from '../../../src/front/metrics.js';
import { renderText } from '../../../src/runtime/index.js';

const YAML = `
projects:
  - id: demo
    hosts: [demo.example]
    upstream: demo
    routes:
      - { path: /api/v1/*, auth: required }
      - { path: /health, auth: public }
  - id: shop
    hosts: [shop.example]
    upstream: shop
`;

function compile(yaml: string, version: number): CompiledConfig {
  const v = parseConfigYaml(yaml);
  if (!v.ok) throw new Error(JSON.stringify(v.problems));
  return compileConfig(v.config, version);
}

function lines(m: RequestMetrics): string[] {
  return renderText(m.families()).split('\n');
}

test('method classes', (t) => {
  t.deepEqual(['GET', 'HEAD', 'OPTIONS', 'POST', 'PUT', 'PATCH', 'DELETE', 'TRACE', 'get'].map(methodClass), [0, 0, 0, 1, 1, 1, 1, 2, 2]);
});

test('requests by project, rule, method class and status class; the rule label is the Policy name, never the path', (t) => {
  const cfg = compile(YAML, 1);
  const demo = cfg.projects.get('demo')!;
  const m = new RequestMetrics();
  const api = m.slotOf(cfg, demo, demo.match('GET', '/api/v1/items/7'));
  t.is(m.slotOf(cfg, demo, demo.match('GET', '/api/v1/other')), api, 'one slot per rule');
  const health = m.slotOf(cfg, demo, demo.match('POST', '/health'));
  t.not(health, api);
  const t0 = performance.now();
  m.count(api, 0, 200, t0);
  m.count(api, 0, 204, t0);
  m.count(api, 0, 401, t0);
  m.count(api, 1, 302, t0);
  m.count(api, 0, 0, t0); // aborted
  m.count(health, 1, 503, t0);
  m.count(0, 2, 405, t0); // no project
  const l = lines(m);
  t.true(l.includes('mezu_edge_requests_total{project="demo",route="demo:/api/v1/*",method="read",status="2xx"} 2'));
  t.true(l.includes('mezu_edge_requests_total{project="demo",route="demo:/api/v1/*",method="read",status="4xx"} 1'));
  t.true(l.includes('mezu_edge_requests_total{project="demo",route="demo:/api/v1/*",method="write",status="3xx"} 1'));
  t.true(l.includes('mezu_edge_requests_total{project="demo",route="demo:/api/v1/*",method="read",status="aborted"} 1'));
  t.true(l.includes('mezu_edge_requests_total{project="demo",route="demo:/health",method="write",status="5xx"} 1'));
  t.true(l.includes('mezu_edge_requests_total{project="(none)",route="(none)",method="other",status="4xx"} 1'));
  t.false(l.some((x) => x.includes('items/7')));
  t.true(l.includes('mezu_edge_request_duration_seconds_count{project="demo"} 6'));
  t.true(l.includes('mezu_edge_request_duration_seconds_count{project="(none)"} 1'));
});

test('decisions by project, outcome and reason; tunnel wait by project', (t) => {
  const cfg = compile(YAML, 1);
  const shop = cfg.projects.get('shop')!;
  const m = new RequestMetrics();
  const s = m.slotOf(cfg, shop, shop.match('GET', '/x'));
  m.decision(s, DecisionKind.AllowedSession);
  m.decision(s, DecisionKind.AllowedSession);
  m.decision(s, DecisionKind.LoginRequired);
  m.decision(s, DecisionKind.ClientBusy);
  m.tunnelWait(s, performance.now() - 3);
  const l = lines(m);
  t.true(l.includes('mezu_edge_decisions_total{project="shop",outcome="allowed",reason="session"} 2'));
  t.true(l.includes('mezu_edge_decisions_total{project="shop",outcome="login_required",reason="MEZU_LOGIN_REQUIRED"} 1'));
  t.true(l.includes('mezu_edge_decisions_total{project="shop",outcome="limit",reason="MEZU_CLIENT_BUSY"} 1'));
  // ~3 ms: in the 5 ms bucket, not in the 2.5 ms one.
  t.true(l.includes('mezu_edge_tunnel_wait_seconds_bucket{project="shop",le="0.0025"} 0'));
  t.true(l.includes('mezu_edge_tunnel_wait_seconds_bucket{project="shop",le="0.005"} 1'));
  t.true(l.includes('mezu_edge_tunnel_wait_seconds_count{project="shop"} 1'));
});

test('a rule keeps its slot across config versions; requests matching no rule count under the project', (t) => {
  const m = new RequestMetrics();
  const c1 = compile(YAML, 1);
  const c2 = compile(YAML, 2);
  const d1 = c1.projects.get('demo')!;
  const d2 = c2.projects.get('demo')!;
  const a = m.slotOf(c1, d1, d1.match('GET', '/api/v1/x'));
  const b = m.slotOf(c2, d2, d2.match('GET', '/api/v1/x'));
  t.not(d1.match('GET', '/api/v1/x'), d2.match('GET', '/api/v1/x'), 'distinct Policy objects');
  t.is(a, b);
  const none = m.slotOf(c2, d2, null);
  m.count(none, 0, 400, performance.now());
  t.true(lines(m).includes('mezu_edge_requests_total{project="demo",route="(none)",method="read",status="4xx"} 1'));
});

test('slots are bounded: past MAX_SLOTS rules, further ones share (other)', (t) => {
  const routes = Array.from({ length: 300 }, (_, i) => `      - { path: /r${i}, auth: public }`).join('\n');
  const m = new RequestMetrics();
  let last = -1;
  for (let v = 1; v * 300 < MAX_SLOTS + 600; v++) {
    const cfg = compile(`projects:\n  - id: p${v}\n    hosts: [p${v}.example]\n    upstream: u\n    routes:\n${routes}\n`, v);
    const p = cfg.projects.get(`p${v}`)!;
    for (let i = 0; i < 300; i++) last = m.slotOf(cfg, p, p.match('GET', `/r${i}`));
  }
  m.count(last, 0, 200, performance.now());
  t.true(lines(m).includes('mezu_edge_requests_total{project="(other)",route="(other)",method="read",status="2xx"} 1'));
});
