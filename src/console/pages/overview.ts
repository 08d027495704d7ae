/**
 * The overview, the first page after sign-in: per project, the traffic of the
 * last hour — requests per second now, p50/p99 latency, 5xx, denials by
 * reason, sign-ins and failures, Warpgates up — as numbers and as charts drawn
 * on the server (charts.ts). The figures are `GET /api/v1/projects/{id}/stats`
 * (the same call the JSON clients make), which the edge primaries feed from
 * their workers' counters every 5 s; the page asks the browser to reload it at
 * that pace with `<meta http-equiv="refresh">`, which needs no script and so
 * keeps the CSP.
 */
import type { ProjectStats } from '../../control/index.js';
import { esc, table } from '../html.js';
import { html, framed, listProjects, enc, type Ctx, type Reply } from './context.js';
import { bars, columns, lines } from './charts.js';

/** Seconds between reloads: the pace at which the edge writes its figures (src/cluster/traffic.ts). */
export const OVERVIEW_REFRESH_S = 5;

/** `/overview`: null when the path names no such page. */
export async function route(c: Ctx, seg: string[], post: boolean): Promise<Reply | null> {
  return seg.length === 1 && !post ? overview(c) : null;
}

const num = (v: number | null, digits = 0): string => (v === null ? '—' : v.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: 0 }));

function stat(key: string, label: string, value: string): string {
  return `<div><dt>${esc(label)}</dt><dd data-stat="${esc(key)}">${value}</dd></div>`;
}

function project(p: Record<string, any>, s: ProjectStats): string {
  const h = s.last_hour;
  const id = String(p.id);
  const numbers =
    `<dl class="stats">` +
    stat('rps', 'Requests/s now', num(s.requests_per_second, 2)) +
    stat('requests', 'Requests, last hour', num(h.requests)) +
    stat('p50', 'p50 latency (ms)', num(h.latency_ms.p50, 3)) +
    stat('p99', 'p99 latency (ms)', num(h.latency_ms.p99, 3)) +
    stat('errors_5xx', '5xx, last hour', num(h.errors_5xx)) +
    stat('denials', 'Denials, last hour', num(h.denials_total)) +
    stat('logins_success', 'Sign-ins', num(h.logins.success)) +
    stat('logins_failure', 'Failed sign-ins', num(h.logins.failure)) +
    stat('warpgates', 'Warpgates up', `${s.warpgates.up} of ${s.warpgates.total}`) +
    `</dl>`;
  const at = (m: ProjectStats['minutes'][number]) => m.at;
  const charts =
    `<div class="charts">` +
    columns(`chart-requests-${id}`, 'Requests per minute', '', [
      { name: 'requests', color: '#2563eb', points: s.minutes.map((m) => ({ at: at(m), value: m.requests })) },
      { name: '5xx', color: '#b42318', points: s.minutes.map((m) => ({ at: at(m), value: m.errors_5xx })) },
    ]) +
    lines(`chart-latency-${id}`, 'Latency at the edge', 'ms', [
      { name: 'p50', color: '#2563eb', points: s.minutes.map((m) => ({ at: at(m), value: m.p50_ms })) },
      { name: 'p99', color: '#b45309', points: s.minutes.map((m) => ({ at: at(m), value: m.p99_ms })) },
    ]) +
    columns(`chart-denials-${id}`, 'Denials per minute', '', [{ name: 'denials', color: '#b45309', points: s.minutes.map((m) => ({ at: at(m), value: m.denials })) }]) +
    columns(`chart-logins-${id}`, 'Sign-ins per minute', '', [
      { name: 'sign-ins', color: '#166534', points: s.minutes.map((m) => ({ at: at(m), value: m.logins_success + m.logins_failure })) },
      { name: 'failed', color: '#b42318', points: s.minutes.map((m) => ({ at: at(m), value: m.logins_failure })) },
    ]) +
    `</div>`;
  const reasons = Object.entries(h.denials);
  const denials =
    reasons.length === 0
      ? '<h3>Denials by reason, last hour</h3><p class="muted">No request was refused in the last hour.</p>'
      : `<div class="charts">${bars(`chart-reasons-${id}`, 'Denials by reason, last hour', reasons, '#b45309')}${table(['Reason', 'Denials'], reasons.map(([r, n]) => [`<code>${esc(r)}</code>`, esc(n)]), '')}</div>`;
  const stale = s.edges_reporting === 0 ? `<p class="notice" role="note">No edge is reporting now${s.updated_at === null ? '' : ` (last figures at ${esc(s.updated_at)})`}: an edge records traffic only while it counts its metrics (not with <code>--metrics-port off</code>).</p>` : '';
  return `<section aria-labelledby="p-${esc(id)}" data-project="${esc(id)}"><h2 id="p-${esc(id)}">${esc(p.name)} <span class="muted">(<code>${esc(id)}</code>)</span></h2>${stale}${numbers}${charts}${denials}<p class="muted">The same figures: <a href="/api/v1/projects/${enc(id)}/stats"><code>GET /api/v1/projects/${esc(id)}/stats</code></a>. Updated ${esc(s.updated_at ?? 'never')}; this page reloads every ${OVERVIEW_REFRESH_S} s.</p></section>`;
}

async function overview(c: Ctx): Promise<Reply> {
  const projects = await listProjects(c);
  const parts: string[] = [];
  for (const p of projects) parts.push(project(p, (await c.call('GET', `/api/v1/projects/${enc(String(p.id))}/stats`)) as ProjectStats));
  const body = parts.length === 0 ? '<section><p class="muted">No project is configured yet.</p></section>' : parts.join('');
  return html(200, framed(c, { title: 'Overview', current: 'overview', refresh: OVERVIEW_REFRESH_S, body }));
}
