/**
 * Store fixtures for the credential tests: authenticate.test.ts (who is
 * calling, src/session/authenticate.ts) and ../identity/assertions.test.ts
 * (the assertion minted for them, src/identity/assertions.ts). A real LMDB
 * store in a temporary directory, a signer with a key, and an injected clock.
 */
import type { ExecutionContext } from 'ava';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AssertionClaims } from '../../../wire/contract.js';
import { Assertions, Signer } from '../../../src/identity/index.js';
import { KeySet } from '../../../wire/index.js';
import { Authenticator, hashToken, newApiKey, newSessionToken } from '../../../src/session/index.js';
import { openStore, type ApiKeyRecord, type ServiceAccountRecord, type SessionRecord, type Store, type UserRecord } from '../../../src/store/index.js';

export const ISSUER = 'https://edge.test';
export const PROJECT = 'demo';
export const T0 = 1_700_000_000_000;
export const SEC = 1000;
export const MIN = 60 * SEC;
export const HOUR = 60 * MIN;
export const ABSOLUTE = 24 * HOUR;
export const IDLE = 30 * MIN;

export interface Env {
  store: Store;
  signer: Signer;
  clock: { t: number; now(): number };
  auth: Authenticator;
  assertions: Assertions;
}

export async function env(t: ExecutionContext): Promise<Env> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mezu-auth-'));
  const store = openStore(dir);
  t.teardown(async () => {
    await store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  await Signer.ensureKey(store.signingKeys);
  const signer = new Signer(store.signingKeys, ISSUER);
  signer.reload();
  const clock = {
    t: T0,
    now() {
      return this.t;
    },
  };
  return { store, signer, clock, auth: new Authenticator(store, clock), assertions: new Assertions(store, signer) };
}

let seq = 0;
export async function addUser(e: Env, over: Partial<UserRecord> = {}): Promise<UserRecord> {
  seq++;
  const u: UserRecord = {
    id: `usr_${seq}`,
    directory: PROJECT,
    email: `user${seq}@example.com`,
    name: `User ${seq}`,
    displayName: '',
    status: 'active',
    roles: ['viewer'],
    permissions: ['reports:read'],
    version: 1,
    createdAt: T0,
    updatedAt: T0,
    lastLoginAt: null,
    ...over,
  };
  await e.store.users.create(u);
  return u;
}

export async function addSession(e: Env, u: UserRecord, over: Partial<SessionRecord> = {}): Promise<{ token: string; th: string; rec: SessionRecord }> {
  const token = newSessionToken();
  const rec: SessionRecord = {
    id: `ses_${++seq}`,
    principalType: 'user',
    userId: u.id,
    projectId: PROJECT,
    createdAt: T0,
    lastSeenAt: T0,
    authTime: T0,
    amr: ['pwd'],
    assertion: null,
    assertionExp: 0,
    assertionUserVersion: 0,
    assertionKid: null,
    ...over,
  };
  await e.store.sessions.create(hashToken(token), rec);
  return { token, th: hashToken(token), rec };
}

export async function addServiceAccount(e: Env, over: Partial<ServiceAccountRecord> = {}): Promise<ServiceAccountRecord> {
  const sa: ServiceAccountRecord = {
    id: `sa_${++seq}`,
    projectId: PROJECT,
    name: 'ci-bot',
    status: 'active',
    roles: ['deployer'],
    permissions: ['deploy:write'],
    version: 1,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
  await e.store.serviceAccounts.create(sa);
  return sa;
}

export async function addKey(e: Env, sa: ServiceAccountRecord, over: Partial<ApiKeyRecord> = {}): Promise<{ text: string; id: string; secret: string }> {
  const k = newApiKey();
  await e.store.serviceAccounts.addKey({
    id: k.id,
    serviceAccountId: sa.id,
    projectId: sa.projectId,
    secretHash: hashToken(k.secret),
    createdAt: T0,
    expiresAt: null,
    revokedAt: null,
    lastUsedAt: null,
    assertion: null,
    assertionExp: 0,
    assertionUserVersion: 0,
    assertionKid: null,
    ...over,
  });
  return k;
}

export function claimsOf(t: ExecutionContext, e: Env, token: string): AssertionClaims {
  const v = new KeySet(e.signer.jwks()).verify(token);
  t.true(v.ok, 'assertion verifies with the published JWKS');
  if (!v.ok) throw new Error(v.reason);
  return v.claims;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Waits (up to ~3 s) for a fire-and-forget write-back to land. */
export async function until<T>(read: () => T, ok: (v: T) => boolean): Promise<T> {
  let v = read();
  for (let i = 0; i < 300 && !ok(v); i++) {
    await sleep(10);
    v = read();
  }
  return v;
}
