/**
 * The request path of an edge worker, stage by stage, each stage the owner of
 * its folder:
 *
 *   front      request.ts   copy the request out of uWS; framing, head size, method
 *   route      ../route     Host → project, path normalization, reserved paths, the rule
 *   session    ../session   the credential → the principal (or log in)
 *   authorize  ../authorize the rule against the principal
 *   identity   ../identity  the assertion (after allow), the forwarded head
 *   tunnel     ../tunnel    a connection of the project's pool; the response back
 *
 * Expected outcomes are verdict values that select a prebuilt response
 * (`answer`); an exception anywhere before forwarding denies with 503 (fail
 * closed), never forwards. docs/SECURITY.md describes what each step refuses
 * and why.
 */
import type { HttpRequest, HttpResponse } from '../../native/uws.js';
import { peerAddress } from '../../native/uws.js';
import { JWKS_PATH, RESERVED_PATH_PREFIX } from '../../wire/index.js';
import type { CompiledConfig, CompiledProject } from '../config/types.js';
import { clientIp, normalizeHost } from '../config/index.js';
import { isForwardableQuery, normalizePath } from '../route/index.js';
import { API_KEY_PREFIX, bearerToken, findCookie, type Authenticator } from '../session/index.js';
import { authorize, Decision, deviceIdOf, stepUpSatisfied } from '../authorize/index.js';
import { nextRequestId, type Assertions, type Signer } from '../identity/index.js';
import { codeOf, Errors, type ErrorCode } from '../errors/index.js';
import { endBody, writeError, writeLoginRequired, writeStepUpRequired } from '../errors/http.js';
import { EdgeRequest, answered, type RequestScope } from './request.js';
import type { Log } from '../runtime/index.js';
import { BODY_NONE, FRAMING_INVALID } from './framing.js';
import { DEFAULT_CLIENT_INFLIGHT, DEFAULT_MAX_HEAD_BYTES, MAX_HEADER_FIELDS } from './limits.js';
import { DecisionKind } from './metrics.js';

/** Methods the edge forwards. Anything else (TRACE, CONNECT, WebDAV, lower-case spellings) is refused. */
const METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);

/** `/_mezu` without its trailing slash: reserved too. */
const RESERVED_BASE = RESERVED_PATH_PREFIX.slice(0, -1);

/**
 * Fault codes that reach the client as themselves when they deny a request;
 * any other exception is reported as MEZU_INTERNAL (both 503).
 */
const FAULT_CODES: ReadonlySet<string> = new Set<ErrorCode>(['MEZU_SIGNING_KEY_MISSING', 'MEZU_STORE_UNAVAILABLE']);

/**
 * The hosted pages under `/_mezu/` (src/login implements them): the request
 * path hands a reserved request over and never imports the pages. `fields` is
 * the request's flat [name, value, …] list, already copied out of uWS.
 */
export interface HostedPages {
  serves(key: string): boolean;
  serve(res: HttpResponse, rid: string, method: string, key: string, query: string, fields: readonly string[], host: string, project: CompiledProject, cfg: CompiledConfig): void;
}

export interface FrontContext {
  config(): CompiledConfig | null;
  auth: Authenticator;
  assertions: Assertions;
  signer: Signer;
  scope: RequestScope;
  /** Session cookie name (`mezu_session`, or `__Host-mezu_session` on https). */
  cookieName: string;
  /** The device cookie (src/login/device.ts), read only for `step_up` rules with `device: known`. */
  deviceCookieName: string;
  /** Set when the worker drains: requests still arriving on open keep-alive connections get 503 and a close. */
  draining: { on: boolean };
  /** Hosted pages under /_mezu/; null serves 404 there. */
  pages: HostedPages | null;
  /**
   * Set by the primary on a node that replicates (`edge --nats`) while its
   * replica is past the staleness bound: protected routes answer 503
   * MEZU_REPLICA_STALE (a revocation made elsewhere may be missing), public
   * ones keep working. Absent on the embedded single node.
   */
  replica?: { stale: boolean };
  /** Longest request head (request line + fields) in bytes; default DEFAULT_MAX_HEAD_BYTES. Longer → 431. */
  maxHeadBytes?: number;
  /** Forwarded requests one client address may have in flight in this worker; more → 429. Default DEFAULT_CLIENT_INFLIGHT. */
  clientInflight?: number;
  /** Edge workers: a rule's `max_inflight` is shared among them (each takes an equal share, at least one). Default 1. */
  workers?: number;
  /** Wall clock for session lifetimes and assertions (injectable in tests). */
  now?: () => number;
  log: Log;
}

