/**
 * The Console listener: one small uWS app, in its own process (`mezusphere
 * console`, or started and supervised by `mezusphere edge --console-port N`),
 * on a port of its own, never on the edge's client port. It serves
 *
 * - `/api/v1/…`: the admin REST API (api.ts), JSON;
 * - `/_mezu/…`: the hosted login pages of the Console's own directory
 *   (`_console`), the same flows as on project hosts (src/login/);
 * - everything else: the Console pages (pages/), server-rendered HTML.
 *
 * It shares the store with the edge: whatever it changes, every edge worker
 * sees on its next request or poll. It never sits on the proxied path.
 *
 * uWS rules (native/uws.ts): the request is copied before anything else,
 * `onAborted` is attached before any await, bodies are copied chunk by chunk
 * (neutered on return) and bounded, and every write after an await is corked
 * and skipped when the client left.
 */
import { readFileSync } from 'node:fs';
import { loadUws, bufferToText, type HttpResponse, type HttpRequest, type ListenSocket } from '../../native/uws.js';
import { openStore, type Store } from '../store/index.js';
import { compileConfig, normalizeHost, defaultLoginConfig, defaultPasswordConfig, type CompiledConfig, type CompiledProject } from '../config/index.js';
import { Control, InvalidRequest, CONSOLE_PROJECT } from '../control/index.js';
import { Enroller, DEFAULT_CERT_TTL_MS, defaultServername } from '../enroll/index.js';
import { LoginPages, LoginService, PasswordHasher, Csrf, OutboxMailer, SmtpMailer, sameOrigin, type Mailer } from '../login/index.js';
import { Errors, MezuError, codeOf, type ErrorCode } from '../errors/index.js';
import { statusLine } from '../errors/http.js';
import { nextRequestId } from '../identity/index.js';
import { createLog, type Log } from '../runtime/index.js';
import { authenticate } from './access.js';
import { matchRoute, runApi, type ApiDeps } from './api.js';
import { ConsolePages, type PageRequest } from './pages/index.js';

export interface ConsoleOptions {
  dataDir: string;
  host: string;
  /** 0: any free port (reported in the ready line). */
  port: number;
  /** The URL operators open (`http://localhost:8081`): Origin checks and links in mail. */
  publicUrl: string;
  /** Tunnel endpoints (`host:port`) handed to enrolling Warpgates. */
  tunnelEndpoints: string[];
  /** TLS server name Warpgates verify the tunnel certificate against. */
  tunnelServername: string;
  /** PEM file of the CA that signed the edge's tunnel certificate (handed to Warpgates to pin). */
  tunnelServerCaFile: string;
  /** Lifetime of enrolled Warpgate certificates. */
  warpgateCertTtlMs: number;
  hashThreads: number;
  smtpUrl: string | null;
  mailFrom: string;
  /**
   * PEM certificate chain and key for HTTPS on the Console's own listener;
   * null: plain HTTP (loopback development, or behind a TLS-terminating proxy).
   * Warpgates send their enrollment key here, so anything else needs TLS.
   */
  tls?: { certFile: string; keyFile: string } | null;
}

/** Console cookie names: apart from the edge's (cookies do not see ports, and the edge may share the host name). */
export const CONSOLE_SESSION_COOKIE_PLAIN = 'mezu_console_session';
export const CONSOLE_SESSION_COOKIE_SECURE = '__Host-mezu_console_session';
export const CONSOLE_CSRF_COOKIE_PLAIN = 'mezu_console_csrf';
export const CONSOLE_CSRF_COOKIE_SECURE = '__Host-mezu_console_csrf';

/** Header carrying the session-bound CSRF token of a cookie-authenticated API change (lower case: uWS hands names so). */
export const API_CSRF_HEADER = 'x-csrf-token';

/** Largest API body (a whole YAML config fits easily). */
export const MAX_API_BODY = 1024 * 1024;
/** Largest Console form (the route editor posts every rule of a project). */
export const MAX_PAGE_FORM = 256 * 1024;

