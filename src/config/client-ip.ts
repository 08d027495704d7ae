/**
 * The client IP for throttling and login history: the socket's peer address,
 * unless that peer is a configured trusted proxy; then the right-most
 * X-Forwarded-For entry that is not itself a trusted proxy (entries to its
 * left are whatever the client wrote, so they are never believed).
 */
import { BlockList, isIP } from 'node:net';
import type { CompiledConfig } from './types.js';

const lists = new WeakMap<CompiledConfig, BlockList | null>();

function trustedOf(cfg: CompiledConfig): BlockList | null {
  let b = lists.get(cfg);
  if (b !== undefined) return b;
  b = null;
  if (cfg.trustedProxies.length > 0) {
    b = new BlockList();
    for (const e of cfg.trustedProxies) {
      const slash = e.indexOf('/');
      const addr = slash === -1 ? e : e.slice(0, slash);
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (slash === -1) b.addAddress(addr, type);
      else b.addSubnet(addr, Number(e.slice(slash + 1)), type);
    }
  }
  lists.set(cfg, b);
  return b;
}

/** uWS prints IPv4-mapped peers as `::ffff:a.b.c.d` on dual-stack sockets; compare them as IPv4. */
export function canonicalIp(ip: string): string {
  const t = ip.trim().toLowerCase();
  if (t.startsWith('::ffff:') && isIP(t.slice(7)) === 4) return t.slice(7);
  return t;
}

function isTrusted(list: BlockList, ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return false;
  return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
}

export function clientIp(cfg: CompiledConfig, socketIp: string, forwardedFor: string): string {
  const peer = canonicalIp(socketIp);
  const list = trustedOf(cfg);
  if (list === null || !isTrusted(list, peer) || forwardedFor === '') return peer;
  const hops = forwardedFor.split(',').map((h) => canonicalIp(h));
  for (let i = hops.length - 1; i >= 0; i--) {
    const h = hops[i]!;
    if (isIP(h) === 0) return peer; // garbage in the chain: believe nothing beyond the proxy
    if (!isTrusted(list, h)) return h;
  }
  return hops[0] !== undefined && isIP(hops[0]) !== 0 ? hops[0] : peer;
}
