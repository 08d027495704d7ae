/**
 * Devices a user has signed in with (src/login/device.ts), keyed
 * `userId NUL deviceId`: when first and last seen, from where. A sign-in
 * records its device in one transaction that also tells whether it was new
 * and whether the user had any other device (the new-device mail goes only to
 * users who had one: a first sign-in ever is not news).
 */
import type { DeviceRecord } from './records.js';
import { Table } from './table.js';

function key(userId: string, deviceId: string): string {
  return `${userId}\u0000${deviceId}`;
}

export class DeviceStore extends Table<DeviceRecord> {
  /** True when the user has signed in from this device before. */
  has(userId: string, deviceId: string): boolean {
    return deviceId !== '' && this.db.get(key(userId, deviceId)) !== undefined;
  }

  /** Records a sign-in (or a step-up) from the device; `isNew` when the user had not used it, `others` when the user has other devices. */
  async seen(userId: string, deviceId: string, now: number, ip: string, userAgent: string): Promise<{ isNew: boolean; others: boolean }> {
    return this.db.transaction(() => {
      const k = key(userId, deviceId);
      const cur = this.db.get(k);
      let others = false;
      for (const { key: other } of this.db.getRange({ start: `${userId}\u0000`, end: `${userId}\u0001`, limit: 2 })) {
        if (other !== k) {
          others = true;
          break;
        }
      }
      void this.db.put(k, { userId, deviceId, firstSeenAt: cur?.firstSeenAt ?? now, lastSeenAt: now, ip, userAgent: userAgent.slice(0, 256) });
      return { isNew: cur === undefined, others };
    });
  }

  /** The user's devices, oldest key first. */
  list(userId: string): DeviceRecord[] {
    const out: DeviceRecord[] = [];
    for (const { value } of this.db.getRange({ start: `${userId}\u0000`, end: `${userId}\u0001` })) out.push(value);
    return out;
  }

  /** Deletes devices not seen since `before` (a device cookie outlives 400 days in no browser). */
  async sweep(before: number): Promise<number> {
    return this.sweepWhere((d) => d.lastSeenAt < before);
  }
}