/** The Console's pseudo-project: its hosted login pages, with the Console's directory and fixed session lifetimes. */
export function consoleProject(publicUrl: string, passwords: CompiledConfig['passwords'] | null): { project: CompiledProject; cfg: CompiledConfig } {
  const login = defaultLoginConfig();
  const cfg = compileConfig(
    {
      projects: [
        {
          id: CONSOLE_PROJECT,
          name: 'Mezusphere Console',
          hosts: [],
          upstream: CONSOLE_PROJECT,
          session: { absoluteMs: 12 * 3600_000, idleMs: 3600_000 },
          default: 'deny',
          routes: [],
          login: { ...login, signup: 'disabled', publicUrl, branding: { name: 'Mezusphere Console', color: '#334155', logoUrl: null } },
        },
      ],
      passwords: passwords === null ? defaultPasswordConfig() : { ...passwords },
    },
    0,
  );
  return { project: cfg.projects.get(CONSOLE_PROJECT)!, cfg };
}

interface Reply {
  status: number;
  headers: Array<[string, string]>;
  body: string;
}

const JSON_HEADERS: Array<[string, string]> = [
  ['content-type', 'application/json'],
  ['cache-control', 'no-store'],
  ['x-content-type-options', 'nosniff'],
];

export function apiError(code: ErrorCode, message?: string, extra?: Record<string, unknown>): Reply {
  return { status: Errors[code].status, headers: [...JSON_HEADERS, ['x-mezu-error-code', code]], body: JSON.stringify({ error: { code, message: message ?? Errors[code].message, ...(extra ?? {}) } }) };
}

/** Any thrown value → the API error it answers with (faults: 503 MEZU_INTERNAL, logged). */
export function errorReply(err: unknown, log: Log, rid: string): Reply {
  if (err instanceof InvalidRequest) return apiError(err.code, Errors[err.code].message, { problems: err.problems });
  if (err instanceof MezuError) return apiError(err.code, err.message);
  log(`console: request ${rid} failed (${codeOf(err)}): ${(err as Error).stack ?? String(err)}`, { level: 'error', request_id: rid });
  return apiError('MEZU_INTERNAL');
}

export class ConsoleServer {
  private listenSocket: ListenSocket | null = null;
  readonly control: Control;
  private readonly enroller: Enroller;
  private readonly loginPages: LoginPages;
  private readonly pages: ConsolePages;
  private login: { project: CompiledProject; cfg: CompiledConfig };
  private loginVersion = -1;
  readonly sessionCookie: string;

  private constructor(
    readonly opts: ConsoleOptions,
    readonly store: Store,
    private readonly hasher: PasswordHasher,
    private readonly mailer: Mailer,
    private readonly csrf: Csrf,
    private readonly log: Log,
  ) {
    const https = opts.publicUrl.startsWith('https:');
    this.sessionCookie = https ? CONSOLE_SESSION_COOKIE_SECURE : CONSOLE_SESSION_COOKIE_PLAIN;
    const csrfCookie = https ? CONSOLE_CSRF_COOKIE_SECURE : CONSOLE_CSRF_COOKIE_PLAIN;
    this.control = new Control(store);
    this.enroller = new Enroller(store, this.control, {
      endpoints: opts.tunnelEndpoints,
      servername: opts.tunnelServername,
      serverCa: readFileSync(opts.tunnelServerCaFile, 'utf8'),
      certTtlMs: opts.warpgateCertTtlMs,
    });
    this.login = consoleProject(opts.publicUrl, null);
    const service = new LoginService({
      store,
      hasher,
      mailer,
      csrf,
      scheme: https ? 'https' : 'http',
      sessionCookie: this.sessionCookie,
      csrfCookie,
      clock: this.control.clock,
      challenges: null,
      devices: null,
      deviceCookie: '',
      log,
    });
    this.loginPages = new LoginPages(service, log);
    this.pages = new ConsolePages({ deps: this.deps(), csrf, csrfCookie, sessionCookie: this.sessionCookie, publicUrl: opts.publicUrl, scheme: https ? 'https' : 'http' });
  }

