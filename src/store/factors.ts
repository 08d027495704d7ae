/**
 * Second factors per user (records.ts FactorRecord): the TOTP secret (sealed
 * at rest, opened on read), the last accepted step, an enrolment in progress,
 * the recovery-code hashes, and the passkeys. Every change is one transaction
 * that re-reads the record, so two workers accepting the same code at once
 * accept it once. A second database maps each passkey's credential id to its
 * user, so no credential is registered to two users (W3C WebAuthn Level 2
 * §7.1 step 22).
 */
import type { Database } from '../../native/lmdb.js';
import type { Clock } from '../runtime/index.js';
import type { FactorRecord, PasskeyRecord } from './records.js';
import type { StoreSealer } from './seal.js';
import { SealedTable } from './table.js';

export interface FactorSummary {
  totp: boolean;
  enrolledAt: number | null;
  lastUsedAt: number | null;
  pending: boolean;
  recoveryLeft: number;
  /** The passkeys, without their public keys. */
  passkeys: Array<{ id: string; createdAt: number; lastUsedAt: number | null; backedUp: boolean; rpId: string }>;
}

/** The outcome of a passkey's use: accepted, unknown to this user, or a signature counter that did not move forward. */
export type PasskeyUse = 'ok' | 'unknown' | 'counter';

export class FactorStore extends SealedTable<FactorRecord> {
  constructor(
    db: Database<FactorRecord, string>,
    /** Credential id → user id. */
    private readonly passkeyIds: Database<string, string>,
    sealer: StoreSealer,
    clock: Clock,
  ) {
    super(db, sealer, clock);
  }

  /** What an operator may see: never a secret or a hash. */
  summary(userId: string): FactorSummary {
    const r = this.db.get(userId);
    return {
      totp: r?.totp != null,
      enrolledAt: r?.totp?.enrolledAt ?? null,
      lastUsedAt: r?.totp?.lastUsedAt ?? null,
      pending: r?.pending != null,
      recoveryLeft: r?.recovery.length ?? 0,
      passkeys: (r?.passkeys ?? []).map((k) => ({ id: k.id, createdAt: k.createdAt, lastUsedAt: k.lastUsedAt, backedUp: k.backedUp, rpId: k.rpId })),
    };
  }

  /** True when the user has a confirmed TOTP authenticator (read on every sign-in: no secret opened). */
  hasTotp(userId: string): boolean {
    return this.db.get(userId)?.totp != null;
  }

  /** True when the user has any second factor (an authenticator app or a passkey): a password sign-in then asks for one. */
  hasSecondFactor(userId: string): boolean {
    const r = this.db.get(userId);
    return r !== undefined && (r.totp !== null || (r.passkeys?.length ?? 0) > 0);
  }

  /** The user's passkeys (public data only). */
  passkeys(userId: string): PasskeyRecord[] {
    return this.db.get(userId)?.passkeys ?? [];
  }

  /** The user a credential id belongs to, or undefined. */
  passkeyOwner(credentialId: string): string | undefined {
    return this.passkeyIds.get(credentialId);
  }

  /**
   * Adds a passkey verified by the caller. `recovery` (hashes) becomes the
   * user's recovery codes when the user has none yet (a first factor that is
   * a passkey); otherwise the existing codes stay. `taken` when the credential
   * id is already registered (to anyone).
   */
  async addPasskey(userId: string, pk: PasskeyRecord, recovery: string[], now: number): Promise<'ok' | 'taken'> {
    return this.db.transaction(() => {
      if (this.passkeyIds.get(pk.id) !== undefined) return 'taken';
      const cur = this.db.get(userId);
      const base: FactorRecord = cur ?? { userId, totp: null, pending: null, recovery: [], updatedAt: now };
      const next: FactorRecord = { ...base, recovery: base.recovery.length === 0 ? recovery : base.recovery, passkeys: [...(base.passkeys ?? []), pk], updatedAt: now };
      void this.db.put(userId, next);
      void this.passkeyIds.put(pk.id, userId);
      return 'ok';
    });
  }

