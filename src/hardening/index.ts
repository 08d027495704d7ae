/** Hardening of the HTTP/1.1 front end: framing checks, client routing headers, limits. */
export { inspectFraming, BODY_NONE, BODY_CHUNKED, FRAMING_INVALID } from './framing.js';
export { isClientRoutingHeader } from './headers.js';
export { DEFAULT_MAX_HEAD_BYTES, MIN_MAX_HEAD_BYTES, MAX_MAX_HEAD_BYTES, MAX_HEADER_FIELDS, KNOWN_UWS_REASSEMBLY_BYTES, KNOWN_UWS_IDLE_TIMEOUT_MS } from './limits.js';
