/** Route: request-path normalization (the trie itself is compiled in config/). */
export { normalizePath } from './normalize.js';
export type { NormalizeResult } from './normalize.js';
