/**
 * The contract between the edge and the Warpgate: reserved names, the identity
 * assertion, the headers an application receives and the tunnel's control
 * messages. Both sides import this module and nothing else of each other
 * (cloudflared exports its wire constants the same way).
 */

/** Every header whose name, lower-cased with `_` read as `-`, starts with this is reserved. */
export const RESERVED_HEADER_PREFIX = 'x-mezu-';
/** Reserved path prefix on every project host (hosted pages); matched on the normalized path. */
export const RESERVED_PATH_PREFIX = '/_mezu/';
/** Where every project host serves the assertion verification keys. */
export const JWKS_PATH = '/.well-known/mezusphere/jwks.json';
/** Hosted login page; `rd` carries the relative path to return to. */
export const LOGIN_PATH = '/_mezu/login';

/** Lower-case names of the headers the Warpgate sets for the application. */
export const IdentityHeader = {
  assertion: 'x-mezu-assertion',
  userId: 'x-mezu-user-id',
  userEmail: 'x-mezu-user-email',
  userName: 'x-mezu-user-name',
  principalType: 'x-mezu-principal-type',
  authMethod: 'x-mezu-auth-method',
  authTime: 'x-mezu-auth-time',
  /** `acr` claim: `pwd` or `mfa` (absent from assertions of edges before second factors). */
  authAcr: 'x-mezu-auth-acr',
  /** `step_up_time` claim: Unix seconds the session last used a second factor (absent when never). */
  stepUpTime: 'x-mezu-step-up-time',
  roles: 'x-mezu-roles',
  permissions: 'x-mezu-permissions',
  requestId: 'x-mezu-request-id',
} as const;

/**
 * True when `name` is a reserved header in any spelling: any case, `_` for
 * `-` (some origins, e.g. CGI/WSGI stacks, fold `_` and `-` into the same
 * variable, so `X_Mezu_User_Id` would impersonate `X-Mezu-User-Id`).
 */
