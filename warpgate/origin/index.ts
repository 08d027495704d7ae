/**
 * Warpgate → origin over keep-alive HTTP/1.1 (see ./client.ts for why it is
 * not undici, and bench/origin-client.ts for the measurement).
 */
export { OriginClient, OriginRequest } from './client.js';
export type { OriginClientOptions, OriginClientStats, OriginErrorCode, OriginRequestHead, OriginSink } from './client.js';
