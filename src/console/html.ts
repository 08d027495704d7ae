/**
 * HTML building blocks of the Console pages: escaping, the page frame, and a
 * strict Content-Security-Policy. No script at all and no third-party asset:
 * the one stylesheet is inline and allowed by its hash; charts are inline SVG
 * drawn on the server (pages/charts.ts); a page that follows live figures
 * reloads itself with a meta refresh; forms post to this origin only; the
 * pages cannot be framed.
 */
import { createHash } from 'node:crypto';

export function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

const CSS =
  ':root{--brand:#334155;--accent:#2563eb;color-scheme:light}*{box-sizing:border-box}' +
  'body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1f2933}' +
  'header.top{background:var(--brand);color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;gap:1rem;align-items:center}' +
  'header.top a{color:#fff;text-decoration:none;padding:.25rem .5rem;border-radius:.3rem}header.top a[aria-current=page]{background:rgba(255,255,255,.2)}' +
  'header.top .who{margin-left:auto;font-size:.9rem}.brand{font-weight:700;margin-right:1rem}' +
  'main{max-width:72rem;margin:1rem auto;padding:0 1rem}section{background:#fff;border-radius:.5rem;padding:1rem 1.25rem;margin:0 0 1rem;box-shadow:0 1px 2px rgba(0,0,0,.1)}' +
  'h1{font-size:1.4rem;margin:.5rem 0 1rem}h2{font-size:1.1rem;margin:0 0 .75rem}' +
  'table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #e4e7eb;vertical-align:top}th{font-size:.85rem;color:#52606d}' +
  'label{font-weight:600;display:block;margin:.5rem 0 .15rem}input,select,textarea{font:inherit;padding:.35rem .5rem;border:1px solid #9aa5b1;border-radius:.3rem;max-width:100%}' +
  'input[aria-invalid=true],select[aria-invalid=true]{border-color:#b42318;background:#fff5f5}' +
  'button{font:inherit;font-weight:600;padding:.35rem .8rem;border:0;border-radius:.3rem;background:var(--accent);color:#fff;cursor:pointer}' +
  'button.danger{background:#b42318}button.quiet{background:#52606d}form.inline{display:inline}' +
  'input:focus,select:focus,button:focus,a:focus{outline:3px solid var(--accent);outline-offset:1px}' +
  '.row{display:flex;flex-wrap:wrap;gap:.75rem;align-items:flex-end}.row>div{display:flex;flex-direction:column}' +
  '.alert{border-left:4px solid #b42318;background:#fef3f2;padding:.6rem 1rem;margin:0 0 1rem}' +
  '.notice{border-left:4px solid var(--accent);background:#eff6ff;padding:.6rem 1rem;margin:0 0 1rem}' +
  '.secret{font-family:ui-monospace,monospace;font-size:1rem;background:#fffbeb;border:1px dashed #b45309;padding:.5rem;word-break:break-all}' +
  '.field-error{color:#b42318;font-size:.85rem;margin:.1rem 0 0}.muted{color:#52606d;font-size:.9rem}' +
  '.badge{display:inline-block;padding:0 .45rem;border-radius:.6rem;font-size:.8rem;font-weight:600;background:#e4e7eb}' +
  '.badge.active,.badge.connected{background:#dcfce7;color:#166534}.badge.suspended,.badge.rotating{background:#fef9c3;color:#854d0e}' +
  '.badge.deactivated,.badge.revoked,.badge.expired,.badge.disabled{background:#fee2e2;color:#991b1b}' +
  'code{font-family:ui-monospace,monospace;font-size:.9em}' +
  '.vh{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}' +
  'dl.stats{display:grid;grid-template-columns:repeat(auto-fill,minmax(9rem,1fr));gap:.5rem 1rem;margin:0 0 1rem}dl.stats dt{font-size:.8rem;color:#52606d}dl.stats dd{margin:0;font-size:1.4rem;font-weight:700}' +
  '.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(22rem,1fr));gap:1rem}figure.chart{margin:0}figure.chart figcaption{font-weight:600;font-size:.9rem}svg.chart{width:100%;height:auto}h3{font-size:1rem;margin:1rem 0 .5rem}';

const CSS_HASH = createHash('sha256').update(CSS).digest('base64');

