/** Route: request-path normalization and rule keys (the trie itself is compiled in config/). */
export { normalizePath, routeKey, isForwardableQuery } from './normalize.js';
export type { NormalizeResult } from './normalize.js';
