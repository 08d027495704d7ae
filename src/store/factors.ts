/**
 * Second factors per user (records.ts FactorRecord): the TOTP secret (sealed
 * at rest, opened on read), the last accepted step, an enrolment in progress,
 * and the recovery-code hashes. Every change is one transaction that re-reads
 * the record, so two workers accepting the same code at once accept it once.
 */
import type { FactorRecord } from './records.js';
import { SealedTable } from './table.js';

export interface FactorSummary {
  totp: boolean;
  enrolledAt: number | null;
  lastUsedAt: number | null;
  pending: boolean;
  recoveryLeft: number;
}

export class FactorStore extends SealedTable<FactorRecord> {
  /** What an operator may see: never a secret or a hash. */
  summary(userId: string): FactorSummary {
    const r = this.db.get(userId);
    return {
      totp: r?.totp != null,
      enrolledAt: r?.totp?.enrolledAt ?? null,
      lastUsedAt: r?.totp?.lastUsedAt ?? null,
      pending: r?.pending != null,
      recoveryLeft: r?.recovery.length ?? 0,
    };
  }

  /** True when the user has a confirmed TOTP authenticator (read on every sign-in: no secret opened). */
  hasTotp(userId: string): boolean {
    return this.db.get(userId)?.totp != null;
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
      if (cur?.totp == null) return undefined;
      const i = cur.recovery.indexOf(hash);
      if (i === -1) return undefined;
      const recovery = cur.recovery.filter((_h, k) => k !== i);
      left = recovery.length;
      return { ...cur, recovery, updatedAt: now };
    });
    return left;
  }

  /** Removes every factor of the user (admin reset); true when there was one (confirmed or pending). */
  async reset(userId: string): Promise<boolean> {
    return this.db.transaction(() => {
      const cur = this.db.get(userId);
      if (cur === undefined) return false;
      void this.db.remove(userId);
      return cur.totp !== null || cur.pending !== null;
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
