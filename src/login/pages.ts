/**
 * Server-rendered hosted pages: plain HTML forms that work without
 * JavaScript. Accessibility: every input has a <label>, errors are text tied
 * to their field with aria-describedby and aria-invalid, a form-level error is
 * a role="alert" region, the first field in error (or the first empty one)
 * gets autofocus, inputs carry autocomplete hints (username,
 * current-password, new-password) so password managers work. Responsive: one
 * column, max 26rem, system fonts. No third-party assets: the
 * Content-Security-Policy allows only this page's inline stylesheet (by hash),
 * the project's logo origin for images, and form posts to this origin. Pages
 * with a passkey form also load the one first-party script
 * (`/_mezu/webauthn.js`, factors/script.ts) under a nonce made for that
 * response (`script-src 'nonce-…'`); every other page runs no script at all.
 */
import { createHash } from 'node:crypto';
import type { CompiledProject } from '../config/index.js';
import { CSRF_FIELD } from './csrf.js';
import { MIN_PASSWORD_CHARS } from './password-policy.js';

export function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : c === '>' ? '&gt;' : c === '"' ? '&quot;' : '&#39;'));
}

/** Per-project constants built once per compiled project (its colour is in the stylesheet). */
interface Chrome {
  css: string;
  csp: string;
  brand: string;
  logo: string;
}
const chromes = new WeakMap<CompiledProject, Chrome>();

function chromeOf(p: CompiledProject): Chrome {
  let c = chromes.get(p);
  if (c !== undefined) return c;
  const color = p.login.branding.color;
  const css =
    `:root{--brand:${color};color-scheme:light}` +
    '*{box-sizing:border-box}body{margin:0;min-height:100vh;display:flex;align-items:flex-start;justify-content:center;' +
    'font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f4f5f7;color:#1f2933}' +
    'main{width:100%;max-width:26rem;margin:2rem 1rem;background:#fff;border-radius:.75rem;padding:2rem 1.5rem;box-shadow:0 1px 3px rgba(0,0,0,.12)}' +
    'header{display:flex;align-items:center;gap:.75rem;margin-bottom:1rem}header img{max-height:2.5rem;max-width:8rem}' +
    '.brand{font-weight:600;margin:0}h1{font-size:1.5rem;margin:.25rem 0 1rem}' +
    'label{display:block;font-weight:600;margin:1rem 0 .25rem}' +
    'input[type=email],input[type=password],input[type=text]{width:100%;padding:.6rem .7rem;font:inherit;border:1px solid #9aa5b1;border-radius:.4rem}' +
    'input:focus,button:focus,a:focus{outline:3px solid var(--brand);outline-offset:2px}' +
    'input[aria-invalid=true]{border-color:#b42318}' +
    '.hint{font-size:.875rem;color:#52606d;margin:.25rem 0 0}.field-error{font-size:.875rem;color:#b42318;margin:.25rem 0 0}' +
    '.alert{border-left:4px solid #b42318;background:#fef3f2;padding:.75rem 1rem;margin:0 0 1rem}' +
    '.notice{border-left:4px solid var(--brand);background:#f0f4ff;padding:.75rem 1rem;margin:0 0 1rem}' +
    'button{margin-top:1.5rem;width:100%;padding:.7rem;font:inherit;font-weight:600;color:#fff;background:var(--brand);border:0;border-radius:.4rem;cursor:pointer}' +
    'nav{margin-top:1.5rem;font-size:.95rem}nav p{margin:.4rem 0}a{color:var(--brand)}' +
    '.passkey{border-top:1px solid #e4e7eb;margin-top:1.5rem;padding-top:.5rem}' +
    '.qr svg{display:block;width:12rem;height:12rem;margin:.5rem auto}code,.codes{font-family:ui-monospace,Menlo,Consolas,monospace;word-break:break-all}' +
    '@media (prefers-reduced-motion:no-preference){button{transition:filter .15s}button:hover{filter:brightness(1.1)}}';
  const hash = createHash('sha256').update(css).digest('base64');
  const logoUrl = p.login.branding.logoUrl;
  const imgSrc = logoUrl === null ? "'none'" : new URL(logoUrl).origin;
  const csp = `default-src 'none'; style-src 'sha256-${hash}'; img-src ${imgSrc}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'`;
  const brand = p.login.branding.name;
  const logo = logoUrl === null ? '' : `<img src="${esc(logoUrl)}" alt="">`;
  c = { css, csp, brand, logo };
  chromes.set(p, c);
  return c;
}

