/**
 * Config types. Unvalidated input (`unknown` from YAML) and validated config
 * have different types; only `validateConfig` turns one into the other, and
 * only `compileConfig` turns validated config into the per-worker lookup
 * structures the hot path uses.
 */
import type { PrincipalType } from '../../wire/index.js';

/** `required`: a credential is needed; `public`: forwarded without one; `deny`: never forwarded (403). */
export type AuthMode = 'required' | 'public' | 'deny';

export interface RouteConfig {
  /** Exact path (`/health`) or prefix (`/api/v1/*`, which also covers `/api/v1` itself). Normalized form only. */
  path: string;
  /** Upper-case methods this rule is narrowed to, or null for every method. */
  methods: string[] | null;
  auth: AuthMode;
  /** Kinds of principal accepted on a `required` route. Default: `[user]`. */
  principals: PrincipalType[];
  /** The principal needs at least one of these roles (empty: no role needed). */
  roles: string[];
  /** The principal needs every one of these permissions (empty: none needed). */
  permissions: string[];
  /** `max_body`: longest request body in bytes; absent: the project's. */
  maxBody?: number;
  /** `max_inflight`: requests forwarded on this rule at once, edge-wide (divided among the workers); absent: no limit. */
  maxInflight?: number;
  /** `websocket`: WebSocket handshakes accepted on this rule; absent: true. */
  websocket?: boolean;
  /** `max_message`: longest client WebSocket message in bytes; absent: DEFAULT_MAX_MESSAGE_BYTES. */
  maxMessage?: number;
  /** `idle_timeout`: a WebSocket with no message either way for this long is closed; absent: DEFAULT_WS_IDLE_MS. */
  idleTimeoutMs?: number;
  /** `max_sockets`: open WebSockets per session or key on this rule, edge-wide; absent: DEFAULT_MAX_SOCKETS. */
  maxSockets?: number;
  /** `step_up`: a second factor used within `max_age` (absent: at any time in the session); absent: none asked. */
  stepUp?: StepUpConfig;
}

/**
 * Second factors a `step_up` rule may name: an authenticator app's code
 * (`totp`) or a passkey (`webauthn`).
 */
export type FactorName = 'totp' | 'webauthn';

export interface StepUpConfig {
  /** `max_age`: the factor must have been used this recently, ms; null: once in the session is enough. */
  maxAgeMs: number | null;
  /** Any one of these satisfies the rule; empty when the rule asks only for a known device. */
  factors: FactorName[];
  /** `device: known`: the request must come from a device the user is known on (src/authorize/step-up.ts); absent: any device. */
  device?: 'known';
}

/**
 * A compiled `step_up` rule (src/authorize/step-up.ts checks it). `challenge`
 * is the whole `WWW-Authenticate` value of the RFC 9470 refusal, built once.
 */
export interface StepUpRule {
  /** Infinity when the rule has no `max_age`. */
  maxAgeMs: number;
  factors: readonly FactorName[];
  /** A TOTP code (or a recovery code) satisfies the rule. */
  totp: boolean;
  /** A passkey satisfies the rule. */
  webauthn: boolean;
  /** `device: known`: the session's device must be known and the request must carry its device cookie. */
  device: boolean;
  /** The `acr` value a satisfying session has (RFC 9470 `acr_values`). */
  acr: string;
  challenge: string;
}

/** Whose user directory a project signs users in with: its own, or its organization's (shared by the organization's projects). */
export type DirectoryScope = 'project' | 'organization';

export interface OrganizationConfig {
  id: string;
  name: string;
}

export interface ProjectConfig {
  id: string;
  /** Display name (defaults to the id). */
  name: string;
  /** Organization the project belongs to; absent: `default`. */
  organization?: string;
  /** Absent: `project`. */
  directory?: DirectoryScope;
  /** Lower-case host names without port or trailing dot. */
  hosts: string[];
  /** Warpgate pool that serves this project. */
  upstream: string;
  session: { absoluteMs: number; idleMs: number };
  /** Mode for paths no rule covers. */
  default: AuthMode;
  routes: RouteConfig[];
  /** `max_body`: default longest request body of the project's routes, in bytes; absent: `DEFAULT_MAX_BODY_BYTES`. */
  maxBody?: number;
  /** Hosted pages; absent when the YAML has no `login:` (then `defaultLoginConfig` applies at compile). */
  login?: LoginConfig;
}

/** Who may create an account on the hosted signup page. */
export type SignupMode = 'open' | 'invite' | 'disabled';

/**
 * Failed-login throttling for one kind of key (an account, or a client IP):
 * failures `1..delayAfter` cost nothing; each further failure makes the next
 * attempt wait 1 s, 2 s, 4 s, … (capped at `lockMs`); failure `lockAfter`
 * locks for `lockMs`. `windowMs` of quiet forgets the count.
 */
export interface ThrottleLimits {
  delayAfter: number;
  lockAfter: number;
  lockMs: number;
  windowMs: number;
}

