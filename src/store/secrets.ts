/**
 * The edge's own secrets, sealed at rest under the store key (seal.ts): the
 * assertion signing keys, and the named random secrets every worker shares
 * (the CSRF token keys).
 */
import { randomBytes } from 'node:crypto';
import type { Database } from '../../native/lmdb.js';
import type { SigningKeyRecord } from './records.js';
import type { StoreSealer } from './seal.js';
import { SealedTable } from './table.js';

/** Assertion signing keys; the private key is sealed at rest and opened on read. */
export class SigningKeyStore extends SealedTable<SigningKeyRecord> {
  /** Every key, oldest first. */
  all(): SigningKeyRecord[] {
    return this.values().sort((a, b) => a.createdAt - b.createdAt);
  }
  /** The newest key that is not retired. */
  active(): SigningKeyRecord | undefined {
    let best: SigningKeyRecord | undefined;
    for (const k of this.all()) if (k.retiredAt === null && (best === undefined || k.createdAt >= best.createdAt)) best = k;
    return best;
  }
  async add(rec: SigningKeyRecord, retireOthers: boolean): Promise<void> {
    const sealed: SigningKeyRecord = { ...rec, privateKeyPem: this.sealer.seal(rec.privateKeyPem) };
    await this.db.transaction(() => {
      if (retireOthers) {
        for (const { key, value } of this.db.getRange()) {
          if (value.retiredAt === null) void this.db.put(key, { ...value, retiredAt: this.clock.now() });
        }
      }
      void this.db.put(rec.kid, sealed);
    });
  }
  async remove(kid: string): Promise<void> {
    await this.db.remove(kid);
  }
  protected override opened(v: SigningKeyRecord): SigningKeyRecord {
    return { ...v, privateKeyPem: this.sealer.open(v.privateKeyPem, `signing key ${v.kid}`) };
  }
}

/** Edge-wide random secrets (the CSRF token keys), created once, shared by every worker, sealed at rest. */
export class SecretStore {
  constructor(
    private readonly db: Database<string, string>,
    private readonly sealer: StoreSealer,
  ) {}
  /** The secret named `name` (32 random bytes, base64url), created on first use; every process gets the same one. */
  async getOrCreate(name: string): Promise<Buffer> {
    const existing = this.db.get(name);
    if (existing !== undefined) return Buffer.from(this.sealer.open(existing, `secret ${name}`), 'base64url');
    const sealed = this.sealer.seal(randomBytes(32).toString('base64url'));
    const v = await this.db.transaction(() => {
      const cur = this.db.get(name);
      if (cur !== undefined) return cur;
      void this.db.put(name, sealed);
      return sealed;
    });
    return Buffer.from(this.sealer.open(v, `secret ${name}`), 'base64url');
  }
}