export function cspOf(p: CompiledProject): string {
  return chromeOf(p).csp;
}

/** Where the passkey script is served (a hosted page path: flows/context.ts PAGES.script). */
export const SCRIPT_PATH = '/_mezu/webauthn.js';

/** The CSP of a page that loads the passkey script with `nonce` (base64, made per response). */
export function cspWithScript(p: CompiledProject, nonce: string): string {
  return `${chromeOf(p).csp}; script-src 'nonce-${nonce}'`;
}

export interface Field {
  name: string;
  label: string;
  type: 'email' | 'password' | 'text' | 'hidden';
  value?: string;
  autocomplete?: string;
  error?: string;
  hint?: string;
  required?: boolean;
}

export interface FormSpec {
  action: string;
  submit: string;
  csrf: string;
  fields: Field[];
}

export interface PageSpec {
  title: string;
  /** Form-level error (role=alert). */
  error?: string;
  /** Informational message. */
  notice?: string;
  form?: FormSpec;
  /** Extra paragraphs of already-escaped HTML. */
  html?: string;
  /** Passkey forms, after the main form; a page with any loads the passkey script (with `nonce`). */
  passkeys?: PasskeyFormSpec[];
  links?: Array<{ href: string; text: string }>;
}

/**
 * A form the passkey script drives: on submit it runs the WebAuthn ceremony of
 * `options` and posts the answer in the hidden `credential` field with the
 * form's other fields (the CSRF token among them).
 */
export interface PasskeyFormSpec {
  id: string;
  action: string;
  csrf: string;
  ceremony: 'register' | 'authenticate';
  /** The options JSON from @simplewebauthn/server (PublicKeyCredentialCreationOptionsJSON or …RequestOptionsJSON). */
  options: unknown;
  submit: string;
  /** Already-escaped HTML before the fields. */
  intro?: string;
  fields?: Field[];
}

export function renderPage(p: CompiledProject, spec: PageSpec, nonce: string | null = null): string {
  const c = chromeOf(p);
  const parts: string[] = [];
  parts.push(
    '<!doctype html><html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="robots" content="noindex">',
    `<title>${esc(spec.title)} · ${esc(c.brand)}</title><style>${c.css}</style></head><body><main>`,
    `<header>${c.logo}<p class="brand">${esc(c.brand)}</p></header>`,
    `<h1>${esc(spec.title)}</h1>`,
  );
  if (spec.error !== undefined) parts.push(`<div class="alert" role="alert" id="form-error"><p>${esc(spec.error)}</p></div>`);
  if (spec.notice !== undefined) parts.push(`<div class="notice" role="status"><p>${esc(spec.notice)}</p></div>`);
  if (spec.html !== undefined) parts.push(spec.html);
  if (spec.form !== undefined) parts.push(renderForm(spec.form, spec.error !== undefined));
  for (const f of spec.passkeys ?? []) parts.push(renderPasskeyForm(f));
  if (spec.links !== undefined && spec.links.length > 0) {
    parts.push('<nav aria-label="Other options">');
    for (const l of spec.links) parts.push(`<p><a href="${esc(l.href)}">${esc(l.text)}</a></p>`);
    parts.push('</nav>');
  }
  parts.push('</main>');
  if (nonce !== null && (spec.passkeys?.length ?? 0) > 0) parts.push(`<script src="${SCRIPT_PATH}" nonce="${nonce}"></script>`);
  parts.push('</body></html>');
  return parts.join('');
}

