/**
 * The only importer of uWebSockets.js.
 *
 * We pin `@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0`: the only uWS
 * build on the npm registry whose Linux binary loads on glibc 2.36.
 * That package silently falls back to a pure-JS server when the binary fails
 * to load (or when UWS_USE_FALLBACK is set); the fallback is an order of
 * magnitude slower and does not share the port with SO_REUSEPORT, so the edge
 * refuses to start on it: `loadUws()` throws MEZU_NATIVE_UWS.
 *
 * Lifetimes (from uWS's own docs): an HttpRequest is stack-allocated and dies
 * when the handler returns (copy what you need before any await); an
 * HttpResponse is valid until onAborted fires or end/tryEnd succeeds; onData's
 * ArrayBuffer is neutered when the callback returns (copy it unless it is the
 * last chunk and consumed synchronously).
 */
import type * as UwsTypes from 'uWebSockets.js';

export type HttpRequest = UwsTypes.HttpRequest;
export type HttpResponse = UwsTypes.HttpResponse;
export type TemplatedApp = UwsTypes.TemplatedApp;
export type ListenSocket = UwsTypes.us_listen_socket;
export type WebSocket<U> = UwsTypes.WebSocket<U>;
export type WebSocketBehavior<U> = UwsTypes.WebSocketBehavior<U>;
/** What a WebSocket upgrade handler passes on to `res.upgrade`. */
export type UpgradeContext = UwsTypes.us_socket_context_t;

export interface Uws {
  App: typeof UwsTypes.App;
  SSLApp: typeof UwsTypes.SSLApp;
  us_listen_socket_close: typeof UwsTypes.us_listen_socket_close;
  us_socket_local_port: typeof UwsTypes.us_socket_local_port;
  /** permessage-deflate off (WebSocketBehavior.compression). */
  DISABLED: typeof UwsTypes.DISABLED;
}

let loaded: Uws | null = null;

export class NativeLoadError extends Error {
  readonly code = 'MEZU_NATIVE_UWS';
}

/** Loads uWS and verifies that the native binary, not the JS fallback, is in use. */
export function loadUws(): Uws {
  if (loaded !== null) return loaded;
  if (process.env.UWS_USE_FALLBACK !== undefined && process.env.UWS_USE_FALLBACK !== '') {
    throw new NativeLoadError('native: UWS_USE_FALLBACK is set; the edge runs only on the native uWebSockets.js binary. Unset it.');
  }
  // The package prints a warning and returns its fallback when the binary fails to load.
  const origWarn = console.warn;
  let warned = '';
  console.warn = (...args: unknown[]) => { warned += args.join(' ') + '\n'; };
  let mod: Uws;
  try {
    mod = require('uWebSockets.js') as Uws;
  } finally {
    console.warn = origWarn;
  }
  if (!isNativeUws(mod)) {
    throw new NativeLoadError(
      `native: uWebSockets.js loaded its pure-JS fallback, not the native binary for ` +
        `${process.platform}-${process.arch} ABI ${process.versions.modules} (Node ${process.version}). ` +
        `The edge needs Node.js 20 on x64/arm64 Linux with glibc ≥ 2.36. ${warned.trim()}`.trim(),
    );
  }
  // No `uWebSockets: 20` header on every response: it tells the world which server runs here and
  // costs a header write per response (the edge answers for the application, whose own such header
  // the edge drops too).
  (mod as unknown as { _cfg(k: string): void })._cfg('silent');
  loaded = mod;
  return mod;
}

/** The native addon's functions are native code; the fallback's are JavaScript. */
export function isNativeUws(mod: unknown): boolean {
  if (mod === null || typeof mod !== 'object') return false;
  const app = (mod as { App?: unknown }).App;
  return typeof app === 'function' && /\[native code\]/.test(Function.prototype.toString.call(app));
}

/** Text decoder for uWS's ArrayBuffer results. */
const decoder = new TextDecoder();
export function bufferToText(ab: ArrayBuffer): string {
  return decoder.decode(ab);
}

/** Texts of the IPv4 peers seen (as 32-bit numbers); bounded, cleared when full. */
const ipv4Text = new Map<number, string>();
const IPV4_TEXT_ENTRIES = 4096;

