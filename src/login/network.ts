/**
 * The client network of a sign-in, for `login.adaptive.new_network`: an IPv4
 * address's /24, an IPv6 address's /48, written as a prefix
 * (`203.0.113.0/24`, `2001:db8:1::/48`). A /24 is the smallest block an IPv4
 * provider routes on its own (RFC 7454 §6.1.3's filtering practice), and a
 * /48 the usual assignment to one IPv6 site (RFC 6177 §2 still lists it as
 * the common one): both follow a user across the addresses a home or office
 * line hands out, and change when the user is on another line. IPv4-mapped
 * IPv6 (`::ffff:a.b.c.d`, in either spelling) is the IPv4 address it carries:
 * a dual-stack socket reports IPv4 peers that way.
 */
import { isIP } from 'node:net';

/** The network prefix of an address, or null when it is not an IP address (then nothing is recorded or matched). */
export function networkOf(ip: string): string | null {
  let s = ip.trim().toLowerCase();
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  const family = isIP(s);
  if (family === 4) return v4Prefix(s);
  if (family !== 6) return null;
  const h = hextets(s);
  if (h === null) return null;
  // ::ffff:0:0/96, IPv4-mapped (RFC 4291 §2.5.5.2).
  if (h[0] === 0 && h[1] === 0 && h[2] === 0 && h[3] === 0 && h[4] === 0 && h[5] === 0xffff) {
    return `${h[6]! >> 8}.${h[6]! & 0xff}.${h[7]! >> 8}.0/24`;
  }
  return `${compress([h[0]!, h[1]!, h[2]!, 0, 0, 0, 0, 0])}/48`;
}

function v4Prefix(s: string): string {
  const parts = s.split('.');
  return `${Number(parts[0])}.${Number(parts[1])}.${Number(parts[2])}.0/24`;
}

/** The eight 16-bit groups of an address `isIP` accepted as IPv6 (an embedded dotted IPv4 tail included). */
function hextets(s: string): number[] | null {
  let tail: number[] = [];
  let body = s;
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.', lastColon)) {
    const v4 = s.slice(lastColon + 1).split('.').map(Number);
    tail = [(v4[0]! << 8) | v4[1]!, (v4[2]! << 8) | v4[3]!];
    body = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const dbl = body.indexOf('::');
  const groups = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  let out: number[];
  if (dbl === -1) out = groups(body);
  else {
    const left = groups(body.slice(0, dbl));
    const right = groups(body.slice(dbl + 2));
    out = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  }
  if (tail.length === 2) out.splice(out.length - 2, 2, ...tail);
  if (out.length !== 8 || out.some((g) => !Number.isInteger(g) || g < 0 || g > 0xffff)) return null;
  return out;
}

/** RFC 5952 §4.2 text of the groups: lower case, the longest run of two or more zero groups as `::`. */
function compress(h: number[]): string {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (h[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && h[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = h.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}
