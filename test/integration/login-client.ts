/**
 * A minimal form-posting client with a cookie jar, for the hosted-page
 * integration tests: what a browser without JavaScript does (GET a page,
 * keep its cookies, POST the form with its CSRF token), on fresh connections.
 */
import * as http from 'node:http';
import type { Stack, Response } from './harness.js';

export const LOGIN_CONFIG = (extra = '') => `
${extra}
projects:
  - id: demo
    hosts: [localhost, 127.0.0.1]
    upstream: demo
    default: required
    routes:
      - { path: /api/v1/*, auth: required }
      - { path: /health,   auth: public }
    login:
      signup: open
      public_url: http://localhost:8080
      branding: { name: Demo Co, color: "#0f766e" }
      throttle:
        account: { delay_after: 3, lock_after: 3, lock: 2s, window: 1m }
        ip: { delay_after: 1000, lock_after: 1000, lock: 1h, window: 1m }
  - id: invite
    hosts: [invite.localhost]
    upstream: demo
    routes:
      - { path: /*, auth: required }
    login: { signup: invite, public_url: http://invite.localhost:8080 }
  - id: short
    hosts: [short.localhost]
    upstream: demo
    login: { public_url: http://short.localhost:8080, reset_ttl: 3s }
  - id: closed
    hosts: [closed.localhost]
    upstream: demo
`;

export class Client {
  readonly jar = new Map<string, string>();
  constructor(readonly stack: Stack, readonly host = 'localhost') {}

  cookieHeader(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  private remember(r: Response): void {
    const sc = r.headers['set-cookie'] ?? [];
    for (const c of sc) {
      const [pair, ...attrs] = c.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (attrs.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '') this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }

  async get(path: string, headers: Record<string, string> = {}): Promise<Response> {
    const r = await this.stack.request(path, { host: this.host, headers: { accept: 'text/html', cookie: this.cookieHeader(), ...headers } });
    this.remember(r);
    return r;
  }

  async post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    const body = new URLSearchParams(form).toString();
    const r = await this.stack.request(path, {
      method: 'POST',
      host: this.host,
      headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: this.cookieHeader(), ...headers },
      body,
    });
    this.remember(r);
    return r;
  }

  /** GETs the page and POSTs its form with the given fields plus its hidden ones (CSRF token, rd, token). */
  async submit(pagePath: string, fields: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    const page = await this.get(pagePath);
    const hidden = hiddenFields(page.body);
    const action = /<form method="post" action="([^"]+)"/.exec(page.body)?.[1] ?? pagePath.split('?')[0]!;
    return this.post(unescapeHtml(action), { ...hidden, ...fields }, headers);
  }

  session(): string {
    return this.jar.get('mezu_session') ?? '';
  }
}

export function hiddenFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)">/g)) out[unescapeHtml(m[1]!)] = unescapeHtml(m[2]!);
  return out;
}

export function unescapeHtml(s: string): string {
  return s.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export interface OutboxMail {
  to: string;
  subject: string;
  text: string;
  at: number;
}

export function outbox(stack: Stack, to: string): OutboxMail[] {
  const r = stack.cli('mail', 'outbox', '--to', to, '--json', '--limit', '100');
  if (r.status !== 0) throw new Error(r.stderr);
  return JSON.parse(r.stdout) as OutboxMail[];
}

/** Waits for the newest mail to `to` carrying a link to `path`, newer than `after`; returns the token. */
export async function linkToken(stack: Stack, to: string, path: string, after = 0): Promise<string> {
  const end = Date.now() + 10_000;
  const re = new RegExp(`${path.replace(/\//g, '\\/')}\\?token=([A-Za-z0-9_-]{43})`);
  for (;;) {
    const mails = outbox(stack, to).filter((m) => m.at >= after);
    for (let i = mails.length - 1; i >= 0; i--) {
      const m = re.exec(mails[i]!.text);
      if (m !== null) return m[1]!;
    }
    if (Date.now() > end) throw new Error(`no mail to ${to} with a ${path} link`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Signs a new user up through the pages (signup → mail → confirm); returns the client, signed in. */
export async function signUp(stack: Stack, email: string, password: string, host = 'localhost'): Promise<Client> {
  const c = new Client(stack, host);
  const t0 = Date.now();
  const r = await c.submit('/_mezu/signup', { email });
  if (r.status !== 200) throw new Error(`signup: ${r.status} ${r.body.slice(0, 200)}`);
  const token = await linkToken(stack, email, '/_mezu/signup/confirm', t0 - 1000);
  const done = await c.submit(`/_mezu/signup/confirm?token=${token}`, { password });
  if (done.status !== 303) throw new Error(`signup confirm: ${done.status} ${done.body.slice(0, 300)}`);
  return c;
}

export function rawRequest(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = require('node:net').connect(port, '127.0.0.1') as import('node:net').Socket;
    let out = '';
    s.on('data', (d: Buffer) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(5000, () => s.destroy());
    s.on('close', () => resolve(out));
    s.write(text);
  });
}

export { http };