export interface LoginConfig {
  signup: SignupMode;
  /** Origin (`https://app.example.com`, no path) for links in mail; null: `https://<first host>`. */
  publicUrl: string | null;
  branding: {
    /** Shown on the pages and in mail; null: the project's name. */
    name: string | null;
    /** `#rrggbb`. */
    color: string;
    /** http(s) URL of a logo image, or null. */
    logoUrl: string | null;
  };
  /** How long a password-reset or signup link stays usable. */
  resetTtlMs: number;
  throttle: { account: ThrottleLimits; ip: ThrottleLimits };
  /** `adaptive`: what risk signals demand at sign-in; absent: nothing extra. */
  adaptive?: AdaptiveConfig;
}

/**
 * `login: { adaptive: { new_device, new_network, failure_burst } }`: what
 * risk signals at a password sign-in demand (src/login/risk.ts). Each names
 * the second factor such a sign-in must use (`none`: no extra demand); a
 * user who lacks it uses the factors they have (src/login/flows/factor.ts).
 */
export interface AdaptiveConfig {
  /** A device (device cookie) the user has not signed in with before. */
  newDevice: NewDeviceDemand;
  /** A client network (IPv4 /24, IPv6 /48) none of the user's recent sign-ins came from. */
  newNetwork: NewDeviceDemand;
  /** At least `after` failed sign-ins on the account within `withinMs` since its last success; null: off. */
  failureBurst: FailureBurstConfig | null;
}
export interface FailureBurstConfig {
  after: number;
  withinMs: number;
  require: NewDeviceDemand;
}
export type NewDeviceDemand = 'totp' | 'webauthn' | 'none';

/** argon2id parameters and the hashing queue bound (edge-wide). */
export interface PasswordConfig {
  memoryBytes: number;
  iterations: number;
  /** Hashing tasks waiting per edge worker beyond the running ones; more → 503 with Retry-After. */
  queue: number;
}

/** A validated config: safe to compile. */
export interface ValidConfig {
  /** Present when the YAML has `organizations:`; the organization `default` always exists. */
  organizations?: OrganizationConfig[];
  projects: ProjectConfig[];
  /** Present when the YAML has `passwords:`; else `defaultPasswordConfig`. */
  passwords?: PasswordConfig;
  /** Present when the YAML has `trusted_proxies:` (IPs or CIDRs whose X-Forwarded-For is believed for the client IP of logins). */
  trustedProxies?: string[];
}

/** One problem found by validation, with where it is and how to fix it. */
export interface ConfigProblem {
  /** Location in the document, e.g. `projects[0].routes[2].path`. */
  at: string;
  message: string;
}

export type ValidationResult =
  | { ok: true; config: ValidConfig }
  | { ok: false; problems: ConfigProblem[] };

/**
 * Precompiled per-route policy: what the hot path evaluates. Frozen; one
 * object per rule so the verdict can point at the rule that decided it.
 */
export interface Policy {
  auth: AuthMode;
  allowUser: boolean;
  allowServiceAccount: boolean;
  /** null when no role is required. */
  roles: readonly string[] | null;
  /** null when no permission is required. */
  permissions: readonly string[] | null;
  /** Longest request body the rule accepts, in bytes (longer: 413 and the connection closed). */
  maxBody: number;
  /** `max_inflight` (edge-wide; each worker takes its share), 0 when the rule sets none. */
  maxInflight: number;
  /** WebSocket handshakes accepted. */
  websocket: boolean;
  /** Longest client WebSocket message, bytes (longer: close 1009). */
  maxMessage: number;
  /** A WebSocket idle for this long (no message either way) is closed (1001). */
  idleTimeoutMs: number;
  /** Open WebSockets per session or key on this rule, edge-wide (each worker takes its share, at least one). */
  maxSockets: number;
  /**
   * `step_up`, or null. The request path pays one field test for it on
   * routes without one (handler.ts), nothing more.
   */
  stepUp: StepUpRule | null;
  /** Human-readable origin of the rule, for logs: `demo:/api/v1/*` or `demo:default`. */
  rule: string;
}

export interface CompiledProject {
  id: string;
  name: string;
  /** Organization id (`default` when the config names none). */
  organization: string;
  /**
   * Id of the user directory the project's hosted login uses: the project id
   * (scope `project`, the default) or `org:<organization>` (scope `organization`).
   */
  directory: string;
  upstream: string;
  sessionAbsoluteMs: number;
  sessionIdleMs: number;
  /** Hosts of the project, as configured (lower-case, no port). */
  hosts: readonly string[];
  /** Hosted-page settings with defaults applied; frozen. */
  login: Readonly<LoginConfig> & { publicUrl: string; branding: Readonly<LoginConfig['branding']> & { name: string }; adaptive: Readonly<AdaptiveConfig> };
  /**
   * Most specific rule for a request's match key (`NormalizeResult.key`: the normalized path with ASCII
   * letters lower-cased and no trailing slash) and an upper-case method; never null (falls back to the default).
   */
  match(method: string, path: string): Policy;
}

export interface CompiledConfig {
  version: number;
  /** Every organization: the configured ones plus `default`. */
  organizations: ReadonlyMap<string, Readonly<OrganizationConfig>>;
  /** Lower-case host (no port, no trailing dot) → project. */
  hosts: ReadonlyMap<string, CompiledProject>;
  projects: ReadonlyMap<string, CompiledProject>;
  passwords: Readonly<PasswordConfig>;
  trustedProxies: readonly string[];
}
