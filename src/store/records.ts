/** Record kinds kept in the store. Field order is fixed by these interfaces; every field is always present (null when empty). */
import type { PrincipalType } from '../../wire/index.js';

export type UserStatus = 'active' | 'suspended' | 'deactivated';

export interface UserRecord {
  id: string;
  /**
   * Directory the user belongs to: a project id (project-scoped directory),
   * `org:<organization>` (organization-scoped), or `_console` (Console operators).
   */
  directory: string;
  email: string;
  name: string;
  displayName: string;
  status: UserStatus;
  roles: string[];
  permissions: string[];
  /** Incremented on every change; a session's cached assertion is re-minted when it moves. */
  version: number;
  createdAt: number;
  updatedAt: number;
  lastLoginAt: number | null;
}

export interface SessionRecord {
  /** Public session id (the `sid` claim); never the token. */
  id: string;
  principalType: PrincipalType;
  userId: string;
  projectId: string;
  createdAt: number;
  lastSeenAt: number;
  authTime: number;
  amr: string[];
  /**
   * When each factor was last used in this session (ms): `pwd` at sign-in
   * with a password, `otp` (authenticator app or recovery code) and `hwk` (a
   * passkey) at sign-in with that factor and at every step-up with it. Absent
   * on sessions written before factors existed (read as password only).
   */
  factorTimes?: { pwd?: number; otp?: number; hwk?: number };
  /** Authentication context class (`pwd`, `mfa`: src/authorize/step-up.ts); absent: `pwd`. */
  acr?: string;
  /** The id in the device cookie of the browser that signed in (src/login/device.ts); absent: none recorded. */
  deviceId?: string;
  /**
   * The device was known for this user (signed in from before, or a second
   * factor used on it in this session): `step_up: { device: known }`.
   */
  deviceKnown?: boolean;
  /** Cached assertion minted for this session (per session, not per request: docs/ARCHITECTURE.md, "Assertion"). */
  assertion: string | null;
  assertionExp: number;
  assertionUserVersion: number;
  assertionKid: string | null;
  /**
   * The issuer it was minted under. Nodes of a replicated cluster may run with different issuers,
   * and a Warpgate checks `iss` against the node whose tunnel carried the request: a node reuses
   * only an assertion of its own issuer (absent on records cached before it was kept: one issuer).
   */
  assertionIss?: string;
}

export type ServiceAccountStatus = 'active' | 'disabled';

export interface ServiceAccountRecord {
  id: string;
  projectId: string;
  name: string;
  status: ServiceAccountStatus;
  roles: string[];
  permissions: string[];
  version: number;
  createdAt: number;
  updatedAt: number;
}

export interface ApiKeyRecord {
  /** Visible id, part of the key text `mzk_<id>_<secret>`. */
  id: string;
  serviceAccountId: string;
  projectId: string;
  /** SHA-256 of the secret, base64url. The secret itself is shown once and never stored. */
  secretHash: string;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
  lastUsedAt: number | null;
  /** The key this one replaced by rotation (absent on keys written before rotation existed). */
  rotatedFrom?: string | null;
  /** The key that replaced this one by rotation; this one then expires at the end of the overlap. */
  replacedBy?: string | null;
  /** Who created it (`console_user:usr_…`, `service_account:sa_…`, `cli:<os user>`); absent on older keys. */
  createdBy?: string | null;
  /** Cached assertion for this key, like a session's. */
  assertion: string | null;
  assertionExp: number;
  assertionUserVersion: number;
  assertionKid: string | null;
  /** The issuer it was minted under, like a session's. */
  assertionIss?: string;
}

export interface SigningKeyRecord {
  kid: string;
  /** PKCS#8 PEM of the Ed25519 private key: sealed at rest under the store key, opened by the store on read (seal.ts). */
  privateKeyPem: string;
  /** base64url of the raw 32-byte public key (JWK `x`). */
  publicX: string;
  createdAt: number;
  /** When set, the key no longer signs but stays published until retiredAt + overlap. */
  retiredAt: number | null;
}

export interface StoredConfig {
  version: number;
  appliedAt: number;
  /** The YAML text as applied. */
  source: string;
  /** The validated config (plain data). */
  config: unknown;
}

/** A user's password (hosted login). Kept apart from the user record so reading a user never reads a hash. */
export interface CredentialRecord {
  userId: string;
  /** Encoded argon2id string (`$argon2id$v=19$m=…,t=…,p=1$salt$hash`): carries its own parameters. */
  hash: string;
  createdAt: number;
  updatedAt: number;
}

export type LoginEventType =
  | 'login_success'
  | 'login_failure'
  | 'logout'
  | 'signup_requested'
  | 'signup_completed'
  | 'reset_requested'
  | 'password_reset'
  | 'password_changed'
  | 'lock'
  // Second factors (src/login/flows/factor.ts); `reason` says `totp` or `recovery_code` on a use, why on a failure.
  | 'mfa_enrolled'
  | 'mfa_success'
  | 'mfa_failure'
  | 'step_up'
  | 'mfa_reset'
  // A sign-in from a device (device cookie) the user had not signed in with before; `reason` says whether it was mailed.
  | 'new_device'
  // A risk signal at a password sign-in that demands a second factor (src/login/risk.ts); `reason` names the signal.
  | 'risk';