/** No script, no third-party origin, no framing; the inline stylesheet by hash. */
export const CONSOLE_CSP = `default-src 'none'; style-src 'sha256-${CSS_HASH}'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;

export const PAGE_HEADERS: ReadonlyArray<[string, string]> = [
  ['content-type', 'text/html; charset=utf-8'],
  ['cache-control', 'no-store'],
  ['content-security-policy', CONSOLE_CSP],
  ['x-content-type-options', 'nosniff'],
  ['x-frame-options', 'DENY'],
  ['referrer-policy', 'same-origin'],
];

export interface Frame {
  title: string;
  /** Nav item to mark current. */
  current: 'overview' | 'users' | 'routes' | 'service-accounts' | 'warpgates' | 'audit' | null;
  /** Seconds after which the browser reloads the page (`<meta http-equiv="refresh">`: no script needed). */
  refresh?: number;
  who: { email: string; role: string } | null;
  /** Query string (`?project=demo`) kept on nav links. */
  keep: string;
  notice?: string | undefined;
  error?: string | undefined;
  body: string;
}

const NAV: Array<[Frame['current'], string, string]> = [
  ['overview', '/overview', 'Overview'],
  ['users', '/users', 'Users'],
  ['routes', '/routes', 'Routes'],
  ['service-accounts', '/service-accounts', 'Service accounts'],
  ['warpgates', '/warpgates', 'Warpgates'],
  ['audit', '/audit', 'Audit log'],
];

export function frame(f: Frame): string {
  const nav = f.who === null ? '' : NAV.map(([k, href, text]) => `<a href="${href}${k === 'routes' || k === 'service-accounts' ? esc(f.keep) : ''}"${k === f.current ? ' aria-current="page"' : ''}>${text}</a>`).join('');
  const who = f.who === null ? '' : `<span class="who">${esc(f.who.email)} (${esc(f.who.role)}) · <a href="/_mezu/logout">Sign out</a></span>`;
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">' +
    `<meta name="robots" content="noindex">${f.refresh === undefined ? '' : `<meta http-equiv="refresh" content="${f.refresh}">`}<title>${esc(f.title)} · Mezusphere Console</title><style>${CSS}</style></head><body>` +
    `<header class="top"><span class="brand">Mezusphere Console</span><nav aria-label="Sections">${nav}</nav>${who}</header><main>` +
    `<h1>${esc(f.title)}</h1>` +
    (f.error !== undefined ? `<div class="alert" role="alert" id="form-error"><p>${esc(f.error)}</p></div>` : '') +
    (f.notice !== undefined ? `<div class="notice" role="status"><p>${esc(f.notice)}</p></div>` : '') +
    f.body +
    '</main></body></html>'
  );
}

export function badge(text: unknown): string {
  return `<span class="badge ${esc(text)}">${esc(text)}</span>`;
}

export function when(isoText: unknown): string {
  if (isoText === null || isoText === undefined) return '<span class="muted">never</span>';
  const s = String(isoText);
  return `<time datetime="${esc(s)}">${esc(s.replace('T', ' ').replace(/\.\d+Z$/, ' UTC'))}</time>`;
}

export function table(headers: string[], rows: string[][], empty: string): string {
  if (rows.length === 0) return `<p class="muted">${esc(empty)}</p>`;
  return `<table><thead><tr>${headers.map((h) => `<th scope="col">${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.map((r) => `<tr>${r.map((c) => `<td>${c}</td>`).join('')}</tr>`).join('')}</tbody></table>`;
}

/** A POST form with the CSRF field; `inner` is already-escaped HTML. */
export function form(action: string, csrf: string, inner: string, opts: { inline?: boolean; label?: string } = {}): string {
  return `<form method="post" action="${esc(action)}"${opts.inline ? ' class="inline"' : ''}${opts.label !== undefined ? ` aria-label="${esc(opts.label)}"` : ''}><input type="hidden" name="_csrf" value="${esc(csrf)}">${inner}</form>`;
}

/** A labelled input; `error` ties a message to it (aria-describedby + aria-invalid). */
export function field(name: string, label: string, value: string, opts: { type?: string; error?: string | undefined; size?: number; required?: boolean; id?: string; hideLabel?: boolean } = {}): string {
  const id = opts.id ?? `f-${name}`;
  const err = opts.error !== undefined ? `<p class="field-error" id="${id}-error">${esc(opts.error)}</p>` : '';
  return (
    `<div><label for="${id}"${opts.hideLabel ? ' class="vh"' : ''}>${esc(label)}</label>` +
    `<input id="${id}" name="${esc(name)}" type="${opts.type ?? 'text'}" value="${esc(value)}"${opts.size !== undefined ? ` size="${opts.size}"` : ''}${opts.required ? ' required' : ''}` +
    (opts.error !== undefined ? ` aria-invalid="true" aria-describedby="${id}-error"` : '') +
    `>${err}</div>`
  );
}

export function select(name: string, label: string, value: string, options: Array<[string, string]>, opts: { error?: string | undefined; id?: string; hideLabel?: boolean } = {}): string {
  const id = opts.id ?? `f-${name}`;
  const err = opts.error !== undefined ? `<p class="field-error" id="${id}-error">${esc(opts.error)}</p>` : '';
  return (
    `<div><label for="${id}"${opts.hideLabel ? ' class="vh"' : ''}>${esc(label)}</label><select id="${id}" name="${esc(name)}"` +
    (opts.error !== undefined ? ` aria-invalid="true" aria-describedby="${id}-error"` : '') +
    `>${options.map(([v, t]) => `<option value="${esc(v)}"${v === value ? ' selected' : ''}>${esc(t)}</option>`).join('')}</select>${err}</div>`
  );
}
