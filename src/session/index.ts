export { Authenticator, Principal, IDLE_REFRESH_INTERVAL_MS, systemClock, type Clock } from './authenticate.js';
export * from './tokens.js';
