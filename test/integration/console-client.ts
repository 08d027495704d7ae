/**
 * Test helpers for the Console: start `mezusphere console` beside a Stack
 * (same data directory, port from listen(0)), call the admin API, sign in
 * through the Console's hosted login like a browser without JavaScript, and
 * check a JSON value against a schema of docs/openapi.yaml (the subset of
 * JSON Schema the document uses: type incl. null, properties, required,
 * additionalProperties: false, items, enum, allOf, $ref).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import * as http from 'node:http';
import { parse } from 'yaml';
import { waitFor, type Stack } from './harness.js';

const ROOT = resolve(__dirname, '../../..');
const CLI = join(ROOT, 'dist/src/cli/main.js');

export interface ConsoleProc {
  child: ChildProcess;
  out: string;
  err: string;
  port: number;
  base: string;
}

export async function startConsole(stack: Stack, extra: string[] = []): Promise<ConsoleProc> {
  const child = spawn(process.execPath, [CLI, 'console', '--data', stack.dir, '--host', '127.0.0.1', '--port', '0', '--tunnel-endpoint', `127.0.0.1:${stack.tunnelPort}`, ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
  const p: ConsoleProc = { child, out: '', err: '', port: 0, base: '' };
  child.stdout!.on('data', (d: Buffer) => (p.out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (p.err += d.toString()));
  await waitFor('console ready', () => p.out.includes('"event":"ready"') || child.exitCode !== null);
  if (child.exitCode !== null) throw new Error(`console failed: ${p.err}`);
  const line = JSON.parse(p.out.split('\n').find((l) => l.startsWith('{"event":"ready"'))!) as { port: number; url: string };
  p.port = line.port;
  p.base = `http://127.0.0.1:${line.port}`;
  return p;
}

export async function stopConsole(p: ConsoleProc | null): Promise<void> {
  if (p === null || p.child.exitCode !== null || p.child.signalCode !== null) return;
  const done = new Promise((r) => p.child.once('exit', r));
  p.child.kill('SIGTERM');
  const t = setTimeout(() => p.child.kill('SIGKILL'), 5_000);
  await done;
  clearTimeout(t);
}

export interface ApiResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: any;
  text: string;
}

/**
 * One request to the Console on a fresh connection. `key`: bearer; `cookie`: a Cookie header, and then
 * for a change what the Console's own pages or a same-origin script send: JSON, same origin, and the
 * session's token in X-CSRF-Token (fetched from GET /api/v1/me first). `bare`: only what is given.
 */
export async function call(c: ConsoleProc, method: string, path: string, opts: { key?: string; cookie?: string; body?: unknown; raw?: string; headers?: Record<string, string>; bare?: boolean } = {}): Promise<ApiResponse> {
  if (opts.cookie !== undefined && method !== 'GET' && opts.bare !== true && opts.headers?.['x-csrf-token'] === undefined && path.startsWith('/api/')) {
    const me = await send(c, 'GET', '/api/v1/me', { cookie: opts.cookie, bare: true });
    const token = typeof me.body?.csrf_token === 'string' ? (me.body.csrf_token as string) : '';
    opts = { ...opts, headers: { ...(opts.headers ?? {}), 'x-csrf-token': token } };
  }
  return send(c, method, path, opts);
}