/** What `decide` concluded; each value but Forward selects a prebuilt answer. */
export const enum Verdict {
  Forward,
  HostInvalid,
  ConfigMissing,
  HostUnknown,
  PathInvalid,
  Reserved,
  Jwks,
  RouteDenied,
  TooLarge,
  LoginRequired,
  PrincipalNotAllowed,
  Forbidden,
  /** The rule's `step_up` is not satisfied by this session (src/authorize/step-up.ts). */
  StepUpRequired,
  /** A protected route on a node cut off from the cluster past its staleness bound. */
  ReplicaStale,
}

/** The refusal each verdict answers with, and whether it always closes the connection. */
const REFUSAL: Readonly<Record<number, { code: ErrorCode; close: boolean }>> = {
  [Verdict.HostInvalid]: { code: 'MEZU_HOST_INVALID', close: true },
  [Verdict.ConfigMissing]: { code: 'MEZU_CONFIG_MISSING', close: false },
  [Verdict.HostUnknown]: { code: 'MEZU_HOST_UNKNOWN', close: false },
  [Verdict.PathInvalid]: { code: 'MEZU_PATH_INVALID', close: true },
  [Verdict.RouteDenied]: { code: 'MEZU_ROUTE_DENIED', close: false },
  [Verdict.TooLarge]: { code: 'MEZU_REQUEST_TOO_LARGE', close: true },
  [Verdict.PrincipalNotAllowed]: { code: 'MEZU_PRINCIPAL_NOT_ALLOWED', close: false },
  [Verdict.Forbidden]: { code: 'MEZU_FORBIDDEN', close: false },
  [Verdict.ReplicaStale]: { code: 'MEZU_REPLICA_STALE', close: false },
};

export function createFront(ctx: FrontContext): (res: HttpResponse, req: HttpRequest) => void {
  const run = createRun(ctx);
  return function handle(res: HttpResponse, req: HttpRequest): void {
    // Everything is copied from the uWS request here: it dies when this function returns.
    run(new EdgeRequest(res, req, ctx.scope, nextRequestId()));
  };
}

/** The stages for a request already copied out of uWS (the WebSocket front end hands over a GET that is no handshake). */
export function createRun(ctx: FrontContext): (r: EdgeRequest) => void {
  const maxHead = ctx.maxHeadBytes ?? DEFAULT_MAX_HEAD_BYTES;
  const now = ctx.now ?? Date.now;
  return function run(r: EdgeRequest): void {
    if (ctx.draining.on) return refuse(r, 'MEZU_DRAINING', true);
    // Framing first: when it is ambiguous, where the next request on this connection starts is too,
    // so every refusal from here on closes the connection.
    if (r.body === FRAMING_INVALID) return refuse(r, 'MEZU_FRAMING_INVALID', true);
    if (r.headBytes > maxHead || r.fields.length > 2 * MAX_HEADER_FIELDS) return refuse(r, 'MEZU_HEAD_TOO_LARGE', true);
    // A refusal while a body is still coming closes the connection: the edge does not read
    // (and uWS would otherwise receive and discard) an upload it already refused.
    const closeOnDeny = r.body !== BODY_NONE;
    if (!METHODS.has(r.method)) return refuse(r, 'MEZU_METHOD_NOT_ALLOWED', closeOnDeny);
    let v: Verdict;
    try {
      v = decide(ctx, r, now());
      if (v !== Verdict.Forward) {
        answer(ctx, r, v, closeOnDeny);
        // Hosted pages answer later, by themselves: login events count them (mezu_edge_login_events_total).
        if ((r.scope.metrics != null || r.scope.access != null || r.scope.spans != null) && !(v === Verdict.Reserved && ctx.pages !== null && ctx.pages.serves(r.target))) answered(r, answerStatus(r, v));
        return;
      }
    } catch (err) {
      // Fail closed: a fault while deciding (or answering a hosted page) denies.
      ctx.log(`edge: request ${r.id} denied on an internal error (${codeOf(err)}): ${(err as Error).message}`, { level: 'error', request_id: r.id });
      return refuse(r, faultCode(err), closeOnDeny);
    }
    send(ctx, r);
  };
}

/** A refusal of the request path, counted (`r.metricSlot`: its rule when known, else no project). */
function refuse(r: EdgeRequest, code: ErrorCode, close: boolean): void {
  answered(r, Errors[code].status);
  writeError(r.res, code, r.id, close, r.isHead);
}