/** One authentication event, kept per (directory, email) so attempts on unknown emails are visible too. */
export interface LoginEventRecord {
  at: number;
  type: LoginEventType;
  /** Why, for failures and locks (`bad_password`, `unknown_user`, `suspended`, `throttled`, `account_lock`, …); null otherwise. */
  reason: string | null;
  /** null when no user has this email. */
  userId: string | null;
  directory: string;
  email: string;
  ip: string;
  userAgent: string;
}

/**
 * `mfa`: a sign-in waiting for its second factor (kept in a cookie, never
 * mailed; 5 minutes). `webauthn`: a passkey challenge already answered, kept
 * until it would have expired so it is answered once (src/login/factors/webauthn.ts).
 */
export type EmailTokenPurpose = 'reset' | 'signup' | 'mfa' | 'webauthn';

/** A single-use emailed token (password reset or signup confirmation), keyed by SHA-256 of the token. */
export interface EmailTokenRecord {
  purpose: EmailTokenPurpose;
  projectId: string;
  directory: string;
  email: string;
  /** The user it resets; null for a signup of an email with no user yet. */
  userId: string | null;
  /** Relative path to return to after a signup (already validated). */
  rd: string;
  createdAt: number;
  expiresAt: number;
  /** `mfa` only: the one factor this sign-in must use (login.adaptive, src/login/risk.ts); absent: any. */
  factor?: 'totp' | 'webauthn';
  /** `mfa` only: the risk signals that named `factor` (`new_device`, `new_network`, `failure_burst`); absent: none. */
  risk?: string[];
}

/** A device (browser) a user has signed in with: src/login/device.ts, store/devices.ts. */
export interface DeviceRecord {
  userId: string;
  /** The id in the device cookie (128 random bits, base64url). */
  deviceId: string;
  firstSeenAt: number;
  lastSeenAt: number;
  /** Client IP and User-Agent at the last sign-in from it (shown in the new-device mail). */
  ip: string;
  userAgent: string;
}

/** The client networks a user has signed in from: store/networks.ts (prefixes only, never addresses). */
export interface NetworkRecord {
  userId: string;
  /** Least recently used first; at most NETWORKS_KEPT. */
  networks: Array<{ prefix: string; firstSeenAt: number; lastSeenAt: number }>;
}

/** Failed-login counter for one key (an account or a client IP). */
export interface ThrottleRecord {
  failures: number;
  firstAt: number;
  lastAt: number;
  /** No attempt is checked before this time (growing delay or lock); 0 when free. */
  blockedUntil: number;
  /** True once `blockedUntil` came from a lock (not a delay). */
  locked: boolean;
}

/** A mail kept by the development outbox (the default mailer). */
export interface OutboxRecord {
  id: string;
  at: number;
  projectId: string;
  to: string;
  subject: string;
  /** The mail's body, with its live links: sealed at rest under the store key (seal.ts). */
  text: string;
}

/** Who made a change: a Console user, a service-account key, or the CLI on the edge host. */
export interface AuditActor {
  /** `user`: a user acting on their own account on the hosted pages (second-factor enrolment and use). */
  type: 'console_user' | 'service_account' | 'cli' | 'system' | 'user';
  /** User id, service-account id, or the OS user of the CLI. */
  id: string;
  /** Email, service-account name (with the key id), or the OS user. */
  name: string;
}

/** One change, kept for audit: who, what, when, on which object. Never updated or deleted by the API. */
export interface AuditRecord {
  id: string;
  at: number;
  actor: AuditActor;
  /** `<object>.<verb>`: `user.create`, `user.suspend`, `key.revoke`, `routes.update`, … */
  action: string;
  target: { type: string; id: string };
  /** The project the object belongs to, or null for organization-wide and Console objects. */
  projectId: string | null;
  /** What changed (never a secret: key texts and passwords are never recorded). */
  details: Record<string, unknown>;
  /** Client IP of the API call, '' for the CLI. */
  ip: string;
}

/** A project's tunnel CA: signs the client certificates of the Warpgates enrolled for it. */
export interface TunnelCaRecord {
  projectId: string;
  /** PEM certificate, and PKCS#8 key: sealed at rest under the store key, opened only by `TunnelCaStore.get` (seal.ts). */
  cert: string;
  key: string;
  /** SHA-256 fingerprint as node prints it (`AB:CD:…`), to match a peer chain's issuer. */
  fingerprint256: string;
  createdAt: number;
}

/** An enrolled Warpgate (one agent process), as its last enrollment or renewal described it. */
export interface WarpgateRecord {
  /** The agent's id; also the id it sends in the tunnel hello. */
  id: string;
  projectId: string;
  pool: string;
  serviceAccountId: string;
  keyId: string;
  hostname: string;
  version: string;
  enrolledAt: number;
  renewedAt: number;
  certSerial: string;
  certExpiresAt: number;
  /** Set when its key was revoked or expired (tunnels closed, renewals refused). */
  refusedAt: number | null;
}

