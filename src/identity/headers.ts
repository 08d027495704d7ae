/** Header plan for forwarded requests. */
import { isReservedHeader } from '../../wire/index.js';

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) and those HTTP/2 forbids (RFC 9113
 * §8.2.2): never forwarded over the tunnel. `host` becomes `:authority`.
 */
const DROP = new Set([
  'connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'te', 'trailer',
  'proxy-authorization', 'proxy-authenticate', 'host', 'http2-settings',
  // uWS already answered `100 Continue` to the client; the tunnel carries the body as it comes.
  'expect',
]);

/**
 * Copies the client's headers into `out` as [name, value] pairs, dropping
 * every reserved `x-mezu-*` spelling, hop-by-hop headers and any header the
 * client listed in `Connection` (so a client can never make the edge drop a
 * header it adds itself, and never smuggle one past it).
 * `names` arrive lower-cased from uWS.
 */
export function copyForwardableHeaders(names: string[], values: string[], out: string[]): void {
  let connectionListed: Set<string> | null = null;
  for (let i = 0; i < names.length; i++) {
    if (names[i] === 'connection') {
      for (const tok of values[i]!.split(',')) {
        const t = tok.trim().toLowerCase();
        if (t !== '') (connectionListed ??= new Set()).add(t);
      }
    }
  }
  for (let i = 0; i < names.length; i++) {
    const n = names[i]!;
    if (DROP.has(n) || isReservedHeader(n)) continue;
    if (connectionListed !== null && connectionListed.has(n)) continue;
    out.push(n, values[i]!);
  }
}

/** Removes every reserved spelling from a Node-style header object in place; returns how many were removed. */
export function stripReserved(headers: Record<string, unknown>): number {
  let n = 0;
  for (const k of Object.keys(headers)) {
    if (isReservedHeader(k)) {
      delete headers[k];
      n++;
    }
  }
  return n;
}
