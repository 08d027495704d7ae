/**
 * The request path of an edge worker, in the order a request travels:
 * method → host → path → reserved pages → route → credential → authorize →
 * identity → tunnel. Expected outcomes are verdict values selecting a
 * prebuilt response; an exception anywhere before forwarding denies with
 * 503 (fail closed), never forwards.
 */
import type { HttpRequest, HttpResponse } from '../../native/uws.js';
import { bufferToText } from '../../native/uws.js';
import type { CompiledConfig, CompiledProject, Policy } from '../config/types.js';
import { normalizeHost } from '../config/index.js';
import { normalizePath } from '../route/index.js';
import { JWKS_PATH, RESERVED_PATH_PREFIX, IdentityHeader, Tunnel } from '../contract/index.js';
import { Authenticator, findCookie, removeCookie, API_KEY_PREFIX, type AuthResult } from '../session/index.js';
import { authorize, Decision } from '../authorize/index.js';
import { copyForwardableHeaders, nextRequestId, type Signer } from '../identity/index.js';
import type { PoolRegistry } from '../tunnel/index.js';
import { writeError, writeLoginRequired } from './responses.js';
import { Exchange } from './exchange.js';
import { codeOf } from '../errors/index.js';
import { LoginPages } from '../login/index.js';

/** Methods the edge forwards. Anything else (TRACE, CONNECT, WebDAV, lower-case spellings) is refused. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** Client-sent forwarding headers: replaced by the edge's own, never trusted (no proxy in front is configured). */
const CLIENT_FORWARDING = new Set(['x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-forwarded-port', 'forwarded', 'x-real-ip']);

export interface HandlerContext {
  config(): CompiledConfig | null;
  auth: Authenticator;
  signer: Signer;
  pools: PoolRegistry;
  cookieName: string;
  /** Scheme the edge is reached over, for X-Forwarded-Proto. */
  scheme: 'http' | 'https';
  /** In-flight forwarded requests (for drain). */
  inflight: { n: number };
  /** Set when the worker drains: requests still arriving on open keep-alive connections get 503 and a close. */
  draining: { on: boolean };
  /** Hosted pages under /_mezu/ (login, signup, reset…); null serves 404 there. */
  login: LoginPages | null;
  log(msg: string): void;
}

export function createHandler(ctx: HandlerContext): (res: HttpResponse, req: HttpRequest) => void {
  const onFinish = () => {
    ctx.inflight.n--;
  };
  return function handle(res: HttpResponse, req: HttpRequest): void {
    const rid = nextRequestId();
    if (ctx.draining.on) return writeError(res, 'MEZU_DRAINING', rid, true);
    // Copy everything from the request now: it dies when this function returns.
    const method = req.getCaseSensitiveMethod();
    if (!METHODS.has(method)) return writeError(res, 'MEZU_METHOD_NOT_ALLOWED', rid);
    const rawUrl = req.getUrl();
    const query = req.getQuery() ?? '';
    const names: string[] = [];
    const values: string[] = [];
    let hostCount = 0;
    req.forEach((k, v) => {
      if (k === 'host') hostCount++;
      names.push(k);
      values.push(v);
    });
    const hostHeader = req.getHeader('host');

    let forward: Forward | null;
    try {
      forward = decide(ctx, res, rid, method, rawUrl, query, names, values, hostCount, hostHeader);
    } catch (err) {
      // Fail closed: a fault while deciding denies.
      ctx.log(`edge: request ${rid} denied on an internal error (${codeOf(err)}): ${(err as Error).message}`);
      return writeError(res, 'MEZU_INTERNAL', rid);
    }
    if (forward === null) return;
    send(ctx, res, rid, method, forward, names, values, onFinish);
  };
}

interface Forward {
  project: CompiledProject;
  path: string;
  authority: string;
  assertion: string | null;
  hasBody: boolean;
}