  static async start(opts: ConsoleOptions, log: Log): Promise<{ server: ConsoleServer; port: number }> {
    const uws = loadUws();
    const store = openStore(opts.dataDir);
    const csrf = new Csrf(await store.secrets.getOrCreate('console-csrf'));
    const pw = defaultPasswordConfig();
    const hasher = new PasswordHasher({ threads: opts.hashThreads, queue: pw.queue });
    const mailer: Mailer = opts.smtpUrl === null ? new OutboxMailer(store.outbox) : new SmtpMailer(opts.smtpUrl, opts.mailFrom);
    const app = opts.tls ? uws.SSLApp({ cert_file_name: opts.tls.certFile, key_file_name: opts.tls.keyFile }) : uws.App();
    let server: ConsoleServer | null = null;
    app.any('/*', (res, req) => {
      if (server !== null) server.handle(res, req);
      else res.writeStatus('503 Service Unavailable').end();
    });
    let listenSocket: ListenSocket | null = null;
    const port = await new Promise<number>((resolve, reject) => {
      app.listen(opts.host, opts.port, (s) => {
        if (!s) return reject(new Error(`console: cannot listen on ${opts.host}:${opts.port}`));
        listenSocket = s;
        resolve(uws.us_socket_local_port(s));
      });
    });
    // Port 0 (tests): the public URL names the port we got.
    const resolved = { ...opts, port, publicUrl: opts.publicUrl.replace(/:0(?=\/|$)/, `:${port}`) };
    server = new ConsoleServer(resolved, store, hasher, mailer, csrf, log);
    server.listenSocket = listenSocket;
    return { server, port };
  }

  private deps(): ApiDeps {
    return { store: this.store, control: this.control, enroller: this.enroller, csrf: this.csrf, clock: this.control.clock };
  }

  /** The Console's login project, following the config's password parameters. */
  private loginProject(): { project: CompiledProject; cfg: CompiledConfig } {
    const cfg = this.control.config();
    const v = cfg?.version ?? 0;
    if (v !== this.loginVersion) {
      this.loginVersion = v;
      this.login = consoleProject(this.opts.publicUrl, cfg?.passwords ?? null);
      if (cfg !== null) {
        this.hasher.setQueueLimit(cfg.passwords.queue);
        this.hasher.warm({ memoryBytes: cfg.passwords.memoryBytes, iterations: cfg.passwords.iterations }).catch(() => undefined);
      }
    }
    return this.login;
  }

