/** The applied config: the current version and every version before it. */
import type { Database } from '../../native/lmdb.js';
import type { Clock } from '../runtime/index.js';
import { MezuError } from '../errors/index.js';
import type { StoredConfig } from './records.js';

export class ConfigStore {
  constructor(
    private readonly db: Database<StoredConfig | number, string>,
    private readonly clock: Clock,
  ) {}
  /** Current applied config, or undefined when none was applied. */
  current(): StoredConfig | undefined {
    return this.db.get('current') as StoredConfig | undefined;
  }
  currentVersion(): number {
    const c = this.db.get('current') as StoredConfig | undefined;
    return c === undefined ? 0 : c.version;
  }
  /**
   * Stores a validated config as the next version. `expectedVersion` guards
   * against a lost update when two operators apply at once: the write fails
   * with MEZU_CONFIG_STALE if someone applied in between.
   */
  async apply(source: string, config: unknown, expectedVersion: number | null): Promise<number> {
    let next = 0;
    const ok = await this.db.transaction(() => {
      const cur = this.db.get('current') as StoredConfig | undefined;
      const curVersion = cur === undefined ? 0 : cur.version;
      if (expectedVersion !== null && expectedVersion !== curVersion) return false;
      next = curVersion + 1;
      const rec: StoredConfig = { version: next, appliedAt: this.clock.now(), source, config };
      void this.db.put('current', rec);
      void this.db.put(`history:${String(next).padStart(10, '0')}`, rec);
      return true;
    });
    if (!ok) throw new MezuError('MEZU_CONFIG_STALE');
    return next;
  }
}
