/**
 * Request ids: a random per-process prefix and a counter. Unique across the
 * cluster without a random draw per request (a randomBytes call costs ~1 µs;
 * this costs a string concat).
 */
import { randomBytes } from 'node:crypto';

const prefix = randomBytes(6).toString('base64url');
let counter = 0;

export function nextRequestId(): string {
  counter = (counter + 1) % 0x100000000;
  return prefix + counter.toString(36);
}
