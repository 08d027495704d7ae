/**
 * Charts drawn on the server as inline SVG, so the Console keeps its CSP
 * (`default-src 'none'`, no script) and loads nothing: colours and sizes are
 * SVG presentation attributes, not `style` (which the CSP's hash would not
 * cover). Every chart is an `<svg role="img">` with a title and a label that
 * says what it shows; every bar or point has a `<title>` with its minute and
 * value (a tooltip, and text for screen readers).
 */
import { esc } from '../html.js';

const W = 600;
const H = 170;
const LEFT = 46;
const RIGHT = 8;
const TOP = 10;
const BOTTOM = 22;

export interface Point {
  /** ISO time of the minute. */
  at: string;
  value: number | null;
}

export interface Series {
  name: string;
  color: string;
  points: Point[];
}

/** A round upper bound for the axis: 1, 2, 5 × 10ⁿ at or above `v`. */
function niceMax(v: number): number {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v: number): string {
  if (v >= 1000) return `${Math.round(v / 100) / 10}k`;
  if (v >= 10 || Number.isInteger(v)) return String(Math.round(v));
  return String(Math.round(v * 100) / 100);
}

const minuteOf = (iso: string) => iso.slice(11, 16);

function frame(id: string, title: string, max: number, n: number, unit: string, inner: string, legend: Series[]): string {
  const plotH = H - TOP - BOTTOM;
  const y = (v: number) => TOP + plotH - (v / max) * plotH;
  const grid = [0, 0.5, 1]
    .map((f) => `<line x1="${LEFT}" x2="${W - RIGHT}" y1="${y(max * f)}" y2="${y(max * f)}" stroke="#e4e7eb" stroke-width="1"/><text x="${LEFT - 4}" y="${y(max * f) + 4}" text-anchor="end" font-size="11" fill="#52606d">${fmt(max * f)}</text>`)
    .join('');
  const axis = `<text x="${LEFT}" y="${H - 6}" font-size="11" fill="#52606d">−${n} min</text><text x="${W - RIGHT}" y="${H - 6}" text-anchor="end" font-size="11" fill="#52606d">now</text>`;
  const key = legend.length > 1 ? legend.map((s, i) => `<rect x="${LEFT + 60 + i * 90}" y="${H - 15}" width="10" height="10" fill="${s.color}"/><text x="${LEFT + 74 + i * 90}" y="${H - 6}" font-size="11" fill="#1f2933">${esc(s.name)}</text>`).join('') : '';
  const label = `${title} over the last ${n} minutes${unit === '' ? '' : ` (${unit})`}`;
  return `<figure class="chart"><figcaption>${esc(title)}${unit === '' ? '' : ` <span class="muted">(${esc(unit)})</span>`}</figcaption><svg class="chart" id="${esc(id)}" role="img" aria-label="${esc(label)}" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" xmlns="http://www.w3.org/2000/svg"><title>${esc(label)}</title>${grid}${inner}${axis}${key}</svg></figure>`;
}

/** Minutes shown, the axis's top (rounded up) and the plot area, shared by both kinds of chart. */
function scale(series: Series[]): { n: number; max: number; plotW: number; plotH: number } {
  let top = 0;
  for (const s of series) for (const p of s.points) if (p.value !== null && p.value > top) top = p.value;
  return { n: series[0]?.points.length ?? 0, max: niceMax(top), plotW: W - LEFT - RIGHT, plotH: H - TOP - BOTTOM };
}

/** Columns per minute; several series are drawn over each other (the second, e.g. 5xx, in front of the first). */
export function columns(id: string, title: string, unit: string, series: Series[]): string {
  const { n, max, plotW, plotH } = scale(series);
  const bw = n === 0 ? 0 : plotW / n;
  let inner = '';
  for (const s of series) {
    s.points.forEach((p, i) => {
      if (p.value === null || p.value <= 0) return;
      const h = (p.value / max) * plotH;
      inner += `<rect x="${(LEFT + i * bw + 0.5).toFixed(1)}" y="${(TOP + plotH - h).toFixed(1)}" width="${Math.max(1, bw - 1).toFixed(1)}" height="${h.toFixed(1)}" fill="${s.color}"><title>${minuteOf(p.at)} UTC: ${fmt(p.value)} ${esc(s.name)}</title></rect>`;
    });
  }
  return frame(id, title, max, n, unit, inner, series);
}

/** Lines per minute; a minute without a value (no request) breaks the line. */
export function lines(id: string, title: string, unit: string, series: Series[]): string {
  const { n, max, plotW, plotH } = scale(series);
  const step = n === 0 ? 0 : plotW / n;
  let inner = '';
  for (const s of series) {
    let run: string[] = [];
    const flush = () => {
      if (run.length > 1) inner += `<polyline points="${run.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"/>`;
      run = [];
    };
    s.points.forEach((p, i) => {
      if (p.value === null) return flush();
      const x = (LEFT + (i + 0.5) * step).toFixed(1);
      const y = (TOP + plotH - (Math.min(p.value, max) / max) * plotH).toFixed(1);
      run.push(`${x},${y}`);
      inner += `<circle cx="${x}" cy="${y}" r="2.5" fill="${s.color}"><title>${minuteOf(p.at)} UTC: ${esc(s.name)} ${fmt(p.value)} ${esc(unit)}</title></circle>`;
    });
    flush();
  }
  return frame(id, title, max, n, unit, inner, series);
}

/** Horizontal bars, one per named value (denials by reason). */
export function bars(id: string, title: string, values: Array<[string, number]>, color: string): string {
  const rowH = 22;
  const labelW = 250;
  const h = Math.max(1, values.length) * rowH + 8;
  const max = niceMax(values.reduce((a, [, v]) => Math.max(a, v), 0));
  const inner = values
    .map(([name, v], i) => {
      const w = (v / max) * (W - labelW - 60);
      const y = 4 + i * rowH;
      return `<text x="${labelW - 6}" y="${y + 15}" text-anchor="end" font-size="12" fill="#1f2933">${esc(name)}</text><rect x="${labelW}" y="${y + 3}" width="${Math.max(1, w).toFixed(1)}" height="${rowH - 6}" fill="${color}"><title>${esc(name)}: ${v}</title></rect><text x="${(labelW + w + 6).toFixed(1)}" y="${y + 15}" font-size="12" fill="#1f2933">${v}</text>`;
    })
    .join('');
  const label = `${title} over the last hour`;
  return `<figure class="chart"><figcaption>${esc(title)}</figcaption><svg class="chart" id="${esc(id)}" role="img" aria-label="${esc(label)}" viewBox="0 0 ${W} ${h}" width="${W}" height="${h}" xmlns="http://www.w3.org/2000/svg"><title>${esc(label)}</title>${inner}</svg></figure>`;
}