function send(c: ConsoleProc, method: string, path: string, opts: { key?: string; cookie?: string; body?: unknown; raw?: string; headers?: Record<string, string>; bare?: boolean }): Promise<ApiResponse> {
  return new Promise((resolvePromise, reject) => {
    const headers: Record<string, string> = { host: `localhost:${c.port}`, ...(opts.headers ?? {}) };
    if (opts.key !== undefined) headers.authorization = `Bearer ${opts.key}`;
    if (opts.cookie !== undefined) headers.cookie = opts.cookie;
    let payload: string | undefined;
    if (opts.raw !== undefined) payload = opts.raw;
    else if (opts.body !== undefined) {
      payload = JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    // What the Console's own pages (or a same-origin script) send with a change: JSON, same origin.
    if (opts.cookie !== undefined && method !== 'GET' && opts.bare !== true) {
      headers.origin ??= `http://localhost:${c.port}`;
      headers['content-type'] ??= 'application/json';
    }
    const req = http.request({ host: '127.0.0.1', port: c.port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let body: any = undefined;
        try {
          body = JSON.parse(text);
        } catch {
          body = undefined;
        }
        resolvePromise({ status: res.statusCode ?? 0, headers: res.headers, body, text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** A form-posting browser stand-in for the Console: cookie jar, CSRF field from each page. */
export class ConsoleBrowser {
  readonly jar = new Map<string, string>();
  constructor(readonly c: ConsoleProc) {}
  cookie(): string {
    return [...this.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  private remember(r: ApiResponse): void {
    for (const sc of r.headers['set-cookie'] ?? []) {
      const [pair, ...attrs] = sc.split(';');
      const eq = pair!.indexOf('=');
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      if (value === '' || attrs.some((a) => /^\s*max-age=0\s*$/i.test(a))) this.jar.delete(name);
      else this.jar.set(name, value);
    }
  }
  async get(path: string): Promise<ApiResponse> {
    const r = await call(this.c, 'GET', path, { cookie: this.cookie(), headers: { accept: 'text/html' } });
    this.remember(r);
    return r;
  }
  async post(path: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<ApiResponse> {
    const r = await call(this.c, 'POST', path, { cookie: this.cookie(), raw: new URLSearchParams(form).toString(), headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'text/html', ...headers } });
    this.remember(r);
    return r;
  }
  /** The CSRF token of a page (every Console and login form carries the same per-cookie token). */
  static csrfOf(html: string): string {
    const m = /name="_csrf" value="([^"]+)"/.exec(html);
    if (m === null) throw new Error('no CSRF field on the page');
    return m[1]!;
  }
  async signIn(email: string, password: string): Promise<void> {
    const page = await this.get('/_mezu/login');
    const r = await this.post('/_mezu/login', { _csrf: ConsoleBrowser.csrfOf(page.text), email, password, rd: '/' });
    if (r.status !== 303) throw new Error(`console sign-in of ${email} failed: ${r.status} ${r.text.slice(0, 300)}`);
  }
}

/** Creates a Console user with a password from the CLI and returns a signed-in browser stand-in. */
export async function consoleUser(stack: Stack, c: ConsoleProc, email: string, role: 'owner' | 'admin' | 'viewer', password = 'long enough console passphrase'): Promise<ConsoleBrowser> {
  const r = spawnSyncInput(stack, ['console', role === 'owner' ? 'add-owner' : 'add-user', '--email', email, ...(role === 'owner' ? [] : ['--role', role]), '--password-stdin'], password);
  if (r.status !== 0) throw new Error(`add ${role} failed: ${r.stderr}`);
  const b = new ConsoleBrowser(c);
  await b.signIn(email, password);
  return b;
}

function spawnSyncInput(stack: Stack, args: string[], input: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, ...args, '--data', stack.dir], { encoding: 'utf8', input });
  return { status: r.status ?? -1, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

// ── OpenAPI schema checks ──────────────────────────────────────────────────

const doc = parse(readFileSync(join(ROOT, 'docs/openapi.yaml'), 'utf8')) as Record<string, any>;

function deref(s: any): any {
  while (s !== undefined && s !== null && typeof s.$ref === 'string') {
    let cur: any = doc;
    for (const part of (s.$ref as string).slice(2).split('/')) cur = cur?.[part];
    s = cur;
  }
  return s;
}

/** Problems of `value` against `#/components/schemas/<name>`; [] when it conforms. */
export function schemaProblems(name: string, value: unknown): string[] {
  const out: string[] = [];
  check({ $ref: `#/components/schemas/${name}` }, value, name, out);
  return out;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function check(schema: any, v: unknown, at: string, out: string[]): void {
  const s = deref(schema);
  if (s === undefined) {
    out.push(`${at}: unresolvable schema`);
    return;
  }
  if (Array.isArray(s.allOf)) for (const sub of s.allOf) check(sub, v, at, out);
  if (s.type !== undefined) {
    const types: string[] = Array.isArray(s.type) ? s.type : [s.type];
    const t = typeOf(v);
    if (!types.includes(t) && !(t === 'integer' && types.includes('number'))) {
      out.push(`${at}: ${t} is not ${types.join('|')}`);
      return;
    }
  }
  if (Array.isArray(s.enum) && !s.enum.includes(v)) out.push(`${at}: ${JSON.stringify(v)} is not one of ${s.enum.join(', ')}`);
  if (typeof s.pattern === 'string' && typeof v === 'string' && !new RegExp(s.pattern).test(v)) out.push(`${at}: "${v}" does not match ${s.pattern}`);
  if (typeOf(v) === 'object') {
    const o = v as Record<string, unknown>;
    for (const r of s.required ?? []) if (!(r in o)) out.push(`${at}: missing ${r}`);
    const props = s.properties ?? {};
    for (const [k, x] of Object.entries(o)) {
      if (props[k] !== undefined) check(props[k], x, `${at}.${k}`, out);
      else if (s.additionalProperties === false) out.push(`${at}: undocumented property ${k}`);
    }
  }
  if (typeOf(v) === 'array' && s.items !== undefined) (v as unknown[]).forEach((x, i) => check(s.items, x, `${at}[${i}]`, out));
}

/** The schema name of a documented operation's answer with `status` (for checking whole responses). */
export function responseSchema(method: string, path: string, status: number): string | null {
  const op = doc.paths?.[path]?.[method.toLowerCase()];
  const r = deref(op?.responses?.[String(status)]);
  const ref = r?.content?.['application/json']?.schema?.$ref as string | undefined;
  return ref === undefined ? null : ref.split('/').pop()!;
}
