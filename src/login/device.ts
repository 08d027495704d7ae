/**
 * The device cookie: a long-lived, signed, `HttpOnly` cookie that names a
 * browser (`<id>.<mac>`: 128 random bits, and an HMAC-SHA-256 under an edge
 * secret, truncated to 128 bits). It is set at the first sign-in of a browser
 * and kept across sessions and users, so a later sign-in tells a device the
 * user has signed in with before (store DeviceStore) from a new one:
 * `login.adaptive.new_device` and the new-device mail act on that, and
 * `step_up: { device: known }` requires a known one. It is a product cookie
 * (`mezu_` prefix): the edge strips it from every forwarded request like the
 * session cookie (wire PRODUCT_COOKIE_PREFIX).
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** 400 days: the longest Max-Age browsers keep (RFC 6265bis §5.6.2 caps it there). */
export const DEVICE_COOKIE_MAX_AGE_S = 400 * 86_400;
const ID_BYTES = 16;
const MAC_BYTES = 16;

export class DeviceCookies {
  constructor(private readonly secret: Buffer) {}

  /** A new device: its id and the cookie value. */
  make(): { id: string; value: string } {
    const id = randomBytes(ID_BYTES).toString('base64url');
    return { id, value: `${id}.${this.mac(id)}` };
  }

  /** The device id of a cookie value we signed, or '' (absent, malformed, forged). */
  open(value: string): string {
    if (value.length !== 45 || value.charCodeAt(22) !== 0x2e) return '';
    const id = value.slice(0, 22);
    const a = Buffer.from(value.slice(23));
    const b = Buffer.from(this.mac(id));
    return a.length === b.length && timingSafeEqual(a, b) ? id : '';
  }

  private mac(id: string): string {
    return createHmac('sha256', this.secret).update('mezu-device\u0000').update(id).digest().subarray(0, MAC_BYTES).toString('base64url');
  }
}
