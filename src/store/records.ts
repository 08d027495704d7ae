/** Record kinds kept in the store. Field order is fixed by these interfaces; every field is always present (null when empty). */
import type { PrincipalType } from '../contract/index.js';

export type UserStatus = 'active' | 'suspended' | 'deactivated';

export interface UserRecord {
  id: string;
  /** Directory the user belongs to (a project id for now; organizations come with the Console). */
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
  /** Cached assertion minted for this session (brief §2: per session, not per request). */
  assertion: string | null;
  assertionExp: number;
  assertionUserVersion: number;
  assertionKid: string | null;
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
  /** Cached assertion for this key, like a session's. */
  assertion: string | null;
  assertionExp: number;
  assertionUserVersion: number;
  assertionKid: string | null;
}

export interface SigningKeyRecord {
  kid: string;
  /** PKCS#8 PEM of the Ed25519 private key. The data directory is 0700. */
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
