/**
 * The request path of an edge worker, in the order a request travels:
 * framing → head limits → method → host → path → reserved pages → route →
 * body limit → credential → authorize → identity → tunnel. Expected outcomes
 * are verdict values selecting a prebuilt response; an exception anywhere
 * before forwarding denies with 503 (fail closed), never forwards.
 *
 * docs/SECURITY.md describes what each step refuses and why.
 */
import type { HttpRequest, HttpResponse } from '../../native/uws.js';
import { bufferToText } from '../../native/uws.js';
import type { CompiledConfig, CompiledProject, Policy } from '../config/types.js';
import { normalizeHost } from '../config/index.js';
import { isForwardableQuery, normalizePath } from '../route/index.js';
import { JWKS_PATH, RESERVED_PATH_PREFIX, IdentityHeader, Tunnel } from '../contract/index.js';
import { Authenticator, findCookie, removeProductCookies, API_KEY_PREFIX, type AuthResult } from '../session/index.js';
import { authorize, Decision } from '../authorize/index.js';
import { copyForwardableHeaders, nextRequestId, type Signer } from '../identity/index.js';
import type { PoolRegistry, RequestHead } from '../tunnel/index.js';
import { writeError, writeLoginRequired, endBody } from './responses.js';
import { Exchange, Upload } from './exchange.js';
import { codeOf, type ErrorCode } from '../errors/index.js';
import { LoginPages, clientIp } from '../login/index.js';
import { BODY_NONE, DEFAULT_MAX_HEAD_BYTES, FRAMING_INVALID, MAX_HEADER_FIELDS, inspectFraming, isClientRoutingHeader } from '../hardening/index.js';

/** Methods the edge forwards. Anything else (TRACE, CONNECT, WebDAV, lower-case spellings) is refused. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** `/_mezu` without its trailing slash: reserved too. */
const RESERVED_BASE = RESERVED_PATH_PREFIX.slice(0, -1);

/**
 * Fault codes that reach the client as themselves when they deny a request;
 * any other exception is reported as MEZU_INTERNAL (both 503).
 */
const FAULT_CODES: ReadonlySet<string> = new Set<ErrorCode>(['MEZU_SIGNING_KEY_MISSING', 'MEZU_STORE_UNAVAILABLE']);

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
  /** Longest request head (request line + fields) in bytes; default DEFAULT_MAX_HEAD_BYTES. Longer → 431. */
  maxHeadBytes?: number;
  log(msg: string): void;
}

export function createHandler(ctx: HandlerContext): (res: HttpResponse, req: HttpRequest) => void {
  const onFinish = () => {
    ctx.inflight.n--;
  };
  const maxHead = ctx.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  return function handle(res: HttpResponse, req: HttpRequest): void {
    const rid = nextRequestId();
    // Copy everything from the request now: it dies when this function returns.
    const method = req.getCaseSensitiveMethod();
    if (ctx.draining.on) return writeError(res, 'MEZU_DRAINING', rid, true, method === 'HEAD');
    const rawUrl = req.getUrl();
    const query = req.getQuery() ?? '';
    const names: string[] = [];
    const values: string[] = [];
    let hostCount = 0;
    // Request line and `name: value\r\n` per field, near enough.
    let headBytes = method.length + rawUrl.length + query.length + 12;
    req.forEach((k, v) => {
      if (k === 'host') hostCount++;
      headBytes += k.length + v.length + 4;
      names.push(k);
      values.push(v);
    });
    const hostHeader = req.getHeader('host');

    // Framing first: when it is ambiguous, where the next request on this connection starts is too,
    // so every refusal from here on closes the connection.
    const body = inspectFraming(names, values);
    if (body === FRAMING_INVALID) return writeError(res, 'MEZU_FRAMING_INVALID', rid, true, method === 'HEAD');
    if (headBytes > maxHead || names.length > MAX_HEADER_FIELDS) return writeError(res, 'MEZU_HEAD_TOO_LARGE', rid, true, method === 'HEAD');
    // A refusal while a body is still coming closes the connection: the edge does not read
    // (and uWS would otherwise receive and discard) an upload it already refused.
    const closeOnDeny = body !== BODY_NONE;
    if (!METHODS.has(method)) return writeError(res, 'MEZU_METHOD_NOT_ALLOWED', rid, closeOnDeny, method === 'HEAD');

    let forward: Forward | null;
    try {
      forward = decide(ctx, res, rid, method, rawUrl, query, names, values, hostCount, hostHeader, body);
    } catch (err) {
      // Fail closed: a fault while deciding denies.
      ctx.log(`edge: request ${rid} denied on an internal error (${codeOf(err)}): ${(err as Error).message}`);
      return writeError(res, faultCode(err), rid, closeOnDeny, method === 'HEAD');
    }
    if (forward === null) return;
    send(ctx, res, rid, method, forward, names, values, onFinish);
  };
}