/**
 * An edge node of a replicated cluster as it last advertised itself
 * (src/cluster/advertise.ts), keyed by its `--node` id: where Warpgates dial
 * its tunnel listener. Enrollment hands the fresh ones to Warpgates
 * (src/enroll/service.ts), so each holds tunnels to every node.
 */
export interface NodeRecord {
  node: string;
  /** `host:port` of its tunnel listener as Warpgates reach it (`edge --tunnel-advertise`). */
  endpoint: string;
  /** The instance of the node's primary that wrote it (random per start). */
  edgeId: string;
  /** When the node last refreshed it, by the node's clock (ms). */
  updatedAt: number;
}

/** One live tunnel as an edge worker sees it. */
export interface TunnelInfo {
  warpgateId: string;
  version: string;
  pool: string;
  /** API key id from the client certificate; null for a statically provisioned certificate. */
  keyId: string | null;
  since: number;
}

/** Continuous authorization in one edge worker (src/authorize/live.ts): what is open, and what it ended since the worker started. */
export interface LiveStats {
  /** Open WebSockets and streamed responses. */
  open: number;
  websockets: number;
  /** Streams ended since start, by reason ('session ended', 'route denied', 'idle', …). */
  ended: Record<string, number>;
}

/** What one edge worker reports about its tunnels and open streams (rewritten on change and every few seconds). */
export interface TunnelStatusRecord {
  edgeId: string;
  worker: number;
  pid: number;
  updatedAt: number;
  tunnels: TunnelInfo[];
  /** Absent in reports of an edge that predates WebSockets. */
  live?: LiveStats;
}

/**
 * One edge's traffic over the last hour, for the Console (src/store/traffic.ts),
 * keyed by `edgeId`; written by the edge primary every `everyMs`.
 */
export interface TrafficRecord {
  edgeId: string;
  updatedAt: number;
  everyMs: number;
  projects: Record<string, ProjectTraffic>;
}

export interface ProjectTraffic {
  /** Requests per second over the edge's last interval (`everyMs`). */
  rps: number;
  /** Minutes with traffic in the last hour, oldest first; at most 60. */
  minutes: TrafficMinute[];
}

/** One project's figures for one minute on one edge (every worker added up). */
export interface TrafficMinute {
  /** Start of the minute, ms since the epoch (a multiple of 60 000). */
  at: number;
  requests: number;
  errors5xx: number;
  /** Requests per bucket of the edge's time per request (the metrics' DURATION_BUCKETS, then +Inf), not cumulated. */
  duration: number[];
  durationSumMs: number;
  /** Refusals by reason code (login required, forbidden, step-up, limits). */
  denials: Record<string, number>;
  loginSuccess: number;
  loginFailure: number;
}

/**
 * A user's second factors (hosted pages, src/login/factors/), keyed by user
 * id; kept apart from the user record like the password. The TOTP secrets
 * are sealed at rest under the store key (seal.ts); recovery codes are kept
 * only as hashes (src/login/factors/recovery.ts).
 */
export interface FactorRecord {
  userId: string;
  /** The confirmed authenticator, or null. */
  totp: {
    secret: string;
    enrolledAt: number;
    /** The last TOTP step accepted for this user (RFC 6238 §5.2: a used code is refused); -1 before the first. */
    lastStep: number;
    lastUsedAt: number | null;
  } | null;
  /** An enrolment begun on the security page but not confirmed with a code yet. */
  pending: { secret: string; createdAt: number } | null;
  /** Hashes of the unused recovery codes. */
  recovery: string[];
  /** Passkeys (WebAuthn credentials); absent on records written before passkeys existed (read as none). */
  passkeys?: PasskeyRecord[];
  updatedAt: number;
}

/**
 * One WebAuthn credential of a user (src/login/factors/webauthn.ts). Nothing
 * here is secret: the private key never leaves the authenticator; the public
 * key verifies its signatures (W3C WebAuthn Level 2 §6.4 credential record).
 */
export interface PasskeyRecord {
  /** The credential id (L2 §4 "Credential ID"), base64url; unique across the store (an index, FactorStore). */
  id: string;
  /** The credential public key, COSE_Key (RFC 9052 §7) bytes as base64url. */
  publicKey: string;
  /** The last signature counter seen (L2 §6.1.1); 0 from authenticators that keep none. */
  counter: number;
  /** Transports the authenticator reported (`internal`, `usb`, `hybrid`, …), passed back as a hint in allowCredentials. */
  transports: string[];
  /** The RP id it was made for: a passkey works on that host name only (L2 §5.1.3, §7.2 step 13). */
  rpId: string;
  /** Backed up / synced to other devices (L2 §6.1 BS flag). */
  backedUp: boolean;
  createdAt: number;
  lastUsedAt: number | null;
}
