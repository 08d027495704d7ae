export { Authenticator, IDLE_REFRESH_INTERVAL_MS, systemClock, type Clock, type Principal, type AuthResult } from './authenticate.js';
export * from './tokens.js';