  /**
   * Records a verified use of passkey `credentialId` with the authenticator's
   * signature counter. W3C WebAuthn Level 2 §7.2 step 21: when either counter
   * is non-zero the new one must be greater than the stored one, else the
   * authenticator may have been cloned; checked again here, in the write
   * transaction, so two workers verifying the same assertion accept it once.
   */
  async usePasskey(userId: string, credentialId: string, counter: number, now: number): Promise<PasskeyUse> {
    let out: PasskeyUse = 'unknown';
    await this.change(userId, (cur) => {
      // Set afresh on every run (a replicated write that loses a race runs this again; see useRecovery).
      out = 'unknown';
      const list = cur?.passkeys;
      if (cur === undefined || list === undefined) return undefined;
      const i = list.findIndex((k) => k.id === credentialId);
      if (i === -1) return undefined;
      const k = list[i]!;
      if ((counter !== 0 || k.counter !== 0) && counter <= k.counter) {
        out = 'counter';
        return undefined;
      }
      out = 'ok';
      const passkeys = list.map((x, n) => (n === i ? { ...x, counter, lastUsedAt: now } : x));
      return { ...cur, passkeys, updatedAt: now };
    });
    return out;
  }

  /** Starts (or restarts) an enrolment with `secret`; refused (false) while a confirmed authenticator exists. */
  async begin(userId: string, secret: string, now: number): Promise<boolean> {
    const next = await this.change(userId, (cur) => {
      if (cur?.totp != null) return undefined;
      return { userId, totp: null, pending: { secret: this.sealer.seal(secret), createdAt: now }, recovery: [], updatedAt: now };
    });
    return next !== undefined;
  }

  /**
   * Confirms the pending enrolment if its secret is still `secret` (another
   * tab may have restarted it): the authenticator becomes active with `step`
   * already used, and the recovery codes are replaced by `recovery` (hashes).
   */
  async confirm(userId: string, secret: string, step: number, recovery: string[], now: number): Promise<boolean> {
    const next = await this.change(userId, (cur) => {
      if (cur === undefined || cur.totp !== null || cur.pending === null) return undefined;
      if (this.sealer.open(cur.pending.secret, `pending TOTP secret of ${userId}`) !== secret) return undefined;
      return { userId, totp: { secret: cur.pending.secret, enrolledAt: now, lastStep: step, lastUsedAt: now }, pending: null, recovery, updatedAt: now };
    });
    return next !== undefined;
  }

  /** Records `step` as used if it is later than the last one (replay refusal across workers); false when it is not. */
  async useStep(userId: string, step: number, now: number): Promise<boolean> {
    const next = await this.change(userId, (cur) => {
      if (cur?.totp == null || step <= cur.totp.lastStep) return undefined;
      return { ...cur, totp: { ...cur.totp, lastStep: step, lastUsedAt: now }, updatedAt: now };
    });
    return next !== undefined;
  }

  /** Takes the recovery code whose hash is `hash`; returns how many are left, or -1 when it is not there (unknown or used). */
  async useRecovery(userId: string, hash: string, now: number): Promise<number> {
    let left = -1;
    await this.change(userId, (cur) => {
      // Set afresh on every run: a replicated write that loses a race runs this callback again, and a
      // code another node took meanwhile must read as used, not as the count of the first run.
      left = -1;
      // Recovery codes stand in for any second factor: an authenticator app or passkeys.
      if (cur === undefined || (cur.totp === null && (cur.passkeys?.length ?? 0) === 0)) return undefined;
      const i = cur.recovery.indexOf(hash);
      if (i === -1) return undefined;
      const recovery = cur.recovery.filter((_h, k) => k !== i);
      left = recovery.length;
      return { ...cur, recovery, updatedAt: now };
    });
    return left;
  }

  /** Removes every factor of the user (admin reset): TOTP, passkeys, recovery codes; true when there was one (confirmed or pending). */
  async reset(userId: string): Promise<boolean> {
    return this.db.transaction(() => {
      const cur = this.db.get(userId);
      if (cur === undefined) return false;
      void this.db.remove(userId);
      for (const k of cur.passkeys ?? []) void this.passkeyIds.remove(k.id);
      return cur.totp !== null || cur.pending !== null || (cur.passkeys?.length ?? 0) > 0;
    });
  }

  protected override opened(v: FactorRecord): FactorRecord {
    return {
      ...v,
      totp: v.totp === null ? null : { ...v.totp, secret: this.sealer.open(v.totp.secret, `TOTP secret of ${v.userId}`) },
      pending: v.pending === null ? null : { ...v.pending, secret: this.sealer.open(v.pending.secret, `pending TOTP secret of ${v.userId}`) },
    };
  }
}