function faultCode(err: unknown): ErrorCode {
  const c = codeOf(err);
  return FAULT_CODES.has(c) ? (c as ErrorCode) : 'MEZU_INTERNAL';
}

interface Forward {
  project: CompiledProject;
  cfg: CompiledConfig;
  /** Normalized path plus `?query`: what was authorized, and what is forwarded. */
  path: string;
  authority: string;
  assertion: string | null;
  /** Body framing: BODY_NONE, BODY_CHUNKED or a Content-Length. */
  body: number;
  /** Longest body the matched rule accepts. */
  maxBody: number;
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
  body: number,
): Forward | null {
  const closeOnDeny = body !== BODY_NONE;
  if (hostCount !== 1) {
    writeError(res, 'MEZU_HOST_INVALID', rid, true, method === 'HEAD');
    return null;
  }
  const host = normalizeHost(hostHeader);
  if (host === null) {
    writeError(res, 'MEZU_HOST_INVALID', rid, true, method === 'HEAD');
    return null;
  }
  const cfg = ctx.config();
  if (cfg === null) {
    writeError(res, 'MEZU_CONFIG_MISSING', rid, closeOnDeny, method === 'HEAD');
    return null;
  }
  const project = cfg.hosts.get(host);
  if (project === undefined) {
    writeError(res, 'MEZU_HOST_UNKNOWN', rid, closeOnDeny, method === 'HEAD');
    return null;
  }
  const norm = normalizePath(rawUrl);
  if (!norm.ok || (query.length !== 0 && !isForwardableQuery(query))) {
    writeError(res, 'MEZU_PATH_INVALID', rid, true, method === 'HEAD');
    return null;
  }
  const path = norm.path;
  // Reserved names are judged on the folded key, as rules are: `/_MEZU/login/` is `/_mezu/login`.
  const key = norm.key;
  if (key.startsWith(RESERVED_PATH_PREFIX) || key === RESERVED_BASE) {
    reservedPage(ctx, res, rid, key, method, query, names, values, hostHeader, project, cfg, closeOnDeny);
    return null;
  }
  if (key === JWKS_PATH) {
    res.writeStatus('200 OK').writeHeader('content-type', 'application/json').writeHeader('cache-control', 'public, max-age=300');
    endBody(res, ctx.signer.jwksJson(), closeOnDeny, method === 'HEAD');
    return null;
  }
  const policy: Policy = project.match(method, key);
  const target = query.length === 0 ? path : `${path}?${query}`;
  if (policy.auth === 'deny') {
    writeError(res, 'MEZU_ROUTE_DENIED', rid, closeOnDeny, method === 'HEAD');
    return null;
  }
  // A declared length over the rule's limit is refused before anything is read or forwarded;
  // a chunked body is counted as it streams (exchange.ts, Upload).
  if (body > policy.maxBody) {
    writeError(res, 'MEZU_REQUEST_TOO_LARGE', rid, true, method === 'HEAD');
    return null;
  }
  if (policy.auth === 'public') return { project, cfg, path: target, authority: hostHeader, assertion: null, body, maxBody: policy.maxBody };

  // Credential: a service-account key in Authorization, else the session cookie.
  let result: AuthResult = NONE;
  let bearer = '';
  let cookie = '';
  for (let i = 0; i < names.length; i++) {
    if (names[i] === 'authorization') {
      const b = bearerToken(values[i]!);
      if (b !== '') bearer = b;
    } else if (names[i] === 'cookie') cookie = cookie === '' ? values[i]! : `${cookie}; ${values[i]!}`;
  }
  if (bearer.startsWith(API_KEY_PREFIX)) result = ctx.auth.apiKey(bearer, project.id);
  else {
    const token = findCookie(cookie, ctx.cookieName);
    if (token !== '') result = ctx.auth.session(token, project.id, project.sessionAbsoluteMs, project.sessionIdleMs);
  }
  if (result.kind !== 'ok') {
    writeLoginRequired(res, isBrowser(method, names, values), target, rid, closeOnDeny, method === 'HEAD');
    return null;
  }
  const d = authorize(policy, result.principal);
  if (d !== Decision.Allow) {
    writeError(res, d === Decision.PrincipalNotAllowed ? 'MEZU_PRINCIPAL_NOT_ALLOWED' : 'MEZU_FORBIDDEN', rid, closeOnDeny, method === 'HEAD');
    return null;
  }
  return { project, cfg, path: target, authority: hostHeader, assertion: result.principal.assertion, body, maxBody: policy.maxBody };
}

const NONE: AuthResult = Object.freeze({ kind: 'none' }) as AuthResult;

/**
 * The token of an `Authorization: Bearer …` value, or ''. The scheme name is
 * case-insensitive (RFC 9110 §11.1), so `bearer mzk_…` is a key too: it is
 * used for authentication and, like any key, never forwarded.
 */