/**
 * The socket peer's address as text (`203.0.113.7`, `2001:db8::1`; an
 * IPv4-mapped IPv6 peer as its IPv4 address). uWS 20.30 asks the kernel
 * (getpeername) on every call and has no per-connection hook to keep it, so
 * this is called once per request that needs it; the binary form plus a
 * memo of the text is cheaper than `getRemoteAddressAsText` (callgrind on a
 * bare uWS server: ~3,500 against ~6,000 instructions per call).
 */
export function peerAddress(res: HttpResponse): string {
  const ab = res.getRemoteAddress();
  const b = new Uint8Array(ab);
  let off = -1;
  if (b.length === 4) off = 0;
  else if (b.length === 16 && b[10] === 0xff && b[11] === 0xff && isZero(b, 10)) off = 12;
  if (off < 0) return b.length === 16 ? ipv6Text(b) : bufferToText(res.getRemoteAddressAsText());
  const n = ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
  let t = ipv4Text.get(n);
  if (t === undefined) {
    t = `${b[off]}.${b[off + 1]}.${b[off + 2]}.${b[off + 3]}`;
    if (ipv4Text.size >= IPV4_TEXT_ENTRIES) ipv4Text.clear();
    ipv4Text.set(n, t);
  }
  return t;
}

function isZero(b: Uint8Array, end: number): boolean {
  for (let i = 0; i < end; i++) if (b[i] !== 0) return false;
  return true;
}

/** RFC 5952 text of a 16-byte address: lower-case hex, the longest run of two or more zero groups as `::`. */
function ipv6Text(b: Uint8Array): string {
  const g: number[] = [];
  for (let i = 0; i < 16; i += 2) g.push((b[i]! << 8) | b[i + 1]!);
  let bestAt = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (from: number, to: number) => g.slice(from, to).map((x) => x.toString(16)).join(':');
  return bestAt < 0 ? hex(0, 8) : `${hex(0, bestAt)}::${hex(bestAt + bestLen, 8)}`;
}

/**
 * The largest piece handed to one uWS WebSocket send. uWS 20.30's `send`
 * takes a shortcut for a message of 16 KiB or more when nothing is buffered
 * for the socket: it writes header and payload straight to the socket
 * (`us_socket_write2`, writev), and when that write takes none of the bytes
 * (the kernel's buffer is full: the moment after a drain that filled it) it
 * buffers the frame header and drops the payload, so the peer reads the next
 * frame's bytes as this one's payload (fixed upstream after this build:
 * uNetworking/uWebSockets pull request 1662). Caught here by a frame checker
 * on the demo origin's bytes at the Warpgate: payload bytes exactly one
 * message length after a message boundary, in 9 of about 610 floods of
 * 384 MiB run four at once, and in none of 960 once every send went through
 * here; the same send relays the origin's messages to clients. A
 * piece under 16 KiB never takes the shortcut; with its header (at most 10
 * bytes from a server) it also fits uWS's 16 KiB cork buffer.
 */
export const WS_SEND_MAX = 16 * 1024 - 16;

/**
 * Sends one piece of a message — `first` and `last` say where it lies in the
 * message — as uWS fragments of at most WS_SEND_MAX bytes (RFC 6455 §5.4: a
 * message may be fragmented as the sender likes when no extension is in use;
 * both legs decline permessage-deflate).
 */
export function sendPiece<U>(ws: WebSocket<U>, part: Uint8Array, binary: boolean, first: boolean, last: boolean): void {
  const len = part.length;
  if (len <= WS_SEND_MAX) {
    if (first && last) ws.send(part, binary);
    else if (first) ws.sendFirstFragment(part, binary);
    else if (last) ws.sendLastFragment(part);
    else ws.sendFragment(part);
    return;
  }
  for (let off = 0; off < len; off += WS_SEND_MAX) {
    const end = Math.min(off + WS_SEND_MAX, len);
    const piece = part.subarray(off, end);
    const isFirst = first && off === 0;
    const isLast = last && end === len;
    if (isFirst) ws.sendFirstFragment(piece, binary);
    else if (isLast) ws.sendLastFragment(piece);
    else ws.sendFragment(piece);
  }
}

/** Sends one whole message (see WS_SEND_MAX). */
export function sendMessage<U>(ws: WebSocket<U>, message: Uint8Array | string, binary: boolean): void {
  sendPiece(ws, typeof message === 'string' ? Buffer.from(message, 'utf8') : message, binary, true, true);
}