function decide(
  ctx: HandlerContext,
  res: HttpResponse,
  rid: string,
  method: string,
  rawUrl: string,
  query: string,
  names: string[],
  values: string[],
  hostCount: number,
  hostHeader: string,
): Forward | null {
  if (hostCount !== 1) {
    writeError(res, 'MEZU_HOST_INVALID', rid, true);
    return null;
  }
  const host = normalizeHost(hostHeader);
  if (host === null) {
    writeError(res, 'MEZU_HOST_INVALID', rid, true);
    return null;
  }
  const cfg = ctx.config();
  if (cfg === null) {
    writeError(res, 'MEZU_CONFIG_MISSING', rid);
    return null;
  }
  const project = cfg.hosts.get(host);
  if (project === undefined) {
    writeError(res, 'MEZU_HOST_UNKNOWN', rid);
    return null;
  }
  const norm = normalizePath(rawUrl);
  if (!norm.ok) {
    writeError(res, 'MEZU_PATH_INVALID', rid, true);
    return null;
  }
  const path = norm.path;
  if (path.startsWith(RESERVED_PATH_PREFIX) || path === '/_mezu') {
    reservedPage(ctx, res, rid, path, method, query, names, values, hostHeader, project, cfg);
    return null;
  }
  if (path === JWKS_PATH) {
    res.writeStatus('200 OK').writeHeader('content-type', 'application/json').writeHeader('cache-control', 'public, max-age=300').end(ctx.signer.jwksJson());
    return null;
  }
  const policy: Policy = project.match(method, path);
  const target = query.length === 0 ? path : `${path}?${query}`;
  const hasBody = bodyExpected(names, values);
  if (policy.auth === 'public') return { project, path: target, authority: hostHeader, assertion: null, hasBody };
  if (policy.auth === 'deny') {
    writeError(res, 'MEZU_ROUTE_DENIED', rid);
    return null;
  }

  // Credential: a service-account key in Authorization, else the session cookie.
  let result: AuthResult = NONE;
  let bearer = '';
  let cookie = '';
  for (let i = 0; i < names.length; i++) {
    if (names[i] === 'authorization' && values[i]!.startsWith('Bearer ')) bearer = values[i]!.slice(7).trim();
    else if (names[i] === 'cookie') cookie = cookie === '' ? values[i]! : `${cookie}; ${values[i]!}`;
  }
  if (bearer.startsWith(API_KEY_PREFIX)) result = ctx.auth.apiKey(bearer, project.id);
  else {
    const token = findCookie(cookie, ctx.cookieName);
    if (token !== '') result = ctx.auth.session(token, project.id, project.sessionAbsoluteMs, project.sessionIdleMs);
  }
  if (result.kind !== 'ok') {
    writeLoginRequired(res, isBrowser(method, names, values), target, rid);
    return null;
  }
  const d = authorize(policy, result.principal);
  if (d !== Decision.Allow) {
    writeError(res, d === Decision.PrincipalNotAllowed ? 'MEZU_PRINCIPAL_NOT_ALLOWED' : 'MEZU_FORBIDDEN', rid);
    return null;
  }
  return { project, path: target, authority: hostHeader, assertion: result.principal.assertion, hasBody };
}

const NONE: AuthResult = Object.freeze({ kind: 'none' }) as AuthResult;

function isBrowser(method: string, names: string[], values: string[]): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  for (let i = 0; i < names.length; i++) if (names[i] === 'accept' && values[i]!.includes('text/html')) return true;
  return false;
}

function bodyExpected(names: string[], values: string[]): boolean {
  for (let i = 0; i < names.length; i++) {
    if (names[i] === 'transfer-encoding') return true;
    if (names[i] === 'content-length' && values[i] !== '0') return true;
  }
  return false;
}

/**
 * `/_mezu/*`: the hosted pages (src/login/) when this edge serves them, else
 * 404. Never forwarded. The request headers were already copied out of uWS.
 */
function reservedPage(
  ctx: HandlerContext,
  res: HttpResponse,
  rid: string,
  path: string,
  method: string,
  query: string,
  names: string[],
  values: string[],
  hostHeader: string,
  project: CompiledProject,
  cfg: CompiledConfig,
): void {
  if (ctx.login === null || !LoginPages.serves(path)) {
    writeError(res, 'MEZU_NOT_FOUND', rid);
    return;
  }
  ctx.login.serve(res, rid, method, path, query, names, values, hostHeader, project, cfg);
}

function send(
  ctx: HandlerContext,
  res: HttpResponse,
  rid: string,
  method: string,
  f: Forward,
  names: string[],
  values: string[],
  onFinish: () => void,
): void {
  const conn = ctx.pools.pick(f.project.upstream);
  if (conn === null) return writeError(res, 'MEZU_NO_WARPGATE', rid);

  const headers: string[] = [];
  copyForwardableHeaders(names, values, headers);
  // Edge-added headers go after the client's; the client's reserved spellings are already gone.
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i]!;
    if (n === 'cookie') {
      const v = removeCookie(headers[i + 1]!, ctx.cookieName);
      if (v === '') {
        headers.splice(i, 2);
        i -= 2;
      } else headers[i + 1] = v;
    } else if (n === 'authorization' && headers[i + 1]!.startsWith('Bearer ' + API_KEY_PREFIX)) {
      // The key is a secret between the client and the edge; the application gets the assertion.
      headers.splice(i, 2);
      i -= 2;
    } else if (CLIENT_FORWARDING.has(n)) {
      headers.splice(i, 2);
      i -= 2;
    }
  }
  const ip = bufferToText(res.getRemoteAddressAsText());
  headers.push('x-forwarded-for', ip, 'x-forwarded-proto', ctx.scheme, 'x-forwarded-host', f.authority);
  headers.push(IdentityHeader.requestId, rid, Tunnel.projectHeader, f.project.id);
  if (f.assertion !== null) headers.push(IdentityHeader.assertion, f.assertion);

  const ex = new Exchange(res, method === 'HEAD', rid, onFinish);
  ctx.inflight.n++;
  res.onAborted(() => ex.abort());
  const stream = conn.open({ method, path: f.path, authority: f.authority, headers }, f.hasBody, ex);
  ex.stream = stream;
  if (f.hasBody) {
    let uploadOpen = true;
    res.onData((ab, isLast) => {
      if (!uploadOpen) return;
      if (ex.aborted || ex.done) {
        // The response is complete (e.g. an early 413 or 502): stop the rest of the upload on the tunnel.
        uploadOpen = false;
        stream.abort();
        return;
      }
      // onData's buffer is neutered on return: copy it.
      const ok = stream.write(Buffer.from(new Uint8Array(ab)));
      if (isLast) {
        uploadOpen = false;
        stream.end();
      }
      else if (!ok) {
        res.pause();
        stream.onDrain(() => {
          if (!ex.aborted) res.resume();
        });
      }
    });
  }
}
