/**
 * The only importer of uWebSockets.js.
 *
 * We pin `@trufflesuite/uws-js-unofficial@20.30.0-unofficial.0`: the only uWS
 * build on the npm registry whose Linux binary loads on glibc 2.36 (brief §2).
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

export interface Uws {
  App: typeof UwsTypes.App;
  SSLApp: typeof UwsTypes.SSLApp;
  us_listen_socket_close: typeof UwsTypes.us_listen_socket_close;
  us_socket_local_port: typeof UwsTypes.us_socket_local_port;
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
  loaded = mod;
  return mod;
}

/** The native addon's functions are native code; the fallback's are JavaScript. */
export function isNativeUws(mod: unknown): boolean {
  if (mod === null || typeof mod !== 'object') return false;
  const app = (mod as { App?: unknown }).App;
  return typeof app === 'function' && /\[native code\]/.test(Function.prototype.toString.call(app));
}

/** Text decoder for uWS's ArrayBuffer results (remote address). */
const decoder = new TextDecoder();
export function bufferToText(ab: ArrayBuffer): string {
  return decoder.decode(ab);
}