function renderPasskeyForm(f: PasskeyFormSpec): string {
  const out: string[] = [`<section class="passkey" aria-labelledby="${f.id}-h">`];
  if (f.intro !== undefined) out.push(f.intro.replace('<h2>', `<h2 id="${f.id}-h">`));
  out.push(`<form method="post" action="${esc(f.action)}" id="${f.id}" data-webauthn="${f.ceremony}" data-options="${esc(JSON.stringify(f.options))}" novalidate>`);
  out.push(`<input type="hidden" name="${CSRF_FIELD}" value="${esc(f.csrf)}">`);
  out.push('<input type="hidden" name="credential" value="">');
  for (const x of f.fields ?? []) {
    if (x.type === 'hidden') {
      out.push(`<input type="hidden" name="${esc(x.name)}" value="${esc(x.value ?? '')}">`);
      continue;
    }
    const id = `${f.id}-${x.name}`;
    out.push(`<label for="${id}">${esc(x.label)}</label>`);
    out.push(`<input id="${id}" name="${esc(x.name)}" type="${x.type}"${x.autocomplete !== undefined ? ` autocomplete="${x.autocomplete}"` : ''}${x.error !== undefined ? ` aria-invalid="true" aria-describedby="${id}-error"` : ''}>`);
    if (x.error !== undefined) out.push(`<p class="field-error" id="${id}-error">${esc(x.error)}</p>`);
  }
  // Filled by the script when the ceremony fails or the browser has no WebAuthn.
  out.push(`<p class="field-error" role="alert" data-webauthn-error hidden></p>`);
  out.push(`<button type="submit">${esc(f.submit)}</button></form></section>`);
  return out.join('');
}

function renderForm(f: FormSpec, formError: boolean): string {
  const out: string[] = [`<form method="post" action="${esc(f.action)}" novalidate>`];
  out.push(`<input type="hidden" name="${CSRF_FIELD}" value="${esc(f.csrf)}">`);
  // Focus: the first field in error, else the first empty visible one.
  const visible = f.fields.filter((x) => x.type !== 'hidden');
  const focus = visible.find((x) => x.error !== undefined) ?? visible.find((x) => (x.value ?? '') === '') ?? null;
  for (const x of f.fields) {
    if (x.type === 'hidden') {
      out.push(`<input type="hidden" name="${esc(x.name)}" value="${esc(x.value ?? '')}">`);
      continue;
    }
    const id = `f-${x.name}`;
    const described: string[] = [];
    if (x.hint !== undefined) described.push(`${id}-hint`);
    if (x.error !== undefined) described.push(`${id}-error`);
    else if (formError) described.push('form-error');
    out.push(`<label for="${id}">${esc(x.label)}</label>`);
    out.push(
      `<input id="${id}" name="${esc(x.name)}" type="${x.type}"` +
        (x.type !== 'password' && x.value !== undefined ? ` value="${esc(x.value)}"` : '') +
        (x.autocomplete !== undefined ? ` autocomplete="${x.autocomplete}"` : '') +
        (x.required === false ? '' : ' required') +
        (x.type === 'email' ? ' inputmode="email" autocapitalize="none" spellcheck="false"' : '') +
        (x.error !== undefined || (formError && x.type === 'password') ? ' aria-invalid="true"' : '') +
        (described.length > 0 ? ` aria-describedby="${described.join(' ')}"` : '') +
        (focus === x ? ' autofocus' : '') +
        '>',
    );
    if (x.hint !== undefined) out.push(`<p class="hint" id="${id}-hint">${esc(x.hint)}</p>`);
    if (x.error !== undefined) out.push(`<p class="field-error" id="${id}-error">${esc(x.error)}</p>`);
  }
  out.push(`<button type="submit">${esc(f.submit)}</button></form>`);
  return out.join('');
}

export const NEW_PASSWORD_HINT = `At least ${MIN_PASSWORD_CHARS} characters. Long passphrases are welcome; common passwords are refused.`;
