/**
 * Explicit limits of the lean HTTP/2 codec, with the threat each answers.
 * Both ends of the tunnel use them; the peer is authenticated by mTLS, but a
 * compromised or buggy peer must still not be able to exhaust memory or CPU.
 */
export interface H2Limits {
  /** Streams the peer may open at once (we announce it; server role), and streams whose work may run at once. Beyond: REFUSED_STREAM. */
  maxConcurrentStreams: number;
  /** Our receive window per stream (SETTINGS_INITIAL_WINDOW_SIZE). Bounds bytes buffered per paused stream. */
  initialWindowSize: number;
  /** Our receive window for the whole connection. Bounds bytes in flight towards us. */
  connectionWindowSize: number;
  /** Largest frame payload we accept (we do not announce more than the 16 KiB default). */
  maxFrameSize: number;
  /** Decoded header list size (name + value + 32 per field, RFC 9113 §6.5.2). Beyond: the stream is refused. */
  maxHeaderListSize: number;
  /** HPACK dynamic table size we let the peer use (SETTINGS_HEADER_TABLE_SIZE). */
  headerTableSize: number;
  /** Encoded header block, HEADERS + CONTINUATION, in bytes; and CONTINUATION frames per block (CONTINUATION flood, CVE-2024-27316 class). */
  maxHeaderBlockBytes: number;
  maxContinuationFrames: number;
  /** Outbound bytes queued per stream before write() asks the caller to wait (flow-control backpressure). */
  streamHighWaterMark: number;
  /**
   * Streams refused per window because the peer opened more than maxConcurrentStreams at once,
   * before ENHANCE_YOUR_CALM. A compliant peer refuses none; each costs us a RST_STREAM written
   * (reset flood, CVE-2019-9514). Rapid reset (CVE-2023-44487) is answered without a rate: a
   * stream the peer resets keeps its slot of maxConcurrentStreams until its work has stopped
   * (server role, `ServerStreamSink.onReset`), and streams beyond the slots wait.
   */
  maxRefusedStreamsPerWindow: number;
  /** PINGs and SETTINGS frames per window before ENHANCE_YOUR_CALM (control-frame floods). */
  maxControlFramesPerWindow: number;
  rateWindowMs: number;
  /** Liveness: a PING every interval; no ACK within timeout → the connection is dead and destroyed. 0 disables. */
  pingIntervalMs: number;
  pingTimeoutMs: number;
  /**
   * Server role: announce SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441) and accept
   * extended CONNECT streams (`:method CONNECT` with `:protocol`). Off by
   * default: only a peer that handles such streams (the Warpgate's WebSocket
   * relay) turns it on; without it a `:protocol` makes the request malformed.
   */
  enableConnectProtocol: boolean;
  /** Client role: no response head within this long → the stream is cancelled (504). */
  responseTimeoutMs: number;
}

export const DEFAULT_LIMITS: Readonly<H2Limits> = Object.freeze({
  maxConcurrentStreams: 1000,
  initialWindowSize: 1 << 20,
  connectionWindowSize: 16 << 20,
  maxFrameSize: 16_384,
  maxHeaderListSize: 64 * 1024,
  headerTableSize: 4096,
  maxHeaderBlockBytes: 128 * 1024,
  maxContinuationFrames: 32,
  streamHighWaterMark: 256 * 1024,
  maxRefusedStreamsPerWindow: 100,
  maxControlFramesPerWindow: 2000,
  rateWindowMs: 1000,
  pingIntervalMs: 2000,
  pingTimeoutMs: 4000,
  responseTimeoutMs: 60_000,
  enableConnectProtocol: false,
});