export function isReservedHeader(name: string): boolean {
  if (name.length < 7) return false;
  // Fast reject on the first char before allocating a lower-cased copy.
  const c0 = name.charCodeAt(0) | 0x20;
  if (c0 !== 0x78 /* x */) return false;
  for (let i = 1; i < 7; i++) {
    let c = name.charCodeAt(i);
    if (c === 0x5f /* _ */) c = 0x2d;
    else if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== RESERVED_HEADER_PREFIX.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * Every cookie the product sets starts with this (`mezu_session`,
 * `mezu_console_session`, `mezu_csrf`, …), or with it behind the `__Host-` or
 * `__Secure-` prefix (RFC 6265bis §4.1.3) on HTTPS. They are the edge's and
 * the Console's business only: the edge strips them all, present and future
 * names alike, before a request reaches an application (a Console session
 * handed to an application would let it act as the operator).
 */
export const PRODUCT_COOKIE_PREFIX = 'mezu_';

/**
 * True when `name` (or its slice `start`..`end`, so a Cookie header is read in
 * place) is a product cookie, compared ASCII-case-insensitively: the edge
 * authenticates with exact names only, so another spelling is never a
 * credential here, but an origin framework that folds case would read it as
 * one. Stripping one cookie too many costs nothing.
 */
export function isProductCookie(name: string, start = 0, end = name.length): boolean {
  let at = start;
  if (name.charCodeAt(at) === 0x5f /* _ */ && name.charCodeAt(at + 1) === 0x5f) {
    if (startsWithFolded(name, at + 2, end, 'host-')) at += 7;
    else if (startsWithFolded(name, at + 2, end, 'secure-')) at += 9;
    else return false;
  }
  return startsWithFolded(name, at, end, PRODUCT_COOKIE_PREFIX);
}

function startsWithFolded(s: string, at: number, end: number, lowerPrefix: string): boolean {
  if (end - at < lowerPrefix.length) return false;
  for (let i = 0; i < lowerPrefix.length; i++) {
    let c = s.charCodeAt(at + i);
    if (c >= 0x41 && c <= 0x5a) c |= 0x20;
    if (c !== lowerPrefix.charCodeAt(i)) return false;
  }
  return true;
}

/**
 * A Cookie field without any product cookie ('' when nothing is left): split
 * on `;`, each pair trimmed (as String.prototype.trim trims), product cookies
 * dropped, the rest joined with `; ` (RFC 6265 §4.2.1). A field without a
 * product cookie is returned as it is, byte for byte; runs on every forwarded
 * request that carries a cookie, and a field without `mezu_` in it (in any
 * case) costs one search and no allocation.
 */
export function stripProductCookies(header: string): string {
  if (indexOfFolded(header, PRODUCT_COOKIE_PREFIX) === -1) return header;
  let out = '';
  let removed = false;
  const len = header.length;
  let i = 0;
  while (i <= len) {
    let end = header.indexOf(';', i);
    if (end === -1) end = len;
    let a = i;
    let b = end;
    while (a < b && isTrimmed(header.charCodeAt(a))) a++;
    while (b > a && isTrimmed(header.charCodeAt(b - 1))) b--;
    if (b > a) {
      const eq = header.indexOf('=', a);
      let nameEnd = eq === -1 || eq >= b ? b : eq;
      while (nameEnd > a && isTrimmed(header.charCodeAt(nameEnd - 1))) nameEnd--;
      if (isProductCookie(header, a, nameEnd)) removed = true;
      else {
        const part = header.slice(a, b);
        out = out === '' ? part : `${out}; ${part}`;
      }
    }
    i = end + 1;
  }
  return removed ? out : header;
}

/**
 * The items of a comma-separated field value (RFC 9110 §5.6.1: `#element`),
 * trimmed, empty ones dropped: `Connection`, `Upgrade`, `Sec-WebSocket-Protocol`.
 * Read by the edge and the Warpgate alike.
 */
export function fieldList(v: string): string[] {
  const out: string[] = [];
  for (const p of v.split(',')) {
    const t = p.trim();
    if (t !== '') out.push(t);
  }
  return out;
}

/** What String.prototype.trim removes: ECMAScript WhiteSpace and LineTerminator code units. */
function isTrimmed(c: number): boolean {
  if (c <= 0x20) return c === 0x20 || (c >= 0x09 && c <= 0x0d);
  if (c < 0xa0) return false;
  return c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) || c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f || c === 0x3000 || c === 0xfeff;
}

/** `s.toLowerCase().indexOf(lowerNeedle)` without the copy when `s` has the needle as it is or no capitals at all. */
function indexOfFolded(s: string, lowerNeedle: string): number {
  const i = s.indexOf(lowerNeedle);
  if (i !== -1) return i;
  for (let k = 0; k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c >= 0x41 && c <= 0x5a) return s.toLowerCase().indexOf(lowerNeedle);
  }
  return -1;
}

export type PrincipalType = 'user' | 'service_account';

/** Claims of the identity assertion (a JWT, EdDSA/Ed25519). */
export interface AssertionClaims {
  iss: string;
  aud: string;
  sub: string;
  typ: PrincipalType;
  email: string;
  name: string;
  amr: string[];
  auth_time: number;
  /**
   * Authentication context class (OpenID Connect Core §2): `pwd`, or `mfa`
   * once the session used a second factor. Optional: an edge older than
   * second factors does not send it, and a Warpgate older than them ignores it.
   */
  acr?: string;
  /** Unix seconds of the session's last second-factor use (sign-in or step-up); optional like `acr`. */
  step_up_time?: number;
  roles: string[];
  permissions: string[];
  sid: string;
  iat: number;
  exp: number;
}

/**
 * `acr` values (OpenID Connect Core §2; RFC 9470 `acr_values`): a session
 * signed in with a password alone, and one that has also used a second
 * factor. Short and stable: applications compare them.
 */
export const ACR_PWD = 'pwd';
export const ACR_MFA = 'mfa';

