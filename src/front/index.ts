/**
 * The front end: the uWS handler that runs a request through route, session,
 * authorize, identity and tunnel (`handler.ts`), the one request object they
 * share (`request.ts`), and the HTTP/1.1 framing checks and limits the edge
 * adds to uWS's parser (`framing.ts`, `limits.ts`).
 */
export { createFront, type FrontContext, type HostedPages } from './handler.js';
export { AccessLog, parseAccessLogRate } from './access-log.js';
export { EdgeRequest, type RequestScope } from './request.js';
export { createWebSocket, EdgeSocket, type WebSocketContext, TUNNEL_QUEUE_MAX, CLIENT_HIGH_WATER, CLIENT_LOW_WATER } from './websocket.js';
export { inspectFraming, BODY_NONE, BODY_CHUNKED, FRAMING_INVALID } from './framing.js';
export { DEFAULT_CLIENT_INFLIGHT, DEFAULT_MAX_HEAD_BYTES, MIN_MAX_HEAD_BYTES, MAX_MAX_HEAD_BYTES, MAX_HEADER_FIELDS, KNOWN_UWS_REASSEMBLY_BYTES, KNOWN_UWS_IDLE_TIMEOUT_MS } from './limits.js';
export { RequestMetrics, type ProjectTotals, DecisionKind, DECISIONS, METHOD_CLASSES, STATUS_CLASSES, MAX_SLOTS } from './metrics.js';
export { EdgeSpans } from './spans.js';
