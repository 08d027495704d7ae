/**
 * Limits of the HTTP/1.1 front end, each with the threat it answers
 * (docs/SECURITY.md states them all, with the ones uWS fixes at compile time).
 */

/**
 * Longest request head the edge accepts: request line plus header fields, in
 * bytes (`--max-head-size`). 16 KiB, as Node's default: a browser with many
 * cookies for one site fits (Chrome caps one cookie at 4 KiB and sends what a
 * site set). Larger → 431 and the connection closed. The edge also exports it
 * as UWS_HTTP_MAX_HEADERS_SIZE for uWS builds that read it (v20.3x and later);
 * the pinned 20.30 build does not (see KNOWN_UWS_REASSEMBLY_BYTES).
 */
export const DEFAULT_MAX_HEAD_BYTES = 16 * 1024;
export const MIN_MAX_HEAD_BYTES = 1024;
export const MAX_MAX_HEAD_BYTES = 1024 * 1024;

/**
 * Most header fields in one request: 100 (uWS's own default in later builds,
 * UWS_HTTP_MAX_HEADERS_COUNT). The pinned build stops earlier on its own
 * (about 48 fields; beyond, it never delivers the request and closes the
 * connection after its idle timeout), so this check is for newer builds.
 */
export const MAX_HEADER_FIELDS = 100;

/**
 * Forwarded requests one client address may have in flight in one edge worker
 * (`--client-inflight`); the next one gets 429 `MEZU_CLIENT_BUSY` with
 * `Retry-After: 1`, before anything is forwarded. The address is the one
 * X-Forwarded-For carries (the peer, or the client behind a trusted proxy).
 * Why 256: a tunnel connection takes 1000 concurrent streams and a worker
 * holds at least two per Warpgate, so one client gets at most an eighth of
 * them, while a browser (6 connections per host, or ~100 streams over HTTP/2
 * through a proxy) and a load test with autocannon's default 10 connections
 * stay far below it. uWS 20.30 tells the handler nothing about connections,
 * so open connections per address cannot be counted here; an idle one costs
 * a descriptor and is closed by uWS's 10 s idle timeout.
 */
export const DEFAULT_CLIENT_INFLIGHT = 256;

/**
 * What the pinned uWS build fixes at compile time, measured with raw sockets
 * (test/security/limits.test.ts). Documented, not configurable:
 * - a head that arrives split over several reads is reassembled in a 4 KiB
 *   buffer: a longer split head is dropped without an answer (a head that
 *   arrives in one read is parsed whatever its size, up to the edge's limit);
 * - 10 s idle timeout (4 s granularity): a connection that has not sent a
 *   complete head, or that sends a body slower than 16 KiB per 10 s, or that
 *   sits idle between keep-alive requests, is closed after 10–14 s.
 */
export const KNOWN_UWS_REASSEMBLY_BYTES = 4 * 1024;
export const KNOWN_UWS_IDLE_TIMEOUT_MS = 10_000;