/** An assertion lives at most this long (exp ≤ 5 minutes after iat). */
export const ASSERTION_MAX_TTL_S = 300;
/** The edge re-mints an assertion this long before it expires, so a forwarded one has ≥ this much life left. */
export const ASSERTION_REFRESH_BEFORE_S = 60;
/** Clock skew the Warpgate tolerates on `exp`/`iat`. */
export const ASSERTION_CLOCK_SKEW_S = 30;

export interface Jwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}
export interface Jwks {
  keys: Jwk[];
}

/** Tunnel wire settings. */
export const Tunnel = {
  alpn: 'h2',
  /**
   * First stream the edge (the HTTP/2 client) opens on a new tunnel: it tells
   * the Warpgate which edge worker holds this connection and hands it the
   * verification keys and the projects its pool serves. Not reachable from
   * clients: the Warpgate answers it only on this exact pseudo-path with the
   * control method, and the edge never forwards a client path here because
   * client paths always start with `/`, and this one starts with `/.mezu-control`
   * which no client request reaches (the edge opens it itself).
   */
  controlMethod: 'MEZU-CONTROL',
  controlPath: '/.mezu-control/hello',
  /** Header on every forwarded request naming the project (assertion `aud` must equal it). */
  projectHeader: 'x-mezu-project',
} as const;

/** Body of the control hello, JSON. */
export interface TunnelHello {
  /** Random id of the edge instance (changes when the edge restarts). */
  edgeId: string;
  /** Index of the worker holding this connection, 0-based. */
  worker: number;
  /** Number of workers in that edge instance. */
  workers: number;
  /** Upstream pool the Warpgate's certificate names. */
  pool: string;
  /** Projects served by that pool: the only acceptable assertion audiences. */
  projects: string[];
  /** Assertion issuer. */
  issuer: string;
  /** Verification keys. */
  jwks: Jwks;
  /**
   * On a node of a replicated cluster: the tunnel endpoints (`host:port`) the
   * live nodes advertise, this one's included. A Warpgate dials every one it
   * does not hold yet (it never drops one for missing here), so a node that
   * joins gets tunnels within a poll, not at the next certificate renewal.
   * Absent on a single node. At most MAX_HELLO_ENDPOINTS.
   */
  endpoints?: string[];
}

/** The most endpoints a hello lists (and a Warpgate takes from one). */
export const MAX_HELLO_ENDPOINTS = 64;

/** Warpgate's reply to the hello. */
export interface TunnelHelloReply {
  warpgateId: string;
  version: string;
}

/** URI SAN prefix in a Warpgate client certificate naming its upstream pool. */
export const POOL_URI_PREFIX = 'urn:mezusphere:pool:';

/**
 * Further URI SANs in a client certificate issued by enrollment: the API key,
 * service account and Warpgate it was issued to. The edge re-checks the key
 * on every handshake and while the tunnel lives (a revoked key closes it).
 */
export const KEY_URI_PREFIX = 'urn:mezusphere:key:';
export const SERVICE_ACCOUNT_URI_PREFIX = 'urn:mezusphere:service-account:';
export const WARPGATE_URI_PREFIX = 'urn:mezusphere:warpgate:';

/** Warpgate enrollment: `POST` on the Console listener with `Authorization: Bearer mzk_…`. */
export const ENROLL_PATH = '/api/v1/warpgates/enroll';

/** Body of an enrollment (first one and every renewal: each sends a CSR for a fresh key pair). */
export interface EnrollRequest {
  /** PKCS#10 PEM for an ECDSA P-256 key the Warpgate generated; only its public key is used. */
  csr: string;
  /** The agent's id (it sends the same in the tunnel hello). */
  warpgate_id: string;
  hostname: string;
  version: string;
}

export interface EnrollResponse {
  /** PEM client certificate: pool, key, service account and Warpgate in URI SANs, EKU clientAuth. */
  certificate: string;
  /** PEM of the CA that signed the edge's tunnel certificate: the only CA the Warpgate trusts for the tunnel. */
  ca: string;
  tunnel: { endpoints: string[]; servername: string };
  project: string;
  pool: string;
  service_account: string;
  key: string;
  expires_at: string;
  /** When to renew (about two thirds into the certificate's life). */
  renew_after: string;
}
