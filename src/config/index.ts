/**
 * Config: unvalidated input → `validateConfig` / `parseConfigYaml` →
 * `ValidConfig` → `compileConfig` → frozen `CompiledConfig` the hot path reads.
 */
export { validateConfig, parseConfigYaml } from './validate/index.js';
export { compileConfig, normalizeHost, stepUpChallenge } from './compile.js';
export { parseConfigHost, MAX_HOST_NAME_LENGTH } from './host.js';
export { parseSize, DEFAULT_MAX_BODY_BYTES, MAX_MAX_BODY_BYTES, DEFAULT_MAX_MESSAGE_BYTES, MAX_MAX_MESSAGE_BYTES, DEFAULT_WS_IDLE_MS, DEFAULT_MAX_SOCKETS } from './limits.js';
export type * from './types.js';
export { clientIp, canonicalIp } from './client-ip.js';
export { defaultLoginConfig, defaultPasswordConfig, defaultAccountThrottle, defaultIpThrottle, DEFAULT_ORGANIZATION, orgDirectoryId } from './defaults.js';