  private handle(res: HttpResponse, req: HttpRequest): void {
    const rid = nextRequestId();
    const method = req.getCaseSensitiveMethod();
    const path = req.getUrl();
    const query = req.getQuery() ?? '';
    const fields: string[] = [];
    req.forEach((k, v) => {
      fields.push(k, v);
    });
    const header = (n: string) => {
      for (let i = 0; i < fields.length; i += 2) if (fields[i] === n) return fields[i + 1]!;
      return '';
    };
    const hostHeader = req.getHeader('host');
    const ip = bufferToText(res.getRemoteAddressAsText());
    try {
      if (path.startsWith('/_mezu/')) {
        const l = this.loginProject();
        this.loginPages.serve(res, rid, method, path, query, fields, hostHeader, l.project, l.cfg);
        return;
      }
    } catch (err) {
      this.write(res, rid, errorReply(err, this.log, rid), { aborted: false });
      return;
    }
    const state = { aborted: false };
    res.onAborted(() => {
      state.aborted = true;
    });
    const api = path === '/api/v1' || path.startsWith('/api/v1/');
    const limit = api ? MAX_API_BODY : MAX_PAGE_FORM;
    const finish = (body: Buffer | null) => {
      const p = api ? this.api(rid, method, path, query, header, ip, body) : this.page(rid, method, path, query, header, ip, hostHeader, body);
      p.then(
        (r) => this.write(res, rid, r, state),
        (err) => this.write(res, rid, errorReply(err, this.log, rid), state),
      );
    };
    if (method === 'GET' || method === 'HEAD') return finish(null);
    const cl = header('content-length');
    if (cl !== '' && (!/^\d{1,10}$/.test(cl) || Number(cl) > limit)) {
      this.write(res, rid, api ? apiError('MEZU_BODY_TOO_LARGE') : this.pages.error(413, 'MEZU_BODY_TOO_LARGE'), state, true);
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    res.onData((ab, isLast) => {
      if (done) return;
      size += ab.byteLength;
      if (size > limit) {
        done = true;
        this.write(res, rid, api ? apiError('MEZU_BODY_TOO_LARGE') : this.pages.error(413, 'MEZU_BODY_TOO_LARGE'), state, true);
        return;
      }
      chunks.push(Buffer.from(new Uint8Array(ab)));
      if (isLast) {
        done = true;
        finish(Buffer.concat(chunks));
      }
    });
  }

  private async api(rid: string, method: string, path: string, query: string, header: (n: string) => string, ip: string, raw: Buffer | null): Promise<Reply> {
    const m = matchRoute(method, path);
    if ('methods' in m) {
      if (m.methods.length === 0) return apiError('MEZU_API_NOT_FOUND');
      const r = apiError('MEZU_API_METHOD_NOT_ALLOWED');
      r.headers.push(['allow', [...new Set(m.methods)].join(', ')]);
      return r;
    }
    const caller = authenticate(this.store, header('authorization'), header('cookie'), this.sessionCookie, this.control.clock.now());
    if ('code' in caller) {
      const r = apiError(caller.code);
      if (caller.code === 'MEZU_CONSOLE_AUTH_REQUIRED') r.headers.push(['www-authenticate', 'Bearer realm="mezusphere-console"']);
      return r;
    }
    // CSRF: a change carried by the Console cookie must be a same-origin JSON request with the session's
    // token (`GET /api/v1/me` → `csrf_token`) in X-CSRF-Token. A cross-site form cannot send
    // application/json, and a cross-site script cannot without CORS, which the Console never grants; but
    // a client that sends neither Origin nor Sec-Fetch-Site passes those checks, so the token is required
    // always: the cookie alone (a browser sends it wherever it goes) never makes a change.
    if (caller.kind === 'console' && method !== 'GET' && method !== 'HEAD') {
      const allowed = [this.opts.publicUrl.toLowerCase().replace(/\/$/, ''), `${this.opts.publicUrl.startsWith('https:') ? 'https' : 'http'}://${header('host').toLowerCase()}`];
      if (!header('content-type').toLowerCase().startsWith('application/json') || !sameOrigin(header('origin'), header('sec-fetch-site').toLowerCase(), allowed)) {
        return apiError('MEZU_CSRF_FAILED', 'console: a change with the Console cookie must be a same-origin JSON request');
      }
      if (!this.csrf.checkSession(caller.tokenHash, header(API_CSRF_HEADER))) {
        return apiError('MEZU_CSRF_FAILED', `console: a change with the Console cookie needs the session's token in ${API_CSRF_HEADER} (csrf_token of GET /api/v1/me)`);
      }
    }
    let body: unknown = undefined;
    if (raw !== null && raw.length > 0) {
      if (!header('content-type').toLowerCase().startsWith('application/json')) {
        return apiError('MEZU_REQUEST_INVALID', 'console: send the body as application/json', { problems: [{ at: '(body)', message: 'Content-Type must be application/json' }] });
      }
      try {
        body = JSON.parse(raw.toString('utf8'));
      } catch {
        return apiError('MEZU_REQUEST_INVALID', 'console: the body is not valid JSON', { problems: [{ at: '(body)', message: 'must be valid JSON' }] });
      }
    }
    const r = await runApi(this.deps(), m.route, m.params, { method, path, query: new URLSearchParams(query), body, ip, caller });
    void rid;
    return { status: r.status, headers: [...JSON_HEADERS], body: JSON.stringify(r.body) };
  }

  private async page(rid: string, method: string, path: string, query: string, header: (n: string) => string, ip: string, hostHeader: string, raw: Buffer | null): Promise<Reply> {
    const req: PageRequest = {
      rid,
      method,
      path,
      query: new URLSearchParams(query),
      form: new URLSearchParams(''),
      cookie: header('cookie'),
      origin: header('origin'),
      secFetchSite: header('sec-fetch-site').toLowerCase(),
      hostHeader,
      ip,
    };
    if (raw !== null) {
      if (!header('content-type').toLowerCase().startsWith('application/x-www-form-urlencoded')) return this.pages.error(400, 'MEZU_FORM_INVALID');
      req.form = new URLSearchParams(raw.toString('utf8'));
    }
    return this.pages.handle(req);
  }

  private write(res: HttpResponse, rid: string, r: Reply, state: { aborted: boolean }, close = false): void {
    if (state.aborted) return;
    res.cork(() => {
      res.writeStatus(statusLine(r.status));
      for (const [k, v] of r.headers) res.writeHeader(k, v);
      res.writeHeader('x-mezu-request-id', rid);
      res.end(r.body, close);
    });
  }

  async close(): Promise<void> {
    if (this.listenSocket !== null) loadUws().us_listen_socket_close(this.listenSocket);
    this.listenSocket = null;
    await this.hasher.close();
    await this.mailer.close();
  }
}

/**
 * Projects whose host names include the Console's. Cookies ignore ports
 * (RFC 6265 §8.5), so a browser signed in to the Console at `localhost:8081`
 * sends its Console session to a project served at `localhost:8080` too: the
 * edge strips every product cookie before forwarding, but a Console with a
 * host name of its own does not rely on that (nor on every origin being honest
 * about cookies it sets for the shared name).
 */
export function projectsSharingHost(cfg: CompiledConfig | null, publicUrl: string): string[] {
  if (cfg === null) return [];
  let host: string | null;
  try {
    host = normalizeHost(new URL(publicUrl).host);
  } catch {
    return [];
  }
  const p = host === null ? undefined : cfg.hosts.get(host);
  return p === undefined ? [] : [p.id];
}

/** `mezusphere console`: runs the Console until SIGTERM/SIGINT; prints one JSON ready line. */
export async function runConsole(opts: ConsoleOptions): Promise<void> {
  const log = createLog('console');
  const { server, port } = await ConsoleServer.start(opts, log);
  const url = server.opts.publicUrl;
  if (process.send !== undefined) process.send({ type: 'console-ready', port, url, pid: process.pid });
  else process.stdout.write(JSON.stringify({ event: 'ready', component: 'console', port, url }) + '\n');
  log(`listening on ${opts.host}:${port}; open ${url}`);
  for (const p of projectsSharingHost(server.control.config(), url)) {
    log(`warning: the Console (${url}) shares its host name with project "${p}": cookies ignore ports, so a browser signed in to the Console sends its Console session to that project's host too. The edge strips it before forwarding, but give the Console a host name of its own (--public-url, or edge --console-url) that no project serves`, { level: 'warn' });
  }
  const owners = server.store.users.list('_console').filter((u) => u.roles.includes('owner'));
  if (owners.length === 0) log(`no Console owner yet: create one with \`mezusphere console add-owner --email you@example.com --data ${opts.dataDir}\``);
  const stop = () => {
    void server.close().finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.on('disconnect', stop);
}

export { defaultServername, DEFAULT_CERT_TTL_MS };
