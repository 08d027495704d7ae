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
 * Every cookie the product sets is named `mezu_…`, or `__Host-mezu_…` over
 * HTTPS: the edge's session and CSRF cookies, the Console's session and CSRF
 * cookies, and any added later. None of them is ever the application's: the
 * edge removes all of them from a request before forwarding it, whatever the
 * edge itself authenticated with. Cookies ignore ports, so a browser that holds
 * a Console session for a host name also sends it to a project on that host.
 */
export const PRODUCT_COOKIE_PREFIXES: readonly string[] = ['mezu_', '__host-mezu_', '__secure-mezu_'];

/**
 * True when `name` is a product cookie, compared ASCII-case-insensitively: the
 * edge authenticates with exact names only, so a different spelling is never a
 * credential here, but an origin framework that folds case would read it as
 * one. Stripping one cookie too many costs nothing. `start`/`end` name a
 * slice of `name`, so a Cookie header is read in place.
 */
export function isProductCookie(name: string, start = 0, end = name.length): boolean {
  for (const prefix of PRODUCT_COOKIE_PREFIXES) {
    if (end - start < prefix.length) continue;
    let i = 0;
    while (i < prefix.length && (name.charCodeAt(start + i) | (isUpperAscii(name.charCodeAt(start + i)) ? 0x20 : 0)) === prefix.charCodeAt(i)) i++;
    if (i === prefix.length) return true;
  }
  return false;
}

function isUpperAscii(c: number): boolean {
  return c >= 0x41 && c <= 0x5a;
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
  roles: string[];
  permissions: string[];
  sid: string;
  iat: number;
  exp: number;
}

/** An assertion lives at most this long (brief §3: exp ≤ 5 minutes after iat). */
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
}

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