/** The status `answer` wrote for a verdict other than Forward. */
function answerStatus(r: EdgeRequest, v: Verdict): number {
  switch (v) {
    case Verdict.Reserved:
      return 404;
    case Verdict.Jwks:
      return 200;
    case Verdict.LoginRequired:
    case Verdict.StepUpRequired:
      return r.acceptsHtml && (r.method === 'GET' || r.isHead) ? 302 : 401;
    default:
      return Errors[REFUSAL[v]!.code].status;
  }
}

/** Route, session, authorize, identity: fills `r` and returns the verdict. */
export function decide(ctx: FrontContext, r: EdgeRequest, now: number): Verdict {
  // ── route ──
  if (r.hostCount !== 1) return Verdict.HostInvalid;
  const host = normalizeHost(r.host);
  if (host === null) return Verdict.HostInvalid;
  const cfg = ctx.config();
  if (cfg === null) return Verdict.ConfigMissing;
  r.config = cfg;
  const project = cfg.hosts.get(host);
  if (project === undefined) return Verdict.HostUnknown;
  r.project = project;
  const m = r.scope.metrics;
  // Counted under the project until a rule matches (a malformed path, a reserved one, the JWKS).
  if (m != null) r.metricSlot = m.slotOf(cfg, project, null);
  const norm = normalizePath(r.url);
  if (!norm.ok || (r.query.length !== 0 && !isForwardableQuery(r.query))) return Verdict.PathInvalid;
  // Reserved names are judged on the folded key, as rules are: `/_MEZU/login/` is `/_mezu/login`.
  const key = norm.key;
  r.key = key;
  r.target = r.query.length === 0 ? norm.path : `${norm.path}?${r.query}`;
  if (key.startsWith(RESERVED_PATH_PREFIX) || key === RESERVED_BASE) {
    r.target = key;
    return Verdict.Reserved;
  }
  if (key === JWKS_PATH) return Verdict.Jwks;
  const policy = project.match(r.method, key);
  r.policy = policy;
  if (m != null) r.metricSlot = m.slotOf(cfg, project, policy);
  if (policy.auth === 'deny') return decided(r, Verdict.RouteDenied, DecisionKind.RouteDenied);
  // A declared length over the rule's limit is refused before anything is read or forwarded;
  // a chunked body is counted as it streams (request.ts onBody).
  if (r.body > policy.maxBody) return decided(r, Verdict.TooLarge, DecisionKind.TooLarge);
  if (policy.auth === 'public') return decided(r, Verdict.Forward, DecisionKind.AllowedPublic);
  // Fail closed on a replica that may lack revocations: nothing protected is decided from it.
  if (ctx.replica?.stale === true) return Verdict.ReplicaStale;

  // ── session: a service-account key in Authorization, else the session cookie ──
  const bearer = r.authorization === '' ? '' : bearerToken(r.authorization);
  let p = null;
  if (bearer.startsWith(API_KEY_PREFIX)) p = ctx.auth.apiKey(bearer, project.id);
  else if (r.cookie !== '') {
    const token = findCookie(r.cookie, ctx.cookieName);
    if (token !== '') p = ctx.auth.session(token, project.id, project.sessionAbsoluteMs, project.sessionIdleMs);
  }
  if (p === null) return decided(r, Verdict.LoginRequired, DecisionKind.LoginRequired);
  r.principal = p;

  // ── authorize ──
  const d = authorize(policy, p);
  if (d !== Decision.Allow) return d === Decision.PrincipalNotAllowed ? decided(r, Verdict.PrincipalNotAllowed, DecisionKind.PrincipalNotAllowed) : decided(r, Verdict.Forbidden, DecisionKind.Forbidden);

  // ── step-up: a route without `step_up` pays this one field test ──
  const su = policy.stepUp;
  if (su !== null && (p.session === null || !stepUpSatisfied(su, p.session, now, su.device ? deviceIdOf(findCookie(r.cookie, ctx.deviceCookieName)) : ''))) return decided(r, Verdict.StepUpRequired, DecisionKind.StepUpRequired);

  // ── identity: only now, so a refused request costs no signature and no store write ──
  r.assertion = ctx.assertions.for(p, project.id, now);
  return decided(r, Verdict.Forward, p.key !== null ? DecisionKind.AllowedKey : DecisionKind.AllowedSession);
}

