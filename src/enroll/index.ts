/**
 * Warpgate enrollment: the control-plane side issues short-lived client
 * certificates against a service-account key (`service.ts`); the edge side
 * admits and re-checks the tunnels those certificates open (`guard.ts`).
 */
export { Enroller, enrollEndpoints, defaultServername, RENEW_AT_FRACTION, DEFAULT_CERT_TTL_MS, MIN_CERT_TTL_MS, type EnrollerOptions } from './service.js';
export { TunnelGuard, type Admission } from './guard.js';
