/**
 * `trusted_proxies`: the peers whose `X-Forwarded-For` is believed when the
 * hosted pages take a client's IP (src/config/client-ip.ts).
 */
import { isIP, BlockList } from 'node:net';
import { describe, validateList, type Problems } from './fields.js';

/** IPv4/IPv6 addresses or CIDR blocks (`10.0.0.0/8`, `::1`). */
export function validateTrustedProxies(v: unknown, at: string, problems: Problems): string[] | null {
  return validateList<string>(v, at, problems, { what: 'must be a list of IP addresses or CIDR blocks, e.g. [10.0.0.0/8]' }, (item, itemAt) => {
    if (typeof item !== 'string' || !isAddressOrCidr(item)) {
      problems.push({ at: itemAt, message: `must be an IP address or CIDR block such as 10.0.0.0/8 or ::1; got ${describe(item)}` });
      return null;
    }
    return item;
  });
}

function isAddressOrCidr(s: string): boolean {
  const slash = s.indexOf('/');
  const addr = slash === -1 ? s : s.slice(0, slash);
  const family = isIP(addr);
  if (family === 0) return false;
  if (slash === -1) return true;
  const bits = s.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bits) || Number(bits) > (family === 4 ? 32 : 128)) return false;
  try {
    new BlockList().addSubnet(addr, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
    return true;
  } catch {
    return false;
  }
}