function bearerToken(v: string): string {
  if (v.length < 8 || (v.charCodeAt(6) !== 0x20 && v.charCodeAt(6) !== 0x09)) return '';
  const scheme = v.slice(0, 6);
  if (scheme !== 'Bearer' && scheme.toLowerCase() !== 'bearer') return '';
  return v.slice(7).trim();
}

function isBrowser(method: string, names: string[], values: string[]): boolean {
  if (method !== 'GET' && method !== 'HEAD') return false;
  for (let i = 0; i < names.length; i++) if (names[i] === 'accept' && values[i]!.includes('text/html')) return true;
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
  closeOnDeny: boolean,
): void {
  if (ctx.login === null || !LoginPages.serves(path)) {
    writeError(res, 'MEZU_NOT_FOUND', rid, closeOnDeny, method === 'HEAD');
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
  let ex: Exchange | null = null;
  try {
    const conn = ctx.pools.pick(f.project.upstream);
    if (conn === null) return writeError(res, 'MEZU_NO_WARPGATE', rid, f.body !== BODY_NONE, method === 'HEAD');
    const headers = forwardedHeaders(ctx, res, rid, f, names, values);
    ex = new Exchange(res, method === 'HEAD', rid, onFinish);
    ctx.inflight.n++;
    const exchange = ex;
    res.onAborted(() => exchange.abort());
    const head: RequestHead = { method, path: f.path, authority: f.authority, headers };
    if (f.body === BODY_NONE) {
      ex.stream = conn.open(head, false, ex);
      return;
    }
    const upload = new Upload(ex, res, ctx.pools, f.project.upstream, conn, head, f.maxBody);
    res.onData((ab, isLast) => upload.onData(ab, isLast));
  } catch (err) {
    // Fail closed here too: nothing is forwarded when the head could not be built or sent.
    ctx.log(`edge: request ${rid} failed while forwarding (${codeOf(err)}): ${(err as Error).message}`);
    if (ex === null) writeError(res, faultCode(err), rid, true, method === 'HEAD');
    else ex.fail('MEZU_INTERNAL');
  }
}

const BEARER_KEY = 'Bearer ' + API_KEY_PREFIX;

/**
 * The header list sent to the Warpgate: the client's headers minus reserved
 * spellings, hop-by-hop and `Connection`-listed names (identity/headers.ts),
 * the session cookie, a service-account key, and every client routing or
 * address claim (`X-Forwarded-*`, `Forwarded`, `X-Real-IP`, `X-Original-URL`,
 * `X-HTTP-Method-Override`…, hardening/headers.ts); then the edge's own
 * `X-Forwarded-For/Proto/Host`, request id, project and assertion. The
 * client's headers go first and the edge's last, and a client cannot remove
 * an edge header by naming it in `Connection` (those names are only removed
 * from the client's own headers).
 */
function forwardedHeaders(ctx: HandlerContext, res: HttpResponse, rid: string, f: Forward, names: string[], values: string[]): string[] {
  const headers: string[] = [];
  copyForwardableHeaders(names, values, headers);
  let w = 0;
  for (let r = 0; r < headers.length; r += 2) {
    const n = headers[r]!;
    let v = headers[r + 1]!;
    if (n === 'cookie') {
      // Every product cookie (contract isProductCookie): both session spellings, whichever this edge
      // authenticates with, the CSRF cookies, and the Console's session, which a browser sends here
      // when the Console shares this host name. None is the application's.
      v = removeProductCookies(v);
      if (v === '') continue;
    } else if (n === 'authorization') {
      // The key is a secret between the client and the edge; the application gets the assertion.
      if (v.startsWith(BEARER_KEY) || bearerToken(v).startsWith(API_KEY_PREFIX)) continue;
    } else if (isClientRoutingHeader(n)) {
      continue;
    }
    headers[w++] = n;
    headers[w++] = v;
  }
  headers.length = w;
  headers.push('x-forwarded-for', clientAddress(res, f.cfg, names, values), 'x-forwarded-proto', ctx.scheme, 'x-forwarded-host', f.authority);
  headers.push(IdentityHeader.requestId, rid, Tunnel.projectHeader, f.project.id);
  if (f.assertion !== null) headers.push(IdentityHeader.assertion, f.assertion);
  return headers;
}

/**
 * The client address the application gets in X-Forwarded-For: the socket
 * peer; when the peer is one of the config's `trusted_proxies`, the right-most
 * address of the client's X-Forwarded-For chain that is not a trusted proxy
 * (src/login/client-ip.ts). One address, never the client's own chain.
 */
function clientAddress(res: HttpResponse, cfg: CompiledConfig, names: string[], values: string[]): string {
  const peer = bufferToText(res.getRemoteAddressAsText());
  if (cfg.trustedProxies.length === 0) return peer;
  let xff = '';
  for (let i = 0; i < names.length; i++) if (names[i] === 'x-forwarded-for') xff = xff === '' ? values[i]! : `${xff},${values[i]!}`;
  return clientIp(cfg, peer, xff);
}
