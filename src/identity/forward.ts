/**
 * The forwarded request head, written field by field into the tunnel
 * connection's HPACK encoder straight from the client's fields: no header
 * list is built per request. The plan, in order:
 *
 * 1. pseudo-headers (RFC 9113 §8.3.1): method, `https`, the client's Host as
 *    `:authority`, and the normalized path plus query — what was authorized;
 * 2. the client's fields minus every reserved `x-mezu-*` spelling (any case,
 *    `_` for `-`), hop-by-hop fields and those RFC 9113 §8.2.2 forbids, names
 *    the client listed in `Connection`, `Expect` (uWS already answered
 *    `100 Continue`), every routing or client-address claim
 *    (routing-headers.ts), every product cookie (wire/contract.ts
 *    isProductCookie: session, Console, CSRF…) and a service-account key in
 *    `Authorization` — the application gets the assertion instead;
 * 3. the edge's own fields last, so no client field can stand in for them:
 *    `X-Forwarded-For` (one address: the peer, or from `trusted_proxies` the
 *    right-most untrusted hop), `-Proto`, `-Host`, the request id, the
 *    project, the edge's `traceparent` (and the client's `tracestate` when
 *    its `traceparent` was valid: trace.ts) and, for an authenticated
 *    request, the session's assertion.
 *
 * A client cannot remove an edge field by naming it in `Connection`: those
 * names are only dropped from the client's own fields.
 */
import { IdentityHeader, Tunnel, fieldList, isReservedHeader, stripProductCookies, type HpackEncoder } from '../../wire/index.js';
import { API_KEY_PREFIX, bearerToken } from '../session/index.js';
import { isClientRoutingHeader } from './routing-headers.js';
import { forwardTraceparent, validTraceparent } from './trace.js';

/** What the plan needs of a request; the front end's EdgeRequest is one. */
export interface ForwardedRequest {
  readonly method: string;
  /** The client's Host field, sent as `:authority` and `X-Forwarded-Host`. */
  readonly host: string;
  /** Normalized path plus `?query`. */
  readonly target: string;
  /** The client's fields as read: flat [name, value, …], names lower-case. */
  readonly fields: readonly string[];
  /** Values of the client's `Connection` fields joined by `,` ('' when none). */
  readonly connection: string;
  readonly clientAddress: string;
  readonly scheme: string;
  readonly id: string;
  readonly projectId: string;
  /** null on a public route. */
  readonly assertion: string | null;
  /** The client's `traceparent` ('' when none; several joined with `,`, which is invalid). */
  readonly traceparent: string;
  /** The client's `tracestate` fields joined with `,`; cleared when its traceparent is invalid. */
  tracestate: string;
  /** The `traceparent` forwarded: '' until the first head is written, then kept (a replay is the same span). */
  trace: string;
  /** Whether a new trace the edge starts for this request is sampled (spans exported); absent: never. */
  newTraceSampled?(): boolean;
}

const FORWARD = 0;
const DROP = 1;
const COOKIE = 2;
const AUTHORIZATION = 3;

/**
 * Names with a fixed fate. Hop-by-hop (RFC 9110 §7.6.1) and forbidden in
 * HTTP/2 (RFC 9113 §8.2.2); `host` becomes `:authority`; `expect` was handled.
 */
const FIXED: ReadonlyMap<string, number> = new Map([
  ['connection', DROP], ['keep-alive', DROP], ['proxy-connection', DROP], ['transfer-encoding', DROP], ['upgrade', DROP],
  ['te', DROP], ['trailer', DROP], ['proxy-authorization', DROP], ['proxy-authenticate', DROP], ['host', DROP],
  ['http2-settings', DROP], ['expect', DROP],
  // A WebSocket handshake's key and extensions belong to the client's hop (RFC 8441 §5: not used over
  // HTTP/2); the Warpgate makes its own key for the origin and declines extensions.
  ['sec-websocket-key', DROP], ['sec-websocket-extensions', DROP], ['sec-websocket-accept', DROP],
  ['cookie', COOKIE], ['authorization', AUTHORIZATION],
  // Replaced by the edge's own (trace.ts): an invalid one is never passed on.
  ['traceparent', DROP], ['tracestate', DROP],
]);

function actionOf(n: string): number {
  const a = FIXED.get(n);
  if (a !== undefined) return a;
  return isReservedHeader(n) || isClientRoutingHeader(n) ? DROP : FORWARD;
}

/**
 * Writes `r`'s forwarded head into `enc` (between the encoder's begin and
 * view). `method` is `CONNECT` for a WebSocket, whose caller writes
 * `:protocol` first (RFC 8441 §4). `spans` false: the request records no
 * spans (a WebSocket), so a trace started for it is never flagged sampled.
 * Never throws.
 */
export function encodeForwarded(enc: HpackEncoder, r: ForwardedRequest, method: string = r.method, spans = true): void {
  enc.field(':method', method);
  enc.field(':scheme', 'https');
  enc.field(':authority', r.host);
  enc.field(':path', r.target);
  const f = r.fields;
  // Rare: names the client wants dropped as hop-by-hop (RFC 9110 §7.6.1). Parsed only when present.
  const listed = r.connection === '' ? null : connectionListed(r.connection);
  for (let i = 0; i < f.length; i += 2) {
    const n = f[i]!;
    let v = f[i + 1]!;
    const a = actionOf(n);
    if (a === DROP) continue;
    if (listed !== null && listed.has(n)) continue;
    if (a === COOKIE) {
      v = stripProductCookies(v);
      if (v === '') continue;
    } else if (a === AUTHORIZATION) {
      // The key is a secret between the client and the edge; the application gets the assertion.
      if (bearerToken(v).startsWith(API_KEY_PREFIX)) continue;
    }
    enc.field(n, v);
  }
  enc.field('x-forwarded-for', r.clientAddress);
  enc.field('x-forwarded-proto', r.scheme);
  enc.field('x-forwarded-host', r.host);
  enc.field(IdentityHeader.requestId, r.id);
  enc.field(Tunnel.projectHeader, r.projectId);
  if (r.trace === '') {
    if (r.tracestate !== '' && !validTraceparent(r.traceparent)) r.tracestate = '';
    r.trace = forwardTraceparent(r.traceparent, spans && r.newTraceSampled !== undefined && r.newTraceSampled());
  }
  enc.field('traceparent', r.trace);
  if (r.tracestate !== '') enc.field('tracestate', r.tracestate);
  if (r.assertion !== null) enc.field(IdentityHeader.assertion, r.assertion);
}

function connectionListed(v: string): Set<string> {
  const out = new Set<string>();
  for (const t of fieldList(v)) out.add(t.toLowerCase());
  return out;
}