/** Counts the decision (WebSocket handshakes decide here too) and returns the verdict. */
function decided(r: EdgeRequest, v: Verdict, kind: DecisionKind): Verdict {
  const m = r.scope.metrics;
  if (m != null) m.decision(r.metricSlot, kind);
  if (r.scope.spans != null) {
    r.decidedAt = performance.now();
    r.decisionKind = kind;
  }
  return v;
}

/** The prebuilt answer of a verdict other than Forward. */
export function answer(ctx: FrontContext, r: EdgeRequest, v: Verdict, closeOnDeny: boolean): void {
  const res = r.res;
  switch (v) {
    case Verdict.Reserved:
      // `/_mezu/*`: the hosted pages when this edge serves them, else 404. Never forwarded.
      if (ctx.pages === null || !ctx.pages.serves(r.target)) return writeError(res, 'MEZU_NOT_FOUND', r.id, closeOnDeny, r.isHead);
      return ctx.pages.serve(res, r.id, r.method, r.target, r.query, r.fields, r.host, r.project!, r.config!);
    case Verdict.Jwks:
      res.writeStatus('200 OK\r\ncontent-type: application/json\r\ncache-control: public, max-age=300');
      return endBody(res, ctx.signer.jwksJson(), closeOnDeny, r.isHead);
    case Verdict.LoginRequired:
      return writeLoginRequired(res, r.acceptsHtml && (r.method === 'GET' || r.isHead), r.target, r.id, closeOnDeny, r.isHead);
    case Verdict.StepUpRequired:
      return writeStepUpRequired(res, r.acceptsHtml && (r.method === 'GET' || r.isHead), r.target, r.policy!.stepUp!.challenge, r.id, closeOnDeny, r.isHead);
    default: {
      const refusal = REFUSAL[v]!;
      return writeError(res, refusal.code, r.id, refusal.close || closeOnDeny, r.isHead);
    }
  }
}

/** Tunnel: the project pool's ready connection with the fewest open streams; none → 502 at once. */
function send(ctx: FrontContext, r: EdgeRequest): void {
  try {
    const conn = ctx.scope.pools.pick(r.project!.upstream);
    if (conn === null) return refuse(r, 'MEZU_NO_WARPGATE', r.body !== BODY_NONE);
    const addr = clientAddress(r);
    r.clientAddress = addr;
    // One client cannot take a worker's tunnels for itself: past its share it is told to come back.
    const clients = ctx.scope.clients;
    const n = clients.get(addr) ?? 0;
    // A limit after the rule allowed: counted as a decision of its own (`limit`), after the `allowed`.
    if (n >= (ctx.clientInflight ?? DEFAULT_CLIENT_INFLIGHT)) return limited(r, 'MEZU_CLIENT_BUSY', DecisionKind.ClientBusy);
    // One path cannot take every origin connection: a rule's `max_inflight`, this worker's share of it.
    const policy = r.policy!;
    if (policy.maxInflight > 0) {
      const routes = ctx.scope.routes;
      const m = routes.get(policy) ?? 0;
      if (m >= Math.max(1, Math.floor(policy.maxInflight / (ctx.workers ?? 1)))) return limited(r, 'MEZU_ROUTE_BUSY', DecisionKind.RouteBusy);
      routes.set(policy, m + 1);
      r.routeCounted = true;
    }
    clients.set(addr, n + 1);
    r.forward(conn);
  } catch (err) {
    // Fail closed here too: nothing is forwarded when the head could not be built or sent.
    ctx.log(`edge: request ${r.id} failed while forwarding (${codeOf(err)}): ${(err as Error).message}`, { level: 'error', request_id: r.id });
    if (r.forwarding) r.fail('MEZU_INTERNAL');
    else refuse(r, faultCode(err), true);
  }
}

function limited(r: EdgeRequest, code: ErrorCode, kind: DecisionKind): void {
  decided(r, Verdict.Forward, kind);
  refuse(r, code, r.body !== BODY_NONE);
}

/**
 * The client address the application gets in X-Forwarded-For: the socket
 * peer; when the peer is one of the config's `trusted_proxies`, the right-most
 * address of the client's X-Forwarded-For chain that is not a trusted proxy
 * (config/client-ip.ts). One address, never the client's own chain.
 */
export function clientAddress(r: EdgeRequest): string {
  const peer = peerAddress(r.res);
  const cfg = r.config!;
  return cfg.trustedProxies.length === 0 ? peer : clientIp(cfg, peer, r.forwardedFor);
}

export function faultCode(err: unknown): ErrorCode {
  const c = codeOf(err);
  return FAULT_CODES.has(c) ? (c as ErrorCode) : 'MEZU_INTERNAL';
}
